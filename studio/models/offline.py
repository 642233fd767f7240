"""No network behind the user's back: the configuration every ultralytics code path applies before importing it.

ultralytics checks for updates and reaches its hub when imported online, writes a settings file into the
user's config folder, and fetches Arial.ttf the first time it plots. Before its first import, `configure_ultralytics`
sets YOLO_OFFLINE=1 (unless the user sets STUDIO_ULTRALYTICS_ONLINE=1), points YOLO_CONFIG_DIR into Studio's
data dir, and installs matplotlib's DejaVu Sans there under the names ultralytics would download. The detector
and SAM plugins and studio.train all call it, so no path into ultralytics forgets it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from studio.models.weights import weights_dir

ONLINE_ENV = "STUDIO_ULTRALYTICS_ONLINE"


def configure_ultralytics() -> None:
    """Make ultralytics quiet on the network and keep its files in Studio's folder (see the module docstring)."""
    if os.environ.get(ONLINE_ENV, "").strip() not in {"1", "true", "yes"}:
        os.environ["YOLO_OFFLINE"] = "1"
    config = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(weights_dir().parent / "ultralytics")))
    fonts = config / "Ultralytics"
    if not (fonts / "Arial.ttf").is_file():
        import matplotlib

        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        fonts.mkdir(parents=True, exist_ok=True)
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            shutil.copy(source, fonts / name)
