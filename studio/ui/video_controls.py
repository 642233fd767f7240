"""Video transport for the labelling window: timeline with keyframe markers, play/pause, step, jump.

The controls only say which frame to show (`frame_changed`); the window asks the FrameReader for it,
so playback and scrubbing never wait for decoding here, and frames the reader drops are simply skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QRect, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)

from studio.core.types import Media

KEYFRAME_COLOR = QColor("#f28e2b")  # PALETTE orange: visible on light and dark themes alike


def format_time(seconds: float) -> str:
    minutes, seconds = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes):02d}:{seconds:05.2f}"


class Timeline(QSlider):
    """A horizontal frame slider that marks keyframes (frames holding annotations) with ticks.

    A click anywhere jumps there (QSlider would only page towards the click), then drags as usual.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._keyframes: list[int] = []
        self.setMinimumHeight(26)
        self.setPageStep(10)

    @property
    def keyframes(self) -> list[int]:
        return list(self._keyframes)

    def set_keyframes(self, frames: Iterable[int]) -> None:
        self._keyframes = sorted(set(frames))
        self.update()

    def x_for_frame(self, frame: int) -> int:
        """Horizontal pixel of the handle centre when it shows `frame`."""
        option = self._style_option()
        groove = self._groove(option)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = max(groove.width() - handle.width(), 1)
        offset = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), frame, span)
        return groove.x() + handle.width() // 2 + offset

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._keyframes:
            painter = QPainter(self)
            groove = self._groove(self._style_option())
            tick = max(3, groove.height() // 2)
            for x in sorted({self.x_for_frame(frame) for frame in self._keyframes if self._in_range(frame)}):
                # above and below the groove, so the handle never hides a marker completely
                painter.fillRect(QRect(x - 1, 0, 3, tick + 1), KEYFRAME_COLOR)
                painter.fillRect(QRect(x - 1, self.height() - tick - 1, 3, tick + 1), KEYFRAME_COLOR)
            painter.end()
        super().paintEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        option = self._style_option()
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, self)
        if event.button() == Qt.MouseButton.LeftButton and not handle.contains(event.position().toPoint()):
            groove = self._groove(option)
            span = max(groove.width() - handle.width(), 1)
            position = round(event.position().x()) - groove.x() - handle.width() // 2
            self.setValue(QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), position, span))
        super().mousePressEvent(event)  # now on the handle: starts a drag

    def _in_range(self, frame: int) -> bool:
        return self.minimum() <= frame <= self.maximum()

    def _style_option(self) -> QStyleOptionSlider:
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        return option

    def _groove(self, option: QStyleOptionSlider) -> QRect:
        return self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                           QStyle.SubControl.SC_SliderGroove, self)


class VideoControls(QWidget):
    """Transport bar for one video; `frame_changed(frame)` whenever the shown frame should change.

    `set_media` resets to frame 0 without emitting (the window loads that frame itself);
    `set_frame(n)`, the buttons, the timeline, the jump box and playback emit when the frame changes.
    For an image the controls are disabled.
    """

    frame_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._media: Media | None = None
        self._frame = 0
        style = self.style()
        self.previous_key_button = QToolButton(toolTip="Previous keyframe (a frame with annotations)")
        self.previous_key_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward))
        self.next_key_button = QToolButton(toolTip="Next keyframe (a frame with annotations)")
        self.next_key_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward))
        self.step_back_button = QToolButton(toolTip="Previous frame (,)")
        self.step_back_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.play_button = QToolButton(toolTip="Play / pause", checkable=True)
        self.play_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.step_forward_button = QToolButton(toolTip="Next frame (.)")
        self.step_forward_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.timeline = Timeline()
        self.timeline.setToolTip("Frame (ticks mark frames with annotations)")
        self.jump_box = QSpinBox(toolTip="Jump to frame", keyboardTracking=False)
        self.jump_box.setAccelerated(True)
        self.time_label = QLabel()
        self.time_label.setMinimumWidth(self.time_label.fontMetrics().horizontalAdvance("00:00.00 / 00:00.00 "))
        self._play_timer = QTimer(self)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.previous_key_button)
        layout.addWidget(self.step_back_button)
        layout.addWidget(self.play_button)
        layout.addWidget(self.step_forward_button)
        layout.addWidget(self.next_key_button)
        layout.addWidget(self.timeline, 1)
        layout.addWidget(self.jump_box)
        layout.addWidget(self.time_label)

        self.step_back_button.clicked.connect(lambda: self.step(-1))
        self.step_forward_button.clicked.connect(lambda: self.step(+1))
        self.previous_key_button.clicked.connect(lambda: self.jump_keyframe(-1))
        self.next_key_button.clicked.connect(lambda: self.jump_keyframe(+1))
        self.play_button.toggled.connect(self._on_play_toggled)
        self.timeline.valueChanged.connect(self.set_frame)
        self.jump_box.valueChanged.connect(self.set_frame)
        self._play_timer.timeout.connect(self._advance)
        self.set_media(None, [])

    # ---- public API --------------------------------------------------------------------------------

    @property
    def frame(self) -> int:
        return self._frame

    def set_media(self, media: Media | None, keyframes: Iterable[int] = ()) -> None:
        """Show a video's timeline at frame 0 (an image or None disables the controls)."""
        self.pause()
        self._media = media
        self._frame = 0
        last = max((media.frame_count if media is not None else 1) - 1, 0)
        for widget in (self.timeline, self.jump_box):
            with QSignalBlocker(widget):
                widget.setRange(0, last)
                widget.setValue(0)
        self.jump_box.setSuffix(f" / {last}")
        self.timeline.set_keyframes(keyframes)
        self.setEnabled(media is not None and media.kind == "video" and last > 0)
        fps = media.fps if media is not None and media.fps else 25.0
        self._play_timer.setInterval(max(1, round(1000 / fps)))
        self._update_label()

    def set_keyframes(self, frames: Iterable[int]) -> None:
        """Update the markers (after annotations were added to or removed from frames)."""
        self.timeline.set_keyframes(frames)

    def set_frame(self, frame: int) -> None:
        """Show `frame` (clamped to the video); emits frame_changed if it differs from the current one."""
        frame = min(max(frame, self.timeline.minimum()), self.timeline.maximum())
        if frame == self._frame:
            return
        self._frame = frame
        for widget in (self.timeline, self.jump_box):
            with QSignalBlocker(widget):
                widget.setValue(frame)
        self._update_label()
        self.frame_changed.emit(frame)

    def step(self, delta: int) -> None:
        self.set_frame(self._frame + delta)

    def jump_keyframe(self, direction: int) -> None:
        """Go to the nearest keyframe after (direction > 0) or before the current frame, if there is one."""
        keyframes = self.timeline.keyframes
        if direction > 0:
            target = next((f for f in keyframes if f > self._frame), None)
        else:
            target = next((f for f in reversed(keyframes) if f < self._frame), None)
        if target is not None:
            self.set_frame(target)

    def play(self) -> None:
        self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def is_playing(self) -> bool:
        return self._play_timer.isActive()

    # ---- internals ---------------------------------------------------------------------------------

    def _on_play_toggled(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        if not playing:
            self._play_timer.stop()
            return
        if self._frame >= self.timeline.maximum():
            self.set_frame(0)  # playing from the end starts over, as media players do
        self._play_timer.start()

    def _advance(self) -> None:
        if self._frame >= self.timeline.maximum():
            self.pause()
        else:
            self.set_frame(self._frame + 1)

    def _update_label(self) -> None:
        media = self._media
        if media is None or media.kind != "video":
            self.time_label.setText("")
            return
        fps = media.fps or 25.0
        self.time_label.setText(
            f"{format_time(self._frame / fps)} / {format_time(max(media.frame_count - 1, 0) / fps)}"
        )
