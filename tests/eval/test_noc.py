"""The clicks-per-object meter on synthetic cases whose click counts are known in advance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.geometry import encode_mask
from studio.core.types import Annotation
from studio.eval.noc import Click, format_table, measure, next_click, simulate, summarize
from studio.io.media import add_paths
from studio.models.protocols import MaskCandidate

SIZE = (60, 100)  # (H, W)


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros(SIZE, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


BIG, SMALL, LEAK = rect(10, 10, 40, 40), rect(60, 20, 80, 40), rect(50, 45, 90, 55)  # 900, 400, 400 px


class ComponentSegmenter:
    """Returns the regions under the positive clicks; `leak` joins unless a negative click lies in it."""

    def __init__(self, regions: list[np.ndarray], *, leak: np.ndarray | None = None) -> None:
        self.regions, self.leak = regions, leak

    def encode(self, image):
        return image

    def predict(self, embedding, *, points=None, point_labels=None, box=None, multimask=True):
        mask = np.zeros(SIZE, dtype=bool)
        for (x, y), label in zip(points, point_labels, strict=True):
            for region in self.regions:
                if label == 1 and region[int(y), int(x)]:
                    mask |= region
        negatives = [(x, y) for (x, y), label in zip(points, point_labels, strict=True) if label == 0]
        if self.leak is not None and mask.any() and not any(self.leak[int(y), int(x)] for x, y in negatives):
            mask |= self.leak
        return [MaskCandidate(mask, 0.9), MaskCandidate(np.zeros(SIZE, dtype=bool), 0.1)]


def test_first_click_goes_to_the_centre_of_the_largest_missed_region():
    click = next_click(np.zeros(SIZE, dtype=bool), BIG | SMALL)
    assert click == Click(24, 24, True) or click == Click(25, 25, True)


def test_a_false_positive_gets_a_negative_click_inside_it():
    click = next_click(BIG | LEAK, BIG)
    assert click is not None and not click.positive and LEAK[click.y, click.x]


def test_two_part_object_needs_two_positive_clicks():
    target = BIG | SMALL
    ious = simulate(ComponentSegmenter([BIG, SMALL]), None, target)
    assert ious == pytest.approx([900 / 1300, 1.0])
    report = summarize("fake", [ious], max_clicks=20)
    assert report.noc == {"NoC@85": 2.0, "NoC@90": 2.0}
    assert report.miou == pytest.approx([900 / 1300, 1, 1, 1, 1])


def test_leak_is_removed_by_a_negative_click():
    ious = simulate(ComponentSegmenter([BIG], leak=LEAK), None, BIG)
    assert ious == pytest.approx([900 / 1300, 1.0])


def test_unreachable_object_counts_max_clicks_and_a_failure():
    ious = simulate(ComponentSegmenter([BIG]), None, BIG | SMALL, max_clicks=4)  # SMALL can never be added
    assert len(ious) == 4 and max(ious) < 0.85
    report = summarize("fake", [ious], max_clicks=4)
    assert report.noc["NoC@90"] == 4 and report.failures["NoC@90"] == 1


def test_measure_reads_the_human_masks_of_a_project(project, tmp_path: Path):
    image_path = tmp_path / "scene.jpg"
    cv2.imwrite(str(image_path), np.zeros((*SIZE, 3), dtype=np.uint8))
    (media,) = add_paths(project, [image_path]).added
    label = project.ensure_label("thing")
    project.add_annotation(Annotation(media.id, label.id, encode_mask(BIG | SMALL)))
    project.add_annotation(Annotation(media.id, label.id, encode_mask(BIG)))
    done = []
    report = measure(project, ComponentSegmenter([BIG, SMALL]), model_id="fake", progress=lambda d, t: done.append(d))
    assert report.objects == 2 and report.noc["NoC@90"] == pytest.approx(1.5)
    assert done[-1] == 2
    table = format_table([report])
    assert "NoC@90" in table.splitlines()[0] and "1.50" in table.splitlines()[1]
    assert report.to_json()["noc"]["NoC@85"] == pytest.approx(1.5)


def test_measure_without_masks_is_one_clear_error(project):
    with pytest.raises(StudioError, match="no human masks"):
        measure(project, ComponentSegmenter([BIG]), model_id="fake")
