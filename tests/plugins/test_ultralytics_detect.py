"""The ultralytics plugin: offline set-up, class filters, prompts that never fall back silently, unsafe files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from studio_plugins import ultralytics_detect as ud

from studio.core.errors import StudioError
from studio.models import offline
from studio.models.weights import WeightsError


@pytest.fixture(scope="module")
def yolo() -> ud.UltralyticsDetector:
    return ud.SPECS[0].load(weights="yolo11n.yaml", device="cpu")


def test_configure_ultralytics_sets_offline_mode_and_a_private_font(tmp_path, monkeypatch):
    monkeypatch.delenv("YOLO_CONFIG_DIR")
    monkeypatch.delenv("YOLO_OFFLINE")
    monkeypatch.delenv(offline.ONLINE_ENV, raising=False)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    offline.configure_ultralytics()
    assert os.environ["YOLO_OFFLINE"] == "1"
    fonts = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    assert fonts.is_relative_to(tmp_path) and (fonts / "Arial.ttf").stat().st_size > 10_000

    monkeypatch.delenv("YOLO_OFFLINE")
    monkeypatch.setenv(offline.ONLINE_ENV, "1")  # the documented opt-in
    offline.configure_ultralytics()
    assert "YOLO_OFFLINE" not in os.environ


def test_class_filter_and_unknown_class(yolo):
    image = np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    (everything,) = yolo.detect([image], conf=0.0)
    wanted = sorted({d.label for d in everything})[:2]
    (found,) = yolo.detect([image], classes=wanted, conf=0.0)
    assert found and {d.label for d in found} == set(wanted)
    with pytest.raises(StudioError, match=r"no class giraffe \(it knows: 0, 1, 2"):
        yolo.detect([image], classes=["giraffe"])


def test_open_vocabulary_model_needs_a_prompt_and_never_falls_back():
    world = ud.SPECS[2].load(weights="yolov8s-worldv2.yaml", device="cpu")
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(StudioError, match="needs the classes to look for"):
        world.detect([image])
    # offline, ultralytics' CLIP text model (package and weights) cannot be had: an error, not the 80 COCO classes
    with pytest.raises(WeightsError, match=r"text model clip:ViT-B/32 .* not available"):
        world.detect([image], classes=["person"])


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, evil)
    with pytest.raises(WeightsError, match=r"(posix|os)\.system.*STUDIO_TRUST_PICKLES"):
        ud.SPECS[0].load(weights=str(evil), device="cpu")


def test_unknown_model_config_is_a_clear_error():
    with pytest.raises(WeightsError, match="yolo99z.yaml cannot be loaded as a YOLO"):
        ud.SPECS[0].load(weights="yolo99z.yaml", device="cpu")
