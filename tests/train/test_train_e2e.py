"""Training for real, offline on the CPU: a tiny YOLO learns the generated squares of tests/squares.py from a
project's annotations, is registered as a model of the project, predicts through the CLI, exports to ONNX
with parity, and a cancelled training keeps a usable checkpoint that resumes.

One module-scoped training (~1 minute of CPU) serves the first tests; the cancel test trains its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from squares import FAST_RECIPE, IMAGE_SIZE, square_images, tiny_yolo_config

from studio.cli.main import main
from studio.core.geometry import iou
from studio.core.types import Annotation
from studio.db import Project
from studio.io.media import add_paths
from studio.models.weights import sha256_of
from studio.train.detector import TrainOptions, TrainProgress, train_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # training is minutes on a busy CPU

EPOCHS = 50


def _squares_project(root: Path) -> tuple[Project, dict[str, list]]:
    project = Project.create(root)
    truth = square_images(root / "images", 40, seed=0)
    media = add_paths(project, [root / "images"]).added
    label = project.ensure_label("square").id
    project.add_annotations([Annotation(m.id, label, box) for m in media for box in truth[m.name]])
    return project, truth


def _options(config: Path, **changes) -> TrainOptions:
    values = {
        "model": str(config), "epochs": EPOCHS, "imgsz": IMAGE_SIZE, "batch": 8, "device": "cpu", "workers": 0,
        "overrides": {**FAST_RECIPE, "val": False},
    }
    return TrainOptions(**{**values, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train") / "project"
    project, truth = _squares_project(root)
    config = tiny_yolo_config(root / "yolo11t.yaml")
    events: list[TrainProgress] = []
    result = train_model(project, _options(config, name="squares"), progress=events.append)
    yield project, truth, result, events, config
    project.close()


def test_training_registers_a_model_that_learned(trained):
    project, _, result, events, _ = trained
    model = project.find_trained_model("squares")
    assert model.status == "complete" and model.plugin == "yolo"
    weights = project.root / model.weights
    assert weights.is_relative_to(project.root / "models") and sha256_of(weights) == model.sha256
    assert model.params["epochs"] == EPOCHS and model.params["labels"] == ["square"]
    assert len(model.split["val"]) == 8 and len(model.split["train"]) == 32
    assert [h["epoch"] for h in model.history] == list(range(1, EPOCHS + 1))
    # losses of each epoch are stored (not compared: with few confident anchors early on they start low)
    assert {"train/box_loss", "train/cls_loss", "train/dfl_loss"} <= set(model.history[-1])
    # chance is ~0 for boxes placed at random; the squares are easy once learned
    assert model.metrics["val_map50"] > 0.6, model.metrics
    print("validation metrics", model.metrics)
    assert result.validation_run is not None and result.validation_run.params["media_ids"] == sorted(model.split["val"])
    assert any(e.values is None and e.batches == 4 for e in events)  # per-batch progress arrived
    assert result.previous is None and result.comparison is None


def test_trained_model_predicts_through_the_cli(trained, capsys):
    project, truth, *_ = trained
    assert main(["models", str(project.root), "--json"]) == 0
    listed = {p["id"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert listed["squares"]["ready"] and listed["squares"]["family"] == "project"

    val = project.find_trained_model("squares").split["val"]
    code = main(["predict", str(project.root), "--model", "squares", "--run", "cli", "--device", "cpu",
                 "--conf", "0.1", "--media", *map(str, val)])
    assert code == 0, capsys.readouterr().err
    run = project.find_run("cli")
    found = total = 0
    for media_id in val:
        predicted = [a.shape for a in project.annotations(media_id, source=run.id)]
        for box in truth[project.get_media(media_id).name]:
            total += 1
            found += any(iou(box, p) >= 0.5 for p in predicted)
    assert total == 16 and found / total > 0.7, f"recall {found}/{total}"


def test_onnx_export_matches_torch_and_runs_in_the_onnx_plugin(trained, capsys):
    project, truth, *_ = trained
    assert main(["export-model", str(project.root), "squares", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["images"] == 8
    assert report["max_box_diff"] <= 1e-3 and report["max_score_diff"] <= 1e-3
    onnx_file = Path(report["path"])
    assert onnx_file.suffix == ".onnx" and onnx_file.is_relative_to(project.root)

    from studio.jobs.predict import run_detection

    val = project.find_trained_model("squares").split["val"]
    torch_run = run_detection(project, "squares", media_ids=val, device="cpu", run_name="torch")
    onnx_run = run_detection(project, "onnx", weights=str(onnx_file), media_ids=val, device="cpu", run_name="ort")
    for media_id in val:
        torch_boxes = [a.shape for a in project.annotations(media_id, source=torch_run.id)]
        onnx_boxes = [a.shape for a in project.annotations(media_id, source=onnx_run.id)]
        assert len(torch_boxes) == len(onnx_boxes) > 0
        assert all(max(iou(b, o) for o in onnx_boxes) > 0.95 for b in torch_boxes)


def test_cancel_keeps_a_usable_checkpoint_and_resume_finishes(trained, capsys):
    project, *_ = trained
    cancelled_at: list[int] = []

    def cancel_in_epoch_two(event: TrainProgress) -> None:
        if event.values is None and event.epoch == 2 and not cancelled_at:
            cancelled_at.append(event.batch)

    # fine-tuned from the first model, as a user does after labelling more: it finds squares from the start
    first = project.root / project.find_trained_model("squares").weights
    result = train_model(
        project, _options(first, name="short", epochs=4, batch=4, overrides={**FAST_RECIPE}),
        progress=cancel_in_epoch_two, cancel=lambda: bool(cancelled_at),
    )
    model = result.model
    assert model.status == "cancelled"
    assert [h["epoch"] for h in model.history] == [1, 2]  # stopped within epoch 2, validated, saved
    assert "metrics/mAP50(B)" in model.history[-1]
    assert sha256_of(project.root / model.weights) == model.sha256
    # usable at once: it predicts, and was compared with the previous best on the same validation images
    assert result.previous is not None and result.previous.name == "squares"
    assert result.comparison is not None and len(result.comparison.images) == 8
    assert main(["predict", str(project.root), "--model", "short", "--device", "cpu", "--run", "from-cancelled"]) == 0

    capsys.readouterr()
    assert main(["train", str(project.root), "--resume", "short", "--no-validate", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # stdout holds only the document: the worker logs on stderr
    resumed = project.find_trained_model("short")
    assert printed == {"model": "short", "weights": str(project.root / resumed.weights), "status": "complete",
                       "metrics": resumed.metrics}
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.sha256 == sha256_of(project.root / resumed.weights) != model.sha256


def test_a_training_that_fails_at_once_leaves_the_project_as_it_was(tmp_path, capsys):
    project, _ = _squares_project(tmp_path / "project")
    broken = tmp_path / "yolo11b.yaml"
    broken.write_text("nc: 1\nbackbone: [[-1, 1, NoSuchLayer, [16]]]\nhead: []\n")
    code = main(["train", str(project.root), "--model", str(broken), "--epochs", "1", "--imgsz", "64",
                 "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "studio: error: training failed: " in err and err.strip().count("\n") == 0, err
    assert project.trained_models() == [] and project.split() == {} and project.get_setting("train.split") is None
    assert not (project.root / "models" / "yolo11b-1").exists()
    project.close()
