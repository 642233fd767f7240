"""The embedding cache: a hit never calls the encoder; the disk copy survives restarts, bounds and corruption."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from studio.models.embedding_cache import EmbeddingCache, default_cache_dir


class CountingSegmenter:
    """Encodes to a 1 KiB array derived from the pixels, counting calls (optionally slowly)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def encode(self, image: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return np.full(256, float(image.sum()), dtype=np.float32)

    def predict(self, embedding, *, points=None, point_labels=None, box=None, multimask=True):
        return []


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)


def test_memory_hit_does_not_call_the_encoder(tmp_path: Path):
    cache, segmenter = EmbeddingCache(tmp_path), CountingSegmenter()
    first = cache.embedding(segmenter, image(0), model_id="m")
    again = cache.embedding(segmenter, image(0).copy(), model_id="m")  # same pixels, another array
    assert segmenter.calls == 1
    np.testing.assert_array_equal(first, again)
    assert cache.stats().memory_hits == 1


def test_disk_hit_after_restart_does_not_call_the_encoder(tmp_path: Path):
    segmenter = CountingSegmenter()
    EmbeddingCache(tmp_path).embedding(segmenter, image(0), model_id="m")
    reopened = EmbeddingCache(tmp_path)
    value = reopened.embedding(segmenter, image(0), model_id="m")
    assert segmenter.calls == 1 and reopened.stats().disk_hits == 1
    assert value[0] == float(image(0).sum())


@pytest.mark.parametrize("change", [{"model_id": "other"}, {"weights": "b.pt"}, {"seed": 1}])
def test_another_model_weights_or_image_is_a_miss(tmp_path: Path, change):
    cache, segmenter = EmbeddingCache(tmp_path), CountingSegmenter()
    cache.embedding(segmenter, image(0), model_id="m", weights="a.pt")
    cache.embedding(
        segmenter, image(change.get("seed", 0)), model_id=change.get("model_id", "m"), weights=change.get("weights", "a.pt")
    )
    assert segmenter.calls == 2


def test_corrupt_file_is_recomputed_not_fatal(tmp_path: Path):
    segmenter = CountingSegmenter()
    EmbeddingCache(tmp_path).embedding(segmenter, image(0), model_id="m")
    (file,) = tmp_path.glob("*.emb")
    file.write_bytes(b"not a pickle")
    value = EmbeddingCache(tmp_path).embedding(segmenter, image(0), model_id="m")
    assert segmenter.calls == 2 and value[0] == float(image(0).sum())


def test_deleted_cache_folder_is_safe(tmp_path: Path):
    import shutil

    cache, segmenter = EmbeddingCache(tmp_path / "c", memory_items=0), CountingSegmenter()
    cache.embedding(segmenter, image(0), model_id="m")
    shutil.rmtree(tmp_path / "c")
    cache.embedding(segmenter, image(0), model_id="m")
    assert segmenter.calls == 2 and list((tmp_path / "c").glob("*.emb"))


def test_disk_stays_within_its_budget_dropping_the_least_recently_used(tmp_path: Path):
    cache, segmenter = EmbeddingCache(tmp_path, memory_items=0), CountingSegmenter()
    cache.embedding(segmenter, image(0), model_id="m")
    one_file = next(tmp_path.glob("*.emb")).stat().st_size
    cache.disk_bytes = 2 * one_file
    for seed in (1, 2, 3):
        time.sleep(0.01)  # distinct mtimes
        cache.embedding(segmenter, image(seed), model_id="m")
    assert len(list(tmp_path.glob("*.emb"))) == 2
    calls = segmenter.calls
    cache.embedding(segmenter, image(3), model_id="m")  # newest survives
    assert segmenter.calls == calls
    cache.embedding(segmenter, image(0), model_id="m")  # oldest was evicted
    assert segmenter.calls == calls + 1


def test_memory_lru_is_bounded(tmp_path: Path):
    cache, segmenter = EmbeddingCache(tmp_path, memory_items=2), CountingSegmenter()
    for seed in (0, 1, 2):
        cache.embedding(segmenter, image(seed), model_id="m")
    cache.embedding(segmenter, image(0), model_id="m")
    stats = cache.stats()
    assert stats.memory_hits == 0 and stats.disk_hits == 1


def test_prefetch_encodes_ahead_and_a_concurrent_request_shares_the_work(tmp_path: Path):
    cache, segmenter = EmbeddingCache(tmp_path), CountingSegmenter(delay=0.3)
    futures = cache.prefetch(segmenter, [lambda: image(0), lambda: image(1)], model_id="m")
    time.sleep(0.05)  # the prefetch of image 0 is running
    value = cache.embedding(segmenter, image(0), model_id="m")  # waits for it instead of encoding again
    for future in futures:
        future.result(timeout=5)
    cache.embedding(segmenter, image(1), model_id="m")
    assert segmenter.calls == 2 and value[0] == float(image(0).sum())
    cache.close()


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
