"""YOLO import and export through the project service; exported datasets work in ultralytics."""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers_coco_yolo import (
    SHAPES,
    TWO_PART,
    annotate,
    assert_close,
    assert_same_pixels_but_boundary,
    by_image,
    ring_mask,
    write_noise_image,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core import geometry
from studio.core.errors import FormatError, StudioError
from studio.core.shapes import Box, Mask, Points, Polygon
from studio.core.types import Annotation
from studio.db.project import Project
from studio.io.formats import yolo
from studio.io.formats.base import Dataset, DatasetAnnotation, DatasetImage
from studio.io.formats.transfer import export_dataset, import_dataset
from studio.io.media import add_paths


def _boxes_only_project(project: Project, folder: Path, *, run_name: str | None = None) -> None:
    media = add_paths(project, [write_noise_image(folder / f"img{i}.jpg", seed=i) for i in range(5)]).added
    run_id = None if run_name is None else project.create_run("test", name=run_name).id
    project.add_annotations(
        Annotation(
            media_id=m.id, label_id=project.ensure_label(("cat", "dog")[i % 2]).id, run_id=run_id,
            shape=Box(1.25 + i, 2.5, 30.75 + i, 40.0 + i), score=None if run_id is None else 0.25 + i / 10,
        )
        for i, m in enumerate(media)
    )


def test_box_round_trip_with_splits(project: Project, tmp_path: Path) -> None:
    _boxes_only_project(project, tmp_path / "src")
    export_dataset(project, "yolo", tmp_path / "out")
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog"} and "path" not in data
    for split in ("train", "val"):  # both splits used, and deterministic
        assert list((tmp_path / "out" / "images" / split).iterdir())
    first = sorted(p.name for p in (tmp_path / "out" / "images" / "val").iterdir())
    export_dataset(project, "yolo", tmp_path / "again")
    assert sorted(p.name for p in (tmp_path / "again" / "images" / "val").iterdir()) == first
    with Project.create(tmp_path / "second") as second:
        import_dataset(second, "yolo", tmp_path / "out")
        before, after = by_image(project), by_image(second)
    assert before.keys() == after.keys()
    for name in before:
        assert [a[0] for a in before[name]] == [a[0] for a in after[name]]
        for a, b in zip(before[name], after[name], strict=True):
            assert_close(a[1], b[1])


def test_segments_round_trip_within_a_pixel(project: Project, tmp_path: Path) -> None:
    annotate(project, tmp_path / "src")
    export_dataset(project, "yolo", tmp_path / "out")
    with Project.create(tmp_path / "second") as second:
        import_dataset(second, "yolo", tmp_path / "out" / "data.yaml")
        before, after = by_image(project), by_image(second)
    for name, shapes in SHAPES.items():
        assert len(after[name]) == len(shapes)
        originals = {label: shape for label, shape in shapes}
        for label, shape, _, _ in after[name]:
            assert isinstance(shape, Polygon) and len(shape.parts) == 1  # YOLO: one ring per object
            if not isinstance(originals[label], Mask):  # the ring mask's hole: see the next test
                assert_same_pixels_but_boundary(originals[label], shape)
    assert len(before["img1.jpg"]) == 2


def test_mask_with_hole_loses_only_the_hole(tmp_path: Path) -> None:
    """mask_to_polygon keeps outer rings: a YOLO segment cannot hold a hole, so it is filled."""
    image = write_noise_image(tmp_path / "src" / "m.jpg", seed=3)
    dataset = Dataset(["dog"], [DatasetImage("m.jpg", 64, 48, [DatasetAnnotation("dog", ring_mask())], image)])
    yolo.write(dataset, tmp_path / "out")
    [annotation] = yolo.read(tmp_path / "out").images[0].annotations
    disc = np.zeros((48, 64), dtype=np.uint8)
    cv2.circle(disc, (40, 24), 14, 1, thickness=-1)
    assert_same_pixels_but_boundary(geometry.encode_mask(disc), annotation.shape)


def test_merged_parts_cover_the_same_pixels() -> None:
    merged = Polygon([yolo._merge_parts([np.asarray(part) for part in TWO_PART.parts]).tolist()])
    assert_same_pixels_but_boundary(TWO_PART, merged)


def test_run_scores_round_trip_as_confidence(project: Project, tmp_path: Path) -> None:
    _boxes_only_project(project, tmp_path / "src", run_name="detector")
    export_dataset(project, "yolo", tmp_path / "out", source="detector", scores=True)
    line = next(p for p in (tmp_path / "out" / "labels").rglob("*.txt") if p.read_text()).read_text()
    assert len(line.split()) == 6  # class cx cy w h conf, as ultralytics' save_conf writes, when asked
    import_dataset(project, "yolo", tmp_path / "out", run_name="again")
    scores = lambda run: sorted(a[2] for anns in by_image(project, run).values() for a in anns)  # noqa: E731
    assert scores("again") == pytest.approx(scores("detector"))


def test_exported_dataset_passes_ultralytics_check(project: Project, tmp_path: Path, monkeypatch) -> None:
    from ultralytics.data.utils import check_det_dataset

    annotate(project, tmp_path / "src")
    export_dataset(project, "yolo", tmp_path / "out")
    monkeypatch.chdir(tmp_path)  # a relative yaml path must resolve against the yaml, not ultralytics' datasets dir
    data = check_det_dataset("out/data.yaml")
    assert data["nc"] == 2 and Path(data["train"]) == (tmp_path / "out" / "images" / "train").resolve()


@pytest.mark.slow
def test_ultralytics_trains_one_epoch_on_export(project: Project, tmp_path: Path) -> None:
    from ultralytics import YOLO

    _boxes_only_project(project, tmp_path / "src")
    export_dataset(project, "yolo", tmp_path / "out")
    model = YOLO("yolo11n.yaml")
    model.train(
        data=str(tmp_path / "out" / "data.yaml"), epochs=1, imgsz=64, batch=4, workers=0, plots=False, amp=False,
        device="cpu", project=str(tmp_path / "runs"), name="t", val=False, verbose=False,
    )
    assert (tmp_path / "runs" / "t" / "weights" / "last.pt").is_file()


def _plain_folder(tmp_path: Path, lines: dict[str, str]) -> Path:
    folder = tmp_path / "images" / "plain"  # an `images` folder above a plain dataset must not matter
    for i, name in enumerate(("a", "b")):
        write_noise_image(folder / f"{name}.jpg", seed=i)
    (folder / "classes.txt").write_text("cat\ndog\n")
    for stem, text in lines.items():
        (folder / f"{stem}.txt").write_text(text)
    return folder


def test_plain_folder_with_classes_txt(tmp_path: Path) -> None:
    dataset = yolo.read(_plain_folder(tmp_path, {"a": "1 0.5 0.5 0.25 0.5\n0 0.1 0.1 0.3 0.1 0.2 0.4 0.9\n"}))
    assert dataset.labels == ["cat", "dog"]
    a = next(i for i in dataset.images if i.file_name == "a.jpg")
    box, polygon = (ann.shape for ann in a.annotations)
    assert box == Box(24.0, 12.0, 40.0, 36.0)
    assert isinstance(polygon, Polygon) and a.annotations[1].score == pytest.approx(0.9)
    assert not next(i for i in dataset.images if i.file_name == "b.jpg").annotations


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0.5 0.5 0.2\n", "expected `class cx cy w h`"),
        ("0 0.5 abc 0.2 0.2\n", "expected a number"),
        ("2 0.5 0.5 0.2 0.2\n", "class 2 is not one of 0..1"),
        ("0 0.5 0.5 1.7 0.2\n", "normalised"),
        ("0 0.5 0.5 0.2 0.2 1.5\n", "confidence"),
        ("0 0.5 0.5 nan 0.2\n", "finite"),
    ],
)
def test_bad_line_names_file_and_line(project: Project, tmp_path: Path, text: str, message: str) -> None:
    folder = _plain_folder(tmp_path, {"a": "1 0.5 0.5 0.25 0.5\n", "b": "0 0.5 0.5 0.1 0.1\n" + text})
    with pytest.raises(FormatError, match=rf"b\.txt:2: .*{message}"):
        import_dataset(project, "yolo", folder)
    assert project.counts() == {"media": 0, "annotations": 0, "labels": 0, "runs": 0, "predictions": 0, "answers": 0, "embeddings": 0, "tracks": 0}
    report = import_dataset(project, "yolo", folder, skip_bad=True)
    assert report.annotations == 2 and len(report.skipped) == 1 and "b.txt:2" in report.skipped[0]


def test_label_file_without_image(project: Project, tmp_path: Path) -> None:
    folder = _plain_folder(tmp_path, {"a": "1 0.5 0.5 0.25 0.5\n", "ghost": "0 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(FormatError, match="ghost.txt: label file without an image"):
        import_dataset(project, "yolo", folder)
    assert project.counts()["media"] == 0
    assert import_dataset(project, "yolo", folder, skip_bad=True).annotations == 1


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("names: [cat]\ntrain: images/nowhere\n", "not found"),
        ("names: {0: cat, 2: dog}\ntrain: images/train\n", "without gaps"),
        ("train: images/train\n", "names"),
        ("names: [cat\n", "not readable YAML"),
    ],
)
def test_bad_data_yaml(project: Project, tmp_path: Path, yaml_text: str, message: str) -> None:
    write_noise_image(tmp_path / "ds" / "images" / "train" / "x.jpg", seed=1)
    (tmp_path / "ds" / "data.yaml").write_text(yaml_text)
    with pytest.raises(StudioError, match=message):
        import_dataset(project, "yolo", tmp_path / "ds" / "data.yaml")


def test_folder_without_class_names(tmp_path: Path) -> None:
    write_noise_image(tmp_path / "x.jpg", seed=1)
    with pytest.raises(FormatError, match="classes.txt"):
        yolo.read(tmp_path)


def test_points_cannot_be_written(tmp_path: Path) -> None:
    dataset = Dataset(["kp"], [DatasetImage("x.jpg", 64, 48, [DatasetAnnotation("kp", Points([(1, 2)]))])])
    with pytest.raises(FormatError, match="YOLO has no form for a 'points'"):
        yolo.write(dataset, tmp_path / "out", copy_images=False)


number_text = st.sampled_from(["0", "1", "2", "0.5", "-0.2", "1.2", "nan", "inf", "x", "1e9", "0.999", "", "3.0"])
line_text = st.lists(number_text, min_size=0, max_size=10).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_text, max_size=4), skip_bad=st.booleans(), names=st.sampled_from(["cat\ndog\n", "", "\n\n"]))
def test_reader_raises_only_format_errors(tmp_path: Path, lines: list[str], skip_bad: bool, names: str) -> None:
    folder = tmp_path / "fuzz"
    if not (folder / "a.jpg").exists():
        write_noise_image(folder / "a.jpg", seed=0)
    (folder / "classes.txt").write_text(names)
    (folder / "a.txt").write_text("\n".join(lines))
    with contextlib.suppress(FormatError):  # any other exception fails the test
        yolo.read(folder, skip_bad=skip_bad)
