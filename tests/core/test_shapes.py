"""Shapes validate their input and survive a JSON round trip unchanged."""

from __future__ import annotations

import math
from contextlib import nullcontext as does_not_raise
from typing import Any

import numpy as np
import pytest

from studio.core.errors import InvalidShapeError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape, shape_from_json

BAD = pytest.raises(InvalidShapeError)


@pytest.mark.parametrize(
    ("corners", "expected_size", "exception"),
    [
        ((0, 0, 10, 5), (10.0, 5.0), does_not_raise()),
        ((1.5, 2.5, 1.5, 2.5), (0.0, 0.0), does_not_raise()),  # a point-sized box is a valid (empty) box
        ((np.float32(1), np.int64(2), np.float64(4), 6), (3.0, 4.0), does_not_raise()),  # numpy scalars
        ((10, 0, 0, 5), None, BAD),  # x2 < x1
        ((0, 5, 10, 0), None, BAD),  # y2 < y1
        ((0, 0, math.nan, 5), None, BAD),
        ((0, 0, math.inf, 5), None, BAD),
        (("0", 0, 1, 1), None, BAD),
        ((None, 0, 1, 1), None, BAD),
        ((True, 0, 1, 1), None, BAD),
    ],
)
def test_box_validation(corners: tuple[Any, ...], expected_size: tuple[float, float] | None, exception: Any) -> None:
    with exception:
        box = Box(*corners)
        assert (box.width, box.height) == expected_size
        assert all(type(v) is float for v in (box.x1, box.y1, box.x2, box.y2))


@pytest.mark.parametrize(
    ("values", "exception"),
    [
        ((5, 5, 4, 2, 30), does_not_raise()),
        ((5, 5, 0, 0, 0), does_not_raise()),
        ((5, 5, -1, 2, 0), BAD),
        ((5, 5, 4, 2, math.nan), BAD),
        ((5, 5, 4, "2", 0), BAD),
    ],
)
def test_rotated_box_validation(values: tuple[Any, ...], exception: Any) -> None:
    with exception:
        RotatedBox(*values)


@pytest.mark.parametrize(
    ("parts", "exception"),
    [
        ([[(0, 0), (4, 0), (4, 3)]], does_not_raise()),
        ([[(0, 0), (4, 0), (4, 3)], [(10, 10), (12, 10), (12, 12), (10, 12)]], does_not_raise()),
        ([], BAD),  # no part
        ([[(0, 0), (4, 0)]], BAD),  # a part of two points has no area
        ([[(0, 0), (4, 0), (4, math.nan)]], BAD),
        ([[(0, 0), (4,), (4, 3)]], BAD),  # a point with one coordinate
        ([[(0, 0), ("a", 0), (4, 3)]], BAD),
        ([None], BAD),
    ],
)
def test_polygon_validation(parts: Any, exception: Any) -> None:
    with exception:
        assert len(Polygon(parts).parts) == len(parts)


@pytest.mark.parametrize(
    ("flat", "expected", "exception"),
    [
        ([[0, 0, 4, 0, 4, 3]], ((0.0, 0.0), (4.0, 0.0), (4.0, 3.0)), does_not_raise()),
        ([[0, 0, 4, 0, 4]], None, BAD),  # odd count
        ([[0, 0, 4, 0]], None, BAD),  # two points
    ],
)
def test_polygon_from_coco_flat_lists(flat: list[list[float]], expected: Any, exception: Any) -> None:
    with exception:
        polygon = Polygon.from_flat(flat)
        assert polygon.parts == (expected,)
        assert polygon.to_flat() == flat


@pytest.mark.parametrize(
    ("size", "counts", "exception"),
    [
        ((4, 5), "0d0", does_not_raise()),
        ([4, 5], "0d0", does_not_raise()),  # a list from JSON becomes a tuple
        ((0, 5), "0", BAD),
        ((4, -1), "0", BAD),
        ((4.0, 5), "0", BAD),
        ((4, 5, 3), "0", BAD),
        ((4, 5), b"0d0", BAD),  # bytes, as pycocotools returns them, must be decoded first
    ],
)
def test_mask_validation(size: Any, counts: Any, exception: Any) -> None:
    with exception:
        mask = Mask(size, counts)
        assert mask.size == (4, 5)
        hash(mask)


@pytest.mark.parametrize(
    ("points", "visibility", "exception"),
    [
        ([(1, 2)], None, does_not_raise()),
        ([(1, 2), (3, 4)], [0, 2], does_not_raise()),
        ([], None, BAD),
        ([(1, 2), (3, 4)], [2], BAD),  # one flag for two points
        ([(1, 2)], [3], BAD),  # not a COCO visibility flag
        ([(1, 2)], ["x"], BAD),
    ],
)
def test_points_validation(points: Any, visibility: Any, exception: Any) -> None:
    with exception:
        Points(points, visibility)


@pytest.mark.parametrize(
    ("points", "exception"),
    [([(0, 0), (5, 5)], does_not_raise()), ([(0, 0)], BAD), ([(0, 0), (math.inf, 1)], BAD)],
)
def test_polyline_validation(points: Any, exception: Any) -> None:
    with exception:
        Polyline(points)


# "0d0": pycocotools' compressed RLE of a full 4x5 mask
EXAMPLES: list[Shape] = [
    Box(1, 2, 30.5, 40),
    RotatedBox(20, 10, 8, 4, 33.3),
    Polygon([[(0, 0), (10, 0), (10, 10)], [(20, 20), (30, 20), (30, 30), (20, 30)]]),
    Mask((4, 5), "0d0"),
    Points([(1, 2), (3, 4)], [1, 2]),
    Points([(1, 2)]),
    Polyline([(0, 0), (3, 4), (6, 0)]),
]


@pytest.mark.parametrize("shape", EXAMPLES, ids=lambda s: s.kind)
def test_json_round_trip_gives_an_equal_shape(shape: Shape) -> None:
    import json

    text = json.dumps(shape.to_json())
    assert shape_from_json(json.loads(text)) == shape


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "box",
        {},
        {"kind": "circle", "r": 3},
        {"kind": "box"},
        {"kind": "box", "xyxy": [0, 0, 1]},
        {"kind": "box", "xyxy": "0011"},
        {"kind": "box", "xyxy": [0, 0, "x", 1]},
        {"kind": "box", "xyxy": [5, 5, 1, 1]},
        {"kind": "rotated_box", "cxcywha": [1, 2, 3, 4]},
        {"kind": "polygon", "parts": 7},
        {"kind": "polygon", "parts": [[[0, 0], [1, 1]]]},
        {"kind": "mask", "size": [4], "counts": "0"},
        {"kind": "mask", "size": [4, 5], "counts": 12},
        {"kind": "points", "points": [[0, 0]], "visibility": [0, 1]},
        {"kind": "polyline", "points": None},
    ],
)
def test_malformed_json_raises_one_clear_error(data: Any) -> None:
    with pytest.raises(InvalidShapeError) as info:
        shape_from_json(data)
    assert str(info.value)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        # unrotated: corners clockwise from top-left
        (RotatedBox(10, 20, 4, 2, 0), [(8, 19), (12, 19), (12, 21), (8, 21)]),
        # 90 degrees clockwise (y down): the top-left corner goes to the top-right
        (RotatedBox(10, 20, 4, 2, 90), [(11, 18), (11, 22), (9, 22), (9, 18)]),
        (RotatedBox(0, 0, 2, 2, 180), [(1, 1), (-1, 1), (-1, -1), (1, -1)]),
    ],
)
def test_rotated_box_corners(box: RotatedBox, expected: list[tuple[float, float]]) -> None:
    assert np.allclose(box.corners(), expected)


def test_rotated_box_corners_keep_size_and_centre() -> None:
    box = RotatedBox(50, 40, 30, 10, 37)
    corners = np.array(box.corners())
    assert np.allclose(corners.mean(axis=0), (50, 40))
    assert np.isclose(np.linalg.norm(corners[1] - corners[0]), 30)
    assert np.isclose(np.linalg.norm(corners[2] - corners[1]), 10)
    x, y, w, h = box.bbox()
    assert (x, y) == pytest.approx(corners.min(axis=0).tolist())
    assert (x + w, y + h) == pytest.approx(corners.max(axis=0).tolist())
