"""Video transport and background frame decoding, checked on a generated video whose frames encode their index."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from studio.core.types import Media, MediaInfo
from studio.db import Project
from studio.io.media import probe
from studio.ui.frame_reader import FrameReader
from studio.ui.video_controls import KEYFRAME_COLOR, VideoControls

FRAMES = 40
WIDTH, HEIGHT = 64, 48


def gray_of(frame: int) -> int:
    """Every pixel of frame `frame` has this grey level (flat frames survive MJPEG intact)."""
    return 20 + 5 * frame


def write_video(path: Path, *, fps: float = 200.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for frame in range(FRAMES):
        writer.write(np.full((HEIGHT, WIDTH, 3), gray_of(frame), np.uint8))
    writer.release()
    return path


def frame_index_of(image: QImage) -> int:
    """Decode the index a frame encodes from its centre pixel."""
    level = QColor(image.pixel(WIDTH // 2, HEIGHT // 2)).red()
    return round((level - 20) / 5)


@pytest.fixture
def video(project: Project, tmp_path: Path) -> Media:
    (media,) = project.add_media([probe(write_video(tmp_path / "clip.avi"))])
    assert media.frame_count == FRAMES
    return media


@pytest.fixture
def reader(qtbot) -> FrameReader:
    reader = FrameReader()
    yield reader
    reader.close()


@pytest.fixture
def controls(qtbot, project: Project, video: Media, reader: FrameReader) -> VideoControls:
    controls = VideoControls()
    qtbot.addWidget(controls)
    controls.resize(640, 40)
    controls.frame_changed.connect(lambda frame: reader.request(project, video, frame))
    controls.set_media(video, [3, 17, 30])
    controls.show()
    qtbot.waitExposed(controls)
    return controls


def wait_for_frame(qtbot, reader: FrameReader, frame: int, action) -> QImage:
    with qtbot.waitSignal(reader.frame_ready, timeout=5000,
                          check_params_cb=lambda _media, delivered, _image: delivered == frame) as blocker:
        action()
    return blocker.args[2]


@pytest.mark.parametrize("frames", [[25], [5, 6, 7, 8], [30, 2, 39, 0]], ids=["jump", "forward", "back-and-forth"])
def test_scrubber_shows_the_frame_asked_for(qtbot, controls: VideoControls, reader: FrameReader, frames: list[int]):
    for frame in frames:
        image = wait_for_frame(qtbot, reader, frame, lambda frame=frame: controls.set_frame(frame))
        assert frame_index_of(image) == frame
        assert controls.timeline.value() == controls.jump_box.value() == frame


def test_fast_scrubbing_ends_on_the_last_frame_asked_for(qtbot, controls: VideoControls, reader: FrameReader):
    delivered: list[int] = []
    reader.frame_ready.connect(lambda _media, frame, _image: delivered.append(frame))

    def scrub() -> None:
        for frame in range(1, FRAMES):
            controls.timeline.setValue(frame)  # as when dragging the handle

    image = wait_for_frame(qtbot, reader, FRAMES - 1, scrub)
    assert frame_index_of(image) == FRAMES - 1
    qtbot.waitUntil(reader.idle)
    assert delivered[-1] == FRAMES - 1  # a stale frame never arrives after the one asked for last


def test_jump_box_and_steps_move_the_frame(qtbot, controls: VideoControls, reader: FrameReader):
    wait_for_frame(qtbot, reader, 12, lambda: controls.jump_box.setValue(12))
    image = wait_for_frame(qtbot, reader, 13, controls.step_forward_button.click)
    assert frame_index_of(image) == 13
    controls.set_frame(20)
    assert controls.time_label.text().startswith("00:00.10 /")  # frame 20 at 200 fps
    controls.set_frame(FRAMES + 100)
    assert controls.frame == FRAMES - 1  # clamped to the video


def test_playback_runs_to_the_end_and_stops(qtbot, controls: VideoControls):
    controls.play()
    assert controls.is_playing()
    qtbot.waitUntil(lambda: not controls.is_playing(), timeout=5000)
    assert controls.frame == FRAMES - 1


def test_keyframe_markers_are_drawn_at_their_frames(controls: VideoControls):
    timeline = controls.timeline
    picture = timeline.grab().toImage()
    scale = picture.width() / timeline.width()

    def marked(x: int) -> bool:
        return QColor(picture.pixel(round(x * scale), 1)).name() == KEYFRAME_COLOR.name()

    assert all(marked(timeline.x_for_frame(frame)) for frame in (3, 17, 30))
    assert not any(marked(timeline.x_for_frame(frame)) for frame in (10, 24, 36))
    controls.set_keyframes([10])
    picture = timeline.grab().toImage()
    assert marked(timeline.x_for_frame(10)) and not marked(timeline.x_for_frame(17))


def test_still_image_is_frame_zero(qtbot, project: Project, reader: FrameReader, tmp_path: Path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.full((HEIGHT, WIDTH, 3), (0, 0, 200), np.uint8))  # BGR red
    (image_media,) = project.add_media([MediaInfo(str(path), "image", WIDTH, HEIGHT, path.stat().st_size, 0)])
    image = wait_for_frame(qtbot, reader, 0, lambda: reader.request(project, image_media, 0))
    assert QColor(image.pixel(5, 5)).red() == 200
    controls = VideoControls()
    qtbot.addWidget(controls)
    controls.set_media(image_media, [])
    assert not controls.isEnabled()


def test_unreadable_video_reports_failure(qtbot, project: Project, reader: FrameReader, tmp_path: Path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all")
    (broken,) = project.add_media([MediaInfo(str(path), "video", WIDTH, HEIGHT, 18, 0, frame_count=10, fps=25.0)])
    with qtbot.waitSignal(reader.frame_failed, timeout=5000) as blocker:
        reader.request(project, broken, 3)
    assert blocker.args[:2] == [broken.id, 3]
    assert "broken.mp4" in blocker.args[2]


def test_skip_buttons_jump_between_keyframes_not_frames(controls: VideoControls):
    assert controls.timeline.keyframes == [3, 17, 30]
    controls.next_key_button.click()
    assert controls.frame == 3
    controls.next_key_button.click()
    assert controls.frame == 17
    controls.previous_key_button.click()
    assert controls.frame == 3
    controls.previous_key_button.click()
    assert controls.frame == 3  # no keyframe before the first: stays
    controls.step_forward_button.click()
    assert controls.frame == 4
