"""Evaluate one run against ground truth: COCO metrics, per-class AP, errors per image, confusion."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from studio.core.types import ModelRun
from studio.db.project import Project, Source
from studio.eval.coco import CocoResult, evaluate_coco
from studio.eval.data import EvalData, IouType, load_eval_data, source_name
from studio.eval.diagnose import Diagnosis, diagnose


def speed_ms_per_image(run: ModelRun | None) -> float | None:
    """Prediction speed in ms per image, from the `seconds_per_image` the prediction job records."""
    seconds = None if run is None else run.stats.get("seconds_per_image")
    return float(seconds) * 1000 if isinstance(seconds, (int, float)) else None


def rounded(value: float | None) -> float | None:
    """Metrics in JSON to 6 decimals: stable output, far finer than any difference that matters."""
    return None if value is None else round(float(value), 6)


@dataclass(frozen=True)
class EvalResult:
    gt_name: str
    pred_name: str
    run: ModelRun | None
    data: EvalData
    coco: CocoResult
    conf: float = 0.25

    @cached_property
    def diagnosis(self) -> Diagnosis:
        """Errors per image and the confusion matrix at score >= `conf` (computed when first asked for)."""
        return diagnose(self.data, conf=self.conf)

    @property
    def metrics(self) -> dict[str, float]:
        """COCOeval's twelve numbers by name: map, map50, map75, map_small, ..., mar_100, ..."""
        return dict(self.coco.stats)

    @property
    def per_class(self) -> dict[str, dict[str, Any]]:
        """Per label name: ap, ap50, ap75 (None without ground truth) and object counts."""
        gt_counts = np.bincount(self.data.gt.label[~self.data.gt.crowd], minlength=max(self.coco.label_ids) + 1)
        pred_counts = np.bincount(self.data.pred.label, minlength=max(self.coco.label_ids) + 1)
        names = {label.id: label.name for label in self.data.labels}
        return {
            names[label_id]: {**values, "gt": int(gt_counts[label_id]), "pred": int(pred_counts[label_id])}
            for label_id, values in self.coco.per_class().items()
        }

    @property
    def speed_ms_per_image(self) -> float | None:
        return speed_ms_per_image(self.run)

    def error_totals(self) -> dict[str, int]:
        """True positives, false positives, misses and class confusions over all images at `conf`."""
        errors = self.diagnosis.images
        return {
            "true_positives": sum(e.true_positives for e in errors),
            "false_positives": sum(e.false_positives for e in errors),
            "misses": sum(e.misses for e in errors),
            "confusions": sum(e.confusions for e in errors),
        }

    def to_json(self) -> dict[str, Any]:
        """The document `studio eval --json` prints."""
        names = {label.id: label.name for label in self.data.labels}
        return {
            "gt": self.gt_name,
            "pred": self.pred_name,
            "iou_type": self.data.iou_type,
            "images": len(self.data.images),
            **{name: rounded(value) for name, value in self.metrics.items()},
            "per_class": {
                name: {key: rounded(v) if key.startswith("ap") else v for key, v in values.items()}
                for name, values in self.per_class.items()
            },
            "operating_point": {"conf": self.diagnosis.conf, "iou": self.diagnosis.iou},
            "errors": self.error_totals(),
            "confusion_matrix": self.diagnosis.confusion.trimmed().as_dict(names),
            "speed_ms_per_image": rounded(self.speed_ms_per_image),
        }


def evaluate(
    project: Project,
    *,
    pred: Source,
    gt: Source = "human",
    iou_type: IouType = "bbox",
    conf: float = 0.25,
    media_ids: Collection[int] | None = None,
) -> EvalResult:
    """Evaluate the predictions of `pred` (a run id) against `gt` ("human" or another run's id).

    COCO metrics use every prediction (as COCOeval does); per-image errors and the confusion matrix
    use the predictions scoring at least `conf`. `media_ids` evaluates on those media only (a val set).
    """
    data = load_eval_data(project, gt=gt, pred=pred, iou_type=iou_type, media_ids=media_ids)
    return EvalResult(
        gt_name=source_name(project, gt),
        pred_name=source_name(project, pred),
        run=None if pred == "human" else project.get_run(int(pred)),
        data=data,
        coco=evaluate_coco(data),
        conf=conf,
    )
