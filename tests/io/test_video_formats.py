"""CVAT for video and MOTChallenge files: tracks in, tracks out, and what the frames between keyframes show."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.shapes import Box, Polygon
from studio.db import tracks as track_store
from studio.io.formats.video_tracks import export_video, import_video
from studio.io.media import add_paths
from tests.conftest import write_video

DATA = Path(__file__).resolve().parents[1] / "data" / "cvat_video"


@pytest.fixture
def video(project, tmp_path):
    (media,) = add_paths(project, [write_video(tmp_path / "clip.avi", frames=20)]).added
    return media


def test_a_cvat_video_file_becomes_tracks_that_interpolate_as_cvat_did(project, video):
    report = import_video(project, "cvat-video", DATA / "clip_annotations.xml")
    assert (report.media, report.tracks, report.keyframes) == ("clip.avi", 2, 4)
    car, person = track_store.tracks(project, video.id)
    assert car.outside == ((15, 19),) and car.attributes == {"parked": False}
    assert [a.frame for a in track_store.keyframes(project, car.id)] == [0, 10]
    shapes = track_store.load_tracks(project, video.id)
    # CVAT wrote its own interpolation of frame 7 into the file (keyframe="0"): Studio's equals it
    assert shapes.at(7)[0].shape == Box(18.0, 20.0, 30.0, 32.0)
    assert [s.track.id for s in shapes.at(16)] == [person.id]  # the car left at frame 15
    assert shapes.at(3)[1].shape == Polygon([[(11, 40), (21, 40), (21, 50), (11, 50)]])


def test_cvat_video_round_trip_keeps_keyframes_outside_ranges_and_labels(project, video, tmp_path):
    import_video(project, "cvat-video", DATA / "clip_annotations.xml")
    out, _ = export_video(project, "cvat-video", None, tmp_path / "out" / "annotations.xml")
    from studio.db import Project

    with Project.create(tmp_path / "other") as other:
        add_paths(other, [tmp_path / "clip.avi"])
        import_video(other, "cvat-video", out)
        for a, b in zip(track_store.tracks(project), track_store.tracks(other), strict=True):
            assert (a.outside, a.attributes) == (b.outside, b.attributes)
            assert [(k.frame, k.shape) for k in track_store.keyframes(project, a.id)] == \
                   [(k.frame, k.shape) for k in track_store.keyframes(other, b.id)]


def test_mot_gaps_are_outside_and_the_export_writes_the_same_rows(project, video, tmp_path):
    report = import_video(project, "mot", DATA / "gt.txt")
    assert report.tracks == 2 and report.labels_created == ["class_1"]
    first, second = track_store.tracks(project, video.id)
    assert first.outside == ((3, 19),) and second.outside == ((3, 3), (5, 19))
    assert second.attributes["ignored"] is True
    out, _ = export_video(project, "mot", None, tmp_path / "mot" / "gt.txt")
    written = [line.split(",")[:6] for line in out.read_text().splitlines()]
    original = sorted((line.split(",")[:6] for line in (DATA / "gt.txt").read_text().splitlines()),
                      key=lambda row: (int(row[0]), int(row[1])))
    assert [[float(v) for v in row] for row in written] == [[float(v) for v in row] for row in original]


def test_cli_imports_tracks_counts_them_and_exports_interpolated_frames_to_coco(project, video, tmp_path, capsys):
    root = str(project.root)
    assert main(["import", root, "--format", "cvat-video", str(DATA / "clip_annotations.xml")]) == 0
    assert "imported 2 tracks (4 keyframes)" in capsys.readouterr().out
    assert main(["info", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tracks"] == 2
    assert main(["export", root, str(tmp_path / "coco"), "--format", "coco", "--frame-stride", "5", "--no-images"]) == 0
    document = json.loads(next((tmp_path / "coco").rglob("*.json")).read_text())
    frames = sorted(image["file_name"] for image in document["images"])
    # keyframes 0, 2, 4, 10 plus every 5th frame where an object is present: 5, 15 (person holds), 10 already
    assert frames == [f"clip_{f:06d}.jpg" for f in (0, 2, 4, 5, 10, 15)]


def test_a_file_for_another_video_is_one_clear_error_and_changes_nothing(project, video, tmp_path, capsys):
    other = tmp_path / "wide.xml"
    shutil.copy(DATA / "clip_annotations.xml", other)
    other.write_text(other.read_text().replace("<width>96</width>", "<width>1920</width>"))
    assert main(["import", str(project.root), "--format", "cvat-video", str(other)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "1920x64 video; clip.avi is 96x64" in error
    assert project.counts()["tracks"] == 0 and project.annotations() == []
