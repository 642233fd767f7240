"""The OpenAI-compatible server backend against a real HTTP server on 127.0.0.1, streamed and not."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from chat_server import colour_name, image_uris, serve

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.jobs.ask import preflight, server_backend
from studio.models.protocols import AskParams, ChatTurn
from studio.models.registry import get_plugin
from studio.models.vqa import flat_colour_image

pytestmark = pytest.mark.timeout(60)


def _client(url: str, **options: object):
    return get_plugin("openai-server").load(base_url=url, model="llava", **options)


@pytest.mark.parametrize("stream", [True, False])
def test_image_arrives_as_a_data_uri_and_the_answer_streams_back(stream: bool) -> None:
    with serve() as server:
        client = _client(server.url, stream=stream)
        pieces = list(client.ask(flat_colour_image("green"), "What colour?", params=AskParams(seed=3, max_tokens=9)))
    assert "".join(pieces) == "The image is green."
    assert len(pieces) == (4 if stream else 1)
    (body,) = server.requests
    assert image_uris(body)[0].startswith("data:image/jpeg;base64,")
    assert body["model"] == "llava" and body["stream"] is stream
    assert (body["seed"], body["max_tokens"], body["temperature"]) == (3, 9, 0.0)


def test_a_region_is_cropped_or_drawn_and_history_is_sent() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[60:100, 60:100] = (255, 0, 0)  # blue corner
    region = Box(60, 60, 100, 100)
    with serve() as server:
        client = _client(server.url)
        cropped = "".join(client.ask(image, "colour?", region=region, params=AskParams(context=0.0)))
        drawn = "".join(client.ask(image, "colour?", region=region, params=AskParams(region_view="draw")))
        "".join(client.ask(image, "and now?", history=[ChatTurn("first?", "first answer")]))
    assert cropped == "The image is blue."  # the model saw only the box
    assert drawn == "The image is black."  # the whole (mostly black) image, with the box drawn
    messages = server.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"][1]["text"] == "first?" and messages[1]["content"] == "first answer"
    assert messages[2]["content"] == "and now?"


def test_the_api_key_comes_from_the_environment_and_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_VLM_KEY", "sk-test-123")
    with serve() as server:
        "".join(_client(server.url, api_key_env="MY_VLM_KEY").ask(flat_colour_image("red"), "?"))
    assert server.headers[0]["Authorization"] == "Bearer sk-test-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_one_clear_line_after_bounded_retries() -> None:
    client = _client(f"http://127.0.0.1:{_free_port()}/v1", retries=2, backoff=0.01)
    with pytest.raises(StudioError, match=r"cannot reach the server at http://127.0.0.1:\d+/v1 \(connection refused\)"):
        "".join(client.ask(flat_colour_image("red"), "?"))


def test_a_stalled_server_hits_the_read_timeout() -> None:
    with serve(mode="stall") as server:
        client = _client(server.url, read_timeout=0.3, retries=0)
        with pytest.raises(StudioError, match=r"sent nothing for 0.3 s \(read timeout\)"):
            "".join(client.ask(flat_colour_image("red"), "?"))


def test_a_malformed_stream_is_one_clear_line() -> None:
    with serve(mode="malformed") as server, pytest.raises(StudioError, match="malformed stream"):
        "".join(_client(server.url).ask(flat_colour_image("red"), "?"))


def test_a_busy_server_is_retried_with_backoff_then_answers() -> None:
    with serve(busy_first=2) as server:
        answer = "".join(_client(server.url, retries=2, backoff=0.01).ask(flat_colour_image("red"), "?"))
    assert answer == "The image is red." and len(server.requests) == 3


def test_an_http_error_names_the_status_and_the_servers_message() -> None:
    with serve(busy_first=5) as server, pytest.raises(StudioError, match="HTTP 503: busy"):
        "".join(_client(server.url, retries=1, backoff=0.01).ask(flat_colour_image("red"), "?"))


def test_closing_the_answer_stops_reading_the_stream() -> None:
    with serve(answer=lambda body: " ".join(["word"] * 200), delay=0.02) as server:
        pieces = _client(server.url).ask(flat_colour_image("red"), "?")
        first = next(pieces)
        pieces.close()
    assert first == "word "


def test_preflight_passes_a_seeing_server_and_catches_one_that_ignores_images() -> None:
    with serve() as server:
        result = preflight(server_backend(server.url, "llava"))
    assert result.colour == "red" and "red" in result.answer
    assert colour_name(image_uris(server.requests[0])[0]) == "red"
    with serve(mode="blind") as server, pytest.raises(StudioError, match="did not see the image.*cannot see any image"):
        preflight(server_backend(server.url, "text-only"))
