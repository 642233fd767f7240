"""The Ask dock against a loopback chat server: the answer streams in, is stored, can be stopped, copied into
the caption, a tag or an attribute (and undone); Test catches a server that ignores images; the main window
tells the dock what is shown and selected."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from chat_server import COLOURS_BGR, serve
from PySide6.QtGui import QUndoStack

from studio.core.shapes import Box
from studio.core.types import Annotation
from studio.db import Project
from studio.io.media import add_paths
from studio.ui.ask_panel import AskPanel

pytest_plugins = ("gui_helpers",)  # the make_window fixture and isolated settings
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def red_media(project: Project, tmp_path: Path) -> int:
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), np.full((40, 60, 3), COLOURS_BGR["red"], np.uint8))
    return add_paths(project, [path]).added[0].id


def _panel(qtbot, project: Project, url: str) -> AskPanel:
    panel = AskPanel(project, QUndoStack())
    qtbot.addWidget(panel)
    panel.kind.setCurrentIndex(1)
    panel.server.setText(url)
    panel.server_model.setText("llava")
    return panel


def _ask(qtbot, panel: AskPanel, question: str) -> None:
    panel.question.setText(question)
    with qtbot.waitSignal(panel.answered, timeout=20000):
        panel.ask_button.click()


def test_an_answer_streams_in_is_stored_and_copied_with_undo(qtbot, project: Project, red_media: int) -> None:
    with serve(delay=0.01) as server:
        panel = _panel(qtbot, project, server.url)
        panel.set_current(red_media)
        pieces: list[str] = []
        with qtbot.waitSignal(panel.answered, timeout=20000) as answered:
            panel.question.setText("What colour?")
            panel.ask_button.click()
            qtbot.waitUntil(lambda: bool(panel.streaming) and pieces.append(panel.streaming) is None, timeout=10000)
        _ask(qtbot, panel, "Sure?")
    answer = answered.args[0]
    assert answer.answer == "The image is red." and pieces[0] != answer.answer  # shown while it streamed
    assert "The image is red." in panel.history.toPlainText() and "Sure?" in panel.history.toPlainText()
    assert [a.question for a in project.answers(red_media)] == ["What colour?", "Sure?"]
    panel.to_caption.click()
    panel.to_tag.click()
    assert project.get_media(red_media).caption == "The image is red." and project.tags(red_media) == ["The image is red."]
    panel.undo_stack.undo()
    panel.undo_stack.undo()
    assert project.get_media(red_media).caption is None and project.tags(red_media) == []


def test_a_box_question_and_its_answer_as_an_attribute(qtbot, project: Project, red_media: int) -> None:
    label = project.ensure_label("thing")
    box = project.add_annotation(Annotation(red_media, label.id, Box(0, 0, 20, 20)))
    with serve() as server:
        panel = _panel(qtbot, project, server.url)
        panel.set_current(red_media)
        panel.use_box.setChecked(True)
        panel.set_selection([box.id])
        _ask(qtbot, panel, "Colour of the box?")
    assert project.answers(red_media)[0].annotation_id == box.id
    panel.attribute.setText("colour")
    panel.to_attribute.click()
    assert project.get_annotation(box.id).attributes == {"colour": "The image is red."}
    panel.undo_stack.undo()
    assert project.get_annotation(box.id).attributes == {}


def test_stop_keeps_what_arrived_as_a_cancelled_answer(qtbot, project: Project, red_media: int) -> None:
    with serve(answer=lambda body: " ".join(["word"] * 300), delay=0.02) as server:
        panel = _panel(qtbot, project, server.url)
        panel.set_current(red_media)
        with qtbot.waitSignal(panel.answered, timeout=20000) as answered:
            panel.question.setText("Talk.")
            panel.ask_button.click()
            qtbot.waitUntil(lambda: bool(panel.streaming), timeout=10000)
            panel.stop_button.click()
    assert answered.args[0].status == "cancelled" and 0 < len(answered.args[0].answer.split()) < 300


def test_the_test_button_says_when_the_server_does_not_see_images(qtbot, project: Project) -> None:
    with serve(mode="blind") as server:
        panel = _panel(qtbot, project, server.url)
        panel.test_button.click()
        qtbot.waitUntil(lambda: "did not see the image" in panel.status.text(), timeout=20000)
    with serve() as server:
        panel.server.setText(server.url)
        panel.test_button.click()
        qtbot.waitUntil(lambda: panel.status.text().startswith("OK: shown a plain red image"), timeout=20000)


def test_the_window_tells_the_dock_what_is_shown_and_selected(qtbot, make_window) -> None:
    window = make_window()
    panel = window.ask_panel
    assert panel is not None and panel.media_id == window.media.id
    second = window._require().list_media()[1].id
    window.show_media(second)
    qtbot.waitUntil(lambda: panel.media_id == second, timeout=5000)
    label = window._require().ensure_label("thing")
    box = window._require().add_annotation(Annotation(second, label.id, Box(1, 1, 30, 30)))
    window.refresh_annotations()
    window.canvas.select([box.id])
    assert panel.selection == [box.id]
