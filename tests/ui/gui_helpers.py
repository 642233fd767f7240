"""GUI test helpers: a main-window factory fixture on a temporary project, with settings and HOME isolated,
and mouse helpers that address the canvas in image pixels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import write_image
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from studio.db import Project
from studio.ui.canvas import Canvas
from studio.ui.main_window import MainWindow


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GUI test reads or writes the person's own settings."""
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def make_project(root: Path, images: int = 3, *, size: tuple[int, int] = (160, 120), video_frames: int = 0) -> Path:
    """A project with `images` noise images of (width, height), optionally a video, and two labels."""
    import cv2
    import numpy as np

    from studio.io.media import add_paths

    for i in range(images):
        write_image(root / "media" / f"img{i}.jpg", *size, seed=i)
    if video_frames:
        writer = cv2.VideoWriter(str(root / "media" / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
        for frame in range(video_frames):
            writer.write(np.full((size[1], size[0], 3), 10 * frame, np.uint8))
        writer.release()
    with Project.create(root) as project:
        add_paths(project, [root / "media"])
        project.ensure_label("cat")
        project.ensure_label("dog")
    return root


WindowFactory = Callable[..., MainWindow]


@pytest.fixture
def make_window(qtbot, tmp_path: Path) -> Iterator[WindowFactory]:
    """Build a shown MainWindow on a project (a new one by default), its first image loaded."""
    windows: list[MainWindow] = []

    def make(root: Path | None = None, **kwargs: object) -> MainWindow:
        root = root if root is not None else make_project(tmp_path / "project", **kwargs)  # type: ignore[arg-type]
        window = MainWindow(Project.open(root))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.canvas.image is not None and window.annotations is not None, timeout=5000)
        wait_shown(qtbot, window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def wait_shown(qtbot, window: MainWindow) -> None:
    """Wait until the canvas shows the current media's pixels (frames decode on a worker thread)."""
    def loaded() -> bool:
        return (
            window.media is not None
            and window.canvas.image is not None
            and (window.canvas.image.height(), window.canvas.image.width()) == window.media.size
            and window.frame_reader.idle()
        )

    qtbot.waitUntil(loaded, timeout=5000)
    QApplication.processEvents()


def send_mouse(
    canvas: Canvas,
    kind: QEvent.Type,
    image_xy: tuple[float, float],
    *,
    button: Qt.MouseButton = Qt.MouseButton.LeftButton,
    held: bool = True,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Send a mouse event at an image position (QTest's mouseMove cannot hold a button down)."""
    local = canvas.mapFromScene(QPointF(*image_xy))
    global_pos = canvas.viewport().mapToGlobal(local)
    buttons = button if held and kind != QEvent.Type.MouseButtonRelease else Qt.MouseButton.NoButton
    event = QMouseEvent(kind, QPointF(local), QPointF(global_pos), button, buttons, modifiers)
    QApplication.sendEvent(canvas.viewport(), event)


def drag(canvas: Canvas, start: tuple[float, float], end: tuple[float, float], steps: int = 4, **kwargs: object) -> None:
    send_mouse(canvas, QEvent.Type.MouseButtonPress, start, **kwargs)  # type: ignore[arg-type]
    for i in range(1, steps + 1):
        t = i / steps
        point = (start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
        send_mouse(canvas, QEvent.Type.MouseMove, point, **kwargs)  # type: ignore[arg-type]
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, end, **kwargs)  # type: ignore[arg-type]


def click(canvas: Canvas, point: tuple[float, float], **kwargs: object) -> None:
    send_mouse(canvas, QEvent.Type.MouseButtonPress, point, **kwargs)  # type: ignore[arg-type]
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, point, **kwargs)  # type: ignore[arg-type]

