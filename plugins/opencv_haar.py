"""OpenCV's Haar cascades (faces, profiles, eyes, full bodies, cat faces, licence plates): no download needed.

The demo project's out-of-the-box detector. The cascade files are OpenCV's own (Intel licence, in each
file's header), gzipped under plugins/haarcascades/. OpenCV 5 moved `CascadeClassifier` and the cascade
files out of the main `opencv-python` wheel (into opencv_contrib), and the contrib wheel cannot be installed
beside the main one, so this module evaluates the cascades itself with numpy on OpenCV's integral images,
following OpenCV's `cascadedetect.cpp`: the image is scaled down step by step, every window is
variance-normalised and must pass every boosted stage.

Score: OpenCV's `detectMultiScale3` reports, per object, the "level weight": the sum of the last stage's
weak classifiers, which a window passes when the sum reaches the stage threshold. Here the score is
sigmoid(level weight - last stage threshold), so it lies in 0.5..1 for every accepted window: 0.5 = barely
accepted, near 1 = far past the threshold; a `conf` above 0.5 keeps only the clearer detections.
OpenCV's `groupRectangles` (also gone in OpenCV 5) is replaced by supervision's non-max suppression
(at IoU <= GROUP_IOU) plus OpenCV's rule of "at least `min_neighbors` overlapping windows".
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.protocols import Detection, PluginSpec

CASCADE_DIR = Path(__file__).with_name("haarcascades")
CASCADES = ("face", "profile_face", "eye", "full_body", "cat_face", "licence_plate")
DEFAULT_CLASSES = ("face",)
NEIGHBOUR_IOU = 0.3
"""Raw windows overlapping a kept box by at least this much count as its neighbours."""
GROUP_IOU = 0.3
"""Windows of one object at neighbouring scales overlap little (a 20% larger box: IoU 0.7); merge them."""


@dataclass(frozen=True)
class Stage:
    """One boosted stage: K small trees of depth D, evaluated for all windows at once."""

    threshold: float
    features: np.ndarray
    """(K, D) feature index of each tree node."""
    thresholds: np.ndarray
    """(K, D) node thresholds on the variance-normalised feature value."""
    children: np.ndarray
    """(2, K, D) left and right child of each node; a value <= 0 is the leaf -value."""
    leaves: np.ndarray
    """(K, D + 1) leaf values."""


@dataclass(frozen=True)
class Cascade:
    """A parsed boosted cascade of Haar features."""

    name: str
    width: int
    height: int
    stages: tuple[Stage, ...]
    rects: np.ndarray
    """(features, 3, 4) x, y, w, h of up to three rectangles per feature (unused ones have weight 0)."""
    weights: np.ndarray
    """(features, 3)."""
    tilted: np.ndarray
    """(features,) bool: rectangles rotated by 45 degrees, summed on the tilted integral image."""


def _numbers(text: str | None) -> list[float]:
    return [float(v) for v in (text or "").split()]


def _stage(element: ElementTree.Element) -> Stage:
    weak = element.findall("weakClassifiers/_")
    nodes = [np.array(_numbers(w.findtext("internalNodes"))).reshape(-1, 4) for w in weak]
    leaves = [_numbers(w.findtext("leafValues")) for w in weak]
    depth = max(len(n) for n in nodes)
    # Pad shallower trees with nodes whose both children are leaf 0, never reached from the root.
    table = np.zeros((len(weak), depth, 4))
    leaf_table = np.zeros((len(weak), depth + 1))
    for i, (n, v) in enumerate(zip(nodes, leaves, strict=True)):
        table[i, : len(n)] = n
        leaf_table[i, : len(v)] = v
    children = np.stack([table[..., 0], table[..., 1]]).astype(np.int64)
    return Stage(
        float(element.findtext("stageThreshold") or 0.0),
        table[..., 2].astype(np.int64),
        table[..., 3],
        children,
        leaf_table,
    )


@cache
def load_cascade(name: str) -> Cascade:
    """Parse a bundled cascade (OpenCV's "new" XML format)."""
    if name not in CASCADES:
        raise StudioError(f"unknown Haar cascade {name!r}; choose from {', '.join(CASCADES)}")
    with gzip.open(CASCADE_DIR / f"{name}.xml.gz") as f:
        root = ElementTree.parse(f).getroot().find("cascade")
    if root is None:
        raise StudioError(f"cascade file for {name} is damaged")
    features = root.findall("features/_")
    rects = np.zeros((len(features), 3, 4), dtype=np.int64)
    weights = np.zeros((len(features), 3))
    tilted = np.zeros(len(features), dtype=bool)
    for i, feature in enumerate(features):
        for j, rect in enumerate(feature.findall("rects/_")):
            values = _numbers(rect.text)
            rects[i, j] = values[:4]
            weights[i, j] = values[4]
        tilted[i] = feature.findtext("tilted", "0").strip() == "1"
    stages = tuple(_stage(stage) for stage in root.findall("stages/_"))
    return Cascade(name, int(root.findtext("width") or 0), int(root.findtext("height") or 0), stages, rects, weights, tilted)


class _ScaledImage:
    """Integral images of one scaled copy of the image, and the feature lookups on them."""

    SIGNS = np.array([1.0, -1.0, -1.0, 1.0])

    def __init__(self, gray: np.ndarray, cascade: Cascade) -> None:
        import cv2

        # int32 sums are exact and halve the memory each gather touches; squares need float64.
        integral, squares, rotated_integral = cv2.integral3(gray, sdepth=cv2.CV_32S, sqdepth=cv2.CV_64F)
        self.sum, self.sqsum = integral.ravel(), squares.ravel()
        # Upright and tilted tables side by side, so one gather serves both kinds of feature.
        self.tables = np.concatenate([self.sum, rotated_integral.ravel()])
        self.stride = gray.shape[1] + 1
        self.cascade = cascade
        s = self.stride
        x, y, w, h = (cascade.rects[..., k] for k in range(4))
        # Corner offsets relative to the window origin (OpenCV's CV_SUM_OFFSETS and CV_TILTED_OFFSETS).
        upright = np.stack([x + s * y, x + w + s * y, x + s * (y + h), x + w + s * (y + h)], axis=-1)
        rotated = np.stack([x + s * y, x - h + s * (y + h), x + w + s * (y + w), x + w - h + s * (y + w + h)], axis=-1)
        self.corners = np.where(cascade.tilted[:, None, None], rotated + len(self.sum), upright).reshape(-1, 12)
        self.coefficients = (cascade.weights[..., None] * self.SIGNS).reshape(-1, 12)
        self.planes = (integral, rotated_integral)
        self.corner_rows, self.corner_cols = np.divmod(np.where(cascade.tilted[:, None, None], rotated, upright), s)

    def inverse_std(self, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """1/(area * std) of each window's inner area, and whether the window has enough contrast to test."""
        c, s = self.cascade, self.stride
        area = (c.width - 2) * (c.height - 2)
        o = origins + 1 + s
        corners = (0, c.width - 2, s * (c.height - 2), c.width - 2 + s * (c.height - 2))

        def box_sum(table: np.ndarray) -> np.ndarray:
            return table[o + corners[0]] - table[o + corners[1]] - table[o + corners[2]] + table[o + corners[3]]

        total, squares = box_sum(self.sum).astype(np.float64), box_sum(self.sqsum)
        nf = area * squares - total * total
        positive = nf > 0
        inverse = np.where(positive, 1.0 / np.sqrt(np.where(positive, nf, 1.0)), 1.0)
        return inverse, positive & (area * inverse < 0.1)

    def features(self, index: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(windows, len(index)) raw values of the features in each window: weighted rectangle sums."""
        corners = self.tables[self.corners[index][None] + origins[:, None, None]]
        return np.einsum("nfk,fk->nf", corners, self.coefficients[index])

    def dense_features(self, index: np.ndarray, grid: tuple[int, int, int]) -> np.ndarray:
        """Same as `features` for every window of the grid (rows, cols, step), by strided slices.

        While most windows are still alive (the first stages), slicing whole planes is about ten times
        faster than gathering each window's corners.
        """
        rows, cols, step = grid
        out = np.empty((rows * cols, len(index)))
        for j, f in enumerate(index):
            plane = self.planes[int(self.cascade.tilted[f])]
            value = np.zeros((rows, cols))
            for r in np.flatnonzero(self.cascade.weights[f]):
                for sign, dy, dx in zip(self.SIGNS, self.corner_rows[f, r], self.corner_cols[f, r], strict=True):
                    value += (sign * self.cascade.weights[f, r]) * plane[dy : dy + rows * step : step, dx : dx + cols * step : step]
            out[:, j] = value.ravel()
        return out


DENSE_FRACTION = 0.2
"""Evaluate a stage on the whole grid while more than this share of its windows is alive."""


def _run_stages(
    image: _ScaledImage, grid: tuple[int, int, int], positions: np.ndarray, origins: np.ndarray, inverse_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (origins) that pass every stage, with the last stage's sum minus its threshold."""
    margin = np.zeros(0)
    for stage in image.cascade.stages:
        weak, depth = stage.features.shape
        if len(positions) > DENSE_FRACTION * grid[0] * grid[1]:
            raw = image.dense_features(stage.features.ravel(), grid)[positions]
        else:
            raw = image.features(stage.features.ravel(), origins)
        values = raw.reshape(-1, weak, depth) * inverse_std[:, None, None]
        goes_right = (values >= stage.thresholds).astype(np.int64)
        node = np.zeros((len(origins), weak), dtype=np.int64)
        for _ in range(depth):  # walk all trees one level at a time; a reached leaf stays put (node <= 0)
            inner = node > 0 if _ else np.ones_like(node, dtype=bool)
            step = np.take_along_axis(goes_right, np.maximum(node, 0)[..., None], axis=2)[..., 0]
            child = stage.children[step, np.arange(weak), np.maximum(node, 0)]
            node = np.where(inner, child, node)
        total = np.take_along_axis(stage.leaves[None], -node[..., None], axis=2)[..., 0].sum(axis=1)
        keep = total >= stage.threshold
        positions, origins, inverse_std = positions[keep], origins[keep], inverse_std[keep]
        margin = total[keep] - stage.threshold
        if not len(origins):
            break
    return origins, margin


def detect_cascade(
    gray: np.ndarray, cascade: Cascade, *, scale_factor: float = 1.1, min_size: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Raw accepted windows (N, 4) xyxy in image pixels and their scores, over all scales."""
    import cv2

    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    height, width = gray.shape
    factor = 1.0
    while True:
        scaled_w, scaled_h = round(width / factor), round(height / factor)
        if scaled_w < cascade.width or scaled_h < cascade.height:
            break
        if cascade.width * factor >= min_size:
            scaled = cv2.resize(gray, (scaled_w, scaled_h), interpolation=cv2.INTER_LINEAR) if factor > 1 else gray
            image = _ScaledImage(scaled, cascade)
            step = 1 if factor > 2 else 2
            ys, xs = np.mgrid[0 : scaled_h - cascade.height + 1 : step, 0 : scaled_w - cascade.width + 1 : step]
            origins = (xs + image.stride * ys).ravel()
            inverse_std, testable = image.inverse_std(origins)
            positions = np.flatnonzero(testable)
            kept, margin = _run_stages(image, (*ys.shape, step), positions, origins[positions], inverse_std[positions])
            x, y = kept % image.stride, kept // image.stride
            size = np.array([cascade.width, cascade.height]) * factor
            boxes.append(np.stack([x * factor, y * factor, x * factor + size[0], y * factor + size[1]], axis=1))
            scores.append(1.0 / (1.0 + np.exp(-margin)))  # see the module docstring
        factor *= scale_factor
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0)
    return np.concatenate(boxes), np.concatenate(scores)


def group_windows(
    boxes: np.ndarray, scores: np.ndarray, *, min_neighbors: int, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge the many windows around one object into one box, dropping those with too few neighbours."""
    import supervision as sv

    if not len(boxes):
        return boxes, scores
    keep = sv.box_non_max_suppression(np.column_stack([boxes, scores]), iou_threshold=iou)
    neighbours = (sv.box_iou_batch(boxes[keep], boxes) >= NEIGHBOUR_IOU).sum(axis=1) - 1
    strong = neighbours >= min_neighbors
    return boxes[keep][strong], scores[keep][strong]


class HaarDetector:
    """Detector over a choice of bundled cascades; `classes` picks them (default: faces)."""

    class_names: Sequence[str] = CASCADES

    def __init__(
        self, *, scale_factor: float = 1.1, min_neighbors: int = 3, min_size: int = 0, max_side: int = 640
    ) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_side = max_side
        """Larger images are shrunk to this first: the numpy cascade costs ~1 s per 0.3 MP on one core."""

    def detect(
        self, images: Sequence[np.ndarray], *, classes: Sequence[str] | None = None, conf: float = 0.25, iou: float = 0.7
    ) -> list[list[Detection]]:
        import cv2

        cascades = [load_cascade(name) for name in (classes or DEFAULT_CLASSES)]
        results: list[list[Detection]] = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
            gray = cv2.equalizeHist(gray)  # as OpenCV's own face-detection sample does: robust to exposure
            shrink = max(1.0, max(gray.shape) / self.max_side)
            if shrink > 1:
                gray = cv2.resize(gray, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
            found: list[Detection] = []
            for cascade in cascades:
                raw, raw_scores = detect_cascade(gray, cascade, scale_factor=self.scale_factor, min_size=self.min_size)
                boxes, scores = group_windows(raw, raw_scores, min_neighbors=self.min_neighbors, iou=min(iou, GROUP_IOU))
                found += [
                    Detection(Box(*(float(v) * shrink for v in box)), cascade.name, float(score))
                    for box, score in zip(boxes, scores, strict=True)
                    if score >= conf
                ]
            results.append(found)
        return results


def load(*, weights: str | None = None, device: str | None = None, **options: Any) -> HaarDetector:
    """Build the detector; it needs no weights file and runs on the CPU only."""
    if weights is not None:
        raise StudioError(f"opencv-haar uses its bundled cascades and takes no weights file (got {weights})")
    return HaarDetector(**options)


SPEC = PluginSpec(
    id="opencv-haar",
    family="opencv",
    task="detect",
    title="Haar cascades (faces, eyes, bodies, cat faces, plates) — no download",
    load=load,
    devices=("cpu",),
    needs_weights=False,
    options={"classes": list(CASCADES), "default_classes": list(DEFAULT_CLASSES)},
)
