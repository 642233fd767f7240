"""The S tool's wiring: load the project's segmenter on a worker, feed it the shown image, paint its
prompts and previews, and store an accepted mask through the undo stack.

A mixin of MainWindow (studio.ui.main_window): it uses the window's session, undo stack, status bar
and docks, and keeps one job of the window in one module."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import cv2
from PySide6.QtCore import Qt

from studio.core.types import Annotation
from studio.io.media import read_media
from studio.ui.canvas import rgb_array
from studio.ui.commands import AddAnnotations
from studio.ui.sam_tool import SamTool

SEGMENTER_KEY = "ui.segmenter"
DEFAULT_SEGMENTER = "grabcut"  # OpenCV, needs no weights; a project can name a SAM plugin instead
PREFETCH_IMAGES = 2
"""How many of the next images in the browser the segmenter encodes ahead of time."""


class SegmentationActions:
    """Mixed into MainWindow."""

    # ---- click segmentation ------------------------------------------------------------------------

    def _start_segmenting(self) -> None:
        """Load the project's segmenter on a worker (SAM takes seconds) and hand it the shown image."""
        if self.segment_tool is not None:
            self._feed_segment_image()
            return
        if self._segmenter_loading:
            return
        from studio.models.registry import load_model

        plugin_id = str(self._require().get_setting(SEGMENTER_KEY, DEFAULT_SEGMENTER))

        def load(_progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            return load_model(plugin_id)

        self._segmenter_loading = True
        job = self.run_job(f"Loading {plugin_id}…", load, lambda model: self._segmenter_ready(plugin_id, model))
        job.failed.connect(lambda _message: setattr(self, "_segmenter_loading", False))

    def _fill_segmenter_menu(self) -> None:
        """Segmentation plugins; those whose weights are not downloaded are listed but disabled."""
        from studio.models.registry import all_plugins, weights_status

        current = str(self._require().get_setting(SEGMENTER_KEY, DEFAULT_SEGMENTER)) if self.project else None
        self.segmenter_menu.clear()
        for spec in all_plugins("segment"):
            ready = weights_status(spec)["ready"]
            action = self.segmenter_menu.addAction(spec.title if ready else f"{spec.title} (weights not downloaded)")
            action.setCheckable(True)
            action.setChecked(spec.id == current)
            action.setEnabled(ready and self.project is not None)
            action.triggered.connect(lambda _checked=False, plugin_id=spec.id: self.set_segmenter(plugin_id))

    def set_segmenter(self, plugin_id: str) -> None:
        """Use another segmentation plugin for the S tool (remembered by the project)."""
        self._require().set_setting(SEGMENTER_KEY, plugin_id)
        self._drop_segment_tool()
        if self.canvas.tool == "segment":
            self._start_segmenting()

    def _drop_segment_tool(self) -> None:
        if self.segment_tool is not None:
            self.segment_tool.deleteLater()
            self.segment_tool = self.canvas.click_tool = None

    def _segmenter_ready(self, plugin_id: str, segmenter: Any) -> None:
        self._segmenter_loading = False
        tool = SamTool(self._require(), segmenter, model_id=plugin_id, store=self._store_segmented, parent=self)
        tool.preview_changed.connect(self._on_segment_preview)
        tool.prompts_changed.connect(self._show_segment_prompts)
        tool.busy_changed.connect(self._on_segment_busy)
        tool.failed.connect(lambda message: self.statusBar().showMessage(message, 8000))
        tool.encoding_changed.connect(
            lambda busy: self.statusBar().showMessage("Encoding the image…" if busy else "Click the object", 5000)
        )
        self.segment_tool = tool
        self.canvas.click_tool = tool
        self._feed_segment_image()

    def _feed_segment_image(self) -> None:
        tool = self.segment_tool
        if tool is None or self.media is None or self.canvas.image is None or self.canvas.tool != "segment":
            return
        if self.session.current_label_id is not None:
            tool.set_label(self.session.current_label_id)
        bgr = cv2.cvtColor(rgb_array(self.canvas.image), cv2.COLOR_RGB2BGR)  # models take OpenCV's order
        tool.set_image(self.media, bgr, frame=self.frame)
        # SAM's encoder takes seconds on a CPU: encode the next images now, so D lands on a ready one
        project = self._require()
        upcoming = [m for m in self.browser.following(self.media.id, PREFETCH_IMAGES) if m.kind == "image"]
        tool.prefetch([partial(read_media, project, media) for media in upcoming])

    def _on_segment_preview(self, mask: Any, index: int, score: float) -> None:
        tool = self.segment_tool
        if tool is None:
            return
        self.canvas.show_prompts(mask, [(c.x, c.y, c.positive) for c in tool.clicks], tool.box)
        count = len(tool.candidates)
        if count:
            more = ", Tab: next" if count > 1 else ""
            self.statusBar().showMessage(f"Candidate {index + 1} of {count} (score {score:.2f}){more}, Enter: accept")

    def _show_segment_prompts(self) -> None:
        """The click marker appears at once; the mask follows when the segmenter answers."""
        tool = self.segment_tool
        if tool is not None:
            shown = tool.candidates[0].mask if tool.candidates else None
            self.canvas.show_prompts(shown, [(c.x, c.y, c.positive) for c in tool.clicks], tool.box)

    def _on_segment_busy(self, busy: bool) -> None:
        if busy:
            self.statusBar().showMessage("Segmenting…")
            self.canvas.viewport().setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.canvas.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def _store_segmented(self, annotation: Annotation) -> Annotation:
        """The segment tool's accepted mask goes through the undo stack like a drawn shape."""
        command = AddAnnotations(self._require(), [annotation], self._on_media_changed, "Segment")
        self.undo_stack.push(command)
        self.session.use_label(annotation.label_id)
        return command.annotations[0]

    def new_shape(self) -> None:
        self.set_tool(self.session.last_drawing_tool)

    def toggle_shapes(self) -> None:
        self.session.shapes_visible = not self.hide_action.isChecked()
