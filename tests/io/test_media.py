"""Probing, reading and adding media files: sizes, EXIF rotation, video frames, bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_image
from PIL import Image

from studio.core.errors import CancelledError, MediaError
from studio.db import Project
from studio.io.media import add_paths, iter_media_files, probe, read_frame, read_image, read_media

FRAMES = 30
BAR = 2  # frame i is black with a white bar at columns [BAR*i, BAR*i + BAR)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".tif", ".webp"])
def test_probe_image_formats(tmp_path: Path, suffix: str) -> None:
    path = write_image(tmp_path / f"img{suffix}", width=37, height=23)
    info = probe(path)
    assert (info.kind, info.width, info.height, info.frame_count) == ("image", 37, 23, 1)
    assert info.size_bytes == path.stat().st_size
    assert read_image(path).shape == (23, 37, 3)


def test_exif_orientation_6_swaps_width_and_height_and_reads_upright(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # as the sensor saw it: 40 wide, 20 high
    stored[:, :10] = (255, 0, 0)  # the stored left edge is red (RGB)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)

    info = probe(path)
    assert (info.width, info.height) == (20, 40)
    upright = read_image(path)
    assert upright.shape == (40, 20, 3)
    top_rows = upright[:10].reshape(-1, 3).mean(axis=0)
    assert top_rows[2] > 200 and top_rows[0] < 60  # the red stored-left edge is now on top (BGR)


def _write_video(path: Path, fourcc: str, *, fps: float = 12.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert writer.isOpened()
    for i in range(FRAMES):
        frame = np.zeros((48, 64, 3), dtype=np.uint8)
        frame[:, BAR * i : BAR * i + BAR] = 255
        writer.write(frame)
    writer.release()
    return path


def _bar_position(frame: np.ndarray) -> int:
    return int(np.argmax(frame.mean(axis=(0, 2)))) // BAR


@pytest.fixture(params=[("clip.mp4", "mp4v"), ("clip.avi", "MJPG")], ids=["mp4v", "mjpg"])
def video(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name, fourcc = request.param
    return _write_video(tmp_path / name, fourcc)


def test_probe_video_frame_count_and_fps(video: Path) -> None:
    info = probe(video)
    assert (info.kind, info.width, info.height) == ("video", 64, 48)
    assert info.frame_count == FRAMES
    assert info.fps == pytest.approx(12.0)


def test_read_frame_returns_the_frame_asked_for(video: Path) -> None:
    for index in (0, 1, 7, 15, FRAMES - 1, 3):  # forwards, backwards: seeking must land exactly
        assert _bar_position(read_frame(video, index)) == index


def test_read_frame_past_the_end_or_negative_is_a_media_error(video: Path) -> None:
    with pytest.raises(MediaError, match=f"frame {FRAMES}"):
        read_frame(video, FRAMES)
    with pytest.raises(MediaError, match="frame -1"):
        read_frame(video, -1)


def test_truncated_video_is_a_media_error(tmp_path: Path) -> None:
    for name, fourcc in (("cut.mp4", "mp4v"), ("cut.avi", "MJPG")):
        path = _write_video(tmp_path / name, fourcc)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(MediaError, match=name):
            probe(path)


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _make_bad_file(kind: str, folder: Path) -> Path:
    if kind.startswith("truncated-"):
        return _truncated(write_image(folder / f"half.{kind.removeprefix('truncated-')}", 200, 150))
    path = folder / {"random-bytes": "noise.jpg", "empty": "empty.png", "missing": "missing.jpg", "text": "notes.txt"}[kind]
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not media")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated-jpg", "truncated"),
        ("truncated-png", "not a readable image"),
        ("truncated-bmp", "not a readable image"),
        ("random-bytes", "not a readable image"),
        ("empty", "not a readable image"),
        ("missing", "file not found"),
        ("text", "not a supported image or video type"),
    ],
)
def test_bad_files_are_one_clear_media_error(tmp_path: Path, kind: str, message: str) -> None:
    path = _make_bad_file(kind, tmp_path)
    with pytest.raises(MediaError, match=message) as info:
        probe(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    if path.suffix != ".txt":
        with pytest.raises(MediaError):
            read_image(path)


def test_iter_media_files_is_recursive_sorted_and_skips_hidden_and_other_files(image_folder: Path) -> None:
    (image_folder / "a" / "readme.txt").write_text("not media")
    write_image(image_folder / ".thumbs" / "t.jpg")
    found = [p.relative_to(image_folder).as_posix() for p in iter_media_files([image_folder])]
    assert found == ["a/img0.jpg", "a/img1.jpg", "a/img2.jpg", "b/pic0.png", "b/pic1.png"]


def test_add_folder_recursively_and_read_back(project: Project, image_folder: Path) -> None:
    progress: list[tuple[int, int]] = []
    report = add_paths(project, [image_folder], progress=lambda done, total: progress.append((done, total)))
    assert len(report.added) == 5 and not report.failed
    assert progress[-1] == (5, 5)
    media = project.list_media()
    assert {m.name for m in media} == {"img0.jpg", "img1.jpg", "img2.jpg", "pic0.png", "pic1.png"}
    assert read_media(project, media[0]).shape == (48, 64, 3)


def test_a_file_added_twice_is_stored_once(project: Project, image_folder: Path) -> None:
    one = image_folder / "a" / "img0.jpg"
    report = add_paths(project, [one, image_folder, one.resolve()])
    assert len(report.added) == 5
    again = add_paths(project, [image_folder])
    assert (len(again.added), again.already_present) == (0, 5)
    assert project.counts()["media"] == 5


def test_add_video_and_read_its_frames(project: Project, video: Path) -> None:
    (media,) = add_paths(project, [video]).added
    assert (media.kind, media.frame_count) == ("video", FRAMES)
    assert _bar_position(read_media(project, media, frame=11)) == 11


def test_bad_file_without_skip_bad_adds_nothing(project: Project, image_folder: Path) -> None:
    _truncated(write_image(image_folder / "b" / "broken.jpg", 200, 150))
    with pytest.raises(MediaError, match="broken.jpg"):
        add_paths(project, [image_folder])
    assert project.counts()["media"] == 0


def test_skip_bad_reports_bad_files_and_adds_the_rest(project: Project, image_folder: Path) -> None:
    _truncated(write_image(image_folder / "b" / "broken.jpg", 200, 150))
    report = add_paths(project, [image_folder, image_folder / "gone.png"], skip_bad=True)
    assert len(report.added) == 5
    assert len(report.failed) == 2
    assert any("broken.jpg" in problem for problem in report.failed)
    assert any("gone.png" in problem for problem in report.failed)
    assert project.counts()["media"] == 5


def test_cancel_while_probing_adds_nothing(project: Project, image_folder: Path) -> None:
    calls = iter(range(100))
    with pytest.raises(CancelledError, match="nothing was added"):
        add_paths(project, [image_folder], cancel=lambda: next(calls) >= 3)
    assert project.counts()["media"] == 0


def test_cancel_between_batches_keeps_the_stored_batches(project: Project, image_folder: Path) -> None:
    checks = iter(range(100))
    # 5 probe checks pass, then the first batch is stored, then the second is cancelled
    with pytest.raises(CancelledError, match="2 of 5 files were added"):
        add_paths(project, [image_folder], batch_size=2, cancel=lambda: next(checks) >= 6)
    assert project.counts()["media"] == 2


def test_skip_bad_stores_each_batch_as_it_is_read(project: Project, image_folder: Path) -> None:
    """The window adds with skip_bad: the first files are in the project (and listed) before the rest are read."""
    (image_folder / "b" / "broken.png").write_bytes(b"not an image")
    stored_so_far: list[tuple[int, int]] = []
    report = add_paths(
        project, [image_folder], skip_bad=True, first_batch_size=2, batch_size=2,
        on_batch=lambda batch: stored_so_far.append((len(batch), project.count_media())),
    )
    assert stored_so_far == [(2, 2), (2, 4), (1, 5)]
    assert len(report.added) == 5 and len(report.failed) == 1 and "broken.png" in report.failed[0]


def test_a_jpeg_with_data_after_its_end_marker_is_accepted(tmp_path: Path) -> None:
    """Some phones append data (e.g. a depth map) after the image's end marker: the image is complete."""
    path = write_image(tmp_path / "phone.jpg", 40, 30)
    path.write_bytes(path.read_bytes() + b"\x00TRAILER" * 100)
    assert (probe(path).width, probe(path).height) == (40, 30)
