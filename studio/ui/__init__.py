"""PySide6 user interface: a view plus wiring; all data and model work is delegated to services.

Importing this package first neutralises a side effect of opencv-python 4.x: `import cv2` points
QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR at the Qt 5 plugins and fonts bundled inside cv2, which
would make PySide6 (Qt 6) fail to load its platform plugin under X11, or draw with the wrong fonts.
"""

from __future__ import annotations

import os
from pathlib import Path


def _undo_opencv_qt_environment() -> None:
    import cv2  # imported now so its environment changes happen before any QApplication exists

    cv2_dir = Path(cv2.__file__).resolve().parent
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(name)
        if value and Path(value).resolve().is_relative_to(cv2_dir):
            del os.environ[name]


_undo_opencv_qt_environment()
