"""SAM segmenters at random init: masks of the image's shape with scores, for point and box prompts.

segment-anything's ViT-B encoder takes ~15 s per image on this CPU at its 1024 px input (minutes when
the machine is busy), so the wrapper is tested on the same ViT-B architecture built for a 256 px input
(16x fewer tokens), encoded once per module; the official 1024 px build is exercised by the load tests
and by bench/sam_latency.py. ultralytics' MobileSAM and SAM 2 run at a 256 px input for the same reason.
"""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.shapes import Box
from studio.models.protocols import Segmenter
from studio.models.weights import WeightsError

IMAGE = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
CLICKS = {"points": np.array([[30.0, 20.0], [5.0, 40.0]]), "point_labels": np.array([1, 0])}
BOX = Box(10, 8, 50, 40)


def check_candidates(candidates, *, count: int) -> None:
    assert len(candidates) == count
    for candidate in candidates:
        assert candidate.mask.shape == IMAGE.shape[:2] and candidate.mask.dtype == bool
        assert isinstance(candidate.score, float) and np.isfinite(candidate.score)


# ---- segment-anything ---------------------------------------------------------------------------------


def vit_b_at(size: int):
    """segment_anything's ViT-B SAM (as its build_sam_vit_b makes it) for a `size` px input, random init."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    encoder = ImageEncoderViT(
        depth=12, embed_dim=768, img_size=size, mlp_ratio=4, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=12, patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=[2, 5, 8, 11],
        window_size=14, out_chans=256,
    )
    prompts = PromptEncoder(
        embed_dim=256, image_embedding_size=(size // 16, size // 16), input_image_size=(size, size), mask_in_chans=16
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256,
    )
    return Sam(encoder, prompts, decoder, pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


@pytest.fixture(scope="module")
def sam_vit_b():
    from studio_plugins.segment_anything_sam import SegmentAnythingSegmenter

    torch.manual_seed(0)
    segmenter = SegmentAnythingSegmenter(vit_b_at(256).eval())
    return segmenter, segmenter.encode(IMAGE)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompt", "multimask", "count"),
    [(CLICKS, True, 3), (CLICKS, False, 1), ({"box": BOX}, False, 1), ({**CLICKS, "box": BOX}, True, 3)],
)
def test_segment_anything_answers_points_and_boxes(sam_vit_b, prompt, multimask, count):
    segmenter, embedding = sam_vit_b
    assert isinstance(segmenter, Segmenter)
    check_candidates(segmenter.predict(embedding, multimask=multimask, **prompt), count=count)


@pytest.mark.slow
def test_segment_anything_embedding_survives_the_disk_cache(sam_vit_b):
    segmenter, embedding = sam_vit_b
    restored = pickle.loads(pickle.dumps(embedding))
    first = segmenter.predict(embedding, **CLICKS)
    again = segmenter.predict(restored, **CLICKS)
    assert all(np.array_equal(a.mask, b.mask) and a.score == pytest.approx(b.score) for a, b in zip(first, again, strict=True))


def test_segment_anything_specs_name_the_official_checkpoints():
    from studio_plugins.segment_anything_sam import SPECS

    assert [s.id for s in SPECS] == ["sam-vit-b", "sam-vit-l", "sam-vit-h"]
    vit_b = SPECS[0].weights[0]
    assert vit_b.url == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    assert vit_b.sha256.startswith("ec2df627") and SPECS[0].needs_weights


def test_missing_checkpoint_offline_is_one_clear_error(monkeypatch):
    from studio_plugins.segment_anything_sam import SPECS

    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    with pytest.raises(WeightsError, match="sam_vit_b_01ec64.pth is not downloaded"):
        SPECS[0].load(weights=None, device="cpu")
    with pytest.raises(WeightsError, match="not found"):
        SPECS[0].load(weights="/nowhere/sam_vit_b.pth", device="cpu")


@pytest.mark.parametrize(
    ("content", "message"), [(b"not a checkpoint", "bad.pth is not a"), (None, "does not fit SAM vit_b")]
)
def test_bad_checkpoint_is_one_clear_error(tmp_path: Path, content, message):
    from studio_plugins.segment_anything_sam import SPECS

    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"some.layer.weight": torch.zeros(2)}, path)  # a real checkpoint of another model
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        SPECS[0].load(weights=str(path), device="cpu")


# ---- ultralytics: MobileSAM, SAM 2 --------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_checkpoints(tmp_path_factory) -> Path:
    """Random-init MobileSAM and SAM 2 tiny saved under their official file names, as users get them."""
    from ultralytics.models.sam.build import build_mobile_sam, build_sam2_t

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(build_mobile_sam(None).state_dict(), folder / "mobile_sam.pt")
    torch.save({"model": build_sam2_t(None).state_dict()}, folder / "sam2_t.pt")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(("official", "sam2"), [("mobile_sam.pt", False), ("sam2_t.pt", True)])
def test_ultralytics_sam_answers_points_and_boxes(random_checkpoints: Path, official: str, sam2: bool):
    from studio_plugins.ultralytics_sam import load

    segmenter = load(official=official, weights=str(random_checkpoints / official), input_size=256)
    embedding = pickle.loads(pickle.dumps(segmenter.encode(IMAGE)))  # as the disk cache hands it back
    assert bool(embedding.high_res_feats) == sam2
    check_candidates(segmenter.predict(embedding, **CLICKS), count=3)
    check_candidates(segmenter.predict(embedding, box=BOX, multimask=False), count=1)
    check_candidates(segmenter.predict(embedding, box=BOX, **CLICKS, multimask=False), count=1)


def test_ultralytics_sam_loads_through_the_registry(random_checkpoints: Path):
    from studio.models.registry import get_plugin, load_model

    assert get_plugin("mobile-sam").weights[0].name == "mobile_sam.pt"
    segmenter = load_model("mobile-sam", weights=str(random_checkpoints / "mobile_sam.pt"), device="cpu")
    assert isinstance(segmenter, Segmenter) and segmenter.input_size == 1024


def test_ultralytics_wrong_or_renamed_checkpoint_is_one_clear_error(random_checkpoints: Path, tmp_path: Path):
    from studio_plugins.ultralytics_sam import load

    with pytest.raises(WeightsError, match="does not fit MobileSAM"):
        load(official="mobile_sam.pt", weights=str(random_checkpoints / "sam2_t.pt"))
    renamed = tmp_path / "my_model.pt"
    renamed.write_bytes((random_checkpoints / "sam2_t.pt").read_bytes())
    with pytest.raises(WeightsError, match="must keep 'sam2.1'"):
        load(official="sam2.1_t.pt", weights=str(renamed))
