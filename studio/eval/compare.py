"""Compare several runs on the same ground truth: metric deltas, and the images where they disagree.

An image ranks high when the runs make many errors there (false positives, misses, wrong classes),
when they found the same object with very different IoUs, or when they gave it different classes:
those are the images worth a look, either to see where a model fails or to fix the ground truth.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.errors import StudioError
from studio.db.project import Project, Source
from studio.eval.data import IouType
from studio.eval.diagnose import ImageErrors
from studio.eval.evaluate import EvalResult, evaluate, rounded

HEADLINE: tuple[str, ...] = ("map", "map50", "map75", "map_small", "map_medium", "map_large", "mar_100")
"""The metrics a comparison shows side by side (and as deltas)."""


@dataclass(frozen=True)
class ImageRow:
    """One image across the compared runs; `errors` is aligned with `Comparison.results`."""

    media_id: int
    frame: int
    name: str
    errors: tuple[ImageErrors, ...]
    iou_spread: float
    class_conflicts: int

    @property
    def false_positives(self) -> int:
        return sum(e.false_positives for e in self.errors)

    @property
    def misses(self) -> int:
        return sum(e.misses for e in self.errors)

    @property
    def disagreement(self) -> float:
        """Errors of all runs, plus objects the runs classify differently, plus the IoU spread."""
        return sum(e.errors for e in self.errors) + self.class_conflicts + self.iou_spread

    def to_json(self, run_names: Sequence[str]) -> dict[str, Any]:
        return {
            "media_id": self.media_id, "frame": self.frame, "name": self.name,
            "disagreement": rounded(self.disagreement), "iou_spread": rounded(self.iou_spread),
            "class_conflicts": self.class_conflicts,
            "runs": {
                name: {"false_positives": e.false_positives, "misses": e.misses, "confusions": e.confusions}
                for name, e in zip(run_names, self.errors, strict=True)
            },
        }


def _spread_and_conflicts(errors: Sequence[ImageErrors]) -> tuple[float, int]:
    """Largest IoU difference on one object between runs (a miss counts as IoU 0), and the number of
    objects that runs found with different classes."""
    objects = set().union(*(e.hits for e in errors))
    spread, conflicts = 0.0, 0
    for gt_id in objects:
        hits = [e.hits.get(gt_id) for e in errors]
        ious = [0.0 if hit is None else hit[1] for hit in hits]
        spread = max(spread, max(ious) - min(ious))
        conflicts += len({hit[0] for hit in hits if hit is not None}) > 1
    return spread, conflicts


@dataclass(frozen=True)
class Comparison:
    results: list[EvalResult]
    images: list[ImageRow]
    """Every evaluated image, the most disputed first."""

    @property
    def run_names(self) -> list[str]:
        return [r.pred_name for r in self.results]

    def deltas(self) -> dict[str, dict[str, float | None]]:
        """Each run's headline metrics minus the first run's (None where a metric is undefined: -1 in COCO)."""
        base = self.results[0].metrics
        return {
            r.pred_name: {m: r.metrics[m] - base[m] if min(r.metrics[m], base[m]) >= 0 else None for m in HEADLINE}
            for r in self.results[1:]
        }

    def worst(self, count: int = 20) -> list[ImageRow]:
        return [row for row in self.images[:count] if row.disagreement > 0]

    def to_json(self, *, worst: int = 20) -> dict[str, Any]:
        """The document `studio compare --json` prints (deterministic: same project, same output)."""
        first = self.results[0]
        return {
            "gt": first.gt_name,
            "iou_type": first.data.iou_type,
            "images": len(self.images),
            "runs": [{"name": r.pred_name, "plugin": r.run.plugin if r.run else None, **r.to_json()} for r in self.results],
            "deltas": {name: {m: rounded(v) for m, v in values.items()} for name, values in self.deltas().items()},
            "worst_images": [row.to_json(self.run_names) for row in self.worst(worst)],
        }


def compare_runs(
    project: Project,
    runs: Sequence[Source],
    *,
    gt: Source = "human",
    iou_type: IouType = "bbox",
    conf: float = 0.25,
    media_ids: Collection[int] | None = None,
) -> Comparison:
    """Evaluate each run against `gt` and rank the images by how much the runs get wrong there
    (on `media_ids` only when given: the validation images of trained models)."""
    if len(set(runs)) < 2 or len(set(runs)) != len(runs):
        raise StudioError("compare needs at least two different runs")
    results = [evaluate(project, pred=run, gt=gt, iou_type=iou_type, conf=conf, media_ids=media_ids) for run in runs]
    media = {m.id: m for m in project.list_media()}
    rows = []
    for errors in zip(*(r.diagnosis.images for r in results), strict=True):
        media_id, frame = errors[0].image
        spread, conflicts = _spread_and_conflicts(errors)
        item = media[media_id]
        name = item.name if item.kind == "image" else f"{item.name} #{frame}"
        rows.append(ImageRow(media_id, frame, name, tuple(errors), spread, conflicts))
    rows.sort(key=lambda row: (-row.disagreement, row.media_id, row.frame))
    return Comparison(results=results, images=rows)
