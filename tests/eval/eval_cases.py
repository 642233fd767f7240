"""Generated evaluation cases, stored both in a Studio project and as pycocotools' COCO objects.

The COCO side is built from the generated numbers directly (not through studio.eval), so comparing
Studio's metrics with COCOeval's checks Studio's loading as well as its matching.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.shapes import Box, Mask, Polygon
from studio.core.types import Annotation, MediaInfo
from studio.db import Project

WIDTH, HEIGHT = 160, 120


@dataclass
class Obj:
    """One object: a box (x, y, w, h) in integer pixels; with `polygon`, a diamond inside the box."""

    image: int
    label: int
    box: tuple[int, int, int, int]
    score: float = 1.0
    crowd: bool = False
    polygon: bool = False

    def diamond(self) -> list[float]:
        x, y, w, h = self.box
        return [x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]


@dataclass
class Case:
    n_images: int
    n_labels: int
    gt: list[Obj] = field(default_factory=list)
    pred: list[Obj] = field(default_factory=list)
    reviewed_empty: set[int] = field(default_factory=set)


def random_box(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Sizes from 4 to 110 px so that small, medium and large objects all occur."""
    w, h = (int(v) for v in rng.integers(4, 110, 2))
    return int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h)), w, h


def jitter(rng: np.random.Generator, box: tuple[int, int, int, int], amount: int) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v + rng.integers(-amount, amount + 1)) for v in box)
    w, h = max(w, 2), max(h, 2)
    x, y = min(max(x, 0), WIDTH - w), min(max(y, 0), HEIGHT - h)
    return x, y, w, h


def _region(obj: Obj, iou_type: str) -> dict:
    if obj.polygon:
        return {"segmentation": [obj.diamond()]}
    if iou_type == "segm":
        return {"segmentation": _rle(obj)}
    return {}


def _rle(obj: Obj) -> dict:
    x, y, w, h = obj.box
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[y:y + h, x:x + w] = 1
    mask[y:y + h // 3, x:x + w // 3] = 0  # not a plain box: mask IoU differs from box IoU
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _shape(obj: Obj, iou_type: str) -> Box | Polygon | Mask:
    if obj.polygon:
        return Polygon.from_flat([obj.diamond()])
    if iou_type == "segm":
        rle = _rle(obj)
        return Mask((HEIGHT, WIDTH), rle["counts"])
    return Box.from_xywh(*obj.box)


def _gt_area(obj: Obj, iou_type: str) -> float:
    if obj.polygon:
        return obj.box[2] * obj.box[3] / 2  # a diamond fills half its box
    if iou_type == "segm":
        return float(mask_utils.area(_rle(obj)))
    return float(obj.box[2] * obj.box[3])


def to_project(case: Case, project: Project, iou_type: str, *, run_name: str = "model") -> int:
    """Store the case; returns the id of the run holding the predictions."""
    media = project.add_media([
        MediaInfo(path=f"/data/img{i:04d}.png", kind="image", width=WIDTH, height=HEIGHT, size_bytes=1, mtime_ns=0)
        for i in range(case.n_images)
    ])
    for i in case.reviewed_empty:
        project.set_review_state(media[i].id, "done")
    labels = [project.ensure_label(f"class{k}") for k in range(case.n_labels)]
    run = project.create_run("test", name=run_name)
    project.add_annotations(
        Annotation(media_id=media[o.image].id, label_id=labels[o.label].id, shape=_shape(o, iou_type),
                   attributes={"iscrowd": 1} if o.crowd else {})
        for o in case.gt
    )
    project.add_annotations(
        Annotation(media_id=media[o.image].id, label_id=labels[o.label].id, shape=_shape(o, iou_type),
                   run_id=run.id, score=o.score)
        for o in case.pred
    )
    return run.id


def add_run(case_pred: list[Obj], project: Project, name: str) -> int:
    """A second run's predictions on a project made by `to_project` (bbox)."""
    media = project.list_media()
    labels = project.labels()
    run = project.create_run("test", name=name)
    project.add_annotations(
        Annotation(media_id=media[o.image].id, label_id=labels[o.label].id, shape=Box.from_xywh(*o.box),
                   run_id=run.id, score=o.score)
        for o in case_pred
    )
    return run.id


def coco_reference(case: Case, iou_type: str) -> COCOeval:
    """pycocotools' COCOeval on the same case, evaluated and accumulated (its prints silenced)."""
    images_with_gt = {o.image for o in case.gt} | case.reviewed_empty
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT} for i in sorted(images_with_gt)],
        "categories": [{"id": k + 1, "name": f"class{k}"} for k in range(case.n_labels)],
        "annotations": [
            {"id": n + 1, "image_id": o.image + 1, "category_id": o.label + 1, "bbox": list(o.box),
             "area": _gt_area(o, iou_type), "iscrowd": int(o.crowd), **_region(o, iou_type)}
            for n, o in enumerate(case.gt)
        ],
    }
    results = []
    for o in case.pred:
        if o.image not in images_with_gt:
            continue
        ann = {"image_id": o.image + 1, "category_id": o.label + 1, "score": o.score}
        if iou_type == "segm":
            ann["segmentation"] = mask_utils.merge(mask_utils.frPyObjects([o.diamond()], HEIGHT, WIDTH)) \
                if o.polygon else _rle(o)
        else:
            ann["bbox"] = [float(v) for v in o.box]  # a diamond has its box as bounding box
        results.append(ann)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator
