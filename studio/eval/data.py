"""What an evaluation reads from a project: ground truth and predictions as column arrays.

Evaluation works on numpy columns (one row per annotation) rather than on Annotation objects, so
matching and accumulation are vectorised and a 50k-prediction run evaluates in seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from studio.core import geometry
from studio.core.errors import StudioError
from studio.core.shapes import shape_from_json
from studio.core.types import Label, Media
from studio.db.project import Project, Source

IouType: TypeAlias = Literal["bbox", "segm"]
IOU_TYPES: tuple[str, ...] = ("bbox", "segm")

ImageKey: TypeAlias = tuple[int, int]
"""(media_id, frame): one evaluated image (a still image has frame 0)."""


@dataclass(frozen=True)
class Objects:
    """Annotations of one source as columns; row i of every array is the same annotation.

    `image` indexes `EvalData.images`; `boxes` are (N, 4) float64 (x, y, width, height), COCO's order;
    `area` is what COCO's area ranges (small/medium/large) look at; `rles` (segm only) are pycocotools
    RLE dicts on the image's pixel grid.
    """

    ids: np.ndarray
    image: np.ndarray
    label: np.ndarray
    boxes: np.ndarray
    area: np.ndarray
    score: np.ndarray
    crowd: np.ndarray
    rles: list[dict] | None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> Objects:
        """The annotations at `rows` (an index array), in that order."""
        return Objects(
            ids=self.ids[rows], image=self.image[rows], label=self.label[rows], boxes=self.boxes[rows],
            area=self.area[rows], score=self.score[rows], crowd=self.crowd[rows],
            rles=None if self.rles is None else [self.rles[i] for i in rows],
        )


@dataclass(frozen=True)
class EvalData:
    """Ground truth and predictions on the same images, ready to match."""

    images: list[ImageKey]
    labels: list[Label]
    gt: Objects
    pred: Objects
    iou_type: IouType


def source_name(project: Project, source: Source) -> str:
    """'human' or the run's name: how the CLI and reports name a source."""
    return "human" if source == "human" else project.get_run(int(source)).name


def describe_source(project: Project, source: Source) -> str:
    """A source as a message names it."""
    return "human annotations" if source == "human" else f"run {source_name(project, source)!r}"


def resolve_source(project: Project, name: str) -> Source:
    """'human' or a run name (or numeric id) -> what `Project.annotations(source=...)` takes."""
    if name == "human":
        return "human"
    if name.isdigit() and all(run.name != name for run in project.runs()):
        return project.get_run(int(name)).id
    return project.find_run(name).id


REGION_KINDS = ("box", "rotated_box", "polygon", "mask")
"""Shapes with an area; points and polylines cannot be matched by IoU and are left out."""


def _columns(
    table: dict[str, list[Any]], index: dict[ImageKey, int], media: dict[int, Media], *, iou_type: IouType,
    is_gt: bool,
) -> Objects:
    keys = list(zip(table["media_id"], table["frame"], strict=True))
    kept = [i for i, (key, kind) in enumerate(zip(keys, table["kind"], strict=True))
            if kind in REGION_KINDS and key in index]

    def column(name: str, dtype: type) -> np.ndarray:
        values = table[name]
        return np.array([values[i] for i in kept], dtype=dtype)

    boxes = np.column_stack([column(name, np.float64) for name in "xywh"]).reshape(-1, 4)
    rles = None
    if iou_type == "segm":
        rles = [geometry.to_rle(shape_from_json(table["geometry"][i]), media[table["media_id"][i]].size) for i in kept]
    if is_gt:
        area = column("area", np.float64)  # COCO's ground truth carries the region's area, even for bbox
    elif rles:
        from pycocotools import mask as mask_utils

        # as COCO's loadRes for segmentation; one call per mask, since pycocotools 2.0.11's area() of a
        # list of more than 255 RLEs overflows a uint8 under numpy 2
        area = np.array([mask_utils.area(rle) for rle in rles], dtype=np.float64)
    else:
        area = boxes[:, 2] * boxes[:, 3]  # as COCO's loadRes for boxes
    scores = table["score"]
    attributes = table["attributes"]
    return Objects(
        ids=column("id", np.int64),
        image=np.array([index[keys[i]] for i in kept], dtype=np.int64),
        label=column("label_id", np.int64),
        boxes=boxes,
        area=area,
        score=np.array([1.0 if scores[i] is None else scores[i] for i in kept], dtype=np.float64),
        crowd=np.array([bool((attributes[i] or {}).get("iscrowd")) for i in kept], dtype=bool),
        rles=rles,
    )


def load_eval_data(
    project: Project,
    *,
    gt: Source = "human",
    pred: Source,
    iou_type: IouType = "bbox",
    media_ids: Collection[int] | None = None,
) -> EvalData:
    """Read ground truth and predictions for evaluation.

    The evaluated images are those with ground truth plus those known to be labelled though empty: listed
    by an imported dataset file (as COCOeval counts every image of its ground truth) or reviewed as
    "done". Predictions elsewhere are left out, since an image nobody labelled yet proves no prediction
    wrong. `media_ids` restricts them to those media (a validation set). A crowd region is a ground-truth annotation with the attribute ``iscrowd`` set,
    as in COCO.
    """
    if iou_type not in IOU_TYPES:
        raise StudioError(f"unknown IoU type {iou_type!r}; expected one of {', '.join(IOU_TYPES)}")
    if gt == pred:
        raise StudioError("ground truth and predictions are the same source; pick two different ones")
    segm = iou_type == "segm"
    gt_table = project.annotation_table(gt, with_geometry=segm)
    pred_table = project.annotation_table(pred, with_geometry=segm)
    if not pred_table["id"]:
        raise StudioError(f"{describe_source(project, pred)} has no predictions to evaluate")
    media = {m.id: m for m in project.list_media()}
    gt_keys = {(media_id, frame) for media_id, frame, kind in zip(gt_table["media_id"], gt_table["frame"],
                                                                  gt_table["kind"], strict=True) if kind in REGION_KINDS}
    if not gt_keys:
        raise StudioError(
            f"no ground truth: there are no boxes, polygons or masks in {describe_source(project, gt)}; "
            "label some images first"
        )
    labelled = {(m.id, 0) for m in media.values() if (m.labelled or m.review_state == "done") and m.kind == "image"}
    keys = gt_keys | labelled
    if media_ids is not None:
        wanted = set(media_ids)
        keys = {key for key in keys if key[0] in wanted}
        if not keys:
            raise StudioError("none of the chosen media holds ground truth to evaluate on")
    images = sorted(keys)
    index = {key: i for i, key in enumerate(images)}
    return EvalData(
        images=images,
        labels=project.labels(),
        gt=_columns(gt_table, index, media, iou_type=iou_type, is_gt=True),
        pred=_columns(pred_table, index, media, iou_type=iou_type, is_gt=False),
        iou_type=iou_type,
    )
