"""Geometry on shapes: area, bounding box, rasterizing, IoU, mask <-> polygon.

Everything goes through pycocotools (RLE encode/decode/area/IoU, polygon rasterization exactly as
COCO evaluates it) and OpenCV (contours, polygon simplification), so Studio's numbers agree with the
tools people check them against.
"""

from __future__ import annotations

import math

import numpy as np
from pycocotools import mask as mask_utils

from studio.core.errors import InvalidShapeError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape, check_rle_runs

ImageSize = tuple[int, int]
"""(height, width), numpy's order."""


def encode_mask(mask: np.ndarray) -> Mask:
    """A boolean/0-1 array of shape (H, W) -> Mask (compressed RLE)."""
    if mask.ndim != 2:
        raise InvalidShapeError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return Mask((int(rle["size"][0]), int(rle["size"][1])), rle["counts"].decode("ascii"))


def decode_mask(mask: Mask) -> np.ndarray:
    """Mask -> bool array of shape (H, W)."""
    return mask_utils.decode(mask.rle).astype(bool)


def mask_from_rle(rle: dict) -> Mask:
    """Accept COCO RLE in either form (compressed string or uncompressed list of counts); the counts are
    checked before pycocotools sees them (it trusts them, and overruns its buffers on bad ones)."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
        if isinstance(counts, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
                raise InvalidShapeError("malformed RLE: uncompressed counts must be whole numbers")
            check_rle_runs(counts, (h, w))
            counts = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        if not isinstance(counts, str):
            raise InvalidShapeError("malformed RLE: counts must be a string or a list of numbers")
        return Mask((h, w), counts)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, InvalidShapeError):
            raise
        raise InvalidShapeError(f"malformed RLE: {exc}") from exc


def to_rle(shape: Shape, size: ImageSize) -> dict:
    """The region a shape covers on an image of `size`, as pycocotools' RLE dict.

    Points and polylines cover no area; they rasterize to an empty mask.
    """
    h, w = size
    if isinstance(shape, Mask):
        if tuple(shape.size) != (h, w):
            raise InvalidShapeError(f"mask of size {shape.size} on an image of size {(h, w)}")
        return shape.rle
    if isinstance(shape, Box):
        return mask_utils.frPyObjects(np.array([shape.bbox()], dtype=np.float64), h, w)[0]
    if isinstance(shape, (Polygon, RotatedBox)):
        flat = shape.to_flat() if isinstance(shape, Polygon) else [[v for p in shape.corners() for v in p]]
        return mask_utils.merge(mask_utils.frPyObjects(flat, h, w))
    return mask_utils.encode(np.zeros((h, w), dtype=np.uint8, order="F"))


def rasterize(shape: Shape, size: ImageSize) -> np.ndarray:
    """Bool array (H, W): True where the shape covers a pixel, as COCO rasterizes it."""
    return mask_utils.decode(to_rle(shape, size)).astype(bool)


def area(shape: Shape) -> float:
    """Area in square pixels. Polygons by their outline (parts summed), masks by pixel count."""
    if isinstance(shape, Box):
        return shape.width * shape.height
    if isinstance(shape, RotatedBox):
        return shape.w * shape.h
    if isinstance(shape, Polygon):
        import cv2  # lazily: OpenCV costs ~0.5 s, and the CLI opens projects without needing it

        return float(sum(cv2.contourArea(np.asarray(part, dtype=np.float32)) for part in shape.parts))
    if isinstance(shape, Mask):
        return float(mask_utils.area(shape.rle))
    return 0.0


def iou(a: Shape, b: Shape, size: ImageSize | None = None) -> float:
    """Intersection over union. Two boxes need no size; any other pair is compared as pixel masks."""
    if isinstance(a, Box) and isinstance(b, Box):
        value = float(mask_utils.iou([list(a.bbox())], [list(b.bbox())], [0])[0][0])
        return 0.0 if math.isnan(value) else value  # NaN: boxes so small their areas underflow to 0
    if size is None:
        if isinstance(a, Mask):
            size = a.size
        elif isinstance(b, Mask):
            size = b.size
        else:
            raise InvalidShapeError("IoU of non-box shapes needs the image size")
    return float(mask_utils.iou([to_rle(a, size)], [to_rle(b, size)], [0])[0][0])


def mask_to_polygon(mask: Mask | np.ndarray, *, tolerance: float = 1.0, min_area: float = 1.0) -> Polygon | None:
    """Outline a mask as a polygon, one part per outer contour, simplified by `tolerance` pixels.

    Returns None for an empty mask. Holes are dropped: polygons here are unions of outer rings, as in
    COCO, so a mask with holes should stay a mask when exactness matters.
    """
    import cv2

    array = decode_mask(mask) if isinstance(mask, Mask) else np.asarray(mask, dtype=bool)
    contours, _ = cv2.findContours(array.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance, True)
        if len(contour) >= 3 and cv2.contourArea(contour) >= min_area:
            # contours run through pixel centres; +0.5 moves them to COCO's pixel-corner frame
            parts.append((contour.reshape(-1, 2).astype(np.float64) + 0.5).tolist())
    return Polygon(parts) if parts else None


def clip_to_image(shape: Shape, size: ImageSize) -> Shape:
    """Keep a shape inside the image (coordinates clamped), e.g. after a user drags past the edge."""
    h, w = size

    def clamp(p: tuple[float, float]) -> tuple[float, float]:
        return (min(max(p[0], 0.0), float(w)), min(max(p[1], 0.0), float(h)))

    if isinstance(shape, Box):
        (x1, y1), (x2, y2) = clamp((shape.x1, shape.y1)), clamp((shape.x2, shape.y2))
        return Box(x1, y1, x2, y2)
    if isinstance(shape, Polygon):
        return Polygon([[clamp(p) for p in part] for part in shape.parts])
    if isinstance(shape, Polyline):
        return Polyline([clamp(p) for p in shape.points])
    if isinstance(shape, Points):
        return Points([clamp(p) for p in shape.points], shape.visibility)
    return shape


def is_inside(shape: Shape, size: ImageSize, *, slack: float = 0.5) -> bool:
    """Whether every coordinate lies within the image (with `slack` pixels for rounding in files)."""
    h, w = size
    if isinstance(shape, Mask):
        return tuple(shape.size) == (h, w)
    x, y, bw, bh = shape.bbox()
    return x >= -slack and y >= -slack and x + bw <= w + slack and y + bh <= h + slack
