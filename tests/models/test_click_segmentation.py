"""One multimask rule for the canvas tool, `studio segment` and the clicks-per-object meter."""

from __future__ import annotations

import numpy as np

from studio.core.shapes import Box
from studio.eval.noc import simulate
from studio.jobs.segment import segment_image
from studio.models.click_segmentation import Click, predict_prompts, wants_multimask
from studio.models.protocols import MaskCandidate


class RecordingSegmenter:
    """Answers a fixed square and records how many points each call had and whether it asked for candidates."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def encode(self, image):
        return image.shape[:2]

    def predict(self, embedding, *, points=None, point_labels=None, box=None, multimask=True):
        self.calls.append((0 if points is None else len(points), multimask))
        mask = np.zeros(embedding, bool)
        mask[10:30, 10:30] = True
        weak = MaskCandidate(np.zeros(embedding, bool), 0.1)
        return [weak, MaskCandidate(mask, 0.9)] if multimask else [MaskCandidate(mask, 0.8)]


def test_one_click_asks_for_candidates_more_clicks_refine_one_mask():
    assert [wants_multimask(n) for n in (0, 1, 2, 5)] == [True, True, False, False]
    segmenter = RecordingSegmenter()
    best_first = predict_prompts(segmenter, (40, 40), [Click(15, 15)])
    assert [c.score for c in best_first] == [0.9, 0.1]
    assert predict_prompts(segmenter, (40, 40), []) == [] and segmenter.calls == [(1, True)]


def test_studio_segment_and_the_meter_follow_the_same_rule():
    image = np.zeros((40, 40, 3), np.uint8)
    segmenter = RecordingSegmenter()
    segment_image(segmenter, image, model_id="rec", points=[(12, 12), (20, 20)], point_labels=[1, 1])
    segment_image(segmenter, image, model_id="rec", box=Box(5, 5, 35, 35))
    assert segmenter.calls == [(2, False), (0, True)]  # `studio segment` asked for 3 candidates on 2 clicks before

    segmenter.calls.clear()
    target = np.zeros((40, 40), bool)
    target[10:32, 10:32] = True  # the square misses a rim: the meter clicks again
    simulate(segmenter, (40, 40), target, max_clicks=3)
    assert segmenter.calls == [(1, True), (2, False), (3, False)]
