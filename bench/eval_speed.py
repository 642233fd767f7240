"""Studio's COCO evaluation vs pycocotools' COCOeval on the same generated detections.

Studio's time includes reading ground truth and predictions from the project database; pycocotools'
includes building its index and loading the results from in-memory lists (no JSON files). Both give
the same twelve numbers (checked here). Default: 500 images / 5,000 predictions; --full: 5,000 / 50,000.

    .venv/bin/python bench/eval_speed.py [--full] [--iou-type bbox|segm]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.geometry import encode_mask
from studio.core.shapes import Box
from studio.core.types import Annotation, MediaInfo
from studio.db import Project
from studio.eval import evaluate

WIDTH, HEIGHT, LABELS = 320, 240, 10


def generate(n_images: int, n_preds: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows (image, label, x, y, w, h[, score]): ~n_preds/2 objects, predictions jittered from them
    (some relabelled) plus as many false positives."""
    rng = np.random.default_rng(seed)
    n_gt = n_preds // 2
    size = rng.uniform(6, 140, (n_gt, 2))
    xy = rng.uniform(0, 1, (n_gt, 2)) * ([WIDTH, HEIGHT] - size)
    gt = np.column_stack([rng.integers(0, n_images, n_gt), rng.integers(0, LABELS, n_gt), xy, size])
    found = gt[rng.random(n_gt) < 0.9]
    jittered = found.copy()
    jittered[:, 2:] += rng.normal(0, 4, (len(found), 4))
    jittered[:, 4:] = np.maximum(jittered[:, 4:], 2)
    swap = rng.random(len(found)) < 0.1
    jittered[swap, 1] = rng.integers(0, LABELS, swap.sum())
    n_false = n_preds - len(jittered)
    size = rng.uniform(6, 100, (n_false, 2))
    false = np.column_stack([rng.integers(0, n_images, n_false), rng.integers(0, LABELS, n_false),
                             rng.uniform(0, 1, (n_false, 2)) * ([WIDTH, HEIGHT] - size), size])
    pred = np.vstack([jittered, false])
    pred = np.column_stack([pred, np.round(rng.random(len(pred)), 3)])  # rounded: tied scores occur
    return gt, pred


def _mask(row: np.ndarray) -> np.ndarray:
    x, y, w, h = (int(v) for v in row[2:6])
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[y:y + h, x:x + w] = 1
    mask[y:y + h // 2, x:x + w // 2] = 0
    return mask


def build_project(root: Path, n_images: int, gt: np.ndarray, pred: np.ndarray, iou_type: str) -> int:
    project = Project.create(root)
    media = project.add_media([
        MediaInfo(path=f"/bench/img{i:05d}.png", kind="image", width=WIDTH, height=HEIGHT, size_bytes=1, mtime_ns=0)
        for i in range(n_images)
    ])
    labels = [project.ensure_label(f"class{k}") for k in range(LABELS)]
    run = project.create_run("bench", name="bench")

    def shape(row: np.ndarray) -> Box:
        return encode_mask(_mask(row)) if iou_type == "segm" else Box.from_xywh(*row[2:6])

    with project.transaction():
        project.add_annotations(
            Annotation(media_id=media[int(r[0])].id, label_id=labels[int(r[1])].id, shape=shape(r)) for r in gt)
        project.add_annotations(
            Annotation(media_id=media[int(r[0])].id, label_id=labels[int(r[1])].id, shape=shape(r), run_id=run.id,
                       score=float(r[6])) for r in pred)
        for m in media:  # images without objects count: they were labelled as empty
            project.set_review_state(m.id, "done")
    project.close()
    return run.id


def coco_inputs(n_images: int, gt: np.ndarray, pred: np.ndarray, iou_type: str) -> tuple[dict, list[dict]]:
    """The same data as pycocotools' dataset dict and result list (built outside the timed part)."""
    def region(row: np.ndarray) -> dict:
        if iou_type == "segm":
            rle = mask_utils.encode(np.asfortranarray(_mask(row)))
            return {"segmentation": rle, "area": float(mask_utils.area(rle))}
        return {"bbox": [float(v) for v in row[2:6]], "area": float(row[4] * row[5])}

    dataset = {
        "images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT} for i in range(n_images)],
        "categories": [{"id": k + 1, "name": f"class{k}"} for k in range(LABELS)],
        "annotations": [{"id": n + 1, "image_id": int(r[0]) + 1, "category_id": int(r[1]) + 1, "iscrowd": 0,
                         "bbox": [float(v) for v in r[2:6]], **region(r)} for n, r in enumerate(gt)],
    }
    results = []
    for r in pred:
        entry = {"image_id": int(r[0]) + 1, "category_id": int(r[1]) + 1, "score": float(r[6]), **region(r)}
        if iou_type == "segm":
            del entry["area"]
        results.append(entry)
    return dataset, results


def run_pycocotools(dataset: dict, results: list[dict], iou_type: str) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


@contextlib.contextmanager
def _profiled(enabled: bool):
    if not enabled:
        yield
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    yield
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="5,000 images / 50,000 predictions")
    parser.add_argument("--iou-type", default="bbox", choices=("bbox", "segm"))
    parser.add_argument("--profile", action="store_true", help="print where Studio's time goes")
    args = parser.parse_args()
    n_images, n_preds = (5000, 50000) if args.full else (500, 5000)
    gt, pred = generate(n_images, n_preds)
    print(f"{n_images} images, {len(gt)} objects, {len(pred)} predictions, {LABELS} classes, {args.iou_type}")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_id = build_project(Path(tmp) / "project", n_images, gt, pred, args.iou_type)
        print(f"project built in {time.perf_counter() - t0:.1f} s (not timed)")
        dataset, results = coco_inputs(n_images, gt, pred, args.iou_type)

        t0, c0 = time.perf_counter(), time.process_time()
        reference = run_pycocotools(dataset, results, args.iou_type)
        reference_s, reference_cpu = time.perf_counter() - t0, time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()
        with Project.open(Path(tmp) / "project") as project, _profiled(args.profile):
            result = evaluate(project, pred=run_id, iou_type=args.iou_type)
        studio_s, studio_cpu = time.perf_counter() - t0, time.process_time() - c0

    studio = np.array(list(result.metrics.values()))
    print(f"pycocotools COCOeval: {reference_s:.2f} s ({reference_cpu:.2f} s CPU)   "
          f"mAP {reference[0]:.4f}  AP50 {reference[1]:.4f}")
    print(f"studio evaluate:      {studio_s:.2f} s ({studio_cpu:.2f} s CPU)   "
          f"mAP {studio[0]:.4f}  AP50 {studio[1]:.4f}  (incl. reading the db)")
    print(f"largest difference of the 12 COCO stats: {np.abs(studio - reference).max():.2e}")
    print(f"ratio={reference_s / studio_s:.2f}")


if __name__ == "__main__":
    main()
