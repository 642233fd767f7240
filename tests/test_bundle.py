"""Smoke test of a built desktop bundle (packaging/build_bundle.sh), when STUDIO_BUNDLE names its folder.

Building the bundle takes many minutes, so CI does not build it; this runs against one built by hand.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BUNDLE = os.environ.get("STUDIO_BUNDLE")


@pytest.mark.skipif(not BUNDLE, reason="set STUDIO_BUNDLE to a folder built by packaging/build_bundle.sh")
def test_the_frozen_app_renders_the_demo_window(tmp_path):
    executable = Path(BUNDLE or "") / "studio"
    shot = tmp_path / "demo.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([executable, "demo", str(tmp_path / "demo"), "--screenshot", str(shot)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    models = subprocess.run([executable, "models"], env=env, capture_output=True, text=True, timeout=300)
    assert "opencv-haar" in models.stdout and "grabcut" in models.stdout
