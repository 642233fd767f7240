"""The Qt-free editing rules behind the canvas tools."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.geometry import area, decode_mask, encode_mask
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox
from studio.session import shape_edit

SQUARE = Polygon([[(0, 0), (10, 0), (10, 10), (0, 10)]])


def test_dragging_a_box_corner_past_the_opposite_one_flips_the_box():
    box = Box(10, 10, 50, 40)
    top_left = shape_edit.handle_at(box, 11, 9, tolerance=3)
    assert top_left == (0, 0)
    flipped = shape_edit.move_handle(box, top_left, 70, 60)
    assert flipped == Box(50, 40, 70, 60)  # the bottom-right corner stayed where it was


def test_insert_vertex_only_near_an_edge():
    assert shape_edit.insert_vertex(SQUARE, 5, 5, tolerance=1) is None  # the middle is no edge
    inserted = shape_edit.insert_vertex(SQUARE, 5, 0.4, tolerance=1)
    assert inserted is not None
    assert inserted.parts[0][1] == (5, 0.4)
    assert area(inserted) == pytest.approx(area(SQUARE), rel=0.05)


def test_delete_vertex_keeps_shapes_valid():
    triangle = Polygon([[(0, 0), (10, 0), (5, 8)]])
    assert shape_edit.delete_vertex(triangle, (0, 1)) is None
    assert len(shape_edit.delete_vertex(SQUARE, (0, 1)).parts[0]) == 3
    assert shape_edit.delete_vertex(Polyline([(0, 0), (5, 5)]), (0, 0)) is None
    assert shape_edit.delete_vertex(Points([(1, 1), (2, 2)], [2, 1]), (0, 0)) == Points([(2, 2)], [1])


@pytest.mark.parametrize(
    ("shape", "inside", "outside"),
    [
        (Box(10, 10, 20, 20), (15, 15), (30, 30)),
        (SQUARE, (5, 5), (15, 5)),
        (Polyline([(0, 0), (20, 0)]), (10, 1), (10, 5)),
        (Points([(5, 5)]), (6, 6), (10, 10)),
        (RotatedBox(50, 50, 40, 4, 45), (60, 60), (60, 40)),  # a thin bar along the diagonal
    ],
)
def test_contains(shape, inside, outside):
    assert shape_edit.contains(shape, *inside, tolerance=2)
    assert not shape_edit.contains(shape, *outside, tolerance=2)


def test_moving_a_mask_moves_its_pixels():
    pixels = np.zeros((20, 30), bool)
    pixels[5:10, 5:10] = True
    moved = shape_edit.translate(encode_mask(pixels), 4, 2)
    assert isinstance(moved, Mask)
    result = decode_mask(moved)
    assert result[7:12, 9:14].all() and result.sum() == pixels.sum()


def test_paint_then_erase_a_stroke():
    canvas = np.zeros((40, 60), np.uint8)
    shape_edit.paint_stroke(canvas, (10.5, 20.5), (50.5, 20.5), radius=3, value=True)
    assert canvas[20, 10:51].all() and not canvas[30, 30]
    shape_edit.paint_stroke(canvas, (30.5, 20.5), (30.5, 20.5), radius=2, value=False)
    assert not canvas[20, 30] and canvas[20, 12]


def test_moving_a_rotated_box_keeps_its_size_and_angle():
    moved = shape_edit.translate(RotatedBox(10, 10, 8, 4, 30), 5, -2)
    assert moved == RotatedBox(15, 8, 8, 4, 30)


def test_rotation_handle_turns_a_rotated_box_towards_the_cursor():
    box = RotatedBox(50, 50, 40, 20, 0)
    handle = shape_edit.handle_at(box, 50, 40, tolerance=1)  # the middle of the top edge
    assert handle == (0, shape_edit.ROTATION_HANDLE)
    turned = shape_edit.move_handle(box, handle, 80, 50)  # pull it to the right: a quarter turn clockwise
    assert turned.angle == pytest.approx(90)
    assert (turned.cx, turned.cy, turned.w, turned.h) == (50, 50, 40, 20)


def test_resizing_a_turned_box_keeps_its_angle_and_opposite_corner():
    box = RotatedBox(50, 50, 40, 20, 30)
    fixed = box.corners()[2]
    corner = box.corners()[0]
    resized = shape_edit.move_handle(box, (0, 0), corner[0] - 5, corner[1] - 5)
    assert resized.angle == 30
    assert resized.corners()[2] == pytest.approx(fixed)
    assert resized.w * resized.h > box.w * box.h
