"""The detection job and accepting predictions, with a fake detector so every case is fast and exact."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from conftest import write_brightness_video

from studio.cli.main import main
from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.io.media import add_paths
from studio.jobs.accept import accept_predictions, undo_accept
from studio.jobs.predict import parse_frame_range, run_detection
from studio.models import registry
from studio.models.protocols import Detection, PluginSpec
from studio.models.weights import WeightsError


class BrightnessDetector:
    """Finds one 'thing' per image; its score is the image's mean brightness / 255 (so tests control it)."""

    class_names: Sequence[str] = ("thing", "other")

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.fail_on_call: int | None = None

    def detect(self, images, *, classes=None, conf=0.25, iou=0.7):
        self.calls.append(len(images))
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("out of memory")
        results = []
        for image in images:
            score = float(image.mean()) / 255
            h, w = image.shape[:2]
            found = [Detection(Box(1, 1, w / 2, h + 50), "thing", score), Detection(Box(0, 0, 4, 4), "other", 0.9)]
            results.append([d for d in found if d.score >= conf and (not classes or d.label in classes)])
        return results


@pytest.fixture
def detector(monkeypatch) -> BrightnessDetector:
    fake = BrightnessDetector()
    spec = PluginSpec(id="fake", family="test", task="detect", title="fake", load=lambda **_: fake)
    real = registry._discover()[0]
    monkeypatch.setattr(registry, "_discover", lambda: ({**real, "fake": spec}, {}))
    monkeypatch.setattr(registry, "MODEL_CACHE", registry.ModelCache(2))
    return fake


@pytest.fixture
def images(project, tmp_path) -> list[int]:
    """Six 64x48 images of rising brightness 0, 50, ... 250 (scores 0 .. 0.98)."""
    import cv2

    paths = []
    for i in range(6):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.full((48, 64, 3), 50 * i, np.uint8))
        paths.append(path)
    return [m.id for m in add_paths(project, paths).added]


def test_each_run_is_new_and_records_what_was_run(project, images, detector):
    first = run_detection(project, "fake", conf=0.1, iou=0.5, batch_size=4, device="cpu")
    second = run_detection(project, "fake", conf=0.1, batch_size=4, device="cpu", run_name="again")
    assert (first.name, second.name) == ("fake-1", "again") and first.id != second.id
    assert first.status == "complete" and first.device == "cpu"
    assert first.params["conf"] == 0.1 and first.params["iou"] == 0.5
    assert first.stats["items"] == 6 and first.stats["partial"] is False
    assert first.stats["seconds_per_image"] is not None
    stored = project.annotations(source=first.id)
    assert len(stored) == first.stats["predictions"] == 5 + 6  # brightness 0 scores below 0.1; "other" always
    assert len(project.annotations(source=second.id)) == len(stored)  # the first run was not overwritten
    assert project.annotations(source="human") == []
    assert all(a.shape.y2 <= 48 for a in stored)  # boxes are clipped to the image
    assert detector.calls == [4, 2, 4, 2]


def test_progress_reaches_the_total_with_an_eta(project, images, detector):
    seen = []
    run_detection(project, "fake", batch_size=2, device="cpu", progress=lambda d, t, eta: seen.append((d, t, eta)))
    assert [d for d, _, _ in seen] == [0, 2, 4, 6] and {t for _, t, _ in seen} == {6}
    assert seen[0][2] is None and seen[-1][2] == 0


def test_cancel_leaves_a_consistent_clearly_partial_run(project, images, detector):
    batches = []
    run = run_detection(
        project, "fake", batch_size=2, device="cpu", classes=["thing"], conf=0.0,
        progress=lambda d, t, eta: batches.append(d), cancel=lambda: len(batches) >= 3,
    )
    assert run.status == "cancelled" and run.finished_at is not None
    assert run.stats["partial"] is True and run.stats["items"] == 4 and run.stats["items_planned"] == 6
    assert len(project.annotations(source=run.id)) == run.stats["predictions"] == 4


def test_a_failure_marks_the_run_failed_and_keeps_earlier_batches(project, images, detector):
    detector.fail_on_call = 2
    with pytest.raises(RuntimeError, match="out of memory"):
        run_detection(project, "fake", batch_size=3, conf=0.0, device="cpu")
    (run,) = project.runs()
    assert run.status == "failed" and "out of memory" in run.stats["error"]
    assert len(project.annotations(source=run.id)) == run.stats["predictions"] == 6  # first batch kept


def test_bad_weights_are_one_clear_error_and_create_no_run(project, images, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a checkpoint" * 20)
    with pytest.raises(WeightsError, match="not a valid PyTorch checkpoint"):
        run_detection(project, "yolo", weights=str(garbage), device="cpu")
    with pytest.raises(WeightsError, match="not found"):
        run_detection(project, "yolo", weights=str(tmp_path / "missing.pt"), device="cpu")
    assert project.runs() == []


def test_bad_parameters_are_refused_before_anything_runs(project, images, detector):
    with pytest.raises(StudioError, match="confidence and IoU"):
        run_detection(project, "fake", conf=1.5, device="cpu")
    with pytest.raises(StudioError, match="--every"):
        run_detection(project, "fake", every_n=0, device="cpu")
    with pytest.raises(StudioError, match="A:B"):
        parse_frame_range("12")
    assert parse_frame_range("5:") == (5, None) and parse_frame_range(":9") == (0, 9)
    assert project.runs() == [] and detector.calls == []


def test_video_every_nth_frame_within_a_range(project, tmp_path, detector):
    (video,) = add_paths(project, [write_brightness_video(tmp_path / "clip.avi")]).added
    run = run_detection(project, "fake", every_n=3, frame_range=(2, 11), classes=["thing"], conf=0.0, device="cpu")
    stored = project.annotations(source=run.id)
    assert [a.frame for a in stored] == [2, 5, 8]
    # the right frames were decoded: frame i has brightness 20 * i
    assert [round(a.score * 255 / 20) for a in stored] == [2, 5, 8]
    assert run.stats["items"] == 3 and stored[0].media_id == video.id


def test_accept_one_above_threshold_per_class_and_undo(project, images, detector):
    run = run_detection(project, "fake", conf=0.0, device="cpu")
    thing = project.find_label("thing")
    other = project.find_label("other")
    strong = accept_predictions(project, run.id, min_score=0.5, label_ids=[thing.id])
    assert len(strong) == 3 and all(a.is_human and a.label_id == thing.id for a in strong)  # 150, 200, 250
    assert accept_predictions(project, run.id, min_score=0.5, label_ids=[thing.id]) == []  # never twice
    one = project.annotations(source=run.id, label_ids=[other.id])[0]
    (single,) = accept_predictions(project, run.id, annotation_ids=[one.id])
    assert single.shape == one.shape and single.attributes["accepted_from"]["annotation"] == one.id
    assert len(project.annotations(source="human")) == 4
    assert undo_accept(project, strong) == 3
    assert [a.id for a in project.annotations(source="human")] == [single.id]
    assert len(project.annotations(source=run.id)) == 12  # predictions untouched


def test_cli_predict_and_accept(project, images, detector, capsys):
    root = str(project.root)
    assert main(["predict", root, "--model", "fake", "--run", "cli", "--conf", "0.5", "--device", "cpu"]) == 0
    assert "run 'cli'" in capsys.readouterr().out
    assert main(["accept", root, "--run", "cli", "--classes", "thing"]) == 0
    assert "accepted 3 predictions" in capsys.readouterr().out
    assert main(["predict", root, "--model", "fake", "--frames", "x"]) == 1
    assert "A:B" in capsys.readouterr().err
    assert main(["accept", root, "--run", "cli", "--classes", "ghost"]) == 1
    assert "no label ghost" in capsys.readouterr().err

