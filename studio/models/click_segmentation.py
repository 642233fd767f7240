"""The one rule for turning clicks (and a box) into mask candidates, shared by every click segmenter user.

The canvas's S tool, `studio segment` and the clicks-per-object meter (`studio noc`) all call
`predict_prompts`, so the meter measures exactly what the canvas does. It lives beside the Segmenter
protocol because the meter (studio.eval) and the job (studio.jobs) sit side by side above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.shapes import Box
from studio.models.protocols import MaskCandidate, Segmenter


@dataclass(frozen=True, slots=True)
class Click:
    """A prompt point in image pixels (x right, y down); negative means "not this"."""

    x: float
    y: float
    positive: bool = True


def wants_multimask(clicks: int) -> bool:
    """One click (or only a box) is ambiguous, so ask for several candidates (whole, part, sub-part);
    further clicks refine one mask, as SAM's authors recommend."""
    return clicks <= 1


def predict_prompts(
    segmenter: Segmenter, embedding: Any, clicks: Sequence[Click], box: Box | None = None
) -> list[MaskCandidate]:
    """Candidates for the prompts, best predicted IoU first (empty when there is no prompt)."""
    if not clicks and box is None:
        return []
    candidates = segmenter.predict(
        embedding,
        points=np.array([(c.x, c.y) for c in clicks], dtype=np.float64) if clicks else None,
        point_labels=np.array([int(c.positive) for c in clicks], dtype=np.int64) if clicks else None,
        box=box,
        multimask=wants_multimask(len(clicks)),
    )
    return sorted(candidates, key=lambda c: c.score, reverse=True)
