"""Predictions keep a detector's masks; bad input to `predict` is one error and leaves no run behind."""

from __future__ import annotations

import numpy as np
import pytest

from studio.cli.main import main
from studio.core import geometry
from studio.core.errors import StudioError
from studio.core.shapes import Box, Mask
from studio.io.media import add_paths
from studio.jobs.predict import run_detection
from studio.models import registry
from studio.models.protocols import Detection, PluginSpec
from tests.conftest import write_image


class MaskDetector:
    """One object per image: a box and, inside it, a disc mask (at half resolution, as some models give)."""

    class_names = ("blob",)

    def detect(self, images, *, classes=None, conf=0.25, iou=0.7):
        results = []
        for image in images:
            h, w = image.shape[:2]
            small = np.zeros((h // 2, w // 2), dtype=bool)
            yy, xx = np.mgrid[: h // 2, : w // 2]
            small[(yy - 8) ** 2 + (xx - 10) ** 2 <= 36] = True
            results.append([Detection(Box(6, 2, 34, 30), "blob", 0.9, small)])
        return results


@pytest.fixture
def fake_plugins(monkeypatch) -> None:
    spec = PluginSpec(id="masks", family="test", task="detect", title="masks", load=lambda **_: MaskDetector())
    real = registry._discover()[0]
    monkeypatch.setattr(registry, "_discover", lambda: ({**real, "masks": spec}, {}))
    monkeypatch.setattr(registry, "MODEL_CACHE", registry.ModelCache(2))


def test_masks_of_a_detector_are_stored_with_its_box(project, tmp_path, fake_plugins) -> None:
    add_paths(project, [write_image(tmp_path / "a.png", 64, 48)])
    run = run_detection(project, "masks", device="cpu")
    [prediction] = project.annotations(source=run.id)
    assert isinstance(prediction.shape, Mask) and prediction.shape.size == (48, 64)
    pixels = geometry.decode_mask(prediction.shape)
    assert pixels[16, 20] and not pixels[0, 0] and 400 < pixels.sum() < 600  # the disc, scaled to the image
    assert prediction.bbox == (6, 2, 28, 28)  # the detector's own box is kept for box metrics


@pytest.mark.slow
def test_a_yolo_seg_model_gives_masks(project, tmp_path) -> None:
    rng = np.random.default_rng(0)
    import cv2

    path = tmp_path / "noise.jpg"
    cv2.imwrite(str(path), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    add_paths(project, [path])
    run = run_detection(project, "yolo", weights="yolo11n-seg.yaml", conf=0.0, device="cpu")
    shapes = [a.shape for a in project.annotations(source=run.id)]
    assert shapes and any(isinstance(s, Mask) for s in shapes)


def test_a_class_the_model_lacks_is_an_error_and_leaves_no_run(project, tmp_path, capsys) -> None:
    add_paths(project, [write_image(tmp_path / "a.png")])
    with pytest.raises(StudioError, match="no class dog"):
        run_detection(project, "opencv-haar", classes=["dog"], device="cpu")
    assert project.runs() == []
    assert main(["predict", str(project.root), "--model", "opencv-haar", "--classes", "dog"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no class dog" in err and "face" in err
    assert project.runs() == []


def test_a_frame_range_outside_the_video_is_an_error(project, tmp_path, capsys) -> None:
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    add_paths(project, [path])
    assert main(["predict", str(project.root), "--model", "opencv-haar", "--frames", "100:200"]) == 1
    assert "5 frames" in capsys.readouterr().err
    assert project.runs() == []
