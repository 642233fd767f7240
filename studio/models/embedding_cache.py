"""Image embeddings of click segmenters, cached in memory and on disk, and prefetched for the next images.

A SAM encoder takes ~15 s per image on a CPU (~0.1 s on a GPU) while a click takes ~0.1 s, so an image
should be encoded once, ever: the embedding is kept in an in-memory LRU and in a size-bounded folder of
files keyed by (image content hash, model id, weights, input size). Deleting the folder, or any file in
it, is always safe; a file that cannot be read is dropped and the embedding recomputed.

Files are pickles written by this cache in the user's own cache directory (never shared or downloaded).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import dirs
from studio.models.protocols import Segmenter

DEFAULT_DISK_BYTES = 2 * 1024**3
SUFFIX = ".emb"


def embed(
    segmenter: Segmenter, image: np.ndarray, *, model_id: str, weights: str | None = None, cache: EmbeddingCache | None
) -> Any:
    """The embedding of `image`: through `cache` when there is one, else encoded right away."""
    if cache is None:
        return segmenter.encode(image)
    return cache.embedding(segmenter, image, model_id=model_id, weights=weights)


def default_cache_dir() -> Path:
    """The embeddings folder of Studio's cache dir (which follows STUDIO_CACHE_DIR / STUDIO_DATA_DIR)."""
    return dirs.cache_dir() / "embeddings"


@dataclass(frozen=True, slots=True)
class CacheStats:
    memory_hits: int
    disk_hits: int
    misses: int


class EmbeddingCache:
    """Thread-safe: the GUI's click workers, a prefetch thread and batch jobs may share one instance.

    Two requests for the same image at once (a prefetch still running when the user opens the image)
    share one encoder call instead of computing the embedding twice.
    """

    def __init__(
        self, directory: Path | None = None, *, memory_items: int = 8, disk_bytes: int = DEFAULT_DISK_BYTES
    ) -> None:
        self.directory = default_cache_dir() if directory is None else Path(directory)
        self.memory_items = memory_items
        self.disk_bytes = disk_bytes
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._in_flight: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._prefetcher: ThreadPoolExecutor | None = None
        self._memory_hits = self._disk_hits = self._misses = 0

    @staticmethod
    def key(image: np.ndarray, *, model_id: str, weights: str | None = None, input_size: int | None = None) -> str:
        """Same pixels + same model + same weights + same input size = same embedding."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(f"{model_id}\0{weights or ''}\0{input_size or ''}\0{image.shape}\0{image.dtype}\0".encode())
        digest.update(np.ascontiguousarray(image).data)
        return digest.hexdigest()

    def embedding(
        self, segmenter: Segmenter, image: np.ndarray, *, model_id: str, weights: str | None = None
    ) -> Any:
        """The segmenter's embedding of `image`, from the cache when present, else encoded (once) and stored."""
        key = self.key(image, model_id=model_id, weights=weights, input_size=getattr(segmenter, "input_size", None))
        persist = getattr(segmenter, "persist_embeddings", True)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self._memory_hits += 1
                return self._memory[key]
            pending = self._in_flight.get(key)
            owner = pending is None
            if owner:
                pending = self._in_flight[key] = Future()
        if not owner:
            return pending.result()  # another thread is encoding this very image
        try:
            value = self._read(key) if persist else None
            if value is None:
                value = segmenter.encode(image)
                if persist:
                    self._write(key, value)
                with self._lock:
                    self._misses += 1
            else:
                with self._lock:
                    self._disk_hits += 1
            self._remember(key, value)
            pending.set_result(value)
            return value
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._in_flight.pop(key, None)

    def prefetch(
        self,
        segmenter: Segmenter,
        images: Iterable[Callable[[], np.ndarray]],
        *,
        model_id: str,
        weights: str | None = None,
    ) -> list[Future[Any]]:
        """Encode the next images on one background thread, in order; `images` are loaders, called there.

        Returns one Future per image (cancel those not started when the user jumps elsewhere). Errors stay
        in the futures: a prefetch never disturbs the image the user is looking at.
        """
        with self._lock:
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-prefetch")
            executor = self._prefetcher

        def encode(load: Callable[[], np.ndarray]) -> Any:
            return self.embedding(segmenter, load(), model_id=model_id, weights=weights)

        return [executor.submit(encode, load) for load in images]

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._memory_hits, self._disk_hits, self._misses)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def close(self) -> None:
        """Stop prefetching (pending prefetches are dropped; the one running finishes)."""
        with self._lock:
            executor, self._prefetcher = self._prefetcher, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # ---- memory ------------------------------------------------------------------------------------

    def _remember(self, key: str, value: Any) -> None:
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    # ---- disk --------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def _read(self, key: str) -> Any:
        path = self._path(key)
        try:
            with path.open("rb") as file:
                value = pickle.load(file)
        except FileNotFoundError:
            return None
        except Exception:  # truncated or corrupt (a crash mid-write elsewhere, a disk error): recompute
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # the file's mtime is its last use, for least-recently-used eviction
        return value

    def _write(self, key: str, value: Any) -> None:
        """Write atomically (temp file + rename), then evict the least recently used files over the budget.

        A cache that cannot be written (read-only or full disk) only costs speed, never the user's work.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(handle, "wb") as file:
                pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, self._path(key))
        except OSError:
            return
        finally:
            Path(temp).unlink(missing_ok=True)
        self._evict()

    def _evict(self) -> None:
        files = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.disk_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
