"""Studio's COCO metrics equal pycocotools' COCOeval on the same generated data, bbox and segm."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from eval_cases import Case, Obj, coco_reference, jitter, random_box, to_project

from studio.eval import evaluate
from studio.eval.coco import STAT_NAMES


def perfect(rng: np.random.Generator) -> Case:
    case = Case(n_images=6, n_labels=3)
    for i in range(6):
        for _ in range(int(rng.integers(1, 5))):
            case.gt.append(Obj(i, int(rng.integers(3)), random_box(rng)))
    case.pred = [Obj(o.image, o.label, o.box, score=float(rng.random())) for o in case.gt]
    return case


def all_wrong(rng: np.random.Generator) -> Case:
    """One object per image, found in the right place with the wrong class."""
    case = Case(n_images=6, n_labels=3)
    case.gt = [Obj(i, int(rng.integers(3)), random_box(rng)) for i in range(6)]
    case.pred = [Obj(o.image, (o.label + 1) % 3, o.box, score=float(rng.random())) for o in case.gt]
    return case


def jittered(rng: np.random.Generator, *, n_images: int = 12, n_labels: int = 4, polygons: bool = False) -> Case:
    """Shifted boxes, misses, false positives, tied scores, a few crowds, >100 predictions on one image."""
    case = Case(n_images=n_images, n_labels=n_labels)
    for i in range(n_images):
        for _ in range(int(rng.integers(0, 7))):
            case.gt.append(Obj(i, int(rng.integers(n_labels)), random_box(rng), crowd=bool(rng.random() < 0.08),
                               polygon=polygons and bool(rng.random() < 0.5)))
    for o in case.gt:
        if rng.random() < 0.85:
            label = o.label if rng.random() < 0.85 else int(rng.integers(n_labels))  # class confusions
            score = round(float(rng.random()), 1)  # ties across images and within an image
            case.pred.append(Obj(o.image, label, jitter(rng, o.box, int(rng.integers(0, 12))), score=score,
                                 polygon=o.polygon))
    for _ in range(n_images * 2):
        case.pred.append(Obj(int(rng.integers(n_images)), int(rng.integers(n_labels)), random_box(rng),
                             score=round(float(rng.random()), 2)))
    case.pred += [Obj(0, 0, random_box(rng), score=round(float(rng.random()), 1)) for _ in range(110)]
    images_with_gt = {o.image for o in case.gt}
    case.reviewed_empty = {i for i in range(n_images) if i not in images_with_gt}
    return case


def empty_images(rng: np.random.Generator) -> Case:
    """Images reviewed as empty: every prediction on them is a false positive."""
    case = jittered(rng, n_images=8)
    for o in case.gt:
        if o.image >= 5:
            o.image = 0
    case.reviewed_empty = {5, 6, 7}
    case.pred += [Obj(6, 1, random_box(rng), score=0.95), Obj(7, 2, random_box(rng), score=0.5)]
    return case


def many_classes(rng: np.random.Generator) -> Case:
    """25 classes, and more than 255 predictions (pycocotools' area() of that many masks overflows)."""
    case = jittered(rng, n_images=40, n_labels=25)
    assert len(case.pred) > 255
    return case


def crowds(rng: np.random.Generator) -> Case:
    """Many crowd regions: predictions on them are neither right nor wrong, and several may match one."""
    case = jittered(rng)
    for o in case.gt:
        o.crowd = o.crowd or bool(rng.random() < 0.4)
    return case


def iou_tie(_rng: np.random.Generator) -> Case:
    """A prediction exactly between two objects (equal IoU): COCOeval gives it the later one, which
    decides whether the next prediction still finds its object at high IoU thresholds."""
    case = Case(n_images=1, n_labels=1)
    case.gt = [Obj(0, 0, (0, 0, 32, 32)), Obj(0, 0, (8, 0, 32, 32))]
    case.pred = [Obj(0, 0, (4, 0, 32, 32), score=0.9), Obj(0, 0, (8, 0, 32, 32), score=0.8)]
    return case


CASES: dict[str, Callable[[np.random.Generator], Case]] = {
    "iou_tie": iou_tie,
    "perfect": perfect, "all_wrong": all_wrong, "jittered": jittered, "empty_images": empty_images,
    "many_classes": many_classes, "polygons": lambda rng: jittered(rng, polygons=True), "crowds": crowds,
}
RANDOM_CASES = ("jittered", "empty_images", "many_classes", "polygons", "crowds")
CASE_SEEDS = [(name, 0) for name in sorted(CASES)] + [(name, 1) for name in RANDOM_CASES]


def _studio_and_reference(project, case: Case, iou_type: str):
    run_id = to_project(case, project, iou_type)
    return evaluate(project, pred=run_id, iou_type=iou_type), coco_reference(case, iou_type)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize(("name", "seed"), CASE_SEEDS)
def test_metrics_equal_cocoeval(project, name: str, iou_type: str, seed: int) -> None:
    case = CASES[name](np.random.default_rng(seed))
    result, reference = _studio_and_reference(project, case, iou_type)
    assert [result.coco.stats[s] for s in STAT_NAMES] == pytest.approx(list(reference.stats), abs=1e-12)
    np.testing.assert_allclose(result.coco.precision, reference.eval["precision"], atol=1e-12)
    np.testing.assert_allclose(result.coco.recall, reference.eval["recall"], atol=1e-12)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_perfect_predictions_score_one_and_wrong_classes_zero(project, iou_type: str) -> None:
    case = perfect(np.random.default_rng(3))
    result, _ = _studio_and_reference(project, case, iou_type)
    assert result.metrics["map"] == pytest.approx(1.0)
    assert result.metrics["map50"] == pytest.approx(1.0)


def test_wrong_classes_score_zero(project) -> None:
    result, reference = _studio_and_reference(project, all_wrong(np.random.default_rng(4)), "bbox")
    assert result.metrics["map"] == 0.0 == reference.stats[0]
    assert all(c["ap"] == 0.0 for c in result.per_class.values())
