"""Start the GUI: the QApplication, the main window on a project, and the `--screenshot` mode."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from studio.core.errors import StudioError
from studio.db.project import Project

ICON = resources.files("studio_resources") / "icons" / "studio.svg"
"""The window icon: package data, so it is found in a wheel and in a frozen bundle alike."""


def application() -> QApplication:
    """The running QApplication, created (Fusion style) if there is none yet."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    # Qt 6 scales for high-DPI by itself; pass fractional factors through so 150 % is not rounded to 200 %
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    app.setStyle("Fusion")
    app.setWindowIcon(QIcon(str(ICON)))  # a Traversable; a plain path once installed
    return app


def run(project: Project, *, screenshot: Path | None = None, timeout_ms: int = 15000) -> int:
    """Show the window on `project` and run the event loop; with `screenshot`, save a PNG once loaded and exit."""
    from studio.ui.main_window import MainWindow

    app = application()
    window = MainWindow(project)
    window.show()
    if screenshot is None:
        return app.exec()
    # a local event loop rather than app.exec(): quitting the application would leave a host process
    # (tests, scripts) with an application that no longer delivers queued signals
    loop = QEventLoop()
    result: list[int] = []

    def capture() -> None:
        if result:
            return
        image = window.grab()
        result.append(0 if not image.isNull() and image.save(str(screenshot), "PNG") else 1)
        loop.quit()

    window.media_shown.connect(lambda *_: QTimer.singleShot(300, capture))  # let docks and thumbnails settle
    if window.media is None:  # an empty project: nothing to wait for
        QTimer.singleShot(300, capture)
    QTimer.singleShot(timeout_ms, capture)
    loop.exec()
    window.close()
    if result != [0]:
        raise StudioError(f"could not write the screenshot {screenshot}")
    return 0
