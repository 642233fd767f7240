"""Annotation shapes as immutable, validated value objects.

Coordinates are pixels in the image's own frame, as floats: x to the right, y down, the origin at the
top-left corner of the top-left pixel (COCO's convention). Shapes know nothing of images or databases;
geometry that needs an image size (rasterizing, IoU of masks) lives in :mod:`studio.core.geometry`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from studio.core.errors import InvalidShapeError

Point: TypeAlias = tuple[float, float]
BBox: TypeAlias = tuple[float, float, float, float]
"""Axis-aligned box as (x, y, width, height), COCO's order."""


def _points(raw: Iterable[Sequence[float]], what: str, minimum: int) -> tuple[Point, ...]:
    try:
        pts = tuple((float(p[0]), float(p[1])) for p in raw)
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidShapeError(f"{what}: points must be (x, y) pairs of numbers") from exc
    if len(pts) < minimum:
        raise InvalidShapeError(f"{what} needs at least {minimum} points, got {len(pts)}")
    if not all(math.isfinite(v) for p in pts for v in p):
        raise InvalidShapeError(f"{what}: coordinates must be finite numbers")
    return pts


def _finite_floats(values: tuple[Any, ...], what: str) -> tuple[float, ...]:
    """Numbers of any numeric type (numpy's included) as floats; InvalidShapeError for the rest."""
    try:
        floats = tuple(map(float, values))
    except (TypeError, ValueError):
        floats = ()
    if (
        len(floats) != len(values)
        or not all(map(math.isfinite, floats))
        or any(isinstance(v, (str, bytes, bool)) for v in values)  # float() would accept "1" and True
    ):
        raise InvalidShapeError(f"{what} must be finite numbers, got {values}")
    return floats


_ONLY_FLOAT = {float}


def _coerce_fields(shape: Any, what: str) -> tuple[float, ...]:
    """Make every field of a frozen numeric shape a finite float, in place; returns the values."""
    names = type(shape).__slots__  # the fields, in order; dataclasses.fields() costs 10x more per shape
    values = tuple(map(shape.__getattribute__, names))
    if set(map(type, values)) == _ONLY_FLOAT and all(map(math.isfinite, values)):
        return values  # the usual case (JSON, the database, numpy .tolist()): nothing to convert
    values = _finite_floats(values, what)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(shape, name, value)
    return values


def _bbox_of(points: Iterable[Point]) -> BBox:
    xs, ys = zip(*points, strict=True)
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box by its corners (x1, y1) top-left and (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float
    kind: ClassVar[str] = "box"

    def __post_init__(self) -> None:
        values = _coerce_fields(self, "box corners")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise InvalidShapeError(f"box has negative size: {values}")

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        return cls(float(x), float(y), float(x) + float(w), float(y) + float(h))

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def bbox(self) -> BBox:
        return (self.x1, self.y1, self.width, self.height)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "xyxy": [self.x1, self.y1, self.x2, self.y2]}


@dataclass(frozen=True, slots=True)
class RotatedBox:
    """Box of size (w, h) centred on (cx, cy), turned by `angle` degrees clockwise (y points down)."""

    cx: float
    cy: float
    w: float
    h: float
    angle: float
    kind: ClassVar[str] = "rotated_box"

    def __post_init__(self) -> None:
        values = _coerce_fields(self, "rotated box values")
        if self.w < 0 or self.h < 0:
            raise InvalidShapeError(f"rotated box has negative size: {values}")

    def corners(self) -> tuple[Point, Point, Point, Point]:
        """The four corners, clockwise from the one that is top-left before rotation."""
        rad = math.radians(self.angle)
        cos, sin = math.cos(rad), math.sin(rad)
        half = ((-self.w / 2, -self.h / 2), (self.w / 2, -self.h / 2), (self.w / 2, self.h / 2), (-self.w / 2, self.h / 2))
        return tuple((self.cx + dx * cos - dy * sin, self.cy + dx * sin + dy * cos) for dx, dy in half)  # type: ignore[return-value]

    def bbox(self) -> BBox:
        return _bbox_of(self.corners())

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "cxcywha": [self.cx, self.cy, self.w, self.h, self.angle]}


@dataclass(frozen=True, slots=True)
class Polygon:
    """A region bounded by one or more closed rings (several parts: an object split by occlusion).

    Parts are combined as a union, as COCO does for a polygon segmentation with several lists.
    """

    parts: tuple[tuple[Point, ...], ...]
    kind: ClassVar[str] = "polygon"

    def __init__(self, parts: Iterable[Iterable[Sequence[float]]]) -> None:
        rings = tuple(_points(part, "polygon part", 3) for part in parts)
        if not rings:
            raise InvalidShapeError("polygon needs at least one part")
        object.__setattr__(self, "parts", rings)

    @classmethod
    def from_flat(cls, flat_parts: Iterable[Sequence[float]]) -> Polygon:
        """From COCO's form: one [x0, y0, x1, y1, ...] list per part."""
        parts = []
        for flat in flat_parts:
            if len(flat) % 2:
                raise InvalidShapeError("polygon part has an odd number of coordinates")
            parts.append(list(zip(flat[0::2], flat[1::2], strict=True)))
        return cls(parts)

    def to_flat(self) -> list[list[float]]:
        return [[v for point in part for v in point] for part in self.parts]

    def bbox(self) -> BBox:
        return _bbox_of(p for part in self.parts for p in part)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "parts": [[list(p) for p in part] for part in self.parts]}


MAX_MASK_SIDE = 2**31 - 1
"""Largest height or width of a mask: pycocotools keeps them in C ints."""
_MAX_RUN = 2**32 - 1
"""pycocotools stores run lengths as unsigned 32-bit ints; a longer run wraps around in C."""
_MAX_DIGITS = 7
"""Characters of one number in a compressed RLE: 7 x 5 bits hold any 32-bit run or difference."""


def rle_runs(counts: str) -> Any:
    """Run lengths (an int64 array) of a compressed RLE string, as pycocotools' rleFrString reads them; InvalidShapeError when
    the string is not one pycocotools can read safely.

    Hand-written because pycocotools checks nothing: a character outside '0'..'o' or a string that ends
    inside a number makes it read past the end of its buffer (heap corruption, an abort), and runs that
    fall short of the image leave uninitialised memory in the decoded mask. Vectorised with numpy (a
    Python loop over the characters would make loading 10,000 masks take seconds).
    """
    import numpy as np  # lazily: `studio info` builds no shapes and need not load numpy

    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidShapeError("malformed RLE: counts hold characters outside '0'..'o'") from None
    chunks = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if chunks.size == 0:
        return chunks
    if chunks.min() < 0 or chunks.max() > 63:
        raise InvalidShapeError("malformed RLE: counts hold characters outside '0'..'o'")
    more = (chunks & 0x20) != 0
    if more[-1]:
        raise InvalidShapeError("malformed RLE: counts end in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_DIGITS:
        raise InvalidShapeError("malformed RLE: a run length is too large")
    group = np.repeat(np.arange(len(starts)), lengths)
    digit = np.arange(chunks.size) - starts[group]
    values = np.add.reduceat((chunks & 0x1F) << (5 * digit), starts)
    negative = (chunks[ends] & 0x10) != 0
    values = values - np.where(negative, 1 << (5 * lengths), 0)  # sign extension, as `x |= -1 << 5*k`
    # from the fourth number on, each is a difference to the run two before (the same parity)
    runs = values.copy()
    for parity in (1, 2):
        runs[parity::2] = np.cumsum(values[parity::2])
    return runs


def check_rle_runs(runs: Sequence[int] | Any, size: tuple[int, int]) -> None:
    """InvalidShapeError unless the runs (a list or an array of ints) are lengths pycocotools can hold
    that cover the image exactly."""
    import numpy as np

    try:
        array = np.asarray(runs, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):
        raise InvalidShapeError("malformed RLE: run lengths must be whole numbers below 2**32") from None
    if array.size and (array.min() < 0 or array.max() > _MAX_RUN):
        raise InvalidShapeError("malformed RLE: a run length is negative or too large")
    if int(array.sum()) != size[0] * size[1]:
        raise InvalidShapeError(f"malformed RLE: its runs do not cover the {size[0]}x{size[1]} image exactly")


@dataclass(frozen=True, slots=True)
class Mask:
    """A pixel mask stored as COCO compressed RLE (column-major run lengths, as pycocotools writes).

    `size` is (height, width) of the image the mask belongs to. The counts are checked on construction
    (from a file, the database or a model alike), so pycocotools never sees a string it would misread.
    """

    size: tuple[int, int]
    counts: str
    kind: ClassVar[str] = "mask"

    def __post_init__(self) -> None:
        size = tuple(self.size) if isinstance(self.size, (tuple, list)) else ()
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_MASK_SIDE for v in size):
            raise InvalidShapeError(f"mask size must be two positive integers (height, width), got {self.size!r}")
        if not isinstance(self.counts, str):
            raise InvalidShapeError("mask counts must be a compressed RLE string")
        object.__setattr__(self, "size", size)  # a list from JSON would make the mask unhashable
        check_rle_runs(rle_runs(self.counts), size)

    @property
    def rle(self) -> dict[str, Any]:
        """pycocotools' RLE dict (counts as bytes)."""
        return {"size": [self.size[0], self.size[1]], "counts": self.counts.encode("ascii")}

    def bbox(self) -> BBox:
        """Around the mask's pixels; all zeros for an empty mask."""
        from pycocotools import mask as mask_utils  # lazily: it loads numpy, which `studio info` needs not

        x, y, w, h = mask_utils.toBbox(self.rle).tolist()
        return (float(x), float(y), float(w), float(h))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": list(self.size), "counts": self.counts}


@dataclass(frozen=True, slots=True)
class Points:
    """Keypoints. `visibility` follows COCO: 0 not labelled, 1 labelled but hidden, 2 visible."""

    points: tuple[Point, ...]
    visibility: tuple[int, ...] | None = None
    kind: ClassVar[str] = "points"

    def __init__(self, points: Iterable[Sequence[float]], visibility: Iterable[int] | None = None) -> None:
        pts = _points(points, "points", 1)
        vis = None if visibility is None else tuple(visibility)
        if vis is not None and (len(vis) != len(pts) or any(v not in (0, 1, 2) for v in vis)):
            raise InvalidShapeError("points visibility needs one flag in {0, 1, 2} per point")
        vis = None if vis is None else tuple(int(v) for v in vis)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "visibility", vis)

    def bbox(self) -> BBox:
        return _bbox_of(self.points)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "points": [list(p) for p in self.points]}
        if self.visibility is not None:
            out["visibility"] = list(self.visibility)
        return out


@dataclass(frozen=True, slots=True)
class Polyline:
    """An open line through two or more points (lanes, edges, skeleton bones)."""

    points: tuple[Point, ...]
    kind: ClassVar[str] = "polyline"

    def __init__(self, points: Iterable[Sequence[float]]) -> None:
        object.__setattr__(self, "points", _points(points, "polyline", 2))

    def bbox(self) -> BBox:
        return _bbox_of(self.points)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": [list(p) for p in self.points]}


Shape: TypeAlias = Box | RotatedBox | Polygon | Mask | Points | Polyline
SHAPE_KINDS: tuple[str, ...] = tuple(cls.kind for cls in (Box, RotatedBox, Polygon, Mask, Points, Polyline))


def _sequence(value: Any, length: int) -> list[Any]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise InvalidShapeError(f"expected a list of {length} numbers, got {value!r}")
    return list(value)


def shape_from_json(data: Mapping[str, Any]) -> Shape:
    """Inverse of ``shape.to_json()``; raises InvalidShapeError on anything malformed."""
    if not isinstance(data, Mapping):
        raise InvalidShapeError(f"a shape must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    try:
        if kind == "box":
            return Box(*_sequence(data["xyxy"], 4))
        if kind == "rotated_box":
            return RotatedBox(*_sequence(data["cxcywha"], 5))
        if kind == "polygon":
            return Polygon(data["parts"])
        if kind == "mask":
            return Mask(tuple(_sequence(data["size"], 2)), data["counts"])
        if kind == "points":
            return Points(data["points"], data.get("visibility"))
        if kind == "polyline":
            return Polyline(data["points"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidShapeError(f"malformed {kind or 'shape'!s}: {exc}") from exc
    raise InvalidShapeError(f"unknown shape kind {kind!r}; expected one of {', '.join(SHAPE_KINDS)}")
