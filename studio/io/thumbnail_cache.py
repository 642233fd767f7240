"""An on-disk cache of small previews of media files, shared by every project of the user.

Qt-free so that workers, the CLI and tests can use it. An entry is keyed by the file's path, the
thumbnail size and the file's mtime, so an edited file gets a new thumbnail and the stale one simply
ages out. Entries are JPEG files written atomically; the whole directory is safe to delete at any time
(a missing entry is made again). The directory is kept under `max_bytes` by deleting the least
recently used entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from studio.core import dirs
from studio.core.errors import MediaError
from studio.core.types import MediaKind

DEFAULT_SIZE = 128
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_JPEG_QUALITY = 85
_SUFFIX = ".jpg"
_REDUCED_DECODES = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def default_cache_dir() -> Path:
    """Studio's cache dir (see studio.core.dirs)."""
    return dirs.cache_dir()


def make_thumbnail(
    path: Path, *, kind: MediaKind, size: int = DEFAULT_SIZE, longest_side: int | None = None
) -> np.ndarray:
    """Decode `path` into an upright RGB uint8 array (H, W, 3) whose longer side is at most `size`.

    `longest_side`, the image's known larger dimension, lets a JPEG be decoded at 1/2, 1/4 or 1/8
    scale (libjpeg's DCT scaling, like Pillow's draft mode): a 12 MP photo then costs ~1/50 of a full
    decode. OpenCV rather than Pillow because it releases the GIL while decoding and encoding, so
    thumbnail workers do not starve the UI thread. MediaError when the file is missing or corrupt.
    """
    if kind == "video":
        return _video_thumbnail(path, size)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"{path}: {exc.strerror or 'cannot read'}") from exc
    image = _decode(data, _decode_flag(longest_side, size))  # applies EXIF orientation
    if image is None:
        raise MediaError(f"{path}: cannot decode image (corrupt or unsupported)")
    return _shrink_to_rgb(image, size)


def _decode(data: np.ndarray, flag: int) -> np.ndarray | None:
    """BGR pixels, or None for bytes that are not an image (OpenCV raises instead for an empty file)."""
    return cv2.imdecode(data, flag) if data.size else None


def _decode_flag(longest_side: int | None, size: int) -> int:
    for factor, flag in _REDUCED_DECODES:
        if longest_side is not None and longest_side // factor >= size:
            return flag
    return cv2.IMREAD_COLOR


def _video_thumbnail(path: Path, size: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
    finally:
        capture.release()
    if not ok or frame is None:
        raise MediaError(f"{path}: not a readable video")
    return _shrink_to_rgb(frame, size)


def _shrink_to_rgb(bgr: np.ndarray, size: int) -> np.ndarray:
    height, width = bgr.shape[:2]
    scale = size / max(height, width)
    if scale < 1:
        bgr = cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class ThumbnailCache:
    """Thumbnails of `size` px stored as JPEG files under `directory`, at most about `max_bytes` in all."""

    directory: Path = field(default_factory=lambda: default_cache_dir() / "thumbnails")
    size: int = DEFAULT_SIZE
    max_bytes: int = DEFAULT_MAX_BYTES
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stored_bytes: int | None = field(default=None, init=False, repr=False)

    def entry_path(self, path: Path | str, *, mtime_ns: int) -> Path:
        """Where the thumbnail of this version of `path` lives (it may not exist yet)."""
        key = hashlib.sha1(f"{os.path.abspath(path)}|{self.size}|{mtime_ns}".encode()).hexdigest()
        return self.directory / key[:2] / f"{key}{_SUFFIX}"

    def get(self, path: Path | str, *, mtime_ns: int) -> np.ndarray | None:
        """The cached RGB thumbnail, or None when absent or unreadable (a damaged entry is remade)."""
        entry = self.entry_path(path, mtime_ns=mtime_ns)
        try:  # not cv2.imread: it logs a warning for every entry not made yet
            pixels = _decode(np.fromfile(entry, dtype=np.uint8), cv2.IMREAD_COLOR)
        except OSError:
            return None
        if pixels is None:
            return None
        with contextlib.suppress(OSError):  # pruned by another worker meanwhile: the pixels are still good
            os.utime(entry)  # mark as recently used for pruning
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)

    def thumbnail(
        self, path: Path | str, *, mtime_ns: int, kind: MediaKind = "image", longest_side: int | None = None
    ) -> np.ndarray:
        """The thumbnail of `path`, from the cache or made and stored; MediaError if the file is unreadable."""
        cached = self.get(path, mtime_ns=mtime_ns)
        if cached is not None:
            return cached
        pixels = make_thumbnail(Path(path), kind=kind, size=self.size, longest_side=longest_side)
        self.put(path, pixels, mtime_ns=mtime_ns)
        return pixels

    def put(self, path: Path | str, pixels: np.ndarray, *, mtime_ns: int) -> None:
        """Store an RGB thumbnail; a full disk or read-only cache only costs the caching, never the thumbnail."""
        entry = self.entry_path(path, mtime_ns=mtime_ns)
        temporary = entry.with_name(f"{entry.stem}.{threading.get_ident()}.tmp")
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            ok, encoded = cv2.imencode(_SUFFIX, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
            if not ok:
                return
            temporary.write_bytes(encoded.tobytes())
            os.replace(temporary, entry)  # atomic: a reader never sees half a file
            written = entry.stat().st_size
        except OSError:
            temporary.unlink(missing_ok=True)
            return
        with self._lock:
            if self._stored_bytes is None:
                self._stored_bytes = self._scan_bytes()
            else:
                self._stored_bytes += written
            over = self._stored_bytes > self.max_bytes
        if over:
            self.prune()

    def prune(self) -> int:
        """Delete least recently used entries until the cache holds at most 90% of max_bytes; returns how many."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        target = int(self.max_bytes * 0.9)  # headroom, so that pruning is not re-run on every put
        removed = 0
        for _, size, entry in entries:
            if total <= target:
                break
            entry.unlink(missing_ok=True)
            total -= size
            removed += 1
        with self._lock:
            self._stored_bytes = total
        return removed

    def _scan_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> Iterator[tuple[int, int, Path]]:
        """(last use in ns, bytes, path) of every stored entry."""
        for entry in self.directory.glob(f"*/*{_SUFFIX}"):
            try:
                stat = entry.stat()
            except FileNotFoundError:  # another worker pruned it meanwhile
                continue
            yield stat.st_mtime_ns, stat.st_size, entry
