"""The clicks-per-object meter: how many clicks a segmenter needs on this project's own objects.

It replays the standard interactive-segmentation protocol (as in RITM / SimpleClick evaluations) against
the human masks and polygons: after each answer the next click goes to the interior point farthest
from the boundary of the largest error region, positive when that region is a miss and negative when
it is a false positive. Reported per segmenter: NoC@85 and NoC@90 (mean clicks to reach that IoU,
counting `max_clicks` for objects never reached) and the mean IoU after 1..5 clicks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from studio.core import geometry
from studio.core.errors import CancelledError, StudioError
from studio.core.shapes import Mask, Polygon
from studio.db.project import Project
from studio.io.media import CancelCheck, Progress, read_media
from studio.models.click_segmentation import Click, predict_prompts
from studio.models.embedding_cache import EmbeddingCache, embed
from studio.models.protocols import Segmenter

THRESHOLDS = (0.85, 0.90)
IOU_AFTER_CLICKS = 5


def next_click(prediction: np.ndarray, target: np.ndarray) -> Click | None:
    """Where a careful annotator clicks next: deep inside the largest error region (None when none is left).

    The image border counts as boundary (the masks are padded), so clicks stay away from the frame edge,
    as in the published protocol.
    """
    missed = target & ~prediction
    extra = prediction & ~target
    best: tuple[int, Click] | None = None
    for errors, positive in ((missed, True), (extra, False)):
        count, components, stats, _ = cv2.connectedComponentsWithStats(errors.astype(np.uint8), connectivity=8)
        if count <= 1:
            continue
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        size = int(stats[largest, cv2.CC_STAT_AREA])
        if best is not None and size <= best[0]:
            continue
        region = np.pad(components == largest, 1).astype(np.uint8)
        distance = cv2.distanceTransform(region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        best = (size, Click(int(x), int(y), positive))
    return None if best is None else best[1]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def simulate(segmenter: Segmenter, embedding: Any, target: np.ndarray, *, max_clicks: int = 20) -> list[float]:
    """IoU with `target` after each of up to `max_clicks` simulated clicks (stops early at IoU 1).

    Each answer comes from `predict_prompts`, the rule the canvas's S tool uses, and the best scored
    candidate is taken, as the tool shows it first.
    """
    prediction = np.zeros_like(target, dtype=bool)
    clicks: list[Click] = []
    ious: list[float] = []
    while len(clicks) < max_clicks:
        click = next_click(prediction, target)
        if click is None:
            break
        clicks.append(click)
        candidates = predict_prompts(segmenter, embedding, clicks)
        prediction = candidates[0].mask if candidates else np.zeros_like(prediction)
        ious.append(mask_iou(prediction, target))
    return ious


def clicks_to_reach(ious: Sequence[float], threshold: float, *, max_clicks: int) -> int:
    return next((i + 1 for i, value in enumerate(ious) if value >= threshold), max_clicks)


def iou_after(ious: Sequence[float], clicks: int) -> float:
    """IoU after `clicks` clicks; a run that stopped early (perfect mask) keeps its last value."""
    if not ious:
        return 0.0
    return ious[min(clicks, len(ious)) - 1]


@dataclass
class NocReport:
    """The meter's figures for one segmenter over the project's human masks."""

    model: str
    objects: int
    max_clicks: int
    noc: dict[str, float] = field(default_factory=dict)
    """"NoC@85", "NoC@90" -> mean clicks."""
    miou: list[float] = field(default_factory=list)
    """Mean IoU after 1, 2, ... IOU_AFTER_CLICKS clicks."""
    failures: dict[str, int] = field(default_factory=dict)
    """"NoC@90" -> how many objects never reached that IoU within max_clicks."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(model: str, runs: Sequence[Sequence[float]], *, max_clicks: int) -> NocReport:
    """NoC@t and mIoU@k over the per-object IoU curves."""
    report = NocReport(model=model, objects=len(runs), max_clicks=max_clicks)
    for threshold in THRESHOLDS:
        name = f"NoC@{round(threshold * 100)}"
        counts = [clicks_to_reach(ious, threshold, max_clicks=max_clicks) for ious in runs]
        report.noc[name] = float(np.mean(counts)) if counts else float("nan")
        report.failures[name] = sum(1 for ious in runs if not any(v >= threshold for v in ious))
    report.miou = [
        float(np.mean([iou_after(ious, k) for ious in runs])) if runs else float("nan")
        for k in range(1, IOU_AFTER_CLICKS + 1)
    ]
    return report


def measure(
    project: Project,
    segmenter: Segmenter,
    *,
    model_id: str,
    max_clicks: int = 20,
    limit: int | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> NocReport:
    """Replay the protocol on every human mask or polygon of the project (at most `limit` objects)."""
    if max_clicks < 1:
        raise StudioError("--max-clicks must be at least 1")
    targets = [
        ann for ann in project.annotations(source="human") if isinstance(ann.shape, Mask | Polygon) and ann.frame == 0
    ]
    if limit is not None:
        targets = targets[:limit]
    if not targets:
        raise StudioError("the project has no human masks or polygons to measure clicks against")
    runs: list[list[float]] = []
    by_media: dict[int, list] = {}
    for ann in targets:
        by_media.setdefault(ann.media_id, []).append(ann)
    for media_id, anns in by_media.items():
        media = project.get_media(media_id)
        image = read_media(project, media)
        embedding = embed(segmenter, image, model_id=model_id, cache=cache)
        for ann in anns:
            if cancel is not None and cancel():
                raise CancelledError("click meter cancelled")
            target = geometry.rasterize(ann.shape, image.shape[:2])
            if target.any():
                runs.append(simulate(segmenter, embedding, target, max_clicks=max_clicks))
            if progress is not None:
                progress(len(runs), len(targets))
    return summarize(model_id, runs, max_clicks=max_clicks)


def format_table(reports: Sequence[NocReport]) -> str:
    """A plain-text table, one row per segmenter."""
    headers = ["model", "objects", "NoC@85", "NoC@90"] + [f"mIoU@{k}" for k in range(1, IOU_AFTER_CLICKS + 1)]
    rows = [
        [r.model, str(r.objects), f"{r.noc['NoC@85']:.2f}", f"{r.noc['NoC@90']:.2f}"] + [f"{v:.3f}" for v in r.miou]
        for r in reports
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)
