"""A real OpenAI-compatible chat server on 127.0.0.1 for tests and bench/ask.py (http.server in a thread).

By default it "sees" images: it decodes the base64 data URI it is sent and answers the name of the image's
mean colour, streamed word by word as server-sent events when asked to stream. Modes reproduce what users
meet: a server that ignores images (llama.cpp without --mmproj), one that stalls, one that sends a broken
stream, one that is busy (503) for the first requests.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

COLOURS_BGR = {"red": (0, 0, 255), "green": (0, 160, 0), "blue": (255, 0, 0), "black": (0, 0, 0), "white": (255, 255, 255)}


def colour_name(data_uri: str) -> str:
    """The name of the mean colour of a base64 data-URI image."""
    import cv2

    header, _, payload = data_uri.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64"), header
    image = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_COLOR)
    mean = image.reshape(-1, 3).mean(axis=0)
    return min(COLOURS_BGR, key=lambda name: float(np.sum((mean - np.array(COLOURS_BGR[name])) ** 2)))


def image_uris(body: dict[str, Any]) -> list[str]:
    return [part["image_url"]["url"] for message in body["messages"] if isinstance(message["content"], list)
            for part in message["content"] if part.get("type") == "image_url"]


def sees_colour(body: dict[str, Any]) -> str:
    uris = image_uris(body)
    return f"The image is {colour_name(uris[0])}." if uris else "I cannot see any image."


@dataclass
class ChatServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


@contextmanager
def serve(
    *,
    answer: Callable[[dict[str, Any]], str] = sees_colour,
    mode: str = "normal",
    delay: float = 0.0,
    busy_first: int = 0,
) -> Iterator[ChatServer]:
    """Serve until the block ends. mode: normal, blind (ignores images), stall (never answers within the
    client's timeout), malformed (a stream that is not JSON); `delay` seconds between streamed pieces;
    the first `busy_first` requests get HTTP 503."""
    state = {"count": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            with lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._answer()
            finally:
                with lock:
                    server.in_flight -= 1

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            server.requests.append(body)
            server.headers.append(dict(self.headers))
            state["count"] += 1
            if self.path != "/v1/chat/completions":
                return self._send(404, "application/json", b'{"error": {"message": "no such route"}}')
            if state["count"] <= busy_first:
                return self._send(503, "application/json", b'{"error": {"message": "busy"}}')
            if mode == "stall":
                time.sleep(1.0)
                return self._send(200, "application/json", b"{}")
            text = "I cannot see any image." if mode == "blind" else answer(body)
            if not body.get("stream"):
                document = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
                return self._send(200, "application/json", json.dumps(document).encode())
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if mode == "malformed":
                self.wfile.write(b"data: {not json\n\n")
                return
            words = text.split(" ")
            for i, word in enumerate(words):
                piece = word if i == len(words) - 1 else word + " "
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                try:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client closed the stream (cancel)
                time.sleep(delay)
            self.wfile.write(b"data: [DONE]\n\n")

        def _send(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
                self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server = ChatServer(f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
