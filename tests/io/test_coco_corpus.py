"""COCO files as the COCO release, pycocotools' results, Roboflow, labelme2coco and CVAT write them
(tests/data/coco, see its README): counts, geometry, evaluation and round trips."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from helpers_coco_yolo import write_noise_image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.errors import FormatError
from studio.core.shapes import Box, Mask, Polygon
from studio.db.project import Project
from studio.eval import evaluate
from studio.eval.coco import STAT_NAMES
from studio.io.formats.transfer import export_dataset, import_dataset

CORPUS = Path(__file__).parents[1] / "data" / "coco"
IMAGE_FOLDERS = {  # where each writer puts the images, relative to its annotations file
    "coco_website/annotations/instances_val2017.json": "../val2017",
    "roboflow/train/_annotations.coco.json": ".",
    "roboflow/valid/_annotations.coco.json": ".",
    "labelme2coco/annotations.json": ".",
    "cvat/annotations/instances_default.json": "../images/default",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The corpus copied out, with noise images of the listed sizes where each writer puts them."""
    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    for relative, folder in IMAGE_FOLDERS.items():
        document = json.loads((root / relative).read_text())
        for n, image in enumerate(document["images"]):
            path = (root / relative).parent / folder / image["file_name"]
            write_noise_image(path, seed=n) if (image["width"], image["height"]) == (64, 48) else _noise(path, image, n)
    return root


def _noise(path: Path, image: dict, seed: int) -> None:
    from tests.conftest import write_image

    write_image(path, image["width"], image["height"], seed=seed)


def _shapes(project: Project, source: str | int = "human") -> dict[str, list]:
    names = {label.id: label.name for label in project.labels()}
    media = {m.id: m.name for m in project.list_media()}
    found: dict[str, list] = {}
    for ann in project.annotations(source=source):  # type: ignore[arg-type]
        found.setdefault(media[ann.media_id], []).append((names[ann.label_id], ann.shape, ann.bbox, ann.area))
    return {name: sorted(anns, key=lambda a: (a[0], a[2])) for name, anns in found.items()}


def _round_trip(project: Project, tmp_path: Path) -> dict:
    """Export as COCO, import into a new project: the same shapes, boxes and areas on the same images."""
    export_dataset(project, "coco", tmp_path / "export")
    with Project.create(tmp_path / "again") as again:
        import_dataset(again, "coco", tmp_path / "export" / "annotations.json")
        assert _shapes(again) == _shapes(project)
        assert [label.name for label in again.labels()] == [label.name for label in project.labels()]
    return json.loads((tmp_path / "export" / "annotations.json").read_text())


def _cocoeval(gt: Path, results: Path) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(results)), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return list(evaluator.stats)


def test_coco_release_and_a_results_file(project: Project, corpus: Path, tmp_path: Path) -> None:
    gt = corpus / "coco_website" / "annotations" / "instances_val2017.json"
    report = import_dataset(project, "coco", gt)
    assert (report.images, report.images_added, report.annotations) == (3, 3, 4)
    assert [label.name for label in project.labels()] == ["person", "bicycle", "tv"]  # bicycle: declared, unused
    shapes = _shapes(project)
    assert "000000000632.jpg" not in shapes and all(m.labelled for m in project.list_media())
    tv = next(a for a in shapes["000000000139.jpg"] if a[0] == "tv")
    assert isinstance(tv[1], Polygon) and len(tv[1].parts) == 2 and tv[2] == (40.2, 20.5, 35.7, 29.6) and tv[3] == 914.77
    crowd = next(a for a in project.annotations() if a.attributes.get("iscrowd"))
    assert isinstance(crowd.shape, Mask) and crowd.area == 150

    results = corpus / "pycocotools_results" / "instances_val2017_fakebbox_results.json"
    assert import_dataset(project, "coco", results, run_name="fake").annotations == 6
    result = evaluate(project, pred=project.find_run("fake").id)
    assert len(result.data.images) == 3
    assert [result.metrics[n] for n in STAT_NAMES] == pytest.approx(_cocoeval(gt, results), abs=1e-9)

    exported = _round_trip(project, tmp_path)
    assert {i["file_name"]: i["id"] for i in exported["images"]} == {
        "000000000139.jpg": 139, "000000000285.jpg": 285, "000000000632.jpg": 632}
    assert {c["name"]: c["id"] for c in exported["categories"]} == {"person": 1, "bicycle": 2, "tv": 72}
    tv_out = next(a for a in exported["annotations"] if a["category_id"] == 72)
    assert (tv_out["bbox"], tv_out["area"]) == ([40.2, 20.5, 35.7, 29.6], 914.77)


def test_roboflow_splits(project: Project, corpus: Path, tmp_path: Path) -> None:
    train = corpus / "roboflow" / "train" / "_annotations.coco.json"
    valid = corpus / "roboflow" / "valid" / "_annotations.coco.json"
    report = import_dataset(project, "coco", train)
    assert (report.images, report.annotations) == (2, 3)
    assert any("'shapes' is only the supercategory" in p for p in report.skipped)
    assert [label.name for label in project.labels()] == ["circle", "square", "triangle"]
    assert import_dataset(project, "coco", valid).annotations == 1
    boxes = [a.shape for a in project.annotations() if isinstance(a.shape, Box)]
    assert Box(4, 6, 24, 24) in boxes and len(boxes) == 3
    # image 0 of both splits: a results file must say which split it belongs to
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 0, "category_id": 3, "bbox": [20, 8, 24, 20], "score": 0.8}]))
    with pytest.raises(FormatError, match="--gt-file"):
        import_dataset(project, "coco", results, run_name="model")
    import_dataset(project, "coco", results, run_name="model", gt_file=valid)
    assert list(_shapes(project, project.find_run("model").id)) == ["img_0101_jpg.rf.0f1e2d3c4b5a69788796.jpg"]

    exported = _round_trip(project, tmp_path)
    assert all("segmentation" not in a for a in exported["annotations"] if a["category_id"] in (1, 2))
    assert {c["name"]: c["id"] for c in exported["categories"]} == {"circle": 1, "square": 2, "triangle": 3}
    assert len({i["id"] for i in exported["images"]}) == 3  # the two image 0s got distinct ids


def test_labelme2coco(project: Project, corpus: Path, tmp_path: Path) -> None:
    report = import_dataset(project, "coco", corpus / "labelme2coco" / "annotations.json")
    assert (report.images, report.images_added, report.annotations) == (2, 2, 2)
    assert [label.name for label in project.labels()] == ["person", "bottle"]
    assert any("_background_" in p for p in report.skipped)
    assert any("dropped polygon part 2 of 2" in p for p in report.skipped)
    shapes = _shapes(project)
    [(_, person, person_box, person_area)] = shapes["2011_000003.jpg"]
    assert isinstance(person, Polygon) and len(person.parts) == 1
    assert (person_box, person_area) == ((9.0, 4.0, 22.0, 27.0), 391.0)  # from labelme's mask, kept
    [(_, bottle, _, _)] = shapes["2011_000006.jpg"]
    assert bottle == Box(40, 12, 53, 31)  # the rectangle labelme2coco wrote as two corners, as its bbox says
    _round_trip(project, tmp_path)


def test_cvat_coco_export(project: Project, corpus: Path, tmp_path: Path) -> None:
    report = import_dataset(project, "coco", corpus / "cvat")  # the folder: annotations/ is searched
    assert (report.images, report.annotations) == (2, 3)
    assert [label.name for label in project.labels()] == ["car", "road", "sign"]
    by_kind = {type(a.shape).__name__: a for a in project.annotations()}
    assert by_kind["Box"].attributes == {"occluded": False, "rotation": 0.0, "color": "red"}
    assert by_kind["Polygon"].attributes == {"occluded": True}
    assert by_kind["Mask"].attributes == {"occluded": False, "iscrowd": 1} and by_kind["Mask"].area == 60
    exported = _round_trip(project, tmp_path)
    box = next(a for a in exported["annotations"] if a["bbox"] == [5.0, 7.0, 19.0, 14.0])
    assert "segmentation" not in box and box["attributes"] == {"occluded": False, "rotation": 0.0, "color": "red"}
    api = COCO(str(tmp_path / "export" / "annotations.json"))
    assert sum(api.annToMask(a).sum() for a in api.loadAnns(api.getAnnIds()) if a.get("iscrowd")) == 60
