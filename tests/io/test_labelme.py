"""labelme JSON import and export through the project service and the CLI."""

from __future__ import annotations

import base64
import contextlib
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import write_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_voc import HEIGHT, WIDTH, add_annotated, assert_same, round_trip, snapshot

from studio.cli.main import main
from studio.core import geometry
from studio.core.errors import FormatError, StudioError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape
from studio.db.project import Project
from studio.io.formats import labelme
from studio.io.formats.transfer import EMBEDDED_DIR, export_dataset, import_dataset


def ring_mask() -> Mask:
    """A mask with a hole, which no polygon holds exactly."""
    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    cv2.circle(canvas, (40, 24), 14, 1, thickness=-1)
    cv2.circle(canvas, (40, 24), 5, 0, thickness=-1)
    return geometry.encode_mask(canvas)


TWO_PART = Polygon([[(2.5, 3.25), (20.0, 2.0), (18.75, 19.5)], [(30.0, 30.0), (50.5, 31.0), (44.0, 46.0)]])
PROJECT_SHAPES: dict[str, list[tuple[str, Shape, dict[str, Any]]]] = {
    "img0.jpg": [
        ("cat", Box(1.5, 2.25, 30.125, 40.0), {"description": "sleepy", "flags": {"verified": True}}),
        ("cat", TWO_PART, {"colour": "grey"}),
        ("dog", ring_mask(), {}),
    ],
    "img1.jpg": [
        ("lane", Polyline([(0, 0), (10.5, 20), (30, 47)]), {}),
        ("nose", Points([(5, 5)]), {}),
        ("paws", Points([(1, 1), (2, 3), (4, 5)]), {}),
        ("car", RotatedBox(32, 24, 20, 10, 30), {}),
    ],
    "img2.jpg": [],
}


def test_round_trip_keeps_every_kind(project: Project, tmp_path: Path) -> None:
    add_annotated(project, tmp_path / "src", PROJECT_SHAPES)
    with round_trip(project, "labelme", tmp_path) as second:
        expected = snapshot(project)
        car = PROJECT_SHAPES["img1.jpg"][3][1]
        assert isinstance(car, RotatedBox)
        expected["img1.jpg"] = sorted(  # labelme has no rotated box: it becomes its 4-corner polygon
            [a if a[0] != "car" else ("car", Polygon([car.corners()]), None, {}) for a in expected["img1.jpg"]],
            key=lambda a: (a[0], a[1].kind, a[1].bbox()),
        )
        assert_same(expected, snapshot(second))
        masks = [a[1] for a in snapshot(second)["img0.jpg"] if isinstance(a[1], Mask)]
        assert masks == [ring_mask()]  # pixel-exact


def _png_b64(pixels: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", pixels.astype(np.uint8))[1].tobytes()).decode()


def _shape(label: str, shape_type: str, points: list[list[float]], **extra: Any) -> dict[str, Any]:
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": shape_type,
            "flags": {}, "mask": None, **extra}


def _document(image_path: str, shapes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": HEIGHT, "imageWidth": WIDTH, **extra}


MASK_CROP = np.zeros((6, 8), dtype=bool)
MASK_CROP[1:5, 2:7] = True
HAND_SHAPES = [
    _shape("person", "polygon", [[1, 1], [10, 1], [10, 10]], group_id=1),
    _shape("person", "polygon", [[20, 20], [30, 20], [30, 30]], group_id=1),  # same person, occluded
    _shape("bag", "polygon", [[40, 5], [50, 5], [50, 15]], group_id=2),
    _shape("bag", "rectangle", [[52, 15], [45, 5]], group_id=2),  # kinds differ -> one mask
    _shape("ball", "circle", [[32, 24], [37, 24]], description="red ball"),
    _shape("edge", "line", [[0, 47], [63, 0]]),
    _shape("lane", "linestrip", [[0, 0], [5, 5], [9, 2]], flags={"dashed": True}),
    _shape("eye", "point", [[12.5, 13.25]]),
    _shape("dots", "points", [[1, 2], [3, 4]]),
    _shape("stain", "mask", [[10, 30], [17, 35]], mask=_png_b64(MASK_CROP)),
    _shape("box", "rectangle", [[0.5, 0.5], [8, 9]], group_id=7),  # a group of one stays a box
]


@pytest.fixture
def labelme_folder(tmp_path: Path) -> Path:
    """labelme's own layout: a .json beside each image (one in a sub-folder), imagePath relative."""
    root = tmp_path / "labelme"
    write_image(root / "scene.jpg", WIDTH, HEIGHT, seed=1)
    (root / "scene.json").write_text(json.dumps(_document("scene.jpg", HAND_SHAPES)))
    write_image(root / "more/images/other.jpg", WIDTH, HEIGHT, seed=2)
    (root / "more/other.json").write_text(json.dumps(_document("images\\other.jpg", [_shape("eye", "point", [[3, 3]])])))
    return root


def test_hand_written_files_read_every_shape_type(project: Project, labelme_folder: Path) -> None:
    report = import_dataset(project, "labelme", labelme_folder)
    assert (report.images, report.images_added) == (2, 2)
    anns = {(a[0], a[1].kind): a for a in snapshot(project)["scene.jpg"]}
    assert len(anns) == 9  # 11 shapes: the two person polygons are one object, so are the bag polygon and box
    person = anns[("person", "polygon")][1]
    assert isinstance(person, Polygon) and len(person.parts) == 2
    bag = anns[("bag", "mask")][1]
    assert isinstance(bag, Mask) and geometry.area(bag) == pytest.approx(8 * 11, abs=12)
    ball, ball_attrs = anns[("ball", "polygon")][1], anns[("ball", "polygon")][3]
    assert isinstance(ball, Polygon) and len(ball.parts[0]) == labelme.ELLIPSE_VERTICES
    assert ball.parts[0][0] == (37.0, 24.0) and geometry.area(ball) == pytest.approx(math.pi * 25, rel=2e-3)
    assert ball_attrs == {"shape_type": "circle", "description": "red ball"}
    assert anns[("edge", "polyline")][3] == {"shape_type": "line"}
    assert anns[("lane", "polyline")][3] == {"flags": {"dashed": True}}
    assert anns[("eye", "points")][1] == Points([(12.5, 13.25)])
    assert anns[("dots", "points")][1] == Points([(1, 2), (3, 4)])
    stain = geometry.decode_mask(anns[("stain", "mask")][1])
    assert stain.sum() == MASK_CROP.sum() and stain[30:36, 10:18].tolist() == MASK_CROP.tolist()
    assert anns[("box", "box")][1] == Box(0.5, 0.5, 8, 9)
    assert snapshot(project)["other.jpg"][0][1] == Points([(3, 3)])  # Windows separators in imagePath


def test_labelme_data_round_trips_to_the_same_types(project: Project, labelme_folder: Path, tmp_path: Path) -> None:
    import_dataset(project, "labelme", labelme_folder)
    with round_trip(project, "labelme", tmp_path) as second:
        assert_same(snapshot(project), snapshot(second))
    types = {s["label"]: s["shape_type"] for s in json.loads(next((tmp_path).glob("labelme-export-*/scene.json")).read_text())["shapes"]}
    assert types["ball"] == "circle" and types["edge"] == "line" and types["lane"] == "linestrip"
    assert types["eye"] == "point" and types["dots"] == "points" and types["stain"] == "mask"


def test_export_follows_labelmes_loader_schema(project: Project, tmp_path: Path) -> None:
    """The checks of labelme's LabelFile.load / _load_shape_json_obj (labelme/_label_file.py)."""
    add_annotated(project, tmp_path / "src", PROJECT_SHAPES)
    export_dataset(project, "labelme", tmp_path / "out")
    document = json.loads((tmp_path / "out/img0.json").read_text())
    assert document["imagePath"] == "img0.jpg" and (tmp_path / "out/img0.jpg").is_file()
    assert document["imageData"] is None and (document["imageWidth"], document["imageHeight"]) == (WIDTH, HEIGHT)
    groups = [s["group_id"] for s in document["shapes"] if s["label"] == "cat" and s["shape_type"] == "polygon"]
    assert len(groups) == 2 and groups[0] == groups[1] and isinstance(groups[0], int)
    for shape in document["shapes"]:
        assert isinstance(shape["label"], str) and isinstance(shape["shape_type"], str)
        assert shape["points"] and all(len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in shape["points"])
        assert all(isinstance(k, str) and isinstance(v, bool) for k, v in shape["flags"].items())
        assert isinstance(shape["description"], str) and (shape["group_id"] is None or isinstance(shape["group_id"], int))
        if shape["shape_type"] == "mask":
            crop = cv2.imdecode(np.frombuffer(base64.b64decode(shape["mask"]), np.uint8), cv2.IMREAD_UNCHANGED)
            (x1, y1), (x2, y2) = shape["points"]
            assert crop.shape == (y2 - y1 + 1, x2 - x1 + 1)  # labelme pastes it at [y1:y2+1, x1:x2+1]


def test_embedded_image_is_imported_without_the_image_file(project: Project, tmp_path: Path) -> None:
    pixels = write_image(tmp_path / "gone.jpg", WIDTH, HEIGHT, seed=5).read_bytes()
    (tmp_path / "gone.jpg").unlink()
    folder = tmp_path / "embedded"
    folder.mkdir()
    document = _document("gone.jpg", [_shape("cat", "rectangle", [[1, 1], [9, 9]])], imageData=base64.b64encode(pixels).decode())
    (folder / "gone.json").write_text(json.dumps(document))
    report = import_dataset(project, "labelme", folder)
    assert report.images_added == 1 and report.annotations == 1
    [media] = project.list_media()
    assert project.resolve(media).read_bytes() == pixels
    assert project.resolve(media).is_relative_to(project.root / EMBEDDED_DIR)
    assert list(folder.iterdir()) == [folder / "gone.json"]  # nothing written beside the dataset
    import_dataset(project, "labelme", folder)
    assert project.counts()["media"] == 1 and project.counts()["annotations"] == 2  # same media again
    with round_trip(project, "labelme", tmp_path) as second:
        assert_same(snapshot(project), snapshot(second))


def test_cli_import_and_export(tmp_path: Path, labelme_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir = tmp_path / "cli-project"
    assert main(["new", str(project_dir)]) == 0
    assert main(["import", str(project_dir), str(labelme_folder / "scene.json"), "-f", "labelme", "--run", "model"]) == 0
    assert main(["export", str(project_dir), str(tmp_path / "cli-out"), "-f", "labelme", "--source", "model"]) == 0
    assert "exported 9 annotations on 1 images" in capsys.readouterr().out
    (tmp_path / "cli-bad.json").write_text('{"shapes": [')
    assert main(["import", str(project_dir), str(tmp_path / "cli-bad.json"), "-f", "labelme"]) == 1
    error = capsys.readouterr().err.strip()
    assert "cli-bad.json" in error and "not valid JSON" in error and "\n" not in error


BAD_LABELME: dict[str, tuple[str, str]] = {
    "truncated": ('{"shapes": [{"label": "a", "points": [[1, 2]', "not valid JSON"),
    "not an object": ("[1, 2, 3]", "not a labelme file"),
    "no shapes": (json.dumps({"imagePath": "scene.jpg"}), "not a labelme file"),
    "no imagePath": (json.dumps(_document("", [])), "missing imagePath"),
    "text coordinate": (json.dumps(_document("scene.jpg", [_shape("a", "rectangle", [[1, "x"], [5, 5]])])), "y: expected a number"),
    "empty polygon": (json.dumps(_document("scene.jpg", [_shape("a", "polygon", [])])), "points must be a non-empty list"),
    "no label": (json.dumps(_document("scene.jpg", [_shape("", "point", [[1, 1]])])), "missing label"),
    "unknown type": (json.dumps(_document("scene.jpg", [_shape("a", "ellipse", [[1, 1], [2, 2]])])), "unknown shape_type 'ellipse'"),
    "outside image": (json.dumps(_document("scene.jpg", [_shape("a", "rectangle", [[1, 1], [99, 5]])])), "lies outside the 64x48 image"),
    "bad mask": (json.dumps(_document("scene.jpg", [_shape("a", "mask", [[1, 1], [3, 3]], mask="bm90IGEgcG5n")])), "'mask': a base64-encoded PNG"),
    "bad size": (json.dumps(_document("scene.jpg", [], imageWidth="wide")), "imageWidth must be a positive whole number"),
    "image not found": (json.dumps(_document("nowhere.jpg", [])), "nowhere.jpg: image is not in the project"),
    "bad imageData": (json.dumps(_document("nowhere.jpg", [], imageData="%%%")), "imageData is not base64"),
}


@pytest.mark.parametrize("case", BAD_LABELME)
def test_bad_file_changes_nothing_and_names_the_file(project: Project, labelme_folder: Path, case: str) -> None:
    text, message = BAD_LABELME[case]
    (labelme_folder / "zz_bad.json").write_text(text)
    before = project.counts()
    with pytest.raises(StudioError) as error:
        import_dataset(project, "labelme", labelme_folder)
    assert message in str(error.value)
    assert "zz_bad.json" in str(error.value) or "nowhere.jpg" in str(error.value)
    assert project.counts() == before
    report = import_dataset(project, "labelme", labelme_folder, skip_bad=True)
    assert report.annotations == 10 and len(report.skipped) == 1 and message in report.skipped[0]


def test_skip_bad_keeps_the_good_shapes_of_a_file(project: Project, labelme_folder: Path) -> None:
    shapes = [_shape("a", "point", [[1, 1]]), _shape("b", "point", [[1, None]]), _shape("c", "star", [[1, 1]])]
    (labelme_folder / "scene.json").write_text(json.dumps(_document("scene.jpg", shapes)))
    report = import_dataset(project, "labelme", labelme_folder, skip_bad=True)
    assert report.annotations == 2  # "a" and the point of other.json
    assert [message.split(": ", 1)[1] for message in report.skipped] == [
        "shape 1 ('b'): y: expected a number, got None",
        "shape 2 ('c'): unknown shape_type 'star'; expected one of " + ", ".join(labelme.SHAPE_TYPES),
    ]


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)
_shape_dict = st.fixed_dictionaries(
    {},
    optional={
        "label": st.one_of(st.sampled_from(["a", ""]), _json_value),
        "points": st.one_of(st.lists(st.lists(st.integers(-2, 70) | st.floats() | st.text(max_size=2), max_size=3), max_size=4), _json_value),
        "shape_type": st.one_of(st.sampled_from(labelme.SHAPE_TYPES), _json_value),
        "group_id": st.one_of(st.sampled_from([None, 1, 2]), _json_value),
        "mask": st.one_of(st.just(_png_b64(MASK_CROP)), _json_value),
        "flags": _json_value,
        "description": _json_value,
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shapes=st.one_of(st.lists(_shape_dict, max_size=4), _json_value),
    extra=st.dictionaries(st.sampled_from(["imageWidth", "imageHeight", "imagePath", "imageData"]), _json_value, max_size=2),
)
def test_reader_raises_only_format_errors(tmp_path: Path, shapes: Any, extra: dict[str, Any]) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps({"imagePath": "a.jpg", "imageWidth": WIDTH, "imageHeight": HEIGHT, "shapes": shapes, **extra}))
    for skip_bad in (False, True):
        with contextlib.suppress(FormatError):
            labelme.read(path, skip_bad=skip_bad)
