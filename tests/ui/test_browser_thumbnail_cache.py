"""The on-disk thumbnail cache (Qt-free): keyed by path, size and mtime, bounded, safe to delete."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.core.errors import MediaError
from studio.io.thumbnail_cache import ThumbnailCache, make_thumbnail


def write_photo(path: Path, width: int, height: int, bgr: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), bgr, np.uint8))
    return path


def test_thumbnail_keeps_aspect_and_colour(tmp_path: Path):
    photo = write_photo(tmp_path / "wide.jpg", 800, 400, (0, 0, 255))  # BGR red
    pixels = make_thumbnail(photo, kind="image", size=128)
    assert pixels.shape == (64, 128, 3)
    red, green, blue = pixels[32, 64]
    assert red > 240 and green < 20 and blue < 20


def test_cached_thumbnail_survives_the_source_and_mtime_change_remakes_it(tmp_path: Path):
    cache = ThumbnailCache(tmp_path / "cache")
    photo = write_photo(tmp_path / "a.png", 200, 100, (255, 0, 0))
    mtime = photo.stat().st_mtime_ns
    first = cache.thumbnail(photo, mtime_ns=mtime)
    assert cache.entry_path(photo, mtime_ns=mtime).is_file()
    photo.unlink()
    np.testing.assert_allclose(cache.thumbnail(photo, mtime_ns=mtime), first, atol=8)  # JPEG round trip
    with pytest.raises(MediaError, match="a.png"):
        cache.thumbnail(photo, mtime_ns=mtime + 1)  # edited file: the old entry is not used


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0 this is not really a jpeg", b""], ids=["garbage", "empty"])
def test_corrupt_file_gives_one_clear_error(tmp_path: Path, content: bytes):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(content)
    cache = ThumbnailCache(tmp_path / "cache")
    with pytest.raises(MediaError, match="broken.jpg"):
        cache.thumbnail(bad, mtime_ns=1)
    assert not list((tmp_path / "cache").rglob("*.jpg"))  # nothing half-written is cached


def test_cache_is_bounded_and_safe_to_delete(tmp_path: Path):
    cache = ThumbnailCache(tmp_path / "cache", max_bytes=20_000)
    rng = np.random.default_rng(0)
    for i in range(40):  # noise compresses badly: each entry is several kB
        path = tmp_path / f"noise{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
        cache.thumbnail(path, mtime_ns=i)
    stored = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.jpg"))
    assert 0 < stored <= 20_000
    shutil.rmtree(tmp_path / "cache")
    assert cache.thumbnail(tmp_path / "noise0.png", mtime_ns=0).shape == (128, 128, 3)


def test_default_directory_follows_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert ThumbnailCache().directory == tmp_path / "elsewhere" / "thumbnails"


def test_damaged_entry_is_made_again(tmp_path: Path):
    cache = ThumbnailCache(tmp_path / "cache")
    photo = write_photo(tmp_path / "b.png", 64, 64, (0, 255, 0))
    cache.thumbnail(photo, mtime_ns=5)
    cache.entry_path(photo, mtime_ns=5).write_bytes(b"half a jp")
    assert cache.thumbnail(photo, mtime_ns=5)[10, 10, 1] > 240  # green again, from the source
