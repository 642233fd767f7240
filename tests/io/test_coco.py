"""COCO import and export through the project service and the CLI."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers_coco_yolo import SHAPES, annotate, assert_close, by_image, make_images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO

from studio.cli.main import main
from studio.core import geometry
from studio.core.errors import FormatError, StudioError
from studio.core.shapes import Box, Mask, Polygon
from studio.db.project import Project
from studio.io.formats import coco
from studio.io.formats.transfer import export_dataset, import_dataset


@pytest.fixture
def exported(project: Project, tmp_path: Path) -> Path:
    """The annotated project exported as COCO (images included): OUT/annotations.json."""
    annotate(project, tmp_path / "src")
    export_dataset(project, "coco", tmp_path / "out")
    return tmp_path / "out" / "annotations.json"


def _new_project(tmp_path: Path, name: str = "second") -> Project:
    return Project.create(tmp_path / name)


def test_round_trip_keeps_boxes_polygons_and_crowd_masks(project: Project, exported: Path, tmp_path: Path) -> None:
    with _new_project(tmp_path) as second:
        report = import_dataset(second, "coco", exported)
        assert report.images == len(SHAPES) and report.images_added == len(SHAPES)
        before, after = by_image(project), by_image(second)
    assert before.keys() == after.keys()
    for name in before:
        assert [a[0] for a in before[name]] == [a[0] for a in after[name]]
        for (_, shape_a, _, attrs_a), (_, shape_b, _, attrs_b) in zip(before[name], after[name], strict=True):
            assert_close(shape_a, shape_b)
            assert attrs_a == attrs_b  # iscrowd survives
    assert any(isinstance(s, Polygon) and len(s.parts) == 2 for anns in after.values() for _, s, _, _ in anns)
    assert any(isinstance(s, Mask) for anns in after.values() for _, s, _, _ in anns)


def test_run_round_trip_keeps_scores(project: Project, tmp_path: Path) -> None:
    annotate(project, tmp_path / "src", run_name="detector")
    export_dataset(project, "coco", tmp_path / "out", source="detector", copy_images=False)
    import_dataset(project, "coco", tmp_path / "out" / "annotations.json", run_name="again")
    scores = lambda run: sorted(a[2] for anns in by_image(project, run).values() for a in anns)  # noqa: E731
    assert scores("again") == scores("detector") and None not in scores("again")


def test_export_loads_in_pycocotools_and_masks_match(project: Project, exported: Path) -> None:
    api = COCO(str(exported))
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == [label.name for label in project.labels()]
    media = {m.id: m for m in project.list_media()}
    stored = {(a.media_id, a.shape.bbox()): a.shape for a in project.annotations()}
    checked = 0
    for ann in api.loadAnns(api.getAnnIds()):
        image = api.loadImgs(ann["image_id"])[0]
        assert image["id"] in media  # image ids are media ids
        shape = stored[(image["id"], tuple(ann["bbox"]))]
        if isinstance(shape, Box):
            assert ann["area"] == pytest.approx(shape.width * shape.height)
            continue
        np.testing.assert_array_equal(api.annToMask(ann).astype(bool), geometry.rasterize(shape, media[image["id"]].size))
        checked += 1
    assert checked == 2


def test_image_root_found_beside_annotations_folder(exported: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    (layout / "annotations").mkdir(parents=True)
    (exported.parent / "images").rename(layout / "images")
    (layout / "annotations" / "instances_train.json").write_text(exported.read_text())
    dataset = coco.read(layout)
    assert dataset.image_root == layout / "images"
    assert [i.file_name for i in dataset.images if not i.annotations] == ["img3.jpg"]  # kept though empty


def test_results_file_resolves_through_remembered_ids(project: Project, tmp_path: Path) -> None:
    images = make_images(tmp_path / "data")
    gt = {
        "images": [{"id": 100 + i, "file_name": p.name, "width": 64, "height": 48} for i, p in enumerate(images)],
        "categories": [{"id": 7, "name": "car"}, {"id": 9, "name": "bike"}],
        "annotations": [{"id": 1, "image_id": 101, "category_id": 9, "bbox": [1, 2, 10, 10], "iscrowd": 0}],
    }
    (tmp_path / "data" / "gt.json").write_text(json.dumps(gt))
    import_dataset(project, "coco", tmp_path / "data" / "gt.json")
    results = [{"image_id": 102, "category_id": 7, "bbox": [3, 4, 5, 6], "score": 0.9},
               {"image_id": 101, "category_id": 9, "bbox": [1, 2, 10, 10], "score": 0.4}]
    (tmp_path / "results.json").write_text(json.dumps(results))
    report = import_dataset(project, "coco", tmp_path / "results.json", run_name="model")
    assert report.annotations == 2
    predictions = by_image(project, "model")
    assert predictions[images[2].name] == [("car", Box(3, 4, 8, 10), 0.9, {})]
    assert [p[0] for p in predictions[images[1].name]] == ["bike"]


def test_category_ids_survive_import_and_export(project: Project, tmp_path: Path) -> None:
    images = make_images(tmp_path / "data")
    doc = {
        "images": [{"id": 5, "file_name": images[0].name, "width": 64, "height": 48}],
        "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 44, "name": "bottle"}],
        "annotations": [{"id": 1, "image_id": 5, "category_id": 44, "bbox": [1, 2, 3, 4]},
                        {"id": 2, "image_id": 5, "category_id": 1, "bbox": [5, 6, 7, 8]}],
    }
    (tmp_path / "data" / "gt.json").write_text(json.dumps(doc))
    import_dataset(project, "coco", tmp_path / "data" / "gt.json")
    project.ensure_label("new label")
    export_dataset(project, "coco", tmp_path / "out", copy_images=False)
    exported = json.loads((tmp_path / "out" / "annotations.json").read_text())
    # the unused toothbrush is kept with its id, and a new label takes a number no category ever had
    assert {c["name"]: c["id"] for c in exported["categories"]} == {"person": 1, "bottle": 44, "toothbrush": 90, "new label": 91}
    assert sorted(a["category_id"] for a in exported["annotations"]) == [1, 44]


def test_results_on_exported_dataset_use_media_ids(project: Project, exported: Path, tmp_path: Path) -> None:
    api = COCO(str(exported))
    first = api.loadAnns(api.getAnnIds())[0]
    results = [{"image_id": first["image_id"], "category_id": first["category_id"], "bbox": first["bbox"], "score": 0.7}]
    (tmp_path / "results.json").write_text(json.dumps(results))
    import_dataset(project, "coco", tmp_path / "results.json", run_name="model")
    [prediction] = project.annotations(source=project.find_run("model").id)
    assert prediction.media_id == first["image_id"]
    assert project.get_label(prediction.label_id).name == api.loadCats(first["category_id"])[0]["name"]


def test_unresolvable_results_file_fails_and_stores_nothing(project: Project, tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps([{"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]))
    with pytest.raises(FormatError, match="image_id 5"):
        import_dataset(project, "coco", tmp_path / "results.json", run_name="model")
    assert project.counts()["runs"] == 0 and project.counts()["predictions"] == 0


def _valid_document(images: list[Path]) -> dict:
    return {
        "images": [{"id": i + 1, "file_name": p.name, "width": 64, "height": 48} for i, p in enumerate(images)],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [2, 2, 5, 5]},
        ],
    }


def _break_unknown_category(doc: dict) -> None:
    doc["annotations"][1]["category_id"] = 9


def _break_unknown_image(doc: dict) -> None:
    doc["annotations"][1]["image_id"] = 77


def _break_bbox_type(doc: dict) -> None:
    doc["annotations"][1]["bbox"] = "1,2,3,4"


def _break_box_outside(doc: dict) -> None:
    doc["annotations"][1]["bbox"] = [50, 40, 30, 30]


def _break_absent_image_file(doc: dict) -> None:
    doc["images"][1]["file_name"] = "missing.jpg"


def _break_images_type(doc: dict) -> None:
    doc["images"] = {"1": "img0.jpg"}


def _break_duplicate_image_id(doc: dict) -> None:
    doc["images"][1]["id"] = 1


@pytest.mark.parametrize(
    ("breaker", "message", "skippable"),
    [
        (_break_unknown_category, "annotation 2 refers to unknown category_id 9", True),
        (_break_unknown_image, "annotation 2 refers to unknown image_id 77", True),
        (_break_bbox_type, "annotation 2", True),
        (_break_box_outside, "lies outside the image", True),
        (_break_absent_image_file, "missing.jpg", True),
        (_break_duplicate_image_id, "image id 1 appears twice", True),
        (_break_images_type, "`images` must be a list", False),
    ],
)
def test_bad_file_fails_whole_or_skips_bad_items(
    project: Project, tmp_path: Path, breaker, message: str, skippable: bool
) -> None:
    doc = _valid_document(make_images(tmp_path / "data"))
    breaker(doc)
    path = tmp_path / "data" / "instances.json"
    path.write_text(json.dumps(doc))
    before = project.counts()
    with pytest.raises(StudioError, match=message):
        import_dataset(project, "coco", path)
    assert project.counts() == before
    if skippable:
        report = import_dataset(project, "coco", path, skip_bad=True)
        assert project.counts()["annotations"] == 1 and report.annotations == 1
        assert report.skipped and re.search(message, report.skipped[0])  # a duplicate id also orphans its annotation


@pytest.mark.parametrize(
    "segmentation",
    [
        {"size": [48, 64], "counts": [2**70]},
        {"size": [48, 64], "counts": [-5, 3077]},
        {"size": [-48, 64], "counts": [3072]},
        {"size": [1e30, 64], "counts": [3072]},
        {"size": [48, 64], "counts": [100]},
        {"size": [48, 64], "counts": "\u00ff"},
        {"size": [24, 64], "counts": [1536]},
        [[1, 2, 3, 4, 5, "x"]],
        [[1, 2]],
    ],
)
def test_malformed_segmentation_is_a_format_error(tmp_path: Path, segmentation: object) -> None:
    doc = _valid_document(make_images(tmp_path))
    doc["annotations"][0]["segmentation"] = segmentation
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="instances.json: annotation 1"):
        coco.read(tmp_path / "instances.json")


def test_truncated_json_names_the_file(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_valid_document(make_images(tmp_path)))[:-25])
    with pytest.raises(FormatError, match=r"instances\.json: not valid JSON"):
        import_dataset(project, "coco", path, skip_bad=True)
    assert project.counts()["media"] == 0


def test_unknown_format_name_is_a_clear_error(project: Project, exported: Path) -> None:
    with pytest.raises(StudioError, match="unknown format 'coco2'"):
        import_dataset(project, "coco2", exported)


def test_cli_end_to_end_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source"
    with Project.create(source) as project:
        annotate(project, tmp_path / "media")
        export_dataset(project, "coco", tmp_path / "coco", copy_images=False)
    target = str(tmp_path / "target")
    assert main(["new", target]) == 0
    assert main(["add", target, str(tmp_path / "media")]) == 0
    assert main(["import", target, "--format", "coco", str(tmp_path / "coco" / "annotations.json")]) == 0
    assert main(["export", target, str(tmp_path / "yolo"), "--format", "yolo"]) == 0
    assert (tmp_path / "yolo" / "data.yaml").is_file()
    capsys.readouterr()
    assert main(["info", target, "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {"media": 4, "annotations": 5, "labels": 2, "runs": 0, "predictions": 0}

    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    assert main(["import", target, "--format", "coco", str(broken)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "broken.json" in err and "Traceback" not in err
    assert main(["info", target, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == counts

    document = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    document["annotations"][0]["category_id"] = 99
    partly_bad = tmp_path / "partly_bad.json"
    partly_bad.write_text(json.dumps(document))
    assert main(["import", target, "--format", "coco", str(partly_bad), "--run", "r", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "unknown category_id 99" in captured.err and "imported 4 annotations" in captured.out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
annotation_like = st.fixed_dictionaries(
    {"id": json_values, "image_id": st.sampled_from([1, 2, "1", None]), "category_id": st.sampled_from([1, 3, 1.5]),
     "bbox": st.one_of(json_values, st.lists(st.floats(-10, 100) | st.none(), min_size=4, max_size=4))},
    optional={"segmentation": json_values | st.fixed_dictionaries({"size": json_values, "counts": json_values}),
              "score": json_values, "iscrowd": json_values, "attributes": json_values},
)
document_like = st.fixed_dictionaries(
    {},
    optional={
        "images": st.lists(st.fixed_dictionaries({"id": st.sampled_from([1, 2, "x"]), "file_name": json_values,
                                                  "width": json_values, "height": st.just(48)}), max_size=3) | json_values,
        "categories": st.lists(st.fixed_dictionaries({"id": st.sampled_from([1, 2, None]), "name": json_values}),
                               max_size=3) | json_values,
        "annotations": st.lists(annotation_like, max_size=4) | json_values,
    },
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=document_like | st.lists(annotation_like, max_size=3) | json_values, skip_bad=st.booleans())
def test_reader_raises_only_format_errors(tmp_path: Path, document: object, skip_bad: bool) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(document))
    with contextlib.suppress(FormatError):  # any other exception fails the test
        coco.read(path, skip_bad=skip_bad)
