"""Interpolation between keyframes, as a user sees it on the frames between two drawn shapes."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.geometry import decode_mask, encode_mask, iou
from studio.core.shapes import Box, Mask, Points, Polygon, RotatedBox
from studio.core.tracks import box_tracks_array, interpolate, normalize_ranges, shape_at

KEYS = [(0, Box(0, 0, 10, 10)), (10, Box(10, 20, 30, 40))]


def test_boxes_move_linearly_between_keyframes_and_hold_after_the_last():
    assert shape_at(KEYS, (), 5) == (Box(5, 10, 20, 25), False)
    assert shape_at(KEYS, (), 10) == (Box(10, 20, 30, 40), True)
    assert shape_at(KEYS, (), 50) == (Box(10, 20, 30, 40), False)
    assert shape_at(KEYS, (), -1) is None


def test_outside_ranges_hide_the_object_and_hold_the_shape_until_it_leaves():
    outside = normalize_ranges([(4, 9)])
    assert shape_at(KEYS, outside, 5) is None
    assert shape_at(KEYS, outside, 3) == (Box(0, 0, 10, 10), False)  # leaves at 4: no drift towards frame 10
    assert shape_at(KEYS, outside, 10) == (Box(10, 20, 30, 40), True)


def test_ranges_are_merged_and_validated():
    assert normalize_ranges([(8, 9), (1, 3), (4, 5)]) == ((1, 5), (8, 9))
    with pytest.raises(StudioError, match="outside range"):
        normalize_ranges([(5, 2)])


def test_rotated_boxes_turn_the_short_way_round():
    mid = interpolate(RotatedBox(0, 0, 4, 2, 350), RotatedBox(10, 0, 8, 2, 10), 0.5)
    assert (mid.cx, mid.w) == (5, 6) and mid.angle == pytest.approx(0.0)


def test_polygons_with_other_vertex_counts_and_start_points_interpolate_without_twisting():
    square = Polygon([[(0, 0), (10, 0), (10, 10), (0, 10)]])
    # the same square 20 px to the right, drawn with 8 vertices, starting at another corner, the other way round
    moved = Polygon([[(30, 10), (30, 5), (30, 0), (25, 0), (20, 0), (20, 5), (20, 10), (25, 10)]])
    mid = interpolate(square, moved, 0.5)
    expected = Polygon([[(10, 0), (20, 0), (20, 10), (10, 10)]])
    assert iou(mid, expected, (20, 40)) > 0.97


def test_masks_interpolate_through_their_contours():
    a, b = np.zeros((40, 60), bool), np.zeros((40, 60), bool)
    a[10:20, 5:15] = True
    b[10:20, 35:45] = True
    mid = interpolate(encode_mask(a), encode_mask(b), 0.5)
    assert isinstance(mid, Mask)
    ys, xs = np.nonzero(decode_mask(mid))
    assert 22 <= xs.mean() <= 28 and 80 <= len(xs) <= 130


def test_points_interpolate_only_when_their_count_matches():
    assert interpolate(Points([(0, 0), (2, 2)]), Points([(2, 0), (4, 4)]), 0.5) == Points([(1, 0), (3, 3)])
    held = Points([(0, 0)])
    assert interpolate(held, Points([(2, 0), (4, 4)]), 0.5) is held


def test_vectorised_boxes_equal_the_per_frame_rule():
    keys = [(0, Box(0, 0, 10, 10)), (10, Box(10, 20, 30, 40)), (30, Box(0, 0, 5, 5))]
    outside = normalize_ranges([(15, 19)])
    frames = np.arange(-2, 40)
    xyxy, present = box_tracks_array(np.array([f for f, _ in keys]),
                                     np.array([[b.x1, b.y1, b.x2, b.y2] for _, b in keys]), frames, outside)
    for frame, row, here in zip(frames, xyxy, present, strict=True):
        found = shape_at(keys, outside, int(frame))
        assert here == (found is not None), frame
        if found is not None:
            assert row.tolist() == pytest.approx([found[0].x1, found[0].y1, found[0].x2, found[0].y2]), frame
