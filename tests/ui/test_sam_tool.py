"""The click-segmentation tool without a canvas: clicks in, previews out, Enter stores a mask annotation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt, QThreadPool
from PySide6.QtGui import QKeyEvent
from studio_plugins.grabcut import GrabCutSegmenter

from studio.core.geometry import decode_mask
from studio.core.shapes import Mask, Polygon
from studio.db import Project
from studio.io.media import add_paths
from studio.models.embedding_cache import EmbeddingCache
from studio.models.protocols import MaskCandidate
from studio.ui.sam_tool import SamTool

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NO_MODIFIER, SHIFT = Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier


def disk_scene() -> tuple[np.ndarray, np.ndarray]:
    image = np.random.default_rng(2).integers(100, 150, (120, 160, 3), dtype=np.uint8)
    truth = np.zeros((120, 160), dtype=np.uint8)
    cv2.circle(truth, (70, 60), 28, 1, -1)
    image[truth.astype(bool)] = (40, 200, 40)
    return image, truth.astype(bool)


def key(code: Qt.Key, modifiers: Qt.KeyboardModifier = NO_MODIFIER) -> QKeyEvent:
    return QKeyEvent(QEvent.Type.KeyPress, code, modifiers)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture
def scene(project: Project, tmp_path: Path):
    image, truth = disk_scene()
    cv2.imwrite(str(tmp_path / "disk.png"), image)
    (media,) = add_paths(project, [tmp_path / "disk.png"]).added
    return project, media, image, truth


def make_tool(project: Project, segmenter, tmp_path: Path) -> SamTool:
    pool = QThreadPool()
    pool.setMaxThreadCount(2)
    tool = SamTool(project, segmenter, model_id="test", cache=EmbeddingCache(tmp_path / "cache"), pool=pool)
    tool.set_label(project.ensure_label("blob").id)
    return tool


def click(tool: SamTool, x: float, y: float, *, button=LEFT, modifiers=NO_MODIFIER) -> None:
    tool.press(x, y, button=button, modifiers=modifiers)
    tool.release(x, y)


def test_click_preview_then_enter_stores_a_mask_annotation(scene, qtbot, tmp_path):
    project, media, image, truth = scene
    tool = make_tool(project, GrabCutSegmenter(), tmp_path)
    encoding = []
    tool.encoding_changed.connect(encoding.append)
    with qtbot.waitSignal(tool.encoding_changed, timeout=5000, check_params_cb=lambda busy: not busy):
        tool.set_image(media, image)
    assert encoding == [True, False]
    with qtbot.waitSignal(tool.preview_changed, timeout=5000) as preview:
        click(tool, 70, 60)
    mask, index, score = preview.args
    assert mask.shape == truth.shape and index == 0 and score > 0 and iou(mask, truth) > 0.8
    with qtbot.waitSignal(tool.accepted, timeout=1000):
        assert tool.handle_key(key(Qt.Key.Key_Return))
    (stored,) = project.annotations(media.id)
    assert isinstance(stored.shape, Mask) and np.array_equal(decode_mask(stored.shape), mask)
    assert stored.label_id == tool.label_id and tool.clicks == []


def test_drag_gives_a_box_and_polygon_output_follows_the_tolerance(scene, qtbot, tmp_path):
    project, media, image, truth = scene
    tool = make_tool(project, GrabCutSegmenter(), tmp_path)
    tool.set_image(media, image)
    tool.set_output("polygon", tolerance=2.0)
    with qtbot.waitSignal(tool.preview_changed, timeout=5000) as preview:
        tool.press(38, 28, button=LEFT, modifiers=NO_MODIFIER)
        tool.release(102, 92)
    assert tool.box is not None and tool.clicks == [] and iou(preview.args[0], truth) > 0.9
    stored = tool.accept()
    assert isinstance(stored.shape, Polygon) and 10 <= len(stored.shape.parts[0]) <= 40


class ThreeMasks:
    """A segmenter answering 3 nested squares around the last positive click; slow on request."""

    def __init__(self) -> None:
        self.delay: dict[int, float] = {}
        self.calls = self.encodes = 0
        self.lock = threading.Lock()

    def encode(self, image):
        self.encodes += 1
        return image.shape[:2]

    def predict(self, embedding, *, points=None, point_labels=None, box=None, multimask=True):
        with self.lock:
            self.calls += 1
        time.sleep(self.delay.get(len(points), 0.0))
        x, y = (int(v) for v in points[point_labels == 1][-1])
        out = []
        for size, score in ((4, 0.5), (8, 0.9), (12, 0.7)):
            mask = np.zeros(embedding, dtype=bool)
            mask[max(y - size, 0) : y + size, max(x - size, 0) : x + size] = True
            out.append(MaskCandidate(mask, score))
        return out if multimask else out[1:2]


def test_tab_cycles_candidates_best_first_and_escape_clears(scene, qtbot, tmp_path):
    project, media, image, _ = scene
    tool = make_tool(project, ThreeMasks(), tmp_path)
    tool.set_image(media, image)
    with qtbot.waitSignal(tool.preview_changed, timeout=3000) as first:
        click(tool, 50, 50)
    shown = [(first.args[1], first.args[2])]
    for _ in range(3):
        with qtbot.waitSignal(tool.preview_changed, timeout=1000) as cycled:
            assert tool.handle_key(key(Qt.Key.Key_Tab))
        shown.append((cycled.args[1], cycled.args[2]))
    assert shown == [(0, 0.9), (1, 0.7), (2, 0.5), (0, 0.9)]
    with qtbot.waitSignal(tool.preview_changed, timeout=1000) as cleared:
        assert tool.handle_key(key(Qt.Key.Key_Escape))
    assert cleared.args[0] is None and tool.clicks == [] and tool.accept() is None


def test_ctrl_z_removes_the_last_click_and_negative_clicks_are_recorded(scene, qtbot, tmp_path):
    project, media, image, _ = scene
    tool = make_tool(project, ThreeMasks(), tmp_path)
    tool.set_image(media, image)
    with qtbot.waitSignal(tool.preview_changed, timeout=3000):
        click(tool, 50, 50)
    with qtbot.waitSignal(tool.preview_changed, timeout=3000):
        click(tool, 90, 90, button=RIGHT)
    with qtbot.waitSignal(tool.preview_changed, timeout=3000):
        click(tool, 20, 20, modifiers=SHIFT)
    assert [c.positive for c in tool.clicks] == [True, False, False]
    with qtbot.waitSignal(tool.preview_changed, timeout=3000):
        assert tool.handle_key(key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier))
    assert len(tool.clicks) == 2
    assert tool.segmenter.encodes == 1  # one encoder run for the image, however many clicks
    tool.clear()
    assert not tool.handle_key(key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier))  # window's undo takes it


def test_answer_to_a_superseded_click_is_never_shown(scene, qtbot, tmp_path):
    project, media, image, _ = scene
    segmenter = ThreeMasks()
    segmenter.delay = {1: 0.5}  # the first click's answer arrives after the second's
    tool = make_tool(project, segmenter, tmp_path)
    tool.set_image(media, image)
    previews = []
    tool.preview_changed.connect(lambda mask, index, score: previews.append(mask))
    click(tool, 30, 30)
    qtbot.wait(50)
    click(tool, 100, 80)
    qtbot.waitUntil(lambda: segmenter.calls >= 2 and tool.pool.activeThreadCount() == 0, timeout=5000)
    qtbot.wait(50)
    assert len(previews) == 1 and previews[0][80, 100] and not previews[0][30, 30]


def test_accept_without_a_label_says_so(scene, qtbot, tmp_path):
    project, media, image, _ = scene
    tool = make_tool(project, ThreeMasks(), tmp_path)
    tool.label_id = None
    tool.set_image(media, image)
    with qtbot.waitSignal(tool.preview_changed, timeout=3000):
        click(tool, 50, 50)
    with qtbot.waitSignal(tool.failed, timeout=1000) as failed:
        assert tool.accept() is None
    assert "choose a label" in failed.args[0] and project.annotations(media.id) == []
