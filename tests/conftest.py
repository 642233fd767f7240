"""Shared fixtures. The environment is made offline and headless before any library is imported."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from studio.db import Project

# No test may reach the network: ultralytics' update checks and font download, the HF hub.
_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="studio-test-config-"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_CONFIG_DIR"] = str(_CONFIG_DIR)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["STUDIO_DATA_DIR"] = str(_CONFIG_DIR / "studio-data")
os.environ["STUDIO_CONFIG_DIR"] = str(_CONFIG_DIR / "studio-config")
os.environ["STUDIO_CACHE_DIR"] = str(_CONFIG_DIR / "studio-cache")


def _install_fonts() -> None:
    """ultralytics fetches Arial.ttf on first plot; give it matplotlib's DejaVu under that name."""
    try:
        import matplotlib
    except ImportError:
        return
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target = _CONFIG_DIR / "Ultralytics"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        shutil.copy(source, target / name)


_install_fonts()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A new empty project in a temporary directory."""
    from studio.db import Project

    with Project.create(tmp_path / "project") as p:
        yield p


def write_image(path: Path, width: int = 64, height: int = 48, *, seed: int = 0) -> Path:
    """Write a small random-noise image (format from the suffix) and return its path."""
    import cv2

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


def write_video(path: Path, frames: int = 30, width: int = 96, height: int = 64, *, square: int = 12,
                speed: float = 2.0) -> Path:
    """Write an MJPG video of a white square moving right by `speed` px a frame on a dark background.

    The square's box on frame f is (4 + speed*f, 20, 4 + speed*f + square, 20 + square): trackers and
    interpolation have a known truth to follow.
    """
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    # bright, but with a texture a visual tracker can lock on to (a flat square gives it nothing)
    texture = np.random.default_rng(0).integers(205, 256, (square, square, 3), dtype=np.uint8)
    texture[: square // 2, : square // 2] = 255
    for f in range(frames):
        image = np.full((height, width, 3), 30, np.uint8)
        x = int(round(4 + speed * f))
        image[20 : 20 + square, x : x + square] = texture
        writer.write(image)
    writer.release()
    return path


def write_brightness_video(path: Path, frames: int = 12) -> Path:
    """Write a 64x48 MJPG video whose frame i is uniformly 20 * i bright (which frame was read is visible)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A folder of 5 images (64x48 jpg/png) in two sub-folders."""
    folder = tmp_path / "images"
    for i in range(3):
        write_image(folder / f"a/img{i}.jpg", seed=i)
    for i in range(2):
        write_image(folder / f"b/pic{i}.png", seed=10 + i)
    return folder


POSTGRES_URL = os.environ.get("STUDIO_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new PostgreSQL database on STUDIO_TEST_POSTGRES_URL's server, dropped after the test (skips without one)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if not POSTGRES_URL:
        pytest.skip("STUDIO_TEST_POSTGRES_URL is not set (bash .ci/run sets it when PostgreSQL is installed)")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"studio_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
