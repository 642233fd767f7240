"""Shape editing maths for the canvas tools: hit tests, handles, vertex edits, moves, brush strokes.

Qt-free (numpy and OpenCV only) so the rules of editing are tested without a window and could serve
the CLI. Shapes are immutable: every edit returns a new shape, or None when the edit is not allowed
(a polygon would lose its third vertex, a point is not on an edge, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from studio.core.geometry import decode_mask, encode_mask
from studio.core.shapes import Box, Mask, Point, Points, Polygon, Polyline, RotatedBox, Shape

Handle = tuple[int, int]
"""(part, index) of a draggable point: a polygon's ring and vertex, a box corner (0..3), a keypoint;
a rotated box has its corners (0..3) and, at the middle of its top edge, the rotation handle (4)."""
ROTATION_HANDLE = 4


def handles(shape: Shape) -> list[tuple[Handle, Point]]:
    """The draggable points of a shape with their positions (none for masks: they are painted)."""
    if isinstance(shape, Box):
        corners = ((shape.x1, shape.y1), (shape.x2, shape.y1), (shape.x2, shape.y2), (shape.x1, shape.y2))
        return [((0, i), corner) for i, corner in enumerate(corners)]
    if isinstance(shape, Polygon):
        return [((part, i), p) for part, ring in enumerate(shape.parts) for i, p in enumerate(ring)]
    if isinstance(shape, RotatedBox):
        corners = shape.corners()
        top_middle = ((corners[0][0] + corners[1][0]) / 2, (corners[0][1] + corners[1][1]) / 2)
        return [((0, i), corner) for i, corner in enumerate(corners)] + [((0, ROTATION_HANDLE), top_middle)]
    if isinstance(shape, (Points, Polyline)):
        return [((0, i), p) for i, p in enumerate(shape.points)]
    return []


def handle_at(shape: Shape, x: float, y: float, tolerance: float) -> Handle | None:
    """The handle nearest to (x, y) within `tolerance` pixels, if any."""
    best: tuple[float, Handle] | None = None
    for handle, (hx, hy) in handles(shape):
        distance = math.hypot(hx - x, hy - y)
        if distance <= tolerance and (best is None or distance < best[0]):
            best = (distance, handle)
    return None if best is None else best[1]


def move_handle(shape: Shape, handle: Handle, x: float, y: float) -> Shape:
    """The shape with one handle dragged to (x, y); a box corner dragged past the opposite one flips."""
    part, index = handle
    if isinstance(shape, Box):
        # the corner opposite the dragged one stays put
        fixed_x = shape.x2 if index in (0, 3) else shape.x1
        fixed_y = shape.y2 if index in (0, 1) else shape.y1
        return Box(min(x, fixed_x), min(y, fixed_y), max(x, fixed_x), max(y, fixed_y))
    if isinstance(shape, Polygon):
        rings = [list(ring) for ring in shape.parts]
        rings[part][index] = (x, y)
        return Polygon(rings)
    if isinstance(shape, RotatedBox):
        return _move_rotated_handle(shape, index, x, y)
    if isinstance(shape, Points):
        points = list(shape.points)
        points[index] = (x, y)
        return Points(points, shape.visibility)
    if isinstance(shape, Polyline):
        points = list(shape.points)
        points[index] = (x, y)
        return Polyline(points)
    return shape


def _move_rotated_handle(box: RotatedBox, index: int, x: float, y: float) -> RotatedBox:
    """Turn the box (rotation handle: it points at the cursor) or resize it keeping the opposite corner
    and the angle, with the sizes measured along the box's own axes."""
    if index == ROTATION_HANDLE:
        # the top-edge middle sits at -90 degrees from the centre when the box is not turned (y down)
        angle = math.degrees(math.atan2(y - box.cy, x - box.cx)) + 90.0
        return RotatedBox(box.cx, box.cy, box.w, box.h, (angle + 180.0) % 360.0 - 180.0)
    ox, oy = box.corners()[(index + 2) % 4]
    rad = math.radians(box.angle)
    cos, sin = math.cos(rad), math.sin(rad)
    local_x = (x - ox) * cos + (y - oy) * sin  # the cursor in the box's frame, from the fixed corner
    local_y = -(x - ox) * sin + (y - oy) * cos
    cx = ox + (local_x * cos - local_y * sin) / 2
    cy = oy + (local_x * sin + local_y * cos) / 2
    return RotatedBox(cx, cy, abs(local_x), abs(local_y), box.angle)


def translate(shape: Shape, dx: float, dy: float) -> Shape:
    """The shape moved by (dx, dy) pixels; a mask moves by whole pixels and loses what leaves the image."""
    if isinstance(shape, Box):
        return Box(shape.x1 + dx, shape.y1 + dy, shape.x2 + dx, shape.y2 + dy)
    if isinstance(shape, Polygon):
        return Polygon([[(px + dx, py + dy) for px, py in ring] for ring in shape.parts])
    if isinstance(shape, RotatedBox):
        return RotatedBox(shape.cx + dx, shape.cy + dy, shape.w, shape.h, shape.angle)
    if isinstance(shape, Points):
        return Points([(px + dx, py + dy) for px, py in shape.points], shape.visibility)
    if isinstance(shape, Polyline):
        return Polyline([(px + dx, py + dy) for px, py in shape.points])
    if isinstance(shape, Mask):
        h, w = shape.size
        shift = np.float32([[1, 0, round(dx)], [0, 1, round(dy)]])
        pixels = np.ascontiguousarray(decode_mask(shape), dtype=np.uint8)  # OpenCV wants C order
        moved = cv2.warpAffine(pixels, shift, (w, h), flags=cv2.INTER_NEAREST)
        return encode_mask(moved)
    return shape


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    length2 = (bx - ax) ** 2 + (by - ay) ** 2
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / length2))
    return math.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay)))


def _nearest_edge(rings: Sequence[Sequence[Point]], p: Point, *, closed: bool) -> tuple[float, int, int]:
    """(distance, ring, index of the edge's first vertex) of the edge nearest to p."""
    best = (math.inf, -1, -1)
    for part, ring in enumerate(rings):
        count = len(ring) if closed else len(ring) - 1
        for i in range(count):
            distance = _segment_distance(p, ring[i], ring[(i + 1) % len(ring)])
            if distance < best[0]:
                best = (distance, part, i)
    return best


def insert_vertex(shape: Shape, x: float, y: float, tolerance: float) -> Shape | None:
    """A polygon or polyline with a new vertex at (x, y) on the edge within `tolerance` pixels."""
    if isinstance(shape, Polygon):
        distance, part, index = _nearest_edge(shape.parts, (x, y), closed=True)
        if distance > tolerance:
            return None
        rings = [list(ring) for ring in shape.parts]
        rings[part].insert(index + 1, (x, y))
        return Polygon(rings)
    if isinstance(shape, Polyline):
        distance, _, index = _nearest_edge([shape.points], (x, y), closed=False)
        if distance > tolerance:
            return None
        points = list(shape.points)
        points.insert(index + 1, (x, y))
        return Polyline(points)
    return None


def delete_vertex(shape: Shape, handle: Handle) -> Shape | None:
    """The shape without one vertex, or None if it would become invalid (a triangle stays a triangle)."""
    part, index = handle
    if isinstance(shape, Polygon):
        if len(shape.parts[part]) <= 3:
            return None
        rings = [list(ring) for ring in shape.parts]
        del rings[part][index]
        return Polygon(rings)
    if isinstance(shape, Polyline) and len(shape.points) > 2:
        return Polyline([p for i, p in enumerate(shape.points) if i != index])
    if isinstance(shape, Points) and len(shape.points) > 1:
        visibility = None if shape.visibility is None else [v for i, v in enumerate(shape.visibility) if i != index]
        return Points([p for i, p in enumerate(shape.points) if i != index], visibility)
    return None


def contains(shape: Shape, x: float, y: float, tolerance: float) -> bool:
    """Whether a click at (x, y) hits the shape: inside an area, or within `tolerance` of a line or point."""
    if isinstance(shape, Box):
        return shape.x1 - tolerance <= x <= shape.x2 + tolerance and shape.y1 - tolerance <= y <= shape.y2 + tolerance
    if isinstance(shape, (Polygon, RotatedBox)):
        rings = shape.parts if isinstance(shape, Polygon) else [shape.corners()]
        return any(
            cv2.pointPolygonTest(np.asarray(ring, dtype=np.float32), (x, y), True) >= -tolerance for ring in rings
        )
    if isinstance(shape, Polyline):
        return _nearest_edge([shape.points], (x, y), closed=False)[0] <= tolerance
    if isinstance(shape, Points):
        return any(math.hypot(px - x, py - y) <= tolerance for px, py in shape.points)
    if isinstance(shape, Mask):
        h, w = shape.size
        col, row = int(x), int(y)
        return 0 <= row < h and 0 <= col < w and bool(decode_mask(shape)[row, col])
    return False


def paint_stroke(mask: np.ndarray, start: Point, end: Point, *, radius: float, value: bool) -> None:
    """Paint (or erase) a round-tipped line of `radius` pixels into a uint8 mask, in place.

    Coordinates are image pixels with COCO's corner origin; OpenCV draws on pixel centres, hence -0.5.
    """
    a = (round(start[0] - 0.5), round(start[1] - 0.5))
    b = (round(end[0] - 0.5), round(end[1] - 0.5))
    thickness = max(1, round(2 * radius))
    cv2.line(mask, a, b, 1 if value else 0, thickness=thickness, lineType=cv2.LINE_8)
    cv2.circle(mask, a, max(0, round(radius)), 1 if value else 0, thickness=-1)
    cv2.circle(mask, b, max(0, round(radius)), 1 if value else 0, thickness=-1)
