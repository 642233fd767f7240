"""The Train dock: options from the form, live curves, cancel, and the new model selected in the Model dock.

The training call is replaced by a scripted one that reports like the worker does and registers a model in
the project (real training is tested in tests/train); what is tested here is the window's wiring.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from studio.train import detector
from studio.train.detector import TrainProgress, TrainResult

pytest_plugins = ("gui_helpers",)  # the make_window fixture and isolated settings


@pytest.fixture
def scripted_training(monkeypatch):
    calls: dict = {"gate": threading.Event()}

    def train_model(project, options, *, progress=None, cancel=lambda: False, validate=True):
        calls["options"] = options
        for epoch in (1, 2, 3):
            progress(TrainProgress(epoch, 3, batch=1, batches=2))
            if epoch == 2:
                calls["gate"].wait(5)
            if cancel():
                break
            progress(TrainProgress(epoch, 3, values={"train/box_loss": 2.0 / epoch, "metrics/mAP50(B)": 0.2 * epoch}))
        model = project.create_trained_model(name="fake-1", task="detect", plugin="yolo", base=options.model,
                                             params={}, split={"val": []})
        status = "cancelled" if cancel() else "complete"
        model = project.update_trained_model(model.id, status=status, weights="models/fake-1/best.pt",
                                             finished_at=datetime.now(UTC))
        return TrainResult(model)

    monkeypatch.setattr(detector, "train_model", train_model)
    monkeypatch.setattr("studio.ui.train_panel.train_model", train_model)
    return calls


def test_train_dock_plots_epochs_and_selects_the_new_model(make_window, qtbot, scripted_training):
    window = make_window()
    panel = window.train_panel
    panel.base.setCurrentText("yolo11n.yaml")
    panel.epochs.setValue(3)
    panel.split.setValue(0.75)
    scripted_training["gate"].set()
    with qtbot.waitSignal(panel.model_trained, timeout=10000) as trained:
        panel.train_button.click()
    assert trained.args[0] == "fake-1"
    options = scripted_training["options"]
    assert (options.model, options.epochs, options.split) == ("yolo11n.yaml", 3, 0.75)
    assert [h["metrics/mAP50(B)"] for h in panel.plot.history] == pytest.approx([0.2, 0.4, 0.6])
    assert "fake-1: complete" in panel.status.text() and panel.train_button.isEnabled()
    model_panel = window.model_panel
    assert model_panel.plugin.currentData() == "fake-1" and model_panel.trained()
    assert model_panel.arguments()["plugin_id"] == "fake-1" and model_panel.arguments()["weights"] is None
    assert not model_panel.weights.isEnabled()


def test_train_dock_cancel_stops_and_reports_cancelled(make_window, qtbot, scripted_training):
    window = make_window()
    panel = window.train_panel
    with qtbot.waitSignal(panel.model_trained, timeout=10000):
        panel.train_button.click()
        qtbot.waitUntil(lambda: "epoch 2/3" in panel.status.text(), timeout=5000)
        assert panel.cancel_button.isEnabled()
        panel.cancel_button.click()
        scripted_training["gate"].set()
    assert "fake-1: cancelled" in panel.status.text()
    assert len(panel.plot.history) == 1  # epoch 2 never finished
