"""`studio eval --json` on an imported COCO ground truth and results file equals COCOeval on the same files.

The files are hand-made in COCO's real layout (annotations/instances_val2017.json beside val2017/): an
image listed with no annotations (false positives on it count), a crowd region as RLE, polygons whose
stated bbox and area differ from what Studio would recompute, a declared category nobody uses.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.cli.main import main
from studio.eval.coco import STAT_NAMES
from tests.conftest import write_image

W, H = 200, 150


def _crowd_rle() -> dict:
    mask = np.zeros((H, W), dtype=np.uint8, order="F")
    mask[10:60, 120:190] = 1
    rle = mask_utils.encode(mask)
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


GT = {
    "info": {"description": "hand-made, COCO layout", "year": 2017},
    "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
    "images": [
        {"id": 139, "file_name": "000000000139.jpg", "width": W, "height": H, "license": 1, "date_captured": "2013-11-21"},
        {"id": 285, "file_name": "000000000285.jpg", "width": W, "height": H, "license": 1},
        {"id": 632, "file_name": "000000000632.jpg", "width": W, "height": H, "license": 1},  # no annotations
        {"id": 724, "file_name": "000000000724.jpg", "width": W, "height": H, "license": 1},  # no annotations
    ],
    "categories": [
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 3, "name": "car", "supercategory": "vehicle"},
        {"id": 18, "name": "dog", "supercategory": "animal"},  # declared, never used
    ],
    "annotations": [
        # a polygon whose stated bbox is wider and whose area is far from the polygon's own
        {"id": 1, "image_id": 139, "category_id": 1, "iscrowd": 0, "area": 1500.0,
         "bbox": [10.0, 20.0, 42.0, 60.0], "segmentation": [[12.0, 20.0, 50.0, 22.0, 48.0, 80.0, 10.0, 78.0]]},
        # a large object (the stated area puts it among the large, the polygon's own would not)
        {"id": 2, "image_id": 139, "category_id": 3, "iscrowd": 0, "area": 9300.0,
         "bbox": [60.0, 40.0, 100.0, 95.0], "segmentation": [[60.0, 40.0, 158.0, 42.0, 150.0, 135.0, 62.0, 120.0]]},
        {"id": 3, "image_id": 285, "category_id": 1, "iscrowd": 0, "area": 600.0, "bbox": [5.0, 5.0, 20.0, 30.0],
         "segmentation": [[5.0, 5.0, 25.0, 5.0, 25.0, 35.0, 5.0, 35.0]]},
        {"id": 4, "image_id": 285, "category_id": 1, "iscrowd": 1, "area": 3500.0, "bbox": [120.0, 10.0, 70.0, 50.0],
         "segmentation": _crowd_rle()},
        {"id": 5, "image_id": 285, "category_id": 3, "iscrowd": 0, "area": 400.0, "bbox": [30.0, 90.0, 25.0, 16.0],
         "segmentation": [[30.0, 90.0, 55.0, 90.0, 55.0, 106.0, 30.0, 106.0]]},
    ],
}

BBOX_RESULTS = [
    {"image_id": 139, "category_id": 1, "bbox": [11.0, 21.0, 40.0, 58.0], "score": 0.92},
    {"image_id": 139, "category_id": 3, "bbox": [62.0, 42.0, 95.0, 90.0], "score": 0.81},
    {"image_id": 139, "category_id": 1, "bbox": [150.0, 100.0, 30.0, 30.0], "score": 0.40},
    {"image_id": 285, "category_id": 1, "bbox": [6.0, 6.0, 19.0, 28.0], "score": 0.77},
    {"image_id": 285, "category_id": 1, "bbox": [125.0, 15.0, 30.0, 30.0], "score": 0.66},  # on the crowd
    {"image_id": 285, "category_id": 3, "bbox": [28.0, 88.0, 30.0, 20.0], "score": 0.55},
    {"image_id": 632, "category_id": 1, "bbox": [10.0, 10.0, 50.0, 50.0], "score": 0.95},  # empty image
    {"image_id": 724, "category_id": 3, "bbox": [80.0, 20.0, 60.0, 60.0], "score": 0.70},  # empty image
    {"image_id": 724, "category_id": 18, "bbox": [0.0, 0.0, 20.0, 20.0], "score": 0.30},
]


def _segm_results() -> list[dict]:
    """Masks for the same detections, written as detectron2 writes segm results (RLE, no bbox)."""
    results = []
    for item in BBOX_RESULTS:
        x, y, w, h = (int(v) for v in item["bbox"])
        mask = np.zeros((H, W), dtype=np.uint8, order="F")
        mask[y:y + h, x:x + w] = 1
        mask[y:y + h // 4, x:x + w // 4] = 0
        rle = mask_utils.encode(mask)
        results.append({"image_id": item["image_id"], "category_id": item["category_id"], "score": item["score"],
                        "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")}})
    return results


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    for image in GT["images"]:
        write_image(root / "val2017" / image["file_name"], W, H, seed=image["id"])
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(GT))
    (root / "bbox_results.json").write_text(json.dumps(BBOX_RESULTS))
    (root / "segm_results.json").write_text(json.dumps(_segm_results()))
    return root


def _cocoeval(gt: Path, results: Path, iou_type: str) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(results)), iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return list(evaluator.stats)


@pytest.mark.parametrize(("iou_type", "results"), [("bbox", "bbox_results.json"), ("segm", "segm_results.json")])
def test_studio_eval_equals_cocoeval_on_the_imported_files(coco_root: Path, tmp_path: Path, capsys, iou_type: str, results: str) -> None:
    project = str(tmp_path / "p")
    gt = coco_root / "annotations" / "instances_val2017.json"
    assert main(["new", project]) == 0
    assert main(["import", project, "-f", "coco", str(gt)]) == 0  # images found in val2017/
    assert main(["import", project, "-f", "coco", str(coco_root / results), "--run", "model"]) == 0
    capsys.readouterr()
    assert main(["eval", project, "--pred", "model", "--iou-type", iou_type, "--json"]) == 0
    studio = json.loads(capsys.readouterr().out)
    reference = _cocoeval(gt, coco_root / results, iou_type)
    assert studio["images"] == 4  # the two empty images are evaluated
    assert [studio[name] for name in STAT_NAMES] == pytest.approx(reference, abs=1e-6)
    assert reference[0] > 0 and reference[5] > 0  # a case where the numbers mean something
