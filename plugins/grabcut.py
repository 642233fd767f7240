"""GrabCut click segmentation (OpenCV): no weights, no GPU, works on any machine.

GrabCut fits colour models for foreground and background and cuts the image along colour edges. A box
prompt marks its outside as sure background; positive clicks become small sure-foreground disks,
negative clicks sure-background disks. It runs on a crop around the prompts, downscaled to at most
`max_side` pixels, so a click is answered in a fraction of a second even on large photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from studio.core.shapes import Box
from studio.models.protocols import MaskCandidate, PluginSpec


class GrabCutSegmenter:
    """The Segmenter protocol over cv2.grabCut. Its "embedding" is the image itself (nothing to precompute)."""

    persist_embeddings = False
    """An embedding cache should keep GrabCut's embeddings (the image) in memory only: re-reading is as cheap."""

    def __init__(self, *, iterations: int = 4, max_side: int = 320, click_radius: int = 3) -> None:
        self.iterations = iterations
        self.max_side = max_side
        self.click_radius = click_radius

    def encode(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image)

    def predict(
        self,
        embedding: Any,
        *,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: Box | None = None,
        multimask: bool = True,
    ) -> list[MaskCandidate]:
        """Masks of the image's shape: the part connected to the positive clicks first, then all foreground.

        GrabCut has no quality estimate of its own: the first candidate scores 1.0, an alternative its IoU
        with the first (so near-duplicates read as such).
        """
        image: np.ndarray = embedding
        height, width = image.shape[:2]
        clicks = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        labels = np.ones(len(clicks), dtype=np.int64) if point_labels is None else np.asarray(point_labels).reshape(-1)
        if box is None and not (labels == 1).any():
            return []  # nothing says where the object is
        x0, y0, x1, y1 = self._working_region(clicks, labels, box, width=width, height=height)
        scale = min(1.0, self.max_side / max(x1 - x0, y1 - y0))
        crop = image[y0:y1, x0:x1]
        if scale < 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        seeds = self._seed_mask(crop.shape[:2], (clicks - (x0, y0)) * scale, labels, box, offset=(x0, y0), scale=scale)
        foreground = self._cut(crop, seeds)
        if scale < 1.0:
            foreground = cv2.resize(foreground.astype(np.uint8), (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        full = np.zeros((height, width), dtype=bool)
        full[y0:y1, x0:x1] = foreground.astype(bool)
        connected = _components_touching(full, clicks[labels == 1])
        candidates = [MaskCandidate(connected, 1.0)]
        if multimask and not np.array_equal(connected, full):
            candidates.append(MaskCandidate(full, _iou(connected, full)))
        return candidates

    def _working_region(
        self, clicks: np.ndarray, labels: np.ndarray, box: Box | None, *, width: int, height: int
    ) -> tuple[int, int, int, int]:
        """The crop GrabCut sees: the prompts plus a margin of background for its colour model."""
        corners = [clicks[labels == 1]]
        if box is not None:
            corners.append(np.array([[box.x1, box.y1], [box.x2, box.y2]]))
        region = np.concatenate(corners)
        lo, hi = region.min(axis=0), region.max(axis=0)
        # a lone click says nothing about the object's size: assume up to a quarter of the image around it
        margin = 0.1 * (hi - lo) + (0.25 * max(width, height) if box is None else 10.0)
        lo, hi = np.floor(lo - margin), np.ceil(hi + margin)
        x0, y0 = int(max(lo[0], 0)), int(max(lo[1], 0))
        x1, y1 = int(min(hi[0], width)), int(min(hi[1], height))
        return x0, y0, max(x1, x0 + 2), max(y1, y0 + 2)

    def _seed_mask(
        self,
        shape: tuple[int, int],
        clicks: np.ndarray,
        labels: np.ndarray,
        box: Box | None,
        *,
        offset: tuple[int, int],
        scale: float,
    ) -> np.ndarray:
        seeds = np.full(shape, cv2.GC_PR_BGD, dtype=np.uint8)
        if box is not None:
            seeds[:] = cv2.GC_BGD
            bx0, by0 = (box.x1 - offset[0]) * scale, (box.y1 - offset[1]) * scale
            bx1, by1 = (box.x2 - offset[0]) * scale, (box.y2 - offset[1]) * scale
            seeds[max(int(by0), 0) : int(np.ceil(by1)), max(int(bx0), 0) : int(np.ceil(bx1))] = cv2.GC_PR_FGD
        else:
            # clicks alone: treat the working region like a box prompt, its rim giving the background colours
            rim = max(2, round(0.03 * max(shape)))
            seeds[:] = cv2.GC_BGD
            seeds[rim:-rim, rim:-rim] = cv2.GC_PR_FGD
        for (x, y), label in zip(clicks, labels, strict=True):
            cv2.circle(seeds, (round(x), round(y)), self.click_radius, cv2.GC_FGD if label == 1 else cv2.GC_BGD, -1)
        return seeds

    def _cut(self, crop: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        foreground_seeded = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
        background_seeded = np.isin(seeds, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
        if not (foreground_seeded and background_seeded):  # GrabCut needs samples of both to fit its models
            return np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
        bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        mask = seeds.copy()
        cv2.grabCut(_as_bgr(crop), mask, None, bgd_model, fgd_model, self.iterations, cv2.GC_INIT_WITH_MASK)
        return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def _components_touching(mask: np.ndarray, clicks: Sequence[Sequence[float]]) -> np.ndarray:
    """The connected parts of `mask` under a positive click; the largest part when there is no click."""
    count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    height, width = mask.shape
    keep = {
        int(components[min(max(round(y), 0), height - 1), min(max(round(x), 0), width - 1)]) for x, y in clicks
    } - {0}
    if not keep:
        sizes = np.bincount(components.ravel())[1:]
        keep = {int(np.argmax(sizes)) + 1}
    return np.isin(components, sorted(keep))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def load(*, weights: str | None = None, device: str | None = None) -> GrabCutSegmenter:
    """GrabCut needs no weights and runs on the CPU whatever device is asked for."""
    return GrabCutSegmenter()


SPECS = (
    PluginSpec(
        id="grabcut",
        family="opencv",
        task="segment",
        title="GrabCut (OpenCV, no weights)",
        load=load,
        devices=("cpu",),
        needs_weights=False,
    ),
)
