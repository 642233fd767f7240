"""What the ultralytics plugin and the trainer share without importing ultralytics: staying off the
network, and which classes an ultralytics checkpoint may name.

Before ultralytics is first imported (in this process, or in a training worker, which inherits the
environment), `configure_ultralytics_offline` sets YOLO_OFFLINE=1 (no hub, no update checks) unless the user
sets STUDIO_ULTRALYTICS_ONLINE=1, points YOLO_CONFIG_DIR at Studio's data dir, and installs matplotlib's
DejaVuSans as the Arial.ttf ultralytics would otherwise fetch when it plots or trains.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from studio.models.weights import weights_dir

ONLINE_ENV = "STUDIO_ULTRALYTICS_ONLINE"
CHECKPOINT_GLOBALS = ("ultralytics.", "torch.", "collections.", "numpy.", "_codecs.", "builtins.set", "builtins.slice",
                      "types.SimpleNamespace", "pathlib.", "datetime.", "argparse.Namespace", "copyreg._reconstructor",
                      "builtins.object", "builtins.dict", "builtins.list", "builtins.tuple", "builtins.getattr")
"""What a YOLO checkpoint's pickle may name: the model's own classes and plain containers."""


def configure_ultralytics_offline() -> None:
    """Set ultralytics' environment before its first import (see the module docstring)."""
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
