"""The click-segmentation tool: a controller a canvas hosts, turning clicks into mask previews.

The canvas forwards mouse presses/releases in image coordinates and key presses; the tool answers with
`preview_changed(mask | None, candidate index, score)` for the canvas to paint, and stores the accepted
mask through the Project. Left click adds a positive point, right click or Shift+click a negative one,
a drag gives a box prompt; Tab cycles the candidates, Enter accepts, Esc clears, Ctrl+Z removes the last
click. Encoding and decoding run on a QThreadPool through the embedding cache, so the UI never waits:
`encoding_changed(True)` while the image encoder runs, and the answer to a click that was superseded by
a newer click (or another image) is dropped, not shown.

Hooking into the canvas: create one SamTool per window; on image change call `set_image`; while the
tool is active route `mousePressEvent`/`mouseReleaseEvent` (scene coordinates = image pixels) to
`press`/`release` and `keyPressEvent` to `handle_key` (it returns False for keys it leaves alone); paint
`preview_changed`'s mask as an overlay and the clicks from `clicks`; pass a `store` function that pushes
the window's undoable AddAnnotations command so Ctrl+Z after Enter removes the annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QKeyEvent

from studio.core.errors import StudioError
from studio.core.geometry import encode_mask, mask_to_polygon
from studio.core.shapes import Box
from studio.core.types import Annotation, Media
from studio.db.project import Project
from studio.models.click_segmentation import Click, predict_prompts
from studio.models.embedding_cache import EmbeddingCache
from studio.models.protocols import MaskCandidate, Segmenter

DRAG_PIXELS = 4.0
"""A press and release farther apart than this is a box drag, not a click."""

Output = Literal["mask", "polygon"]


class _Signals(QObject):
    """Worker -> UI thread: (generation, result) or (generation, error message)."""

    encoded = Signal(int)
    encode_failed = Signal(int, str)
    predicted = Signal(int, object)
    failed = Signal(int, str)


class _Task(QRunnable):
    def __init__(self, work: Callable[[], None], on_error: Callable[[str], None]) -> None:
        super().__init__()
        self.work, self.on_error = work, on_error

    def run(self) -> None:
        try:
            self.work()
        except StudioError as exc:
            self.on_error(str(exc))
        except Exception as exc:  # a bug in a plugin must not kill the worker thread silently
            self.on_error(f"{type(exc).__name__}: {exc}")


class SamTool(QObject):
    """Click segmentation for one window. Thread-safe towards its workers through generations."""

    preview_changed = Signal(object, int, float)
    """(mask (H, W) bool or None, index of the shown candidate, its predicted IoU)."""
    encoding_changed = Signal(bool)
    """True while the image encoder runs for the current image (show "encoding…")."""
    prompts_changed = Signal()
    """A click or box was added or removed: paint the markers now, before the masks come back."""
    busy_changed = Signal(bool)
    """True while the masks for the newest prompts are being computed."""
    accepted = Signal(object)
    """The stored Annotation after Enter."""
    failed = Signal(str)

    def __init__(
        self,
        project: Project,
        segmenter: Segmenter,
        *,
        model_id: str,
        weights: str | None = None,
        cache: EmbeddingCache | None = None,
        store: Callable[[Annotation], Annotation] | None = None,
        pool: QThreadPool | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.segmenter = segmenter
        self.model_id = model_id
        self.weights = weights
        self.cache = cache if cache is not None else EmbeddingCache()
        self.store = store if store is not None else project.add_annotation
        self.pool = pool if pool is not None else QThreadPool.globalInstance()
        self.label_id: int | None = None
        self.output: Output = "mask"
        self.tolerance = 1.0
        self._media: Media | None = None
        self._frame = 0
        self._image: np.ndarray | None = None
        self._clicks: list[Click] = []
        self._box: Box | None = None
        self._press: tuple[float, float, bool] | None = None
        self._candidates: list[MaskCandidate] = []
        self._index = 0
        self._generation = 0  # bumped by every prompt or image change; older answers are stale
        self._image_generation = 0
        self._encoded: tuple[int, Any] | None = None
        """(image generation, embedding): clicks on the current image skip even the cache's content hash."""
        self._signals = _Signals(self)
        self._signals.encoded.connect(self._on_encoded)
        self._signals.encode_failed.connect(self._on_encode_failed)
        self._signals.predicted.connect(self._on_predicted)
        self._signals.failed.connect(self._on_failed)

    # ---- state the canvas reads --------------------------------------------------------------------

    @property
    def clicks(self) -> list[Click]:
        return list(self._clicks)

    @property
    def box(self) -> Box | None:
        return self._box

    @property
    def candidates(self) -> list[MaskCandidate]:
        return list(self._candidates)

    # ---- setup -------------------------------------------------------------------------------------

    def set_label(self, label_id: int) -> None:
        self.label_id = label_id

    def set_output(self, output: Output, *, tolerance: float = 1.0) -> None:
        """Accept as a mask (RLE), or as a polygon simplified by `tolerance` pixels (the slider)."""
        self.output, self.tolerance = output, tolerance

    def set_image(self, media: Media, image: np.ndarray, *, frame: int = 0) -> None:
        """Show another image: prompts are cleared and its embedding computed in the background."""
        self._media, self._frame, self._image = media, frame, image
        self._image_generation += 1
        self._reset_prompts()
        image_generation = self._image_generation
        self.encoding_changed.emit(True)

        def work() -> None:
            self._encoded = (image_generation, self._embedding(image))
            self._signals.encoded.emit(image_generation)

        self.pool.start(_Task(work, lambda message: self._signals.encode_failed.emit(image_generation, message)))

    def prefetch(self, loaders: Sequence[Callable[[], np.ndarray]]) -> None:
        """Encode the next images of the browser ahead of time (loaders run on the prefetch thread)."""
        self.cache.prefetch(self.segmenter, loaders, model_id=self.model_id, weights=self.weights)

    # ---- prompts -----------------------------------------------------------------------------------

    def add_click(self, x: float, y: float, *, positive: bool = True) -> None:
        self._clicks.append(Click(x, y, positive))
        self.prompts_changed.emit()
        self._request()

    def set_box(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self._box = Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        self.prompts_changed.emit()
        self._request()

    def undo_click(self) -> bool:
        """Remove the last click (or, with none left, the box); False when there was nothing to remove."""
        if self._clicks:
            self._clicks.pop()
        elif self._box is not None:
            self._box = None
        else:
            return False
        self.prompts_changed.emit()
        self._request()
        return True

    def clear(self) -> None:
        self._reset_prompts()

    def cycle_candidate(self, step: int = 1) -> None:
        if len(self._candidates) > 1:
            self._index = (self._index + step) % len(self._candidates)
            self._emit_preview()

    def accept(self) -> Annotation | None:
        """Store the shown candidate as an annotation of the current label; None when there is none."""
        if not self._candidates or self._media is None:
            return None
        if self.label_id is None:
            self.failed.emit("choose a label before accepting the mask")
            return None
        mask = self._candidates[self._index].mask
        shape = encode_mask(mask) if self.output == "mask" else mask_to_polygon(mask, tolerance=self.tolerance)
        if shape is None:
            self.failed.emit("the mask is too small to outline as a polygon")
            return None
        stored = self.store(
            Annotation(self._media.id, self.label_id, shape, frame=self._frame, created_by=f"segment:{self.model_id}")
        )
        self._reset_prompts()
        self.accepted.emit(stored)
        return stored

    # ---- events forwarded by the canvas (image coordinates) ----------------------------------------

    def press(self, x: float, y: float, *, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> None:
        negative = button == Qt.MouseButton.RightButton or bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        self._press = (x, y, not negative)

    def release(self, x: float, y: float) -> None:
        if self._press is None:
            return
        x0, y0, positive = self._press
        self._press = None
        if positive and max(abs(x - x0), abs(y - y0)) > DRAG_PIXELS:
            self.set_box(x0, y0, x, y)
        else:
            self.add_click(x0, y0, positive=positive)

    def handle_key(self, event: QKeyEvent) -> bool:
        """Tab, Enter, Esc, Ctrl+Z; returns False for other keys (and for Ctrl+Z with no prompt to undo)."""
        key, modifiers = event.key(), event.modifiers()
        if key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            self.cycle_candidate(-1 if key == Qt.Key.Key_Backtab else 1)
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return self.accept() is not None
        if key == Qt.Key.Key_Escape:
            self.clear()
            return True
        if key == Qt.Key.Key_Z and modifiers & Qt.KeyboardModifier.ControlModifier:
            return self.undo_click()
        return False

    # ---- workers -----------------------------------------------------------------------------------

    def _embedding(self, image: np.ndarray) -> Any:
        return self.cache.embedding(self.segmenter, image, model_id=self.model_id, weights=self.weights)

    def _reset_prompts(self) -> None:
        self._clicks, self._box, self._press = [], None, None
        self._generation += 1
        self._candidates, self._index = [], 0
        self._emit_preview()

    def _request(self) -> None:
        """Decode the current prompts on a worker; only the newest request's answer is shown."""
        self._generation += 1
        generation, image, image_generation = self._generation, self._image, self._image_generation
        if image is None:
            return
        if not self._clicks and self._box is None:
            self._candidates, self._index = [], 0
            self.busy_changed.emit(False)
            self._emit_preview()
            return
        clicks, box = list(self._clicks), self._box
        self.busy_changed.emit(True)

        def work() -> None:
            if generation != self._generation:
                return  # superseded while queued: skip the decoder entirely
            encoded = self._encoded
            embedding = encoded[1] if encoded and encoded[0] == image_generation else self._embedding(image)
            self._signals.predicted.emit(generation, predict_prompts(self.segmenter, embedding, clicks, box))

        self.pool.start(_Task(work, lambda message: self._signals.failed.emit(generation, message)))

    @Slot(int)
    def _on_encoded(self, image_generation: int) -> None:
        if image_generation == self._image_generation:
            self.encoding_changed.emit(False)

    @Slot(int, object)
    def _on_predicted(self, generation: int, candidates: list[MaskCandidate]) -> None:
        if generation != self._generation:
            return  # a newer click or another image came in meanwhile
        self.busy_changed.emit(False)
        self._candidates, self._index = candidates, 0
        self._emit_preview()

    @Slot(int, str)
    def _on_encode_failed(self, image_generation: int, message: str) -> None:
        if image_generation == self._image_generation:
            self.encoding_changed.emit(False)
            self.failed.emit(message)

    @Slot(int, str)
    def _on_failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.busy_changed.emit(False)
            self.failed.emit(message)

    def _emit_preview(self) -> None:
        if self._candidates:
            shown = self._candidates[self._index]
            self.preview_changed.emit(shown.mask, self._index, float(shown.score))
        else:
            self.preview_changed.emit(None, -1, 0.0)
