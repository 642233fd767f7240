"""Geometry agrees with pycocotools (what COCO evaluation and users' own scripts compute)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from studio.core import geometry
from studio.core.errors import InvalidShapeError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox

SIZE = (60, 80)  # (height, width)
TRIANGLE = Polygon([[(5.0, 5.0), (50.0, 10.0), (20.0, 45.0)]])
TWO_PART = Polygon([[(2, 2), (20, 2), (20, 20), (2, 20)], [(40, 30), (70, 30), (55, 55)]])


def _disc(center: tuple[int, int], radius: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    canvas = np.zeros(size, dtype=np.uint8)
    cv2.circle(canvas, center, radius, 1, thickness=-1)
    return canvas.astype(bool)


def _coco_polygon_rle(polygon: Polygon, size: tuple[int, int]) -> dict:
    return mask_utils.merge(mask_utils.frPyObjects(polygon.to_flat(), *size))


def test_encode_decode_mask_round_trip() -> None:
    pixels = _disc((30, 25), 12)
    mask = geometry.encode_mask(pixels)
    assert mask.size == SIZE
    assert np.array_equal(geometry.decode_mask(mask), pixels)
    assert mask.counts == mask_utils.encode(np.asfortranarray(pixels.astype(np.uint8)))["counts"].decode()


def test_encode_mask_refuses_a_3d_array() -> None:
    with pytest.raises(InvalidShapeError):
        geometry.encode_mask(np.zeros((4, 4, 3), dtype=bool))


@pytest.mark.parametrize("shape", [Box(3, 4, 30, 40), TRIANGLE, TWO_PART, RotatedBox(40, 30, 30, 12, 25)])
def test_rasterize_is_pycocotools_rasterization(shape: Box | Polygon | RotatedBox) -> None:
    if isinstance(shape, Box):
        expected = mask_utils.frPyObjects(np.array([shape.bbox()]), *SIZE)[0]
    elif isinstance(shape, RotatedBox):
        expected = mask_utils.frPyObjects([[v for p in shape.corners() for v in p]], *SIZE)[0]
    else:
        expected = _coco_polygon_rle(shape, SIZE)
    assert np.array_equal(geometry.rasterize(shape, SIZE), mask_utils.decode(expected).astype(bool))


def test_points_and_polylines_rasterize_empty() -> None:
    for shape in (Points([(5, 5)]), Polyline([(0, 0), (50, 50)])):
        assert not geometry.rasterize(shape, SIZE).any()
        assert geometry.area(shape) == 0


def test_mask_on_an_image_of_another_size_is_refused() -> None:
    mask = geometry.encode_mask(_disc((10, 10), 5))
    with pytest.raises(InvalidShapeError, match="size"):
        geometry.rasterize(mask, (10, 10))


def test_area_of_mask_is_pycocotools_area() -> None:
    mask = geometry.encode_mask(_disc((40, 30), 17))
    assert geometry.area(mask) == mask_utils.area(mask.rle)


def test_area_of_box_and_rotated_box() -> None:
    assert geometry.area(Box.from_xywh(3, 4, 10.5, 2)) == 21
    assert geometry.area(RotatedBox(0, 0, 10, 3, 61)) == pytest.approx(30)


@pytest.mark.parametrize("polygon", [TRIANGLE, TWO_PART])
def test_polygon_area_is_close_to_coco_pixel_count(polygon: Polygon) -> None:
    """Outline area vs pixels COCO counts: they differ by at most about half the perimeter."""
    outline = geometry.area(polygon)
    pixels = float(mask_utils.area(_coco_polygon_rle(polygon, SIZE)))
    perimeter = sum(cv2.arcLength(np.asarray(part, dtype=np.float32), True) for part in polygon.parts)
    assert abs(outline - pixels) <= perimeter / 2


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Box(0, 0, 10, 10), Box(5, 5, 15, 15)),
        (Box(0, 0, 10, 10), Box(20, 20, 30, 30)),
        (Box(0.5, 1.5, 33.2, 20), Box(10, 3, 40, 41.7)),
    ],
)
def test_box_iou_is_pycocotools_bbox_iou(a: Box, b: Box) -> None:
    expected = mask_utils.iou([list(a.bbox())], [list(b.bbox())], [0])[0][0]
    assert geometry.iou(a, b) == pytest.approx(expected)


def test_box_iou_by_hand() -> None:
    assert geometry.iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_polygon_and_mask_iou_are_pycocotools_segm_iou() -> None:
    disc = geometry.encode_mask(_disc((25, 25), 15))
    expected_poly = mask_utils.iou([_coco_polygon_rle(TRIANGLE, SIZE)], [disc.rle], [0])[0][0]
    assert geometry.iou(TRIANGLE, disc) == pytest.approx(expected_poly)
    assert geometry.iou(disc, TRIANGLE) == pytest.approx(expected_poly)  # the mask gives the size
    other = geometry.encode_mask(_disc((35, 30), 15))
    assert geometry.iou(disc, other) == pytest.approx(mask_utils.iou([disc.rle], [other.rle], [0])[0][0])


def test_polygon_iou_needs_the_image_size() -> None:
    with pytest.raises(InvalidShapeError, match="size"):
        geometry.iou(TRIANGLE, TWO_PART)
    assert 0 < geometry.iou(TRIANGLE, TWO_PART, SIZE) < 1


@pytest.mark.parametrize(
    "pixels",
    [
        _disc((30, 30), 20),
        _disc((20, 20), 8) | _disc((60, 40), 10),  # two parts
        np.pad(np.ones((20, 30), dtype=bool), ((10, 30), (25, 25))),  # a rectangle
    ],
)
def test_mask_to_polygon_follows_the_boundary_within_one_pixel(pixels: np.ndarray) -> None:
    polygon = geometry.mask_to_polygon(geometry.encode_mask(pixels), tolerance=1.0)
    assert polygon is not None
    n_parts = cv2.connectedComponents(pixels.astype(np.uint8))[0] - 1
    assert len(polygon.parts) == n_parts
    back = geometry.rasterize(polygon, pixels.shape)
    # every pixel that differs lies within one pixel of the mask's boundary
    kernel = np.ones((3, 3), np.uint8)
    boundary_band = cv2.dilate(pixels.astype(np.uint8), kernel) != cv2.erode(pixels.astype(np.uint8), kernel)
    differing = back != pixels
    assert not (differing & ~boundary_band).any()


def test_mask_to_polygon_of_an_empty_mask_is_none() -> None:
    assert geometry.mask_to_polygon(np.zeros(SIZE, dtype=bool)) is None


@pytest.mark.parametrize(
    ("rle", "expected_pixels"),
    [
        ({"size": [3, 2], "counts": [1, 2, 3]}, 2),  # uncompressed, as CVAT and COCO crowd annotations give
        ({"size": [3, 2], "counts": [0, 6]}, 6),
        ({"size": [3, 2], "counts": [0, 2, 0, 4]}, 6),  # a zero-length run in the middle is legal
    ],
)
def test_mask_from_uncompressed_rle(rle: dict, expected_pixels: int) -> None:
    mask = geometry.mask_from_rle(rle)
    assert geometry.decode_mask(mask).sum() == expected_pixels
    assert geometry.mask_from_rle({"size": rle["size"], "counts": mask.counts}) == mask


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [4, 4], "counts": ""},  # pycocotools would decode this into uninitialised memory
        {"size": [4, 4], "counts": "0"},
        {"size": [4, 4], "counts": [1, 2]},  # runs short of 16 pixels
        {"size": [4, 4], "counts": [10, 10]},  # runs past 16 pixels
        {"size": [4, 4], "counts": "abc"},
        {"size": [4], "counts": "0"},
        {"counts": "0"},
    ],
)
def test_malformed_rle_is_refused(rle: dict) -> None:
    with pytest.raises(InvalidShapeError, match="RLE"):
        geometry.mask_from_rle(rle)


def test_clip_to_image_and_is_inside() -> None:
    box = Box(-5, 10, 100, 20)
    assert not geometry.is_inside(box, SIZE)
    clipped = geometry.clip_to_image(box, SIZE)
    assert clipped == Box(0, 10, 80, 20)
    assert geometry.is_inside(clipped, SIZE)
    polygon = geometry.clip_to_image(Polygon([[(-3, -3), (90, 5), (10, 70)]]), SIZE)
    assert geometry.is_inside(polygon, SIZE)
    mask = Mask(SIZE, geometry.encode_mask(np.zeros(SIZE, bool)).counts)
    assert geometry.is_inside(mask, SIZE) and not geometry.is_inside(mask, (10, 10))


def test_iou_of_boxes_too_small_to_have_an_area_is_zero_not_nan() -> None:
    """Found by hypothesis: pycocotools divides by an area that underflowed to 0."""
    tiny = Box(5.76e-207, 5.76e-207, 1.15e-206, 1.15e-206)
    assert geometry.iou(tiny, tiny) == 0.0
