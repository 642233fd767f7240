"""Tracks in the project database: keyframes, outside ranges, interpolation on demand, restarts."""

from __future__ import annotations

import pytest

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.db import Project
from studio.db import tracks as track_store
from studio.io.media import add_paths
from tests.conftest import write_video


@pytest.fixture
def video(project, tmp_path):
    (media,) = add_paths(project, [write_video(tmp_path / "clip.avi", frames=20)]).added
    return media


def test_two_keyframes_show_the_object_on_every_frame_between_after_a_restart(project, video):
    label = project.ensure_label("car")
    track = track_store.create_track(project, video.id, label.id,
                                     keyframes=[(2, Box(0, 0, 10, 10)), (12, Box(20, 0, 30, 10))])
    root = project.root
    project.close()
    with Project.open(root) as reopened:
        shapes = {frame: track_store.load_tracks(reopened, video.id).at(frame) for frame in range(20)}
        assert shapes[1] == []
        (mid,) = shapes[7]
        assert mid.shape == Box(10, 0, 20, 10) and not mid.keyframe and mid.track.id == track.id
        assert shapes[12][0].keyframe and shapes[19][0].shape == Box(20, 0, 30, 10)
        # keyframes are ordinary annotations on their frames; nothing was stored for the frames between
        assert [a.frame for a in reopened.annotations(video.id)] == [2, 12]
        assert track_store.count_tracks(reopened) == 1


def test_outside_keyframe_edits_and_materialised_frames(project, video):
    label = project.ensure_label("car")
    track = track_store.create_track(project, video.id, label.id, keyframes=[(0, Box(0, 0, 10, 10))])
    track_store.set_keyframe(project, track.id, 10, Box(10, 0, 20, 10))
    track_store.set_outside(project, track.id, [(15, 19)])
    exported = list(track_store.materialize(project, video.id, stride=5))
    assert [(a.frame, a.shape) for a in exported] == [(5, Box(5, 0, 15, 10))]
    assert exported[0].attributes["interpolated"] is True and exported[0].track_id == track.id
    track_store.remove_keyframe(project, track.id, 10)
    assert track_store.load_tracks(project, video.id).at(5)[0].shape == Box(0, 0, 10, 10)  # held again


def test_per_frame_annotations_join_into_a_track(project, video):
    from studio.core.types import Annotation

    label = project.ensure_label("car")
    anns = [project.add_annotation(Annotation(media_id=video.id, label_id=label.id, frame=f, shape=Box(f, 0, f + 5, 5)))
            for f in (0, 8)]
    track = track_store.join_into_track(project, [a.id for a in anns])
    assert [a.frame for a in track_store.keyframes(project, track.id)] == [0, 8]
    assert track_store.load_tracks(project, video.id).at(4)[0].shape == Box(4, 0, 9, 5)
    track_store.delete_track(project, track.id)
    assert project.annotations(video.id) == [] and track_store.tracks(project) == []


def test_bad_tracks_are_one_clear_error(project, video, tmp_path):
    from tests.conftest import write_image

    label = project.ensure_label("car")
    with pytest.raises(StudioError, match="frame 40 is outside clip.avi"):
        track_store.create_track(project, video.id, label.id, keyframes=[(40, Box(0, 0, 1, 1))])
    (image,) = add_paths(project, [write_image(tmp_path / "a.png")]).added
    with pytest.raises(StudioError, match="tracks belong to videos"):
        track_store.create_track(project, image.id, label.id)
    assert track_store.tracks(project) == [] and project.annotations() == []
