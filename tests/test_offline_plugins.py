"""Every model plugin's load path, run the way a user's machine runs it: a fresh HOME, none of the test
suite's environment, and the network blocked. Nothing may try to connect, and nothing may be written
outside Studio's own folders (ultralytics' settings file and matplotlib's font cache included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Installed before anything else runs in the child: every connection attempt is refused and recorded.
SITECUSTOMIZE = '''
import os, socket
def _refuse(*args, **kwargs):
    with open(os.environ["NETWORK_LOG"], "a") as log:
        log.write(repr(args[:2]) + "\\n")
    raise OSError("network blocked by the test")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
'''

LOAD_EVERY_PLUGIN = '''
import sys, numpy as np
from studio.models.registry import load_model
image = np.zeros((64, 64, 3), np.uint8)
load_model("opencv-haar").detect([image])
load_model("grabcut").encode(image)
load_model("mobile-sam", weights=sys.argv[1], device="cpu")  # first: its own path must configure ultralytics
load_model("yolo", weights="yolo11n.yaml", device="cpu").detect([image])
print("loaded")
'''

STUDIO_FOLDERS = (".local/share/studio", ".cache/studio", ".config/studio")


@pytest.fixture(scope="module")
def mobile_sam_checkpoint(tmp_path_factory) -> Path:
    import torch
    from ultralytics.models.sam.build import build_mobile_sam

    path = tmp_path_factory.mktemp("weights") / "mobile_sam.pt"
    torch.save(build_mobile_sam(None).state_dict(), path)
    return path


@pytest.mark.slow
def test_plugins_load_offline_and_write_only_into_studios_folders(tmp_path, mobile_sam_checkpoint):
    home, hooks = tmp_path / "home", tmp_path / "hooks"
    home.mkdir()
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    network_log = tmp_path / "network.log"
    keep = {"PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {"HOME": str(home), "PYTHONPATH": str(hooks), "NETWORK_LOG": str(network_log), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", LOAD_EVERY_PLUGIN, str(mobile_sam_checkpoint)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-3000:]
    assert not network_log.exists(), network_log.read_text()
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    outside = [p for p in written if not p.startswith(STUDIO_FOLDERS)]
    assert written, "the plugins wrote nothing at all: the test did not exercise their set-up"
    assert outside == [], json.dumps(outside)
