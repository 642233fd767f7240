"""Thumbnails for the media browser, made off the UI thread.

Views ask for a thumbnail only when they paint a row, so only visible rows cost anything. Requests go
to a small QThreadPool; the newest requests run first (the rows the user is looking at now) and
`retain` drops queued requests for rows that scrolled away, so fast scrolling never builds a backlog.
Decoded thumbnails are kept in the on-disk ThumbnailCache and in a bounded in-memory cache of QImages.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRectF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap

from studio.core.errors import MediaError
from studio.core.types import MediaKind
from studio.io.thumbnail_cache import ThumbnailCache

_WORKER_NICENESS = 10


@dataclass(frozen=True, slots=True)
class ThumbnailRequest:
    media_id: int
    path: Path
    mtime_ns: int
    kind: MediaKind
    longest_side: int | None = None  # known image size: lets JPEGs decode at reduced scale


def rgb_to_qimage(pixels: np.ndarray) -> QImage:
    """A QImage owning a copy of an RGB uint8 (H, W, 3) array (the array may be freed afterwards)."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def _badge_image(size: int, *, fill: str, glyph: str, glyph_color: str) -> QImage:
    """A rounded square with a centred glyph; `fill` is #AARRGGBB (Qt order) so the view background shows."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    inset = size * 0.08
    rect = QRectF(inset, inset, size - 2 * inset, size - 2 * inset)
    painter.setPen(QPen(QColor(glyph_color), max(1.0, size / 64)))
    painter.setBrush(QColor(fill))
    painter.drawRoundedRect(rect, size * 0.06, size * 0.06)
    font = QFont()
    font.setPixelSize(max(8, size // 3))
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, glyph)
    painter.end()
    return image


def placeholder_image(size: int) -> QImage:
    """Shown while a thumbnail is being made."""
    return _badge_image(size, fill="#33808080", glyph="…", glyph_color="#8a8a8a")


def error_image(size: int) -> QImage:
    """Shown for a file that is missing or cannot be decoded."""
    return _badge_image(size, fill="#33e15759", glyph="!", glyph_color="#e15759")


class _WorkerSignals(QObject):
    # Lives in the UI thread, so the emit from a pool thread is delivered there as a queued call.
    done = Signal(int, int, QImage, str)  # generation, media id, image (null on failure), error message


class _DrainQueue(QRunnable):
    """Makes thumbnails from the loader's queue, newest request first, until the queue is empty.

    Workers pull from the shared queue rather than getting one job each, so a busy machine does not
    add a round trip through the UI thread between two thumbnails.
    """

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self._loader = loader

    def run(self) -> None:
        _lower_thread_priority()
        loader = self._loader
        while (taken := loader._take()) is not None:
            generation, request = taken
            try:
                pixels = loader.cache.thumbnail(request.path, mtime_ns=request.mtime_ns, kind=request.kind,
                                                longest_side=request.longest_side)
                image, error = rgb_to_qimage(pixels), ""
            except Exception as exc:  # any failure must become an error thumbnail, never a row stuck loading
                image, error = QImage(), str(exc) if isinstance(exc, MediaError) else f"{request.path}: {exc!r}"
            loader.signals.done.emit(generation, request.media_id, image, error)


def _lower_thread_priority() -> None:
    """Give this worker thread a lower CPU priority than the UI thread (Linux: nice applies per thread).

    On a busy machine the scheduler then runs the UI thread first, so scrolling stays smooth while
    thumbnails are made. QThread priorities cannot do this: Linux ignores them except "idle", which
    could starve thumbnails entirely.
    """
    with contextlib.suppress(AttributeError, OSError):  # other systems: keep the default priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WORKER_NICENESS)


class ThumbnailLoader(QObject):
    """Makes thumbnails on background threads; `thumbnail_ready(media_id)` says one can now be shown."""

    thumbnail_ready = Signal(int)

    def __init__(
        self,
        cache: ThumbnailCache | None = None,
        *,
        max_threads: int | None = None,
        memory_items: int = 3000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cache = cache or ThumbnailCache()
        self.placeholder = QPixmap.fromImage(placeholder_image(self.cache.size))
        self.error = QPixmap.fromImage(error_image(self.cache.size))
        self.signals = _WorkerSignals(self)
        self.signals.done.connect(self._on_done)
        self._pool = QThreadPool(self)
        # One core is left to the UI thread: decoding holds the GIL part of the time, and the UI needs it.
        self._max_workers = max_threads or max(1, min(4, (os.cpu_count() or 2) - 1))
        self._pool.setMaxThreadCount(self._max_workers)
        self._memory_items = memory_items
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._errors: dict[int, str] = {}
        # Shared with the workers, under _lock:
        self._lock = threading.Lock()
        self._queued: OrderedDict[int, ThumbnailRequest] = OrderedDict()  # newest last: made first
        self._in_flight: set[int] = set()
        self._workers = 0
        self._generation = 0  # bumped by clear(): results of requests taken before are dropped

    def pixmap(self, request: ThumbnailRequest) -> QPixmap:
        """The thumbnail if ready, else the error image for a bad file, else the placeholder (and queue it)."""
        media_id = request.media_id
        if (pixmap := self._pixmaps.get(media_id)) is not None:
            self._pixmaps.move_to_end(media_id)
            return pixmap
        if media_id in self._errors:
            return self.error
        with self._lock:
            if media_id not in self._in_flight:
                self._queued.pop(media_id, None)
                self._queued[media_id] = request
                start_worker = self._workers < self._max_workers
                self._workers += start_worker
            else:
                start_worker = False
        if start_worker:
            self._pool.start(_DrainQueue(self))
        return self.placeholder

    def failure(self, media_id: int) -> str | None:
        """Why the thumbnail of this media could not be made, if it could not."""
        return self._errors.get(media_id)

    def retain(self, media_ids: Collection[int]) -> None:
        """Forget queued requests for media not in `media_ids` (rows no longer visible)."""
        keep = set(media_ids)
        with self._lock:
            for media_id in [m for m in self._queued if m not in keep]:
                del self._queued[media_id]

    def clear(self) -> None:
        """Drop every cached and queued thumbnail (e.g. after switching projects)."""
        with self._lock:
            self._generation += 1
            self._queued.clear()
            self._in_flight.clear()
        self._pixmaps.clear()
        self._errors.clear()

    def pending(self) -> int:
        """Thumbnails requested and not yet delivered."""
        with self._lock:
            return len(self._queued) + len(self._in_flight)

    def wait_idle(self, timeout_ms: int = -1) -> bool:
        """Block until the workers stop (tests and shutdown)."""
        return self._pool.waitForDone(timeout_ms)

    def _take(self) -> tuple[int, ThumbnailRequest] | None:
        """The next request for a worker, or None after which that worker ends (called on worker threads)."""
        with self._lock:
            if not self._queued:
                self._workers -= 1
                return None
            media_id, request = self._queued.popitem(last=True)
            self._in_flight.add(media_id)
            return self._generation, request

    def _on_done(self, generation: int, media_id: int, image: QImage, error: str) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._in_flight.discard(media_id)
        if image.isNull():
            self._errors[media_id] = error or "cannot make a thumbnail"
        else:
            self._pixmaps[media_id] = QPixmap.fromImage(image)  # pixmaps are made on the UI thread only
            while len(self._pixmaps) > self._memory_items:
                self._pixmaps.popitem(last=False)
        self.thumbnail_ready.emit(media_id)
