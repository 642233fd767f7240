"""One module decides Studio's directories: STUDIO_DATA_DIR moves weights, demo and every cache together."""

from __future__ import annotations

from studio.core import dirs
from studio.demo import default_demo_dir
from studio.io.thumbnail_cache import default_cache_dir as thumbnail_dir
from studio.models.embedding_cache import default_cache_dir as embedding_dir
from studio.models.weights import weights_dir


def test_data_dir_moves_weights_demo_and_both_caches(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_CACHE_DIR", raising=False)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    for path in (weights_dir(), default_demo_dir(), thumbnail_dir(), embedding_dir()):
        assert tmp_path in path.parents
    assert embedding_dir().parent == thumbnail_dir() == dirs.cache_dir()


def test_without_overrides_the_platform_dirs_are_used(tmp_path, monkeypatch):
    for name in ("STUDIO_DATA_DIR", "STUDIO_CACHE_DIR", "STUDIO_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xc"))
    assert dirs.cache_dir() == tmp_path / "xc" / "studio"
    assert weights_dir().parent == dirs.data_dir()
    assert default_demo_dir().parent == dirs.data_dir()
