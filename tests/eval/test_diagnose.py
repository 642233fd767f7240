"""Errors at an operating point: what a person fixing data sees per image, and the confusion matrix."""

from __future__ import annotations

import pytest

from studio.core.shapes import Box
from studio.core.types import Annotation, MediaInfo
from studio.db import Project
from studio.eval import evaluate
from studio.eval.compare import compare_runs


@pytest.fixture
def scene(project: Project):
    """Image a: a cat and a dog; image b: one cat; image c: a crowd of cats (reviewed)."""
    media = project.add_media([
        MediaInfo(path=f"/data/{n}.png", kind="image", width=200, height=100, size_bytes=1, mtime_ns=0) for n in "abc"
    ])
    cat, dog = project.ensure_label("cat"), project.ensure_label("dog")
    project.ensure_label("bird")  # never used: left out of the confusion matrix
    a, b, c = (m.id for m in media)
    project.add_annotations([
        Annotation(media_id=a, label_id=cat.id, shape=Box(0, 0, 40, 40)),
        Annotation(media_id=a, label_id=dog.id, shape=Box(100, 0, 160, 60)),
        Annotation(media_id=b, label_id=cat.id, shape=Box(10, 10, 60, 60)),
        Annotation(media_id=c, label_id=cat.id, shape=Box(0, 0, 200, 100), attributes={"iscrowd": 1}),
    ])
    return project, {"a": a, "b": b, "c": c}, cat.id, dog.id


def _run(project: Project, name: str, preds: list[tuple[int, int, Box, float]]) -> int:
    run = project.create_run("test", name=name)
    project.add_annotations(Annotation(media_id=m, label_id=label, shape=shape, run_id=run.id, score=score)
                            for m, label, shape, score in preds)
    return run.id


def test_confusion_matrix_counts_hits_confusions_false_positives_and_misses(scene) -> None:
    project, media, cat, dog = scene
    run = _run(project, "model", [
        (media["a"], cat, Box(1, 1, 41, 41), 0.9),      # right
        (media["a"], cat, Box(100, 0, 158, 60), 0.8),   # the dog, called a cat
        (media["a"], dog, Box(50, 50, 90, 95), 0.7),    # nothing there
        (media["a"], dog, Box(0, 0, 40, 40), 0.1),      # below the score threshold: not counted
        (media["c"], cat, Box(20, 20, 60, 60), 0.9),    # inside a crowd: neither right nor wrong
    ])
    result = evaluate(project, pred=run, conf=0.25)
    matrix = result.to_json()["confusion_matrix"]
    assert matrix["cat"] == {"cat": 1, "dog": 0, "background": 1}  # image b's cat was missed
    assert matrix["dog"] == {"cat": 1, "dog": 0, "background": 0}
    assert matrix["background"] == {"cat": 0, "dog": 1, "background": 0}
    assert set(matrix) == {"cat", "dog", "background"}
    by_media = {e.image[0]: e for e in result.diagnosis.images}
    a = by_media[media["a"]]
    assert (a.true_positives, a.confusions, a.false_positives, a.misses) == (1, 1, 1, 0)
    assert by_media[media["b"]].misses == 1
    assert by_media[media["c"]].errors == 0
    assert result.error_totals() == {"true_positives": 1, "false_positives": 1, "misses": 1, "confusions": 1}


def test_same_class_match_wins_over_a_higher_scored_wrong_class(scene) -> None:
    project, media, cat, dog = scene
    run = _run(project, "model", [
        (media["a"], dog, Box(0, 0, 40, 42), 0.95),  # overlaps the cat, wrong class, higher score
        (media["a"], cat, Box(0, 0, 40, 38), 0.6),   # the cat
    ])
    errors = {e.image[0]: e for e in evaluate(project, pred=run).diagnosis.images}[media["a"]]
    assert (errors.true_positives, errors.confusions, errors.false_positives) == (1, 0, 1)


def test_comparison_ranks_the_image_where_runs_disagree(scene) -> None:
    project, media, cat, dog = scene
    good = _run(project, "good", [
        (media["a"], cat, Box(0, 0, 40, 40), 0.9), (media["a"], dog, Box(100, 0, 160, 60), 0.9),
        (media["b"], cat, Box(10, 10, 60, 60), 0.9),
    ])
    other = _run(project, "other", [
        (media["a"], cat, Box(0, 0, 40, 40), 0.9), (media["a"], cat, Box(100, 0, 160, 60), 0.9),  # dog as cat
        (media["b"], cat, Box(12, 12, 60, 60), 0.9),
    ])
    comparison = compare_runs(project, [good, other])
    worst = comparison.images[0]
    assert worst.media_id == media["a"]
    assert worst.class_conflicts == 1  # the dog: "dog" for one run, "cat" for the other
    b_row = next(row for row in comparison.images if row.media_id == media["b"])
    assert 0 < b_row.iou_spread < 0.2 and b_row.class_conflicts == 0
    assert comparison.images[-1].media_id == media["c"] and comparison.images[-1].disagreement == 0
    assert comparison.deltas()["other"]["map50"] < 0
    assert comparison.deltas()["other"]["map_small"] is None  # no small object: undefined, not "no change"


def test_video_frames_are_evaluated_as_separate_images(project: Project) -> None:
    video = project.add_media([MediaInfo(path="/data/clip.mp4", kind="video", width=200, height=100, size_bytes=1,
                                         mtime_ns=0, frame_count=10, fps=5.0)])[0]
    cat = project.ensure_label("cat")
    project.add_annotations(Annotation(media_id=video.id, frame=f, label_id=cat.id, shape=Box(10, 10, 50, 50))
                            for f in (0, 5))
    runs = [_run(project, name, [(video.id, cat.id, Box(10, 10, 50, 50), 0.9)]) for name in ("r1", "r2")]
    for run in runs:  # both runs found the cat on frame 0 only: frame 5 is a miss, not a false positive
        project.add_annotation(Annotation(media_id=video.id, frame=9, label_id=cat.id, shape=Box(0, 0, 9, 9),
                                          run_id=run, score=0.9))  # an unlabelled frame: left out
    comparison = compare_runs(project, runs)
    assert [(row.frame, row.name) for row in comparison.images] == [(5, "clip.mp4 #5"), (0, "clip.mp4 #0")]
    assert comparison.images[0].misses == 2 and comparison.images[0].false_positives == 0
    assert comparison.results[0].metrics["mar_100"] == 0.5
