"""Tracks: one object across the frames of a video, drawn on a few keyframes and interpolated in between.

The model is CVAT's: a track has keyframe shapes and "outside" ranges where the object is absent. Between
two keyframes the shape is interpolated; after the last keyframe it holds until an outside range or the end
of the video; before the first keyframe the object does not exist. Interpolated frames are computed on
demand (display, export, evaluation, training), never stored one row per frame.

Per kind: boxes and rotated boxes interpolate linearly (the angle along the shorter way round); polygons and
polylines are resampled by arc length so that two keyframes need not share a vertex count or a start point
(the start of the second is rotated to best match the first); masks go through their outer contours as
polygons and are rasterised again; points interpolate when both keyframes have the same number of points.
Anything else (different kinds, a different number of polygon parts) holds the earlier keyframe.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape

FrameRange = tuple[int, int]
"""Inclusive first and last frame."""


@dataclass(frozen=True, slots=True)
class Track:
    """An object identity in one video: its label, attributes and the frame ranges where it is absent."""

    id: int
    media_id: int
    label_id: int
    run_id: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    outside: tuple[FrameRange, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackShape:
    """The shape of a track on one frame: a keyframe's own shape, or one interpolated or held from them."""

    track: Track
    frame: int
    shape: Shape
    keyframe: bool


def normalize_ranges(ranges: Sequence[Sequence[int]]) -> tuple[FrameRange, ...]:
    """Sorted, merged, validated inclusive ranges (touching or overlapping ranges become one)."""
    cleaned: list[list[int]] = []
    for raw in sorted((int(a), int(b)) for a, b in ranges):
        start, end = raw
        if start < 0 or end < start:
            raise StudioError(f"an outside range must be first <= last frames >= 0, got {start}..{end}")
        if cleaned and start <= cleaned[-1][1] + 1:
            cleaned[-1][1] = max(cleaned[-1][1], end)
        else:
            cleaned.append([start, end])
    return tuple((a, b) for a, b in cleaned)


def _is_outside(outside: Sequence[FrameRange], frame: int) -> bool:
    index = bisect.bisect_right(outside, (frame, math.inf)) - 1
    return index >= 0 and outside[index][0] <= frame <= outside[index][1]


def _outside_starts_between(outside: Sequence[FrameRange], after: int, before: int) -> bool:
    return any(after < start < before for start, _ in outside)


def shape_at(keyframes: Sequence[tuple[int, Shape]], outside: Sequence[FrameRange], frame: int) -> tuple[Shape, bool] | None:
    """The track's shape on `frame` and whether it is a keyframe; None where the object is absent.

    `keyframes` are (frame, shape) sorted by frame.
    """
    if not keyframes or _is_outside(outside, frame):
        return None
    frames = [f for f, _ in keyframes]
    index = bisect.bisect_right(frames, frame) - 1
    if index < 0:
        return None
    start_frame, start_shape = keyframes[index]
    if start_frame == frame:
        return start_shape, True
    if index + 1 == len(keyframes):
        return start_shape, False  # held after the last keyframe
    end_frame, end_shape = keyframes[index + 1]
    if _outside_starts_between(outside, start_frame, end_frame):
        return start_shape, False  # the object leaves before the next keyframe: hold until it does
    t = (frame - start_frame) / (end_frame - start_frame)
    return interpolate(start_shape, end_shape, t), False


def interpolate(a: Shape, b: Shape, t: float) -> Shape:
    """The shape a fraction `t` (0..1) of the way from keyframe `a` to keyframe `b`."""
    if isinstance(a, Box) and isinstance(b, Box):
        return Box(*_lerp(np.array([a.x1, a.y1, a.x2, a.y2]), np.array([b.x1, b.y1, b.x2, b.y2]), t))
    if isinstance(a, RotatedBox) and isinstance(b, RotatedBox):
        cx, cy, w, h = _lerp(np.array([a.cx, a.cy, a.w, a.h]), np.array([b.cx, b.cy, b.w, b.h]), t)
        turn = (b.angle - a.angle + 180.0) % 360.0 - 180.0  # the shorter way round
        return RotatedBox(cx, cy, w, h, (a.angle + turn * t) % 360.0)
    if isinstance(a, Polygon) and isinstance(b, Polygon) and len(a.parts) == len(b.parts):
        return Polygon([_lerp_rings(pa, pb, t) for pa, pb in zip(a.parts, b.parts, strict=True)])
    if isinstance(a, Polyline) and isinstance(b, Polyline):
        count = max(len(a.points), len(b.points))
        return Polyline(_lerp(_resample(a.points, count, closed=False), _resample(b.points, count, closed=False), t))
    if isinstance(a, Points) and isinstance(b, Points) and len(a.points) == len(b.points):
        return Points(_lerp(np.array(a.points), np.array(b.points), t), a.visibility)
    if isinstance(a, Mask) and isinstance(b, Mask) and a.size == b.size:
        return _interpolate_masks(a, b, t)
    return a


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> Any:
    return (a + (b - a) * t).tolist()


def _resample(points: Sequence[Sequence[float]], count: int, *, closed: bool) -> np.ndarray:
    """`count` points evenly spaced by arc length along the ring (closed) or line through `points`."""
    xy = np.asarray(points, dtype=np.float64)
    path = np.vstack([xy, xy[:1]]) if closed else xy
    steps = np.hypot(*np.diff(path, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] == 0:
        return np.repeat(xy[:1], count, axis=0)
    targets = np.linspace(0.0, along[-1], count, endpoint=not closed)
    return np.column_stack([np.interp(targets, along, path[:, 0]), np.interp(targets, along, path[:, 1])])


def _lerp_rings(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], t: float) -> list[list[float]]:
    """Two rings resampled to one vertex count, the second turned (and if need be reversed) to match the first."""
    count = max(len(a), len(b), 3)
    ra, rb = _resample(a, count, closed=True), _resample(b, count, closed=True)
    best, best_cost = rb, math.inf
    for candidate in (rb, rb[::-1]):
        # cost of every cyclic shift at once: sum over vertices of squared distances
        for shift in range(count):
            shifted = np.roll(candidate, -shift, axis=0)
            cost = float(((shifted - ra) ** 2).sum())
            if cost < best_cost:
                best, best_cost = shifted, cost
    return _lerp(ra, best, t)


def _interpolate_masks(a: Mask, b: Mask, t: float) -> Mask:
    """Through the masks' largest outer contours; an empty mask on either side holds `a`."""
    from studio.core.geometry import mask_from_rle, mask_to_polygon, to_rle

    pa, pb = mask_to_polygon(a, tolerance=0.0), mask_to_polygon(b, tolerance=0.0)
    if pa is None or pb is None:
        return a
    ring_a, ring_b = max(pa.parts, key=len), max(pb.parts, key=len)
    return mask_from_rle(to_rle(Polygon([_lerp_rings(ring_a, ring_b, t)]), a.size))


def box_tracks_array(
    key_frames: np.ndarray, key_xyxy: np.ndarray, frames: np.ndarray, outside: Sequence[FrameRange] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised box interpolation for many frames: ((n, 4) xyxy, (n,) present) for `frames`.

    The same rule as `shape_at` for boxes, as numpy arrays: for exports and playback of long videos, where
    building a Box per frame would cost more than the arithmetic.
    """
    key_frames = np.asarray(key_frames, dtype=np.float64)
    frames = np.asarray(frames)
    xyxy = np.column_stack([np.interp(frames, key_frames, key_xyxy[:, c]) for c in range(4)])
    present = frames >= key_frames[0]
    for start, end in outside:
        present &= ~((frames >= start) & (frames <= end))
        # between two keyframes around the start of an outside range the shape holds (as in `shape_at`)
        index = np.searchsorted(key_frames, start) - 1
        if 0 <= index < len(key_frames) - 1 and key_frames[index] < start < key_frames[index + 1]:
            hold = (frames > key_frames[index]) & (frames < key_frames[index + 1])
            xyxy[hold] = key_xyxy[index]
    return xyxy, present
