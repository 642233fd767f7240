"""GrabCut: masks of the image's shape for point and box prompts; a drawn disk is found from one box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from studio_plugins.grabcut import SPECS, GrabCutSegmenter

from studio.core.shapes import Box
from studio.models.protocols import Segmenter


def disk_scene(width: int = 160, height: int = 120, *, centre: tuple[int, int] = (80, 60), radius: int = 30):
    """A red disk on a grey textured background, and its true mask."""
    rng = np.random.default_rng(1)
    image = rng.integers(90, 160, (height, width, 3), dtype=np.uint8)
    truth = np.zeros((height, width), dtype=np.uint8)
    cv2.circle(truth, centre, radius, 1, -1)
    image[truth.astype(bool)] = (30, 30, 220)
    return image, truth.astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_spec_needs_no_weights_and_loads_a_segmenter():
    (SPEC,) = SPECS
    assert SPEC.task == "segment" and not SPEC.needs_weights
    assert isinstance(SPEC.load(), Segmenter)


def test_one_box_segments_the_disk():
    image, truth = disk_scene()
    segmenter = GrabCutSegmenter()
    candidates = segmenter.predict(segmenter.encode(image), box=Box(45, 25, 115, 95))
    assert candidates and all(c.mask.shape == truth.shape and c.mask.dtype == bool for c in candidates)
    assert iou(candidates[0].mask, truth) > 0.9
    assert 0.0 <= candidates[0].score <= 1.0


def test_one_positive_click_segments_the_disk_and_a_negative_click_carves():
    image, truth = disk_scene()
    segmenter = GrabCutSegmenter()
    embedding = segmenter.encode(image)
    best = segmenter.predict(embedding, points=np.array([[80, 60]]), point_labels=np.array([1]))[0]
    assert best.mask.shape == truth.shape
    assert iou(best.mask, truth) > 0.8
    carved = segmenter.predict(
        embedding, points=np.array([[80, 60], [105, 60]]), point_labels=np.array([1, 0]), multimask=False
    )
    assert len(carved) == 1 and not carved[0].mask[60, 105]


def test_only_negative_clicks_give_no_candidate():
    image, _ = disk_scene()
    segmenter = GrabCutSegmenter()
    assert segmenter.predict(segmenter.encode(image), points=np.array([[5, 5]]), point_labels=np.array([0])) == []


@pytest.mark.parametrize("size", [(48, 64), (300, 900)])
def test_masks_keep_the_image_shape_when_cropping_and_downscaling(size):
    height, width = size
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    segmenter = GrabCutSegmenter(max_side=100)
    candidates = segmenter.predict(
        segmenter.encode(image), points=np.array([[width / 2, height / 2]]), box=Box(2, 2, width - 3, height - 3)
    )
    assert all(c.mask.shape == (height, width) for c in candidates)
