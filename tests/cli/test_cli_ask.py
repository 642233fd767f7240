"""`studio ask` in a subprocess against a loopback chat server (and once with a tiny local model)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
from chat_server import COLOURS_BGR, serve
from test_cli_project import assert_one_line_error, info, studio

from studio.db import Project

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def colour_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    with Project.create(root):
        pass
    for name in ("red", "blue"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((40, 60, 3), COLOURS_BGR[name], np.uint8))
    assert studio("add", root, tmp_path / "red.png", tmp_path / "blue.png").returncode == 0
    return root


def test_ask_streams_the_answer_and_stores_it(colour_project: Path) -> None:
    with serve() as server:
        plain = studio("ask", colour_project, "1", "What colour?", "--server", server.url, "--server-model", "llava")
        as_json = studio("ask", colour_project, "blue.png", "What colour?", "--box", "0,0,30,20",
                         "--server", server.url, "--server-model", "llava", "--json")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "The image is red.\n"
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["answer"] == "The image is blue." and document["model"] == "llava"
    assert isinstance(document["seconds"], float)
    assert info(colour_project)["answers"] == 2  # still there when the project is opened again


def test_check_server_says_plainly_when_the_model_does_not_see_images() -> None:
    with serve() as server:
        ok = studio("ask", "--check-server", server.url, "--server-model", "llava")
    assert ok.returncode == 0 and ok.stdout.startswith("ok: shown a plain red image")
    with serve(mode="blind") as server:
        blind = studio("ask", "--check-server", server.url, "--server-model", "llama")
    assert_one_line_error(blind, "did not see the image", "--mmproj")


def test_server_failures_are_one_line_and_store_nothing(colour_project: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = studio("ask", colour_project, "1", "?", "--server", f"http://127.0.0.1:{port}/v1", "--server-model", "x")
    assert_one_line_error(refused, "cannot reach the server", "connection refused")
    with serve(mode="malformed") as server:
        broken = studio("ask", colour_project, "1", "?", "--server", server.url, "--server-model", "x")
    assert_one_line_error(broken, "malformed stream")
    missing = studio("ask", colour_project, "1", "?", "--annotation", "99", "--server", "http://127.0.0.1:1/v1",
                     "--server-model", "x")
    assert_one_line_error(missing, "no annotation with id 99")
    assert info(colour_project)["answers"] == 0


def test_ask_all_with_choices_becomes_tags_when_accepted(colour_project: Path) -> None:
    with serve() as server:
        result = studio("ask", colour_project, "--all", "Which colour?", "--choices", "red,green,blue", "--to", "tags",
                        "--server", server.url, "--server-model", "llava", "--accept")
    assert result.returncode == 0, result.stderr
    assert "2/2 answered, 2 matched a choice" in result.stdout and "accepted: 2 changed" in result.stdout
    with Project.open(colour_project) as project:
        assert [project.tags(m.id) for m in project.list_media()] == [["red"], ["blue"]]
