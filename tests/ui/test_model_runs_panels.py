"""The model dock runs a detector on a worker thread with progress and cancel; the runs dock shows, filters,
colours and accepts (with undo) what it found. A fake detector keeps it fast."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.core.shapes import Box
from studio.io.media import add_paths
from studio.models import registry
from studio.models.protocols import Detection, PluginSpec


class SlowDetector:
    """One 'thing' per image scoring brightness/255; waits on `gate` so a test can cancel mid-run."""

    class_names: Sequence[str] = ("thing",)

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    def detect(self, images, *, classes=None, conf=0.25, iou=0.7):
        self.gate.wait(10)
        return [
            [d for d in [Detection(Box(2, 2, 20, 20), "thing", float(im.mean()) / 255)] if d.score >= conf]
            for im in images
        ]


@pytest.fixture
def detector(monkeypatch) -> SlowDetector:
    fake = SlowDetector()
    spec = PluginSpec(id="fake", family="test", task="detect", title="Fake detector", load=lambda **_: fake)
    monkeypatch.setattr(registry, "_discover", lambda: ({"fake": spec}, {}))
    monkeypatch.setattr(registry, "MODEL_CACHE", registry.ModelCache(2))
    return fake


@pytest.fixture
def media(project, tmp_path) -> list[int]:
    import cv2

    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((32, 40, 3), 60 * i + 40, np.uint8))
        paths.append(path)
    return [m.id for m in add_paths(project, paths).added]


def test_model_panel_runs_all_media_and_reports_the_run(qtbot, project, media, detector):
    from studio.ui.model_panel import ModelPanel

    panel = ModelPanel(project)
    qtbot.addWidget(panel)
    panel.scope.setCurrentText("all media")
    panel.conf.setValue(0.0)
    with qtbot.waitSignal(panel.run_finished, timeout=20000) as finished:
        panel.run_button.click()
    run = project.get_run(finished.args[0])
    assert run.status == "complete" and run.stats["items"] == 4
    assert panel.run_button.isEnabled() and "complete" in panel.status.text()
    assert panel.progress.isHidden()  # no "0%" left under a finished run


def test_model_panel_cancel_keeps_a_partial_run(qtbot, project, media, detector):
    from studio.ui.model_panel import ModelPanel

    panel = ModelPanel(project)
    qtbot.addWidget(panel)
    panel.scope.setCurrentText("all media")
    panel.conf.setValue(0.0)
    detector.gate.clear()
    # batch size 8 > 4 images would finish in one call; run image by image instead
    panel.arguments = lambda base=panel.arguments: {**base(), "batch_size": 1}  # type: ignore[method-assign]
    with qtbot.waitSignal(panel.run_finished, timeout=20000) as finished:
        panel.run_button.click()
        assert panel.cancel_button.isEnabled()
        panel.cancel_button.click()
        detector.gate.set()
    run = project.get_run(finished.args[0])
    assert run.status == "cancelled" and run.stats["partial"] is True and run.stats["items"] < 4


def test_model_panel_explains_an_impossible_scope(qtbot, project, media, detector):
    from studio.ui.model_panel import ModelPanel

    panel = ModelPanel(project)
    qtbot.addWidget(panel)
    panel.scope.setCurrentText("current image")
    with qtbot.waitSignal(panel.run_failed) as failed:
        panel.run_button.click()
    assert "no image is shown" in failed.args[0] and project.runs() == []


def test_runs_panel_visibility_threshold_colour_accept_and_undo(qtbot, project, media, detector):
    from studio.jobs.predict import run_detection
    from studio.session import Session
    from studio.ui.runs_panel import RunsPanel

    run = run_detection(project, "fake", conf=0.0, device="cpu")
    session = Session()
    session.open(project)
    panel = RunsPanel(session)
    qtbot.addWidget(panel)
    assert panel.list.count() == 1 and panel.visible_runs() == []
    with qtbot.waitSignal(panel.visibility_changed):
        panel.set_visible(run.id, True)
    assert panel.visible_runs() == [run.id]

    panel.list.setCurrentRow(0)
    with qtbot.waitSignal(panel.threshold_changed) as changed:
        panel.slider.setValue(50)
    assert changed.args == [run.id, 0.5]

    accepted = panel.accept_above_threshold()
    assert len(accepted) == 2  # brightness 160 and 220 of 255 score above 0.5
    assert len(project.annotations(source="human")) == 2
    panel.undo_stack.undo()
    assert project.annotations(source="human") == []
    panel.undo_stack.redo()
    assert {a.id for a in project.annotations(source="human")} == {a.id for a in accepted}

    first = project.annotations(source=run.id)[0]
    panel.set_selected_annotations([first.id])
    assert [a.media_id for a in panel.accept_selected()] == [first.media_id]

    with qtbot.waitSignal(panel.color_changed):
        panel.set_color(run.id, "#123456")
    assert panel.colors()[run.id] == "#123456"
    assert panel.visible_runs() == [run.id]  # a refresh keeps what was shown


def test_model_panel_shows_a_busy_bar_while_the_model_loads_and_names_fit(qtbot, project, media, detector):
    from studio.ui.model_panel import ModelPanel

    panel = ModelPanel(project)
    qtbot.addWidget(panel)
    panel.resize(260, 500)
    panel.show()
    panel.scope.setCurrentText("all media")
    detector.gate.clear()
    with qtbot.waitSignal(panel.run_finished, timeout=20000):
        panel.run_button.click()
        assert panel.progress.isVisible() and panel.progress.maximum() == 0  # busy, not a frozen 0%
        detector.gate.set()
    panel.weights.setText("/a/very/long/folder/name/that/does/not/fit/weights.pt")
    assert panel.weights.toolTip().endswith("weights.pt")  # the whole path is one hover away
    assert panel.plugin.itemData(0, Qt.ItemDataRole.ToolTipRole) == panel.plugin.itemText(0)
