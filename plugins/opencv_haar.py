"""OpenCV's Haar cascades (faces, profiles, eyes, full bodies, cat faces, licence plates): no download needed.

The demo project's out-of-the-box detector, run by OpenCV's own `CascadeClassifier` on the cascade files
that opencv-python ships in `cv2.data.haarcascades`.

Score: `detectMultiScale3(outputRejectLevels=True)` reports, per object, the "level weight" (the sum of
the last stage's weak classifiers; the larger, the further the window got past that stage). Studio maps it
through a sigmoid to 0..1 so it can share one confidence slider with other detectors; it is a ranking,
not a calibrated probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.protocols import Detection, PluginSpec

if TYPE_CHECKING:
    import cv2

CASCADE_FILES = {
    "face": "haarcascade_frontalface_default.xml",
    "profile_face": "haarcascade_profileface.xml",
    "eye": "haarcascade_eye.xml",
    "full_body": "haarcascade_fullbody.xml",
    "cat_face": "haarcascade_frontalcatface.xml",
    "licence_plate": "haarcascade_russian_plate_number.xml",
}
CASCADES = tuple(CASCADE_FILES)
DEFAULT_CLASSES = ("face",)


@cache
def load_cascade(name: str) -> cv2.CascadeClassifier:
    """The classifier for one of CASCADES, loaded once per process."""
    import cv2

    if name not in CASCADE_FILES:
        raise StudioError(f"unknown Haar cascade {name!r}; choose from {', '.join(CASCADES)}")
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILES[name])
    if classifier.empty():
        raise StudioError(f"OpenCV's cascade file for {name} is missing or damaged; reinstall opencv-python")
    return classifier


class HaarDetector:
    """Detector over a choice of cascades; `classes` picks them (default: faces)."""

    class_names: Sequence[str] = CASCADES

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 3, min_size: int = 0) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(
        self, images: Sequence[np.ndarray], *, classes: Sequence[str] | None = None, conf: float = 0.25, iou: float = 0.7
    ) -> list[list[Detection]]:
        """`iou` is unused: OpenCV groups overlapping windows itself (min_neighbors)."""
        import cv2

        cascades = {name: load_cascade(name) for name in (classes or DEFAULT_CLASSES)}
        results: list[list[Detection]] = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
            gray = cv2.equalizeHist(gray)  # as OpenCV's face-detection sample does: robust to exposure
            found: list[Detection] = []
            for name, cascade in cascades.items():
                boxes, _levels, weights = cascade.detectMultiScale3(
                    gray,
                    scaleFactor=self.scale_factor,
                    minNeighbors=self.min_neighbors,
                    minSize=(self.min_size, self.min_size),
                    outputRejectLevels=True,
                )
                scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).ravel()))
                found += [
                    Detection(Box(float(x), float(y), float(x + w), float(y + h)), name, float(score))
                    for (x, y, w, h), score in zip(np.asarray(boxes).reshape(-1, 4), scores, strict=True)
                    if score >= conf
                ]
            results.append(found)
        return results


def load(*, weights: str | None = None, device: str | None = None, **options: Any) -> HaarDetector:
    """Build the detector; it needs no weights file and runs on the CPU only."""
    if weights is not None:
        raise StudioError(f"opencv-haar uses OpenCV's bundled cascades and takes no weights file (got {weights})")
    return HaarDetector(**options)


SPECS = (
    PluginSpec(
        id="opencv-haar",
        family="opencv",
        task="detect",
        title="Haar cascades (faces, eyes, bodies, cat faces, plates) — no download",
        load=load,
        devices=("cpu",),
        needs_weights=False,
        options={"classes": list(CASCADES), "default_classes": list(DEFAULT_CLASSES)},
    ),
)
