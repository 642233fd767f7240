"""The local transformers backend end to end with a tiny random-init LLaVA saved as a model folder."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import write_image
from tiny_vlm import build_tiny_llava

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.db import Project
from studio.io.media import add_paths
from studio.jobs.ask import ask_question, local_backend
from studio.models.protocols import AskParams
from studio.models.vqa import flat_colour_image
from studio.models.weights import WeightsError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava")


def test_answers_stream_token_by_token_and_are_stored(tiny_llava: Path, project: Project, tmp_path: Path) -> None:
    add_paths(project, [write_image(tmp_path / "a.png", 64, 48)])
    media = project.list_media()[0]
    backend = local_backend(str(tiny_llava), device="cpu")
    pieces: list[str] = []
    answer = ask_question(project, media.id, "w1 w2", backend=backend, box=Box(8, 8, 40, 40),
                          params=AskParams(max_tokens=6, seed=1), on_token=pieces.append)
    assert len(pieces) >= 2 and answer.answer == "".join(pieces) and answer.answer.strip()
    assert answer.first_token_seconds is not None and answer.seconds >= answer.first_token_seconds
    follow = ask_question(project, media.id, "w3", backend=backend, box=Box(8, 8, 40, 40), params=AskParams(max_tokens=3))
    assert follow.conversation == answer.conversation
    root = project.root
    project.close()
    with Project.open(root) as reopened:
        stored = reopened.answers(media.id)
        assert [(a.question, a.answer, a.backend, a.model) for a in stored] == [
            ("w1 w2", answer.answer, "transformers-vqa", str(tiny_llava)), ("w3", follow.answer, "transformers-vqa", str(tiny_llava))
        ]
        assert stored[0].region == Box(8, 8, 40, 40) and stored[0].params["seed"] == 1
        assert stored[0].params["max_tokens"] == 6 and stored[0].params["device"] == "cpu"
        assert reopened.counts()["answers"] == 2


def test_the_same_seed_and_greedy_decoding_give_the_same_answer(tiny_llava: Path) -> None:
    model = local_backend(str(tiny_llava), device="cpu").model
    image = flat_colour_image("blue")
    first = "".join(model.ask(image, "w5", params=AskParams(max_tokens=5)))
    assert "".join(model.ask(image, "w5", params=AskParams(max_tokens=5))) == first


def test_cancel_stops_generation_within_a_token(tiny_llava: Path, project: Project, tmp_path: Path) -> None:
    add_paths(project, [write_image(tmp_path / "a.png")])
    media = project.list_media()[0]
    pieces: list[str] = []
    answer = ask_question(project, media.id, "w1", backend=local_backend(str(tiny_llava), device="cpu"),
                          params=AskParams(max_tokens=400), on_token=pieces.append, cancel=lambda: len(pieces) >= 2)
    assert answer.status == "cancelled" and len(pieces) == 2
    assert not any(t.name == "vqa-generate" for t in threading.enumerate())  # the generate thread has ended
    assert project.answers(media.id)[0].status == "cancelled"


def test_a_model_missing_offline_is_one_clear_error(tmp_path: Path) -> None:
    from studio_plugins.transformers_vqa import load

    with pytest.raises(WeightsError, match="not in the Hugging Face cache and offline mode is on"):
        load(weights="someone/no-such-vlm", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="does not hold a transformers vision-language model"):
        load(weights=str(tmp_path / "empty"), device="cpu")
    with pytest.raises(StudioError, match="unknown dtype"):
        load(weights=str(tmp_path / "empty"), device="cpu", dtype="int3")
