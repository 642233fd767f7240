"""Properties that must hold for every shape, checked on generated ones (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core import geometry
from studio.core.errors import InvalidShapeError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape, shape_from_json

SIZE = (32, 40)  # (height, width): small, so every IoU below rasterizes quickly
H, W = SIZE
FAST = settings(max_examples=60, deadline=None)

coords_x = st.floats(min_value=0, max_value=W, allow_nan=False)
coords_y = st.floats(min_value=0, max_value=H, allow_nan=False)
points = st.tuples(coords_x, coords_y)


@st.composite
def boxes(draw: st.DrawFn, *, min_side: float = 0.0) -> Box:
    x1, y1 = draw(coords_x), draw(coords_y)
    w = draw(st.floats(min_value=min_side, max_value=W, allow_nan=False))
    h = draw(st.floats(min_value=min_side, max_value=H, allow_nan=False))
    return Box(x1, y1, x1 + w, y1 + h)


@st.composite
def masks(draw: st.DrawFn) -> Mask:
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(0.0, 1.0))
    return geometry.encode_mask(np.random.default_rng(seed).random(SIZE) < density)


rotated_boxes = st.builds(
    RotatedBox, coords_x, coords_y, st.floats(0, 20), st.floats(0, 20), st.floats(-360, 360, allow_nan=False)
)
polygons = st.lists(st.lists(points, min_size=3, max_size=8), min_size=1, max_size=3).map(Polygon)
shapes: st.SearchStrategy[Shape] = st.one_of(
    boxes(),
    rotated_boxes,
    polygons,
    masks(),
    st.builds(Points, st.lists(points, min_size=1, max_size=5)),
    st.lists(points, min_size=1, max_size=5).flatmap(
        lambda pts: st.builds(Points, st.just(pts), st.lists(st.sampled_from([0, 1, 2]), min_size=len(pts), max_size=len(pts)))
    ),
    st.builds(Polyline, st.lists(points, min_size=2, max_size=5)),
)
areal_shapes = st.one_of(boxes(), rotated_boxes, polygons, masks())


@FAST
@given(shapes)
def test_json_round_trip(shape: Shape) -> None:
    assert shape_from_json(json.loads(json.dumps(shape.to_json()))) == shape


@FAST
@given(areal_shapes, areal_shapes)
def test_iou_is_symmetric_and_between_0_and_1(a: Shape, b: Shape) -> None:
    forward, backward = geometry.iou(a, b, SIZE), geometry.iou(b, a, SIZE)
    assert 0.0 <= forward <= 1.0
    assert forward == backward


@FAST
@given(boxes(), boxes())
def test_box_iou_is_symmetric_and_between_0_and_1(a: Box, b: Box) -> None:
    assert 0.0 <= geometry.iou(a, b) <= 1.0
    assert geometry.iou(a, b) == geometry.iou(b, a)


@FAST
@given(st.one_of(boxes(min_side=0.5), masks()))
def test_iou_of_a_non_empty_shape_with_itself_is_one(shape: Box | Mask) -> None:
    if isinstance(shape, Mask) and geometry.area(shape) == 0:
        return  # an empty mask has no area to overlap
    assert geometry.iou(shape, shape, SIZE) == 1.0


@FAST
@given(polygons)
def test_iou_of_a_polygon_with_itself_is_one_when_it_covers_pixels(polygon: Polygon) -> None:
    if geometry.rasterize(polygon, SIZE).any():
        assert geometry.iou(polygon, polygon, SIZE) == 1.0


@FAST
@given(st.integers(0, W - 1), st.integers(0, H - 1), st.integers(1, W), st.integers(1, H))
def test_rasterized_integer_box_covers_w_times_h_pixels(x: int, y: int, w: int, h: int) -> None:
    w, h = min(w, W - x), min(h, H - y)
    box = Box.from_xywh(x, y, w, h)
    pixels = geometry.rasterize(box, SIZE)
    assert pixels.sum() == w * h == geometry.area(box)
    assert pixels[y : y + h, x : x + w].all()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
shape_like_dicts = st.fixed_dictionaries(
    {"kind": st.sampled_from(["box", "rotated_box", "polygon", "mask", "points", "polyline", "circle"])},
    optional={
        key: json_values for key in ("xyxy", "cxcywha", "parts", "size", "counts", "points", "visibility")
    },
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(shape_like_dicts, json_values))
def test_malformed_json_raises_only_invalid_shape_error(data: Any) -> None:
    try:
        shape = shape_from_json(data)
    except InvalidShapeError:
        return
    assert shape_from_json(shape.to_json()) == shape  # whatever is accepted is a valid, stable shape
