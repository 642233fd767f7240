"""The labelling session without Qt: views observe its fields, visibility and paste rules, saved state."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import write_image

from studio.core.geometry import encode_mask
from studio.core.shapes import Box, Points, Polygon, RotatedBox
from studio.core.types import Annotation
from studio.io.media import add_paths
from studio.jobs.accept import accept_predictions
from studio.session import Session
from studio.session.editing import paste_onto


@pytest.fixture
def session(project, tmp_path):
    write_image(tmp_path / "m" / "big.png", 200, 100)
    write_image(tmp_path / "m" / "small.png", 50, 40, seed=1)
    add_paths(project, [tmp_path / "m"])
    project.ensure_label("cat")
    project.ensure_label("dog")
    session = Session()
    session.open(project)
    return session


def _media(session, name):
    return next(m for m in session.project.list_media() if m.path.endswith(name))


def test_the_session_imports_no_qt():
    code = "import sys, studio.session, studio.session.shape_edit; print(any(m.startswith('PySide6') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_views_hear_each_change_once_and_only_real_changes(session):
    heard: list[object] = []
    session.events.annotations.connect(heard.append)
    big = _media(session, "big.png")
    cat = session.labels[0].id
    session.project.add_annotation(Annotation(media_id=big.id, label_id=cat, shape=Box(1, 1, 20, 20)))
    session.show(big.id)
    session.refresh_annotations()
    assert [len(shown) for shown in heard] == [1]
    session.refresh_annotations()  # nothing changed: no emission
    assert len(heard) == 1
    session.set_label_visible(cat, False)  # the session re-reads by itself: no window refresh
    assert heard[-1] == ()


def test_run_visibility_thresholds_and_accepted_predictions(session):
    project = session.project
    big = _media(session, "big.png")
    cat = session.labels[0].id
    run = project.create_run("fake")
    project.add_annotations([
        Annotation(media_id=big.id, label_id=cat, shape=Box(0, 0, 10, 10), run_id=run.id, score=0.9),
        Annotation(media_id=big.id, label_id=cat, shape=Box(50, 50, 60, 60), run_id=run.id, score=0.2),
    ])
    session.show(big.id)
    session.refresh_annotations()
    assert session.annotations == ()  # runs start hidden
    session.set_source_visible(run.id, True)
    assert len(session.annotations) == 2
    session.set_run_threshold(run.id, 0.5)
    assert [a.score for a in session.annotations] == [0.9]
    accept_predictions(project, run.id, min_score=0.5)
    session.refresh_annotations()
    # the accepted prediction is no longer drawn over its human copy
    assert [(a.run_id, a.shape) for a in session.annotations] == [(None, Box(0, 0, 10, 10))]


def test_paste_onto_a_smaller_image_clips_or_refuses_and_says_so(session):
    big, small = _media(session, "big.png"), _media(session, "small.png")
    cat = session.labels[0].id
    shapes = [
        Box(10, 10, 30, 30),  # inside both
        Box(30, 20, 120, 60),  # sticks out of the small image: clipped
        Box(100, 60, 190, 90),  # wholly outside the small image: refused
        RotatedBox(45, 20, 30, 10, 0.3),  # sticks out: refused, clipping would change its kind
        encode_mask(np.ones((100, 200), bool)),  # another image size: refused
        Polygon([[(0, 0), (80, 0), (80, 30)]]),
        Points([(5, 5), (150, 80)]),
    ]
    clipboard = [Annotation(media_id=big.id, label_id=cat, shape=s, id=i) for i, s in enumerate(shapes, 1)]
    result = paste_onto(clipboard, small)
    h, w = small.size
    kinds = [a.shape.kind for a in result.annotations]
    assert kinds == ["box", "box", "polygon", "points"]
    assert (result.clipped, result.refused) == (3, 3)
    for ann in result.annotations:
        x, y, bw, bh = ann.shape.bbox()
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h and ann.id is None and ann.media_id == small.id
    assert "3 clipped" in result.message() and "3 left out" in result.message()


def test_copy_and_paste_through_the_session(session):
    big, small = _media(session, "big.png"), _media(session, "small.png")
    ann = session.project.add_annotation(Annotation(media_id=big.id, label_id=session.labels[0].id, shape=Box(0, 0, 100, 90)))
    session.show(big.id)
    session.refresh_annotations()
    session.select([ann.id])
    assert session.copy() == 1
    session.show(small.id)
    assert session.selection == ()  # another image: nothing selected
    pasted = session.paste()
    assert pasted.annotations[0].shape == Box(0, 0, 50, 40) and pasted.clipped == 1


def test_choices_are_saved_in_the_project_and_restored_by_a_new_session(session):
    project = session.project
    run = project.create_run("fake")
    small = _media(session, "small.png")
    session.show(small.id)
    session.set_source_visible(run.id, True)
    session.set_run_threshold(run.id, 0.4)
    session.brush_size = 21
    session.use_label(session.labels[1].id)
    session.save_state({"zoom": 2.0, "x": 1.0, "y": 2.0})

    again = Session()
    again.open(project)
    media, frame, view = again.remembered_media()
    assert media.id == small.id and frame == 0 and view == {"zoom": 2.0, "x": 1.0, "y": 2.0}
    assert again.visible_runs == {run.id} and again.run_thresholds == {run.id: 0.4}
    assert again.brush_size == 21 and again.current_label_id == session.labels[1].id


def test_tool_changes_remember_the_last_drawing_tool(session):
    session.tool = "polygon"
    session.tool = "select"
    assert session.last_drawing_tool == "polygon"
