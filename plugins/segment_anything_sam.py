"""Segment Anything (facebookresearch/segment-anything): ViT-B, ViT-L and ViT-H click segmenters.

`encode` runs SamPredictor.set_image once (the expensive image encoder) and returns the features with the
two sizes `predict` needs, as numpy, so Studio can cache them in memory and on disk; `predict` puts them
back into the predictor and runs SamPredictor.predict (prompt encoder + mask decoder only).
Checkpoints are the official ones, downloaded and checked by Studio's weights manager, loaded by
`studio.models.checkpoints.load_checkpoint` as plain state dicts (no code can run from the file).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from studio.core.shapes import Box
from studio.models.protocols import MaskCandidate, PluginSpec, WeightsFile

_URL = "https://dl.fbaipublicfiles.com/segment_anything/"


@dataclass(frozen=True, slots=True)
class SamEmbedding:
    """What SamPredictor keeps after set_image: features (1, 256, 64, 64) float32 and the two sizes (H, W)."""

    features: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class SegmentAnythingSegmenter:
    """The Segmenter protocol over segment_anything.SamPredictor (BGR images, pixel coordinates)."""

    def __init__(self, sam: Any) -> None:
        from segment_anything import SamPredictor

        self.predictor = SamPredictor(sam)
        self.input_size = int(sam.image_encoder.img_size)
        self._lock = threading.Lock()  # the predictor holds one image's state; workers take turns

    def encode(self, image: np.ndarray) -> SamEmbedding:
        with self._lock:
            self.predictor.set_image(image, image_format="BGR")
            embedding = SamEmbedding(
                self.predictor.features.detach().cpu().numpy(),
                tuple(self.predictor.original_size),
                tuple(self.predictor.input_size),
            )
            self.predictor.reset_image()
        return embedding

    def predict(
        self,
        embedding: Any,
        *,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: Box | None = None,
        multimask: bool = True,
    ) -> list[MaskCandidate]:
        """Up to 3 masks (H, W) bool with SAM's predicted IoU as score; one mask when `multimask` is False."""
        import torch

        has_points = points is not None and len(points) > 0
        with self._lock:
            predictor = self.predictor
            predictor.features = torch.from_numpy(embedding.features).to(predictor.device)
            predictor.original_size, predictor.input_size = embedding.original_size, embedding.input_size
            predictor.is_image_set = True
            try:
                masks, scores, _ = predictor.predict(
                    point_coords=np.asarray(points, dtype=np.float32).reshape(-1, 2) if has_points else None,
                    point_labels=np.asarray(point_labels).reshape(-1) if has_points else None,
                    box=None if box is None else np.array([box.x1, box.y1, box.x2, box.y2], dtype=np.float32),
                    multimask_output=multimask,
                )
            finally:
                predictor.reset_image()
        return [MaskCandidate(mask, float(score)) for mask, score in zip(masks, scores, strict=True)]


def load(*, variant: str, weights: str | None = None, device: str | None = None) -> SegmentAnythingSegmenter:
    """Build the `variant` architecture and load its checkpoint (official name, or a local file)."""
    from segment_anything import sam_model_registry

    from studio.models.checkpoints import load_checkpoint
    from studio.models.weights import WeightsError, resolve_weights

    path = resolve_weights(SPECS_BY_VARIANT[variant], weights)
    state = load_checkpoint(path)
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a SAM checkpoint (expected a state dict)")
    sam = sam_model_registry[variant](checkpoint=None)
    try:
        sam.load_state_dict(state)
    except RuntimeError as exc:  # wrong architecture: torch lists hundreds of keys, the first line says enough
        raise WeightsError(f"{path} does not fit SAM {variant} ({' '.join(str(exc).split())[:300]})") from exc
    sam.to(device or "cpu").eval()
    return SegmentAnythingSegmenter(sam)


def _spec(variant: str, file: str, size: int, sha256: str, title: str) -> PluginSpec:
    return PluginSpec(
        id=f"sam-{variant.replace('_', '-')}",
        family="segment-anything",
        task="segment",
        title=title,
        load=partial(load, variant=variant),
        weights=(WeightsFile(file, _URL + file, sha256, size, f"official SAM {variant} checkpoint (Meta)"),),
        devices=("cpu", "cuda", "mps"),
    )


SPECS = (
    _spec("vit_b", "sam_vit_b_01ec64.pth", 375_042_383,
          "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", "SAM ViT-B (segment-anything)"),
    _spec("vit_l", "sam_vit_l_0b3195.pth", 1_249_524_607,
          "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", "SAM ViT-L (segment-anything)"),
    _spec("vit_h", "sam_vit_h_4b8939.pth", 2_564_550_879,
          "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", "SAM ViT-H (segment-anything)"),
)
SPECS_BY_VARIANT = {variant: spec for variant, spec in zip(("vit_b", "vit_l", "vit_h"), SPECS, strict=True)}
