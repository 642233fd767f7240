"""The training set and its stored split, and the one-line errors of `studio train`: no model is trained here."""

from __future__ import annotations

import pytest
import yaml
from conftest import write_brightness_video, write_image

from studio.cli.main import main
from studio.core.shapes import Box, Polygon
from studio.core.types import Annotation
from studio.io.media import add_paths
from studio.train.dataset import SplitChoice, build_training_set


def _labelled(project, tmp_path, count: int, *, label: str = "thing") -> list[int]:
    for i in range(count):
        write_image(tmp_path / "images" / f"{i:02d}.png", seed=i)
    media = add_paths(project, [tmp_path / "images"]).added
    label_id = project.ensure_label(label).id
    project.add_annotations([Annotation(m.id, label_id, Box(4, 4, 20, 20)) for m in media])
    return [m.id for m in media]


def _video(project, tmp_path, frames: list[int]) -> int:
    (video,) = add_paths(project, [write_brightness_video(tmp_path / "clip.avi")]).added
    label_id = project.ensure_label("thing").id
    project.add_annotations([Annotation(video.id, label_id, Box(4, 4, 20, 20), frame=f) for f in frames])
    return video.id


def _sides(folder) -> dict[str, set[str]]:
    return {side: {p.name for p in (folder / "labels" / side).rglob("*.txt")} for side in ("train", "val")}


def test_split_is_stored_and_kept_when_media_are_added(project, tmp_path):
    media = _labelled(project, tmp_path, 10)
    first = build_training_set(project, tmp_path / "a", choice=SplitChoice(0.8, 0))
    assert len(first.val_media) == 2 and len(first.train_media) == 8
    assert project.split() == {**dict.fromkeys(first.train_media, "train"), **dict.fromkeys(first.val_media, "val")}
    assert first.images == {"train": 8, "val": 2}
    assert len(_sides(tmp_path / "a")["val"]) == 2

    again = build_training_set(project, tmp_path / "b", choice=SplitChoice(0.8, 0))
    assert (again.train_media, again.val_media) == (first.train_media, first.val_media)

    for i in range(10, 15):
        write_image(tmp_path / "more" / f"{i}.png", seed=i)
    added = add_paths(project, [tmp_path / "more"]).added
    project.add_annotations([Annotation(m.id, project.find_label("thing").id, Box(1, 1, 9, 9)) for m in added])
    grown = build_training_set(project, tmp_path / "c", choice=SplitChoice(0.8, 0))
    assert set(first.val_media) <= set(grown.val_media) and set(first.train_media) <= set(grown.train_media)
    assert len(grown.val_media) == 3 and sorted(grown.train_media + grown.val_media) == sorted(media + [m.id for m in added])

    redrawn = build_training_set(project, tmp_path / "d", choice=SplitChoice(0.5, 1))
    assert redrawn.redrawn and len(redrawn.val_media) == 8 and not grown.redrawn


def test_frames_of_a_video_stay_on_one_side(project, tmp_path):
    _labelled(project, tmp_path, 3)
    video = _video(project, tmp_path, [0, 3, 7, 11])
    for seed in range(6):
        data = build_training_set(project, tmp_path / f"s{seed}", choice=SplitChoice(0.5, seed))
        side = "val" if video in data.val_media else "train"
        frames = {name for name in _sides(tmp_path / f"s{seed}")[side] if name.startswith("clip")}
        assert len(frames) == 4, (seed, _sides(tmp_path / f"s{seed}"))


def test_only_labelled_images_are_written_and_labels_restrict(project, tmp_path):
    _labelled(project, tmp_path, 4)
    write_image(tmp_path / "unlabelled" / "x.png", seed=99)
    add_paths(project, [tmp_path / "unlabelled"])
    data = build_training_set(project, tmp_path / "out", choice=SplitChoice(0.5, 0))
    assert sum(data.images.values()) == 4
    written = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert written["names"] == {0: "thing"}


def test_segment_training_writes_polygons(project, tmp_path):
    media = _labelled(project, tmp_path, 2)
    label = project.find_label("thing").id
    project.add_annotation(Annotation(media[0], label, Polygon([[(2, 2), (30, 4), (10, 30)]])))
    build_training_set(project, tmp_path / "out", choice=SplitChoice(0.5, 0), segments=True)
    lines = [line for f in (tmp_path / "out" / "labels").rglob("*.txt") for line in f.read_text().splitlines()]
    assert lines and all(len(line.split()) >= 7 for line in lines)  # polygons, boxes as 4 corners


def _train(project, *extra: str) -> int:
    return main(["train", str(project.root), "--epochs", "1", "--imgsz", "64", "--device", "cpu", *extra])


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["--model", "yolo11n.yaml"], "no human annotations to train on"),
        ("one", ["--model", "yolo11n.yaml"], "at least two labelled images"),
        ("many", ["--model", "yolo11n.yaml", "--labels", "thing,ghost"], "no label named 'ghost'"),
        ("many", ["--model", "yolo99z.yaml"], "neither a model config file nor one of ultralytics'"),
        ("many", ["--model", "resnet.bin"], "takes a .pt weights file or name, or a model .yaml"),
        ("many", ["--model", "yolo11n.yaml", "--task", "segment"], "is a detection model; use its -seg variant"),
        ("many", ["--model", "yolo11n-seg.yaml", "--task", "segment"], "needs polygons or masks"),
        ("many", ["--model", "yolo11n.yaml", "--split", "1.5"], "--split is the share"),
        ("many", ["--model", "yolo11n.yaml", "--epochs", "0"], "--epochs and --batch must be 1 or more"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_project_as_it_was(project, tmp_path, capsys, setup, args, message):
    if setup != "none":
        _labelled(project, tmp_path, 1 if setup == "one" else 4)
    before = (project.counts(), project.split(), project.get_setting("train.split"))
    assert _train(project, *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("studio: error: ") and err.count("\n") == 1 and message in err, err
    assert (project.counts(), project.split(), project.get_setting("train.split")) == before
    assert project.trained_models() == [] and not (project.root / "models").exists()


def test_official_weights_offline_is_one_line(project, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    _labelled(project, tmp_path, 4)
    assert _train(project, "--model", "yolo11n.pt") == 1
    err = capsys.readouterr().err
    assert "yolo11n.pt is not downloaded and STUDIO_OFFLINE is set" in err and err.count("\n") == 1
    assert project.trained_models() == []


def test_unknown_trained_model_in_predict_lists_plugins(project, tmp_path, capsys):
    _labelled(project, tmp_path, 2)
    assert main(["predict", str(project.root), "--model", "nothing-1"]) == 1
    assert "no model plugin 'nothing-1'" in capsys.readouterr().err
