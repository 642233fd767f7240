"""Matching predictions to ground truth, COCO metrics, and comparing runs. Imports no Qt.

`evaluate(project, pred=run_id)` gives COCOeval's numbers (computed here, equal to pycocotools'),
per-class AP, PR curves, a confusion matrix and per-image errors; `compare_runs` ranks the images
where several runs disagree with the ground truth or with each other.
"""

from __future__ import annotations

from studio.eval.data import IOU_TYPES, EvalData, IouType, load_eval_data, resolve_source
from studio.eval.evaluate import EvalResult, evaluate, speed_ms_per_image

__all__ = [
    "IOU_TYPES", "EvalData", "EvalResult", "IouType", "evaluate", "load_eval_data", "resolve_source",
    "speed_ms_per_image",
]
