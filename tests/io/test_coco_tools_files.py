"""COCO as tools write it: keypoints, unused categories, box-only annotations, degenerate polygon parts,
the usual folder layouts, --skip-bad with the first image missing, keys Studio has no field for."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from helpers_coco_yolo import make_images, write_noise_image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.cli.main import main
from studio.core.errors import FormatError
from studio.core.shapes import Points, Polygon
from studio.db.project import Project
from studio.io.formats import coco
from studio.io.formats.transfer import export_dataset, import_dataset

KEYPOINT_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
]
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
            [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def _person(x0: float, y0: float, visible: int) -> list[float]:
    flat: list[float] = []
    for k in range(17):
        v = 2 if k < visible else 0
        flat += [x0 + (k % 4) * 3, y0 + (k // 4) * 4, v] if v else [0, 0, 0]
    return flat


def _keypoints_document(images: list[Path]) -> dict:
    """person_keypoints_val2017.json in miniature: keypoints beside an outline, and a crowd with none."""
    return {
        "images": [{"id": 10 + i, "file_name": p.name, "width": 64, "height": 48} for i, p in enumerate(images[:2])],
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": KEYPOINT_NAMES, "skeleton": SKELETON}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "iscrowd": 0, "num_keypoints": 12, "area": 300.5,
             "bbox": [4.0, 4.0, 14.0, 22.0], "keypoints": _person(5, 5, 12),
             "segmentation": [[4.0, 4.0, 18.0, 4.0, 18.0, 26.0, 4.0, 26.0]]},
            {"id": 2, "image_id": 11, "category_id": 1, "iscrowd": 0, "num_keypoints": 17, "area": 280.0,
             "bbox": [30.0, 10.0, 12.0, 20.0], "keypoints": _person(30, 10, 17),
             "segmentation": [[30.0, 10.0, 42.0, 10.0, 42.0, 30.0, 30.0, 30.0]]},
            {"id": 3, "image_id": 11, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "area": 100.0,
             "bbox": [50.0, 30.0, 10.0, 10.0], "keypoints": [0] * 51,
             "segmentation": {"size": [48, 64], "counts": [30 * 48 + 30, 10, 38, 10, 38, 10, 38, 10, 38, 10, 38, 10, 38, 10, 38,
                                                          10, 38, 10, 38, 10, 48 * 64 - (30 * 48 + 30) - 10 * 48 + 38]}},
        ],
    }


def test_keypoints_import_as_points_and_export_for_cocoeval(project: Project, tmp_path: Path) -> None:
    images = make_images(tmp_path / "data")
    path = tmp_path / "data" / "person_keypoints_val.json"
    path.write_text(json.dumps(_keypoints_document(images)))
    import_dataset(project, "coco", path)
    person = project.find_label("person")
    assert person is not None and person.keypoints is not None
    assert list(person.keypoints.names) == KEYPOINT_NAMES and [list(b) for b in person.keypoints.skeleton] == SKELETON
    shapes = [a.shape for a in project.annotations()]
    points = [s for s in shapes if isinstance(s, Points)]
    assert len(points) == 2 and sorted(sum(v > 0 for v in p.visibility or ()) for p in points) == [12, 17]

    export_dataset(project, "coco", tmp_path / "out", copy_images=False)
    exported = tmp_path / "out" / "annotations.json"
    document = json.loads(exported.read_text())
    [category] = document["categories"]
    assert category["keypoints"] == KEYPOINT_NAMES and category["skeleton"] == SKELETON
    by_id = {a["area"]: a for a in document["annotations"]}
    assert by_id[300.5]["keypoints"] == _person(5, 5, 12) and by_id[300.5]["num_keypoints"] == 12
    assert by_id[300.5]["segmentation"] == [[4.0, 4.0, 18.0, 4.0, 18.0, 26.0, 4.0, 26.0]]  # the outline is kept
    # the truth scored against itself with pycocotools' keypoint evaluation: a perfect score
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": a["keypoints"], "score": 1.0}
               for a in document["annotations"] if a.get("num_keypoints")]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(exported))
        evaluator = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def _document(images: list[Path]) -> dict:
    return {
        "images": [{"id": i + 1, "file_name": p.name, "width": 64, "height": 48} for i, p in enumerate(images)],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 7, "name": "unused"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0,
             "segmentation": [], "ignore": 0, "extra": {"source": "tool"}},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [2, 2, 20, 20], "area": 200, "iscrowd": 0,
             "segmentation": [[2, 2, 22, 2, 22, 22, 2, 22], [30, 30, 31, 31]]},
        ],
    }


def test_declared_categories_box_only_and_unknown_keys_round_trip(project: Project, tmp_path: Path) -> None:
    images = make_images(tmp_path / "data")
    path = tmp_path / "data" / "annotations.json"
    path.write_text(json.dumps(_document(images)))
    report = import_dataset(project, "coco", path)
    assert [label.name for label in project.labels()] == ["cat", "dog", "unused"]
    assert any("dropped polygon part 2 of 2" in problem for problem in report.skipped)  # said, not silent
    [polygon] = [a.shape for a in project.annotations() if isinstance(a.shape, Polygon)]
    assert len(polygon.parts) == 1
    export_dataset(project, "coco", tmp_path / "out", copy_images=False)
    document = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert {c["name"]: c["id"] for c in document["categories"]} == {"cat": 1, "dog": 2, "unused": 7}
    box = next(a for a in document["annotations"] if a["category_id"] == 1)
    assert "segmentation" not in box and "attributes" not in box
    assert box["ignore"] == 0 and box["extra"] == {"source": "tool"}  # back where they were
    api = COCO(str(tmp_path / "out" / "annotations.json"))
    masks = [api.annToMask(a) for a in api.loadAnns(api.getAnnIds()) if "segmentation" in a]
    assert len(masks) == 1 and masks[0].sum() > 0


@pytest.mark.parametrize(
    ("json_at", "images_at", "file_name"),
    [
        ("annotations/stuff_val2017.json", "val2017", "{name}"),
        ("annotations/instances_train2017.json", "train2017", "{name}"),
        ("annotations/person_keypoints_val2017.json", "images/val2017", "{name}"),
        ("valid/_annotations.coco.json", "valid", "{name}"),  # Roboflow: beside the images
        ("out/annotations.json", "out", "JPEGImages/{name}"),  # wkentaro's labelme2coco
    ],
)
def test_image_folder_found_for_the_usual_layouts(project: Project, tmp_path: Path, json_at: str, images_at: str, file_name: str) -> None:
    root = tmp_path / "dataset"
    names = [file_name.format(name=f"img{i}.jpg") for i in range(3)]
    for i, name in enumerate(names):
        write_noise_image(root / images_at / name, seed=i)
    doc = _document([Path(n) for n in names])
    doc["images"] = [{"id": i + 1, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(names)]
    (root / json_at).parent.mkdir(parents=True, exist_ok=True)
    (root / json_at).write_text(json.dumps(doc))
    report = import_dataset(project, "coco", root / json_at)
    assert report.images == 3 and report.images_added == 3


def test_missing_images_error_names_every_folder_tried(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "annotations" / "stuff_val2017.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_document([Path("a.jpg"), Path("b.jpg")])))
    with pytest.raises(FormatError, match=r"a\.jpg.*not found in any of .*annotations.*val2017"):
        import_dataset(project, "coco", path)


def test_skip_bad_imports_the_good_images_when_the_first_is_missing(tmp_path: Path, capsys) -> None:
    images = make_images(tmp_path / "coco" / "val2017")
    doc = _document(images)
    doc["images"][0]["file_name"] = "gone.jpg"
    (tmp_path / "coco" / "annotations").mkdir()
    (tmp_path / "coco" / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    project = str(tmp_path / "p")
    assert main(["new", project]) == 0
    assert main(["import", project, "-f", "coco", str(tmp_path / "coco"), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "gone.jpg" in captured.err and "on 3 images" in captured.out
    with Project.open(project) as p:
        assert p.counts()["media"] == 3 and all(m.labelled for m in p.list_media())


def test_skip_bad_with_nothing_importable_is_an_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_document([Path("a.jpg"), Path("b.jpg")])))
    project = str(tmp_path / "p")
    assert main(["new", project]) == 0
    assert main(["import", project, "-f", "coco", str(path), "--skip-bad"]) == 1
    assert "no image could be imported" in capsys.readouterr().err


def test_reader_keeps_bbox_and_area_the_file_states(tmp_path: Path) -> None:
    images = make_images(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps(_document(images)))
    dataset = coco.read(tmp_path / "a.json")
    stated = [(a.bbox, a.area) for image in dataset.images for a in image.annotations]
    assert ((2.0, 2.0, 20.0, 20.0), 200.0) in stated
