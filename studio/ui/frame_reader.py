"""Decodes video frames (and still images) on a background thread for the canvas.

Scrubbing asks for frames far faster than a video decodes, so only the newest request is kept: a
request made while another is decoding replaces the waiting one instead of queueing behind it. A
VideoCapture stays open per recently used video; a frame just after the last one decoded is read
sequentially (grabbing through short gaps, which is cheaper than a seek that restarts at the previous
keyframe), any other frame is sought. Decoded frames go into a small LRU cache bounded in bytes, so
stepping back and forth over recent frames is instant.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from studio.core.errors import MediaError
from studio.core.types import Media
from studio.db import Project
from studio.io.media import read_image
from studio.ui.thumbnails import rgb_to_qimage

_MAX_GRAB_AHEAD = 48  # grabbing fewer frames than this beats seeking (a seek decodes from a keyframe)
_OPEN_VIDEOS = 3


@dataclass(frozen=True, slots=True)
class _Request:
    media: Media
    path: Path
    frame: int


@dataclass
class _OpenVideo:
    capture: cv2.VideoCapture
    next_frame: int = 0  # the frame the next read() returns


class FrameReader(QObject):
    """`request(project, media, frame)` -> `frame_ready(media_id, frame, image)` from a worker thread.

    `frame_failed(media_id, frame, message)` reports a missing file or an undecodable frame.
    """

    frame_ready = Signal(int, int, QImage)
    frame_failed = Signal(int, int, str)

    def __init__(self, *, cache_bytes: int = 192 * 1024 * 1024, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cache: OrderedDict[tuple[int, int], QImage] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._condition = threading.Condition()
        self._waiting: _Request | None = None
        self._busy = False
        self._closed = False
        self._videos: OrderedDict[Path, _OpenVideo] = OrderedDict()  # touched by the worker thread only
        self._cache_lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="studio-frame-reader", daemon=True)
        self._worker.start()

    def request(self, project: Project, media: Media, frame: int = 0) -> None:
        """Ask for a frame (0 for images); a cached one is emitted at once, else when decoded."""
        frame = 0 if media.kind == "image" else frame
        with self._cache_lock:
            cached = self._cache.get((media.id, frame))
            if cached is not None:
                self._cache.move_to_end((media.id, frame))
        if cached is not None:
            self.frame_ready.emit(media.id, frame, cached)
            return
        with self._condition:
            self._waiting = _Request(media, project.resolve(media), frame)  # replaces a stale one
            self._condition.notify()

    def idle(self) -> bool:
        """True when no request is waiting or being decoded."""
        with self._condition:
            return self._waiting is None and not self._busy

    def close(self) -> None:
        """Stop the worker and release open videos (call when the window closes)."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._worker.join(timeout=5)

    # ---- worker thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._waiting is None and not self._closed:
                    self._condition.wait()
                if self._closed:
                    break
                request, self._waiting = self._waiting, None
                self._busy = True
            try:
                image = self._decode(request)
            except MediaError as exc:
                self.frame_failed.emit(request.media.id, request.frame, str(exc))
            else:
                self._remember(request.media.id, request.frame, image)
                self.frame_ready.emit(request.media.id, request.frame, image)
            finally:
                with self._condition:
                    self._busy = False
        for video in self._videos.values():
            video.capture.release()
        self._videos.clear()

    def _decode(self, request: _Request) -> QImage:
        bgr = read_image(request.path) if request.media.kind == "image" else self._read_video_frame(request)
        return rgb_to_qimage(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def _read_video_frame(self, request: _Request) -> np.ndarray:
        if not 0 <= request.frame < max(request.media.frame_count, 1):
            raise MediaError(f"{request.path}: frame {request.frame} does not exist "
                             f"(the video has {request.media.frame_count} frames)")
        video = self._open(request.path)
        gap = request.frame - video.next_frame
        if not 0 <= gap <= _MAX_GRAB_AHEAD:
            video.capture.set(cv2.CAP_PROP_POS_FRAMES, request.frame)
        else:
            for _ in range(gap):
                video.capture.grab()  # advances without converting the skipped frames
        ok, frame = video.capture.read()
        if not ok or frame is None:
            self._videos.pop(request.path).capture.release()  # its position is unknown now
            raise MediaError(f"{request.path}: frame {request.frame} cannot be decoded (truncated video?)")
        video.next_frame = request.frame + 1
        return frame

    def _open(self, path: Path) -> _OpenVideo:
        video = self._videos.get(path)
        if video is not None:
            self._videos.move_to_end(path)
            return video
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise MediaError(f"{path}: not a readable video")
        video = self._videos[path] = _OpenVideo(capture)
        while len(self._videos) > _OPEN_VIDEOS:
            _, oldest = self._videos.popitem(last=False)
            oldest.capture.release()
        return video

    def _remember(self, media_id: int, frame: int, image: QImage) -> None:
        with self._cache_lock:
            self._cache[(media_id, frame)] = image
            self._cached_bytes += image.sizeInBytes()
            while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= evicted.sizeInBytes()
