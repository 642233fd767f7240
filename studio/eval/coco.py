"""COCO detection metrics, equal to pycocotools' COCOeval, computed on column arrays.

pycocotools' `COCOeval.evaluate` loops in Python over images x categories x area ranges x IoU
thresholds x detections x ground truths; on 50k predictions that takes tens of seconds. This module
reproduces its rules exactly (same IoUs from pycocotools' own `mask.iou`, same greedy matching, same
tie-breaking, same accumulation), but matches each detection once for all 10 thresholds x 4 area
ranges as one numpy operation and accumulates with vectorised cumulative sums. tests/eval checks the
results against COCOeval itself on generated cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import Params

from studio.eval.data import EvalData, IouType, Objects

STAT_NAMES: tuple[str, ...] = (
    "map", "map50", "map75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)
"""COCOeval.stats in its order: AP@[.5:.95], AP50, AP75, AP by area, AR at 1/10/100 detections, AR by area."""


@dataclass
class CocoResult:
    """COCOeval's `eval` arrays and `stats`, plus which prediction matched which ground truth.

    precision: (T, R, K, A, M) as COCOeval (T IoU thresholds, R recall thresholds, K categories, A area
    ranges, M max-detection limits); -1 where a category has no ground truth. recall: (T, K, A, M).
    """

    params: Params
    label_ids: list[int]
    precision: np.ndarray
    recall: np.ndarray
    stats: dict[str, float]

    def per_class(self) -> dict[int, dict[str, float | None]]:
        """AP@[.5:.95], AP50 and AP75 per label id (None for a label without ground truth)."""
        out: dict[int, dict[str, float | None]] = {}
        for k, label_id in enumerate(self.label_ids):
            values = {}
            for name, t in (("ap", slice(None)), ("ap50", 0), ("ap75", 5)):
                s = self.precision[t, :, k, 0, -1]
                values[name] = float(np.mean(s[s > -1])) if np.any(s > -1) else None
            out[label_id] = values
        return out

    def pr_curve(self, label_id: int, *, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray] | None:
        """(recall thresholds, interpolated precision) at one IoU threshold, all areas, 100 detections."""
        k = self.label_ids.index(label_id)
        t = int(np.argmin(np.abs(self.params.iouThrs - iou)))
        precision = self.precision[t, :, k, 0, -1]
        return None if np.all(precision < 0) else (self.params.recThrs.copy(), precision.copy())


def _ious(pred: Objects, gt: Objects, d: slice, g: slice, iou_type: IouType) -> np.ndarray:
    """pycocotools' own IoU (crowd regions: intersection over the prediction's area)."""
    crowd = gt.crowd[g].astype(np.uint8).tolist()
    if iou_type == "segm":
        assert pred.rles is not None and gt.rles is not None
        return np.asarray(mask_utils.iou(pred.rles[d], gt.rles[g], crowd))
    return np.asarray(mask_utils.iou(pred.boxes[d], gt.boxes[g], crowd))


def _match_group(ious: np.ndarray, ignored: np.ndarray, crowd: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """COCOeval's greedy matching for one image and category, every threshold and area range at once.

    ious: (D, G) with predictions by descending score; ignored: (A, G) ground truth ignored per area
    range; thresholds: (T,). Returns (D, T, A) ground-truth column matched, -1 for none.
    COCOeval's rule per prediction: the best IoU >= threshold among free, non-ignored ground truths
    (ties: the later one); only if there is none, the same among ignored ones (crowds stay free).
    Ground truths are reversed so argmax (first maximum) picks COCOeval's later one.
    """
    n_pred, n_gt = ious.shape
    if n_gt == 1:  # the usual case needs no loop: the first prediction over a threshold takes the object
        over = ious[:, 0][:, None] >= thresholds  # (D, T)
        hit = over if crowd[0] else over & (np.cumsum(over, axis=0) == 1)  # a crowd takes every one
        return np.repeat(np.where(hit, 0, -1)[:, :, None], ignored.shape[0], axis=2)
    ious_r, ignored_r, crowd_r = ious[:, ::-1], ignored[:, ::-1], crowd[::-1]
    taken = np.zeros((len(thresholds), ignored.shape[0], n_gt), dtype=bool)
    matches = np.full((n_pred, len(thresholds), ignored.shape[0]), -1, dtype=np.int64)
    lanes_t, lanes_a = np.indices(taken.shape[:2])
    for d in np.flatnonzero(ious.max(axis=1) >= thresholds.min()):
        row = ious_r[d]
        free = (row >= thresholds[:, None])[:, None, :] & ~(taken & ~crowd_r)
        best = np.full(taken.shape[:2], -1, dtype=np.int64)
        for pool in (~ignored_r, ignored_r):
            keys = np.where(free & pool, row, -1.0)
            pick = keys.argmax(axis=-1)
            found = (best < 0) & (keys.max(axis=-1) >= 0)
            best = np.where(found, pick, best)
        hit = best >= 0
        taken[lanes_t[hit], lanes_a[hit], best[hit]] = True
        matches[d] = np.where(hit, n_gt - 1 - best, -1)
    return matches


def _group_bounds(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end rows of each wanted key in sorted `keys`."""
    return np.searchsorted(keys, wanted, side="left"), np.searchsorted(keys, wanted, side="right")


def _mean_valid(values: np.ndarray) -> float:
    """COCOeval.summarize: the mean over entries > -1, or -1 if there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if len(valid) else -1.0


def evaluate_coco(data: EvalData) -> CocoResult:
    """COCO metrics of `data.pred` against `data.gt` (every label of the project is a category)."""
    params = Params(iouType=data.iou_type)
    label_ids = sorted(label.id for label in data.labels)
    n_labels, n_thr, n_area = len(label_ids), len(params.iouThrs), len(params.areaRng)
    max_det = params.maxDets[-1]
    gt, pred = data.gt, data.pred

    gt_cat = np.searchsorted(label_ids, gt.label)
    pred_cat = np.searchsorted(label_ids, pred.label)
    # ground truth in load order within each (image, category); predictions by descending score
    gt_order = np.lexsort((np.arange(len(gt)), gt_cat, gt.image))
    pred_order = np.lexsort((np.arange(len(pred)), -pred.score, pred_cat, pred.image))
    gt_key = (gt.image * n_labels + gt_cat)[gt_order]
    pred_key = (pred.image * n_labels + pred_cat)[pred_order]
    first = np.searchsorted(pred_key, pred_key, side="left")
    rank = np.arange(len(pred_key)) - first  # position within its image and category
    kept = rank < max_det  # COCOeval drops what exceeds the largest max-detection limit
    pred_order, pred_key, rank = pred_order[kept], pred_key[kept], rank[kept]

    area_lo = np.array([a[0] for a in params.areaRng])
    area_hi = np.array([a[1] for a in params.areaRng])
    gt_area, gt_crowd = gt.area[gt_order], gt.crowd[gt_order]
    gt_ignored = gt_crowd[:, None] | (gt_area[:, None] < area_lo) | (gt_area[:, None] > area_hi)  # (G, A)
    pred_area = pred.area[pred_order]
    pred_outside = (pred_area[:, None] < area_lo) | (pred_area[:, None] > area_hi)  # (D, A)

    thresholds = np.minimum(params.iouThrs, 1 - 1e-10)
    matched_gt = np.full((len(pred_order), n_thr, n_area), -1, dtype=np.int64)  # row in gt_order
    shared = np.intersect1d(pred_key, gt_key)
    d_lo, d_hi = _group_bounds(pred_key, shared)
    g_lo, g_hi = _group_bounds(gt_key, shared)
    sorted_pred, sorted_gt = pred.take(pred_order), gt.take(gt_order)
    for d0, d1, g0, g1 in zip(d_lo.tolist(), d_hi.tolist(), g_lo.tolist(), g_hi.tolist(), strict=True):
        ious = _ious(sorted_pred, sorted_gt, slice(d0, d1), slice(g0, g1), data.iou_type)
        local = _match_group(ious, gt_ignored[g0:g1].T, gt_crowd[g0:g1], thresholds)
        matched_gt[d0:d1] = np.where(local >= 0, local + g0, -1)

    # COCOeval: a match to an ignored ground truth is ignored; an unmatched prediction is ignored outside the area range
    is_match = matched_gt >= 0
    lookup = np.vstack([gt_ignored, np.zeros((1, n_area), dtype=bool)])  # the extra last row stands for "no match"
    lanes_a = np.broadcast_to(np.arange(n_area), matched_gt.shape)
    matched_ignored = lookup[np.where(is_match, matched_gt, len(gt_ignored)), lanes_a]
    pred_ignored = np.where(is_match, matched_ignored, pred_outside[:, None, :])

    precision, recall = _accumulate(
        params, n_labels,
        gt_cat=gt_cat[gt_order], gt_ignored=gt_ignored,
        pred_cat=pred_cat[pred_order], pred_image=pred.image[pred_order], pred_score=pred.score[pred_order],
        rank=rank, is_match=is_match, pred_ignored=pred_ignored,
    )
    return CocoResult(
        params=params, label_ids=label_ids, precision=precision, recall=recall,
        stats=_summarize(params, precision, recall),
    )


def _accumulate(
    params: Params,
    n_labels: int,
    *,
    gt_cat: np.ndarray,
    gt_ignored: np.ndarray,
    pred_cat: np.ndarray,
    pred_image: np.ndarray,
    pred_score: np.ndarray,
    rank: np.ndarray,
    is_match: np.ndarray,
    pred_ignored: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate: interpolated precision at each recall threshold, recall at the end.

    Predictions of a category are ranked by score with COCOeval's tie order (image, then rank in the
    image), the order its stable sort of the per-image concatenation gives.
    """
    n_thr, n_rec, n_area, n_max = len(params.iouThrs), len(params.recThrs), len(params.areaRng), len(params.maxDets)
    precision = -np.ones((n_thr, n_rec, n_labels, n_area, n_max))
    recall = -np.ones((n_thr, n_labels, n_area, n_max))
    order = np.lexsort((rank, pred_image, -pred_score, pred_cat))
    cat_sorted = pred_cat[order]
    starts, ends = _group_bounds(cat_sorted, np.arange(n_labels))
    not_ignored_gt = np.stack([np.bincount(gt_cat[~gt_ignored[:, a]], minlength=n_labels) for a in range(n_area)], 1)
    for k in range(n_labels):
        rows = order[starts[k]:ends[k]]
        for m, max_det in enumerate(params.maxDets):
            sel = rows[rank[rows] < max_det]
            tps = is_match[sel] & ~pred_ignored[sel]  # (n, T, A)
            fps = ~is_match[sel] & ~pred_ignored[sel]
            tp_sum = np.cumsum(tps, axis=0, dtype=float)
            fp_sum = np.cumsum(fps, axis=0, dtype=float)
            for a in range(n_area):
                npig = not_ignored_gt[k, a]
                if npig == 0:
                    continue
                for t in range(n_thr):
                    tp, fp = tp_sum[:, t, a], fp_sum[:, t, a]
                    rc = tp / npig
                    pr = tp / (fp + tp + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if len(tp) else 0
                    pr = np.maximum.accumulate(pr[::-1])[::-1]
                    inds = np.searchsorted(rc, params.recThrs, side="left")
                    q = np.zeros(n_rec)
                    inside = inds < len(pr)
                    q[inside] = pr[inds[inside]]
                    precision[t, :, k, a, m] = q
    return precision, recall


def _summarize(params: Params, precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """COCOeval.summarize's twelve numbers (same slices, same means)."""
    areas = {label: i for i, label in enumerate(params.areaRngLbl)}
    dets = {d: i for i, d in enumerate(params.maxDets)}

    def ap(*, iou: float | None = None, area: str = "all", max_det: int = 100) -> float:
        s = precision if iou is None else precision[np.where(iou == params.iouThrs)[0]]
        return _mean_valid(s[:, :, :, areas[area], dets[max_det]])

    def ar(*, area: str = "all", max_det: int = 100) -> float:
        return _mean_valid(recall[:, :, areas[area], dets[max_det]])

    values = (
        ap(), ap(iou=0.5), ap(iou=0.75), ap(area="small"), ap(area="medium"), ap(area="large"),
        ar(max_det=1), ar(max_det=10), ar(), ar(area="small"), ar(area="medium"), ar(area="large"),
    )
    return dict(zip(STAT_NAMES, values, strict=True))
