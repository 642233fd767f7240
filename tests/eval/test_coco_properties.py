"""Property test: on any small generated case, Studio's COCO engine gives COCOeval's exact arrays.

Coordinates are multiples of 8 px so that IoUs hit the thresholds exactly and areas land on COCO's
small/medium/large boundaries (32² and 96²); scores come from a few values so that ties are common.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.types import Label
from studio.eval.coco import STAT_NAMES, evaluate_coco
from studio.eval.data import EvalData, Objects

SIZE = 160
box = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(1, 12), st.integers(1, 12)).map(
    lambda b: tuple(8 * v for v in b)
)
gt_obj = st.tuples(st.integers(0, 2), st.integers(1, 3), box, st.sampled_from([False, False, False, True]))  # crowd?
pred_obj = st.tuples(st.integers(0, 2), st.integers(1, 3), box, st.sampled_from([0.2, 0.5, 0.5, 0.7, 0.9]))


def _rle(b: tuple[int, ...]) -> dict:
    x, y, w, h = b
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[y:y + h, x:x + w] = 1
    mask[y:y + h // 2, x:x + w // 2] = 0
    return mask_utils.encode(np.asfortranarray(mask))


def _objects(rows: list, *, is_gt: bool, segm: bool) -> Objects:
    boxes = np.array([r[2] for r in rows], dtype=np.float64).reshape(-1, 4)
    rles = [_rle(r[2]) for r in rows] if segm else None
    area = np.array([mask_utils.area(r) for r in rles], dtype=np.float64) if segm else boxes[:, 2] * boxes[:, 3]
    return Objects(
        ids=np.arange(1, len(rows) + 1), image=np.array([r[0] for r in rows], dtype=np.int64),
        label=np.array([r[1] for r in rows], dtype=np.int64), boxes=boxes, area=area,
        score=np.array([1.0 if is_gt else r[3] for r in rows]), crowd=np.array([is_gt and r[3] for r in rows], bool),
        rles=rles,
    )


def _reference(gts: list, preds: list, segm: bool) -> COCOeval:
    iou_type = "segm" if segm else "bbox"
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i, "width": SIZE, "height": SIZE} for i in range(3)],
        "categories": [{"id": k} for k in (1, 2, 3)],
        "annotations": [
            {"id": n + 1, "image_id": g[0], "category_id": g[1], "bbox": list(g[2]), "iscrowd": int(g[3]),
             "area": float(mask_utils.area(_rle(g[2]))) if segm else float(g[2][2] * g[2][3]),
             "segmentation": _rle(g[2])}
            for n, g in enumerate(gts)
        ],
    }
    region = (lambda p: {"segmentation": _rle(p[2])}) if segm else (lambda p: {"bbox": list(p[2])})
    results = [{"image_id": p[0], "category_id": p[1], "score": p[3], **region(p)} for p in preds]
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gts=st.lists(gt_obj, max_size=10), preds=st.lists(pred_obj, min_size=1, max_size=14), segm=st.booleans())
def test_engine_equals_cocoeval(gts: list, preds: list, segm: bool) -> None:
    labels = [Label(id=k, name=f"c{k}", color="#123456") for k in (1, 2, 3)]
    data = EvalData(
        images=[(i, 0) for i in range(3)], labels=labels, gt=_objects(gts, is_gt=True, segm=segm),
        pred=_objects(preds, is_gt=False, segm=segm), iou_type="segm" if segm else "bbox",
    )
    result = evaluate_coco(data)
    reference = _reference(gts, preds, segm)
    assert [result.stats[name] for name in STAT_NAMES] == list(reference.stats)
    np.testing.assert_array_equal(result.precision, reference.eval["precision"])
    np.testing.assert_array_equal(result.recall, reference.eval["recall"])
