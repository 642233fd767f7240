"""The Haar-cascade detector: finds a real face, stays quiet on noise, refuses bad options."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from studio_plugins import opencv_haar

from studio.core.errors import StudioError
from studio.models.protocols import Detector


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """Grace Hopper's portrait, shipped with matplotlib (512x600, one frontal face)."""
    import cv2
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.imread(str(path))
    return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # 256x300: fast enough


def test_finds_the_face_in_a_portrait(portrait):
    detector = opencv_haar.load()
    assert isinstance(detector, Detector)
    (found,) = detector.detect([portrait])
    assert len(found) == 1
    face = found[0]
    assert face.label == "face" and 0.5 <= face.score <= 1.0
    # the face sits in the upper middle of the picture and is about a third of its width
    h, w = portrait.shape[:2]
    assert 0.25 * w < (face.box.x1 + face.box.x2) / 2 < 0.75 * w
    assert (face.box.y1 + face.box.y2) / 2 < 0.6 * h
    assert 0.2 * w < face.box.width < 0.6 * w


def test_noise_has_no_faces():
    noise = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert opencv_haar.load().detect([noise]) == [[]]


def test_every_bundled_cascade_parses_and_runs():
    image = np.full((48, 64, 3), 90, dtype=np.uint8)
    image[10:30, 20:40] = 200
    detector = opencv_haar.load(min_neighbors=0)
    (found,) = detector.detect([image], classes=list(opencv_haar.CASCADES), conf=0.0)
    assert all(d.label in opencv_haar.CASCADES for d in found)
    for name in opencv_haar.CASCADES:
        assert not opencv_haar.load_cascade(name).empty()


def test_bad_options_are_one_clear_error():
    with pytest.raises(StudioError, match="unknown Haar cascade 'dog'"):
        opencv_haar.load().detect([np.zeros((32, 32, 3), np.uint8)], classes=["dog"])
    with pytest.raises(StudioError, match="takes no weights file"):
        opencv_haar.load(weights="face.pt")


def test_plugin_module_imports_no_heavy_library():
    import subprocess

    code = "import sys, studio_plugins.opencv_haar; print([m for m in ('torch', 'cv2', 'ultralytics') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_studio_predict_with_haar_stores_the_face(project, tmp_path, portrait, capsys):
    import cv2

    from studio.cli.main import main
    from studio.io.media import add_paths

    path = tmp_path / "portrait.jpg"
    cv2.imwrite(str(path), portrait)
    (media,) = add_paths(project, [path]).added
    assert main(["predict", str(project.root), "--model", "opencv-haar", "--run", "faces"]) == 0
    assert "1 predictions on 1 images" in capsys.readouterr().out
    (face,) = project.annotations(media.id, source=project.find_run("faces").id)
    assert project.get_label(face.label_id).name == "face" and face.score >= 0.5
