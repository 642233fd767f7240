"""Every registered Detector honours the protocol: one list per image, valid boxes, scores in 0..1.

Weights are random-init model configs, so only shapes and types are checked here; tests/jobs proves a
trained model really detects. A new detector plugin must add its cheapest model to CHEAP_MODELS.
"""

from __future__ import annotations

import numpy as np
import pytest

from studio.models.protocols import Detection, Detector
from studio.models.registry import all_plugins, get_plugin

SMALL = 128  # inference size: the contract does not depend on it, and RT-DETR at 640 is slow on a CPU
CHEAP_MODELS: dict[str, dict[str, object]] = {
    "opencv-haar": {},
    "yolo": {"weights": "yolo11n.yaml", "imgsz": SMALL},
    "rtdetr": {"weights": "rtdetr-l.yaml", "imgsz": SMALL},
    "yolo-world": {"weights": "yolov8s-worldv2.yaml", "imgsz": SMALL},
    "yoloe": {"weights": "yoloe-11s.yaml", "imgsz": SMALL},
    "onnx": {},  # weights: the `onnx_file` fixture, a random-init YOLO11n exported at SMALL
}
PROMPT = ["white square", "dark blob"]


@pytest.fixture(scope="module")
def text_encoder():
    from studio_plugins.ultralytics_detect import open_clip_text_encoder

    return open_clip_text_encoder()  # CLIP ViT-B-32's architecture with random weights


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> str:
    from studio_plugins.ultralytics_detect import _ultralytics

    folder = tmp_path_factory.mktemp("onnx")  # saved first: ultralytics writes the export beside the model file
    _ultralytics().YOLO("yolo11n.yaml").save(str(folder / "yolo11n.pt"))
    return _ultralytics().YOLO(str(folder / "yolo11n.pt")).export(format="onnx", imgsz=SMALL, simplify=False)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    first = rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
    first[20:60, 30:70] = 255
    return [first, rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)]


def _detector_ids() -> list[str]:
    return [spec.id for spec in all_plugins(task="detect")]


@pytest.mark.slow
@pytest.mark.parametrize("plugin_id", _detector_ids())
def test_detector_contract(plugin_id, images, request):
    assert plugin_id in CHEAP_MODELS, f"add a cheap model for {plugin_id} to CHEAP_MODELS"
    spec = get_plugin(plugin_id)
    options = {"text_encoder": request.getfixturevalue("text_encoder")} if spec.options.get("text_prompt") else {}
    if plugin_id == "onnx":
        options["weights"] = request.getfixturevalue("onnx_file")
    detector = spec.load(device="cpu", **CHEAP_MODELS[plugin_id], **options)
    assert isinstance(detector, Detector)
    classes = PROMPT if spec.options.get("text_prompt") else None
    results = detector.detect(images, classes=classes, conf=0.0, iou=0.7)
    assert len(results) == len(images)
    names = set(classes or detector.class_names)
    for image, found in zip(images, results, strict=True):
        h, w = image.shape[:2]
        for det in found:
            assert isinstance(det, Detection)
            assert 0.0 <= det.score <= 1.0
            assert det.label in names
            assert -1 <= det.box.x1 <= det.box.x2 <= w + 1 and -1 <= det.box.y1 <= det.box.y2 <= h + 1
    if spec.options.get("text_prompt"):
        assert list(detector.class_names) == PROMPT  # the typed classes replaced the model's own
