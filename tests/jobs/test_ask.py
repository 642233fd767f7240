"""Asking about a project's images through a loopback server: single questions, batches, accept, grounding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from chat_server import COLOURS_BGR, serve

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.core.types import Annotation
from studio.db import Project
from studio.io.media import add_paths
from studio.jobs.ask import accept_answers, ask_batch, ask_question, find_objects, server_backend, undo_accept_answers

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def colours(project: Project, tmp_path: Path) -> Project:
    """Three flat images: red, green, blue (in that order)."""
    paths = []
    for name in ("red", "green", "blue"):
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), np.full((40, 60, 3), COLOURS_BGR[name], np.uint8))
        paths.append(path)
    add_paths(project, paths)
    return project


def test_one_question_streams_is_stored_and_follow_ups_continue_the_conversation(colours: Project) -> None:
    red = colours.list_media()[0]
    pieces: list[str] = []
    with serve() as server:
        backend = server_backend(server.url, "llava")
        first = ask_question(colours, red.id, "What colour?", backend=backend, on_token=pieces.append)
        second = ask_question(colours, red.id, "Sure?", backend=backend)
        other = ask_question(colours, red.id, "What colour?", backend=backend, box=Box(0, 0, 10, 10))
    assert pieces == ["The ", "image ", "is ", "red."] and first.answer == "The image is red."
    assert second.conversation == first.conversation != other.conversation  # a region has its own conversation
    assert [m["role"] for m in server.requests[1]["messages"]] == ["user", "assistant", "user"]
    assert len(server.requests[2]["messages"]) == 1
    stored = colours.answers(red.id)
    assert [a.params["server"] for a in stored] == [server.url] * 3 and stored[0].model == "llava"
    assert stored[0].seconds > 0 and stored[0].first_token_seconds is not None


def test_a_failed_question_leaves_the_project_as_it_was(colours: Project) -> None:
    red = colours.list_media()[0]
    with serve(mode="malformed") as server, pytest.raises(StudioError, match="malformed stream"):
        ask_question(colours, red.id, "?", backend=server_backend(server.url, "llava"))
    assert colours.counts()["answers"] == 0


def test_batch_tags_with_choices_accept_and_undo(colours: Project) -> None:
    with serve() as server:
        run = ask_batch(colours, "Which colour?", backend=server_backend(server.url, "llava", concurrency=3),
                        choices=["red", "green", "blue"], target="tags")
    assert run.status == "complete" and run.stats["items"] == 3 and run.stats["matched"] == 3
    assert "Answer with exactly one of: red, green, blue." in server.requests[-1]["messages"][0]["content"][1]["text"]
    assert len(server.requests) == 4  # the preflight, then one per image
    media = colours.list_media()
    assert [colours.tags(m.id) for m in media] == [[], [], []]  # proposals until accepted
    accepted = accept_answers(colours, run.id)
    assert [colours.tags(m.id) for m in media] == [["red"], ["green"], ["blue"]]
    undo_accept_answers(colours, accepted)
    assert [colours.tags(m.id) for m in media] == [[], [], []]


def test_batch_captions_keep_existing_ones_unless_overwritten(colours: Project) -> None:
    red, green, _ = colours.list_media()
    colours.set_caption(red.id, "mine")
    with serve() as server:
        run = ask_batch(colours, "Describe.", backend=server_backend(server.url, "llava"), target="caption")
    accept_answers(colours, run.id)
    assert colours.get_media(red.id).caption == "mine"
    assert colours.get_media(green.id).caption == "The image is green."
    assert colours.counts()["answers"] == 3


def test_servers_get_concurrent_requests(colours: Project) -> None:
    with serve(delay=0.05) as server:
        ask_batch(colours, "Describe.", backend=server_backend(server.url, "llava", concurrency=3), check=False)
    assert server.max_in_flight >= 2


def test_an_interrupted_batch_resumes_its_run_and_skips_answered_items(colours: Project) -> None:
    with serve() as server:
        backend = server_backend(server.url, "llava", concurrency=1)
        first = ask_batch(colours, "Describe.", backend=backend, check=False,
                          cancel=lambda: colours.counts()["answers"] >= 1)
        assert first.status == "cancelled" and colours.counts()["answers"] == 1
        asked_before = len(server.requests)
        again = ask_batch(colours, "Describe.", backend=backend, check=False)
    assert again.id == first.id and again.status == "complete" and again.stats["resumed_from"] == 1
    assert len(server.requests) - asked_before == 2  # only the two unanswered images
    assert sorted(a.media_id for a in colours.answers(run_id=again.id)) == [m.id for m in colours.list_media()]


def test_a_server_that_ignores_images_is_caught_before_the_batch(colours: Project) -> None:
    before = colours.counts()
    with serve(mode="blind") as server, pytest.raises(StudioError, match="did not see the image"):
        ask_batch(colours, "Describe.", backend=server_backend(server.url, "llama-no-mmproj"))
    assert len(server.requests) == 1 and colours.counts() == before


def _boxes(project: Project) -> list[Annotation]:
    thing = project.ensure_label("thing")
    anns = [Annotation(m.id, thing.id, Box(0, 0, 30, 20)) for m in project.list_media()]
    project.add_annotations(anns)
    return project.annotations(label_ids=[thing.id])


def test_every_box_of_a_label_gets_an_attribute_or_a_new_label(colours: Project) -> None:
    boxes = _boxes(colours)
    with serve() as server:
        backend = server_backend(server.url, "llava")
        attr_run = ask_batch(colours, "Colour?", backend=backend, label="thing", target="attribute", attribute="colour",
                             choices=["red", "green", "blue"])
        label_run = ask_batch(colours, "Colour?", backend=backend, label="thing", target="label",
                              choices=["red", "green", "blue"], check=False)
    assert {a.annotation_id for a in colours.answers(run_id=attr_run.id)} == {b.id for b in boxes}
    accept_answers(colours, attr_run.id)
    assert [colours.get_annotation(b.id).attributes["colour"] for b in boxes] == ["red", "green", "blue"]
    accepted = accept_answers(colours, label_run.id)
    names = {label.id: label.name for label in colours.labels()}
    assert [names[colours.get_annotation(b.id).label_id] for b in boxes] == ["red", "green", "blue"]
    undo_accept_answers(colours, accepted)
    assert {names[colours.get_annotation(b.id).label_id] for b in boxes} == {"thing"}


def test_bad_batch_targets_are_refused_before_anything_runs(colours: Project) -> None:
    backend: Any = None
    with pytest.raises(StudioError, match="tags come from a list of choices"):
        ask_batch(colours, "?", backend=backend, target="tags")
    with pytest.raises(StudioError, match="name the label"):
        ask_batch(colours, "?", backend=backend, target="attribute", attribute="x")
    assert colours.counts()["runs"] == 0


def test_find_objects_turns_grounded_answers_into_predictions(colours: Project) -> None:
    qwen = '```json\n[\n  {"bbox_2d": [5, 4, 30, 20], "label": "blob"},\n  {"bbox_2d": [40, 10, 56, 28], "label": "blob"}\n]\n```'
    with serve(answer=lambda body: qwen) as server:
        run = find_objects(colours, "blob", backend=server_backend(server.url, "Qwen2.5-VL-7B-Instruct"),
                           box_format="qwen2.5-vl")
    assert "Locate every blob" in server.requests[0]["messages"][0]["content"][1]["text"]
    predictions = colours.annotations(source=run.id)
    assert run.stats["predictions"] == len(predictions) == 6
    # Qwen's processor enlarges 60x40 images to 84x56 (its pixel budget): its boxes are scaled back
    second = predictions[1].shape
    assert (second.x1, second.y1, second.x2, second.y2) == pytest.approx((40 * 60 / 84, 10 * 40 / 56, 40.0, 20.0))
    assert {colours.get_label(p.label_id).name for p in predictions} == {"blob"}
