"""Where a run goes wrong: per-image errors and a confusion matrix, at one operating point.

COCO metrics average over thresholds; a person fixing data or choosing a model needs counts at the
score threshold they will use: which objects were missed, which predictions were false, which got
the wrong class. supervision's ConfusionMatrix counts boxes only and does not say which annotation
went where, so the matching is written here: per image, predictions above `conf` by descending
score take the free ground truth of their own class with the highest IoU >= `iou`; the predictions
left then take any free ground truth (a class confusion). Predictions on a crowd region are neither
right nor wrong, as in COCO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from studio.eval.data import EvalData, ImageKey, Objects


@dataclass(frozen=True)
class ImageErrors:
    """One image's outcome. `hits` maps a ground-truth annotation id to (predicted label id, IoU)."""

    image: ImageKey
    n_gt: int
    n_pred: int
    true_positives: int
    false_positives: int
    misses: int
    confusions: int
    hits: dict[int, tuple[int, float]] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.false_positives + self.misses + self.confusions


@dataclass(frozen=True)
class ConfusionMatrix:
    """counts[i, j]: objects of true class i predicted as class j; the last row and column are background
    (last row: false positives, predictions of nothing; last column: misses, objects nobody found)."""

    label_ids: list[int]
    counts: np.ndarray

    def trimmed(self) -> ConfusionMatrix:
        """Without the labels that occur neither in the ground truth nor in the predictions counted."""
        used = (self.counts.sum(axis=0) + self.counts.sum(axis=1)) > 0
        used[-1] = True  # background stays
        keep = np.flatnonzero(used)
        return ConfusionMatrix([self.label_ids[i] for i in keep[:-1]], self.counts[np.ix_(keep, keep)])

    def as_dict(self, names: dict[int, str]) -> dict[str, dict[str, int]]:
        axis = [names[i] for i in self.label_ids] + ["background"]
        return {axis[i]: {axis[j]: int(self.counts[i, j]) for j in range(len(axis))} for i in range(len(axis))}


@dataclass(frozen=True)
class Diagnosis:
    images: list[ImageErrors]
    confusion: ConfusionMatrix
    conf: float
    iou: float


def _ious(pred: Objects, gt: Objects, d: np.ndarray, g: np.ndarray, *, crowd: bool) -> np.ndarray:
    if len(d) == 0 or len(g) == 0:
        return np.zeros((len(d), len(g)))
    flags = [int(crowd)] * len(g)
    if pred.rles is not None and gt.rles is not None:
        return np.asarray(mask_utils.iou([pred.rles[i] for i in d], [gt.rles[i] for i in g], flags))
    return np.asarray(mask_utils.iou(pred.boxes[d], gt.boxes[g], flags))


def _greedy(ious: np.ndarray, allowed: np.ndarray, match: np.ndarray, iou: float) -> None:
    """Each unmatched prediction, in order, takes the free allowed ground truth of highest IoU >= `iou`."""
    taken = np.zeros(ious.shape[1], dtype=bool)
    taken[match[match >= 0]] = True
    for d in np.flatnonzero(match < 0):
        keys = np.where(allowed[d] & ~taken & (ious[d] >= iou), ious[d], -1.0)
        if keys.size and keys.max() >= 0:
            match[d] = int(keys.argmax())
            taken[match[d]] = True


def diagnose(data: EvalData, *, conf: float = 0.25, iou: float = 0.5) -> Diagnosis:
    """Per-image errors and the confusion matrix of `data.pred` at score >= `conf` and IoU >= `iou`."""
    gt, pred = data.gt, data.pred
    label_ids = sorted(label.id for label in data.labels)
    slot = {label_id: i for i, label_id in enumerate(label_ids)}
    background = len(label_ids)
    counts = np.zeros((background + 1, background + 1), dtype=np.int64)
    confident = np.flatnonzero(pred.score >= conf)
    by_score = confident[np.lexsort((confident, -pred.score[confident], pred.image[confident]))]
    gt_rows = np.argsort(gt.image, kind="stable")
    d_bounds = np.searchsorted(pred.image[by_score], np.arange(len(data.images) + 1))
    g_bounds = np.searchsorted(gt.image[gt_rows], np.arange(len(data.images) + 1))
    images = []
    for i, key in enumerate(data.images):
        d = by_score[d_bounds[i]:d_bounds[i + 1]]
        g_all = gt_rows[g_bounds[i]:g_bounds[i + 1]]
        g = g_all[~gt.crowd[g_all]]
        on_crowd = (_ious(pred, gt, d, g_all[gt.crowd[g_all]], crowd=True) >= iou).any(axis=1)
        ious = _ious(pred, gt, d, g, crowd=False)
        match = np.full(len(d), -1, dtype=np.int64)
        _greedy(ious, pred.label[d][:, None] == gt.label[g][None, :], match, iou)
        _greedy(ious, np.ones_like(ious, dtype=bool), match, iou)
        hits: dict[int, tuple[int, float]] = {}
        tp = confusions = fp = 0
        for row, col in enumerate(match.tolist()):
            predicted = int(pred.label[d[row]])
            if col >= 0:
                truth = int(gt.label[g[col]])
                counts[slot[truth], slot[predicted]] += 1
                hits[int(gt.ids[g[col]])] = (predicted, float(ious[row, col]))
                tp, confusions = tp + (truth == predicted), confusions + (truth != predicted)
            elif not on_crowd[row]:
                counts[background, slot[predicted]] += 1
                fp += 1
        missed = np.setdiff1d(np.arange(len(g)), match[match >= 0])
        np.add.at(counts[:, background], np.array([slot[int(v)] for v in gt.label[g[missed]]], dtype=np.int64), 1)
        images.append(ImageErrors(
            image=key, n_gt=len(g), n_pred=len(d), true_positives=tp, false_positives=fp, misses=len(missed),
            confusions=confusions, hits=hits,
        ))
    return Diagnosis(images=images, confusion=ConfusionMatrix(label_ids, counts), conf=conf, iou=iou)
