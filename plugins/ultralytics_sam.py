"""SAM, MobileSAM, SAM 2 and SAM 2.1 through ultralytics: one plugin id per architecture.

The plugin id picks the architecture (ultralytics' builders); the weights are the official ultralytics
files or any local file with the same architecture. `encode` runs the predictor's image encoder once
and returns its features as numpy (cacheable); `predict` hands them to `Predictor.inference_features`,
which runs only the prompt encoder and mask decoder.

ultralytics unpickles checkpoints with `weights_only=False`, so the file is vetted first with
`check_checkpoint_globals` (tensors and containers only, unless the user opted in to trust it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from studio.core.shapes import Box
from studio.models.protocols import MaskCandidate, PluginSpec, WeightsFile

_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0/"
_PLAIN_CHECKPOINT_GLOBALS = ("torch.", "collections.", "builtins.", "_codecs.", "numpy.")
INPUT_SIZE = 1024


@dataclass(frozen=True, slots=True)
class UltralyticsSamEmbedding:
    """Encoder features as numpy: SAM a (1, 256, 64, 64) array; SAM 2 also its high-resolution levels."""

    image_embed: np.ndarray
    high_res_feats: tuple[np.ndarray, ...]
    src_shape: tuple[int, int]


class UltralyticsSamSegmenter:
    """The Segmenter protocol over ultralytics' SAM / SAM2 predictors (BGR images, pixel coordinates)."""

    def __init__(self, model: Any, *, sam2: bool, device: str = "cpu", input_size: int = INPUT_SIZE) -> None:
        """`input_size` is the encoder's square input side: 1024 as trained; smaller is faster and coarser."""
        from ultralytics.models.sam import Predictor, SAM2Predictor  # configured by load() already

        self.input_size = input_size
        predictor_class = SAM2Predictor if sam2 else Predictor
        self.predictor = predictor_class(overrides={"imgsz": input_size, "device": device, "verbose": False})
        self.predictor.setup_model(model=model, verbose=False)
        self._lock = threading.Lock()  # the predictor holds one image's state; workers take turns

    def encode(self, image: np.ndarray) -> UltralyticsSamEmbedding:
        with self._lock:
            self.predictor.set_image(image)
            features = self.predictor.features
            self.predictor.reset_image()
        if isinstance(features, dict):  # SAM 2: image embedding plus high-resolution feature levels
            high_res = tuple(f.detach().cpu().numpy() for f in features["high_res_feats"])
            return UltralyticsSamEmbedding(features["image_embed"].detach().cpu().numpy(), high_res, image.shape[:2])
        return UltralyticsSamEmbedding(features.detach().cpu().numpy(), (), image.shape[:2])

    def predict(
        self,
        embedding: Any,
        *,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: Box | None = None,
        multimask: bool = True,
    ) -> list[MaskCandidate]:
        """Up to 3 masks (H, W) bool with the model's predicted IoU as score; one when `multimask` is False."""
        import torch

        device = self.predictor.device
        image_embed = torch.from_numpy(embedding.image_embed).to(device)
        features: Any = image_embed
        if embedding.high_res_feats:
            features = {
                "image_embed": image_embed,
                "high_res_feats": [torch.from_numpy(f).to(device) for f in embedding.high_res_feats],
            }
        has_points = points is not None and len(points) > 0
        with self._lock:
            masks, boxes = self.predictor.inference_features(
                features,
                src_shape=embedding.src_shape,
                # one object with N points: (1, N, 2) and (1, N); ultralytics reads (N, 2) as N objects
                points=np.asarray(points, dtype=np.float32).reshape(1, -1, 2) if has_points else None,
                labels=np.asarray(point_labels).reshape(1, -1) if has_points else None,
                bboxes=None if box is None else np.array([[box.x1, box.y1, box.x2, box.y2]], dtype=np.float32),
                multimask_output=multimask,
            )
        if masks is None:
            return []
        scores = boxes[:, 4].cpu().numpy()
        return [MaskCandidate(m, float(s)) for m, s in zip(masks.cpu().numpy(), scores, strict=True)]


def load(
    *, official: str, weights: str | None = None, device: str | None = None, input_size: int = INPUT_SIZE
) -> UltralyticsSamSegmenter:
    """Build the architecture of `official` (e.g. "sam2.1_t.pt") and load the checkpoint into it."""
    from studio.models.offline import configure_ultralytics

    configure_ultralytics()  # before ultralytics' first import: no settings file in ~/.config, no online checks
    from ultralytics.models.sam.build import sam_model_map

    from studio.models.weights import WeightsError, check_checkpoint_globals, resolve_weights

    spec = next(s for s in SPECS if s.weights[0].name == official)
    path = resolve_weights(spec, weights)
    check_checkpoint_globals(path, allowed_prefixes=_PLAIN_CHECKPOINT_GLOBALS)
    if official.startswith("sam2.1") and "sam2.1" not in path.name:
        # ultralytics tells SAM 2.1 from SAM 2 by the file name only; a renamed file would load as SAM 2
        raise WeightsError(f"{path.name}: SAM 2.1 checkpoints must keep 'sam2.1' in their file name")
    try:
        model = sam_model_map[official](str(path))
    except (RuntimeError, KeyError, EOFError, ValueError) as exc:  # wrong architecture or a damaged file
        raise WeightsError(f"{path} does not fit {spec.title} ({' '.join(str(exc).split())[:300]})") from exc
    return UltralyticsSamSegmenter(
        model, sam2=official.startswith("sam2"), device=device or "cpu", input_size=input_size
    )


_MODELS = {
    "mobile-sam": ("mobile_sam.pt", "MobileSAM (ultralytics)"),
    "sam-b": ("sam_b.pt", "SAM ViT-B (ultralytics)"),
    "sam-l": ("sam_l.pt", "SAM ViT-L (ultralytics)"),
    **{f"sam2-{k}": (f"sam2_{k}.pt", f"SAM 2 {size} (ultralytics)") for k, size in zip("tsbl", ("tiny", "small", "base+", "large"), strict=True)},
    **{f"sam2.1-{k}": (f"sam2.1_{k}.pt", f"SAM 2.1 {size} (ultralytics)") for k, size in zip("tsbl", ("tiny", "small", "base+", "large"), strict=True)},
}

SPECS = tuple(
    PluginSpec(
        id=plugin_id,
        family="ultralytics-sam",
        task="segment",
        title=title,
        load=partial(load, official=file),
        weights=(WeightsFile(file, _URL + file, None, None, f"official {title} checkpoint"),),
        devices=("cpu", "cuda", "mps"),
    )
    for plugin_id, (file, title) in _MODELS.items()
)
