"""Weights manager: offline message without any download attempt, progress, resume, sha256, safe loading."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.models import weights as wm
from studio.models.protocols import PluginSpec, WeightsFile
from studio.models.weights import WeightsError, resolve_weights

PAYLOAD = bytes(range(256)) * 1024  # 256 KiB: four 64 KiB download chunks


def _spec(url: str, *, sha256: str | None = None) -> PluginSpec:
    weights = (WeightsFile("tiny.pt", url=url, sha256=sha256, size_bytes=len(PAYLOAD)),)
    return PluginSpec(id="tiny", family="test", task="detect", title="tiny", load=lambda **_: None, weights=weights)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD, honouring `Range: bytes=N-` as a real file server would (206 Partial Content)."""

    requests: list[str | None] = []

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        type(self).requests.append(wanted)
        start = int(wanted.split("=")[1].rstrip("-")) if wanted else 0
        body = PAYLOAD[start:]
        self.send_response(206 if wanted else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/tiny.pt"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(wm.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(wm, "CHUNK_BYTES", 64 * 1024)
    return tmp_path / "data" / "weights"


def test_offline_mode_says_how_to_use_a_local_file_without_trying_the_network(data_dir, monkeypatch):
    monkeypatch.setenv(wm.OFFLINE_ENV, "1")

    def no_network(*_args, **_kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(WeightsError, match=r"--weights PATH") as info:
        resolve_weights(_spec("https://example.invalid/tiny.pt"), "tiny.pt")
    assert "\n" not in str(info.value)


def test_unreachable_server_gives_one_line_with_the_way_out(data_dir):
    with socket.socket() as s:  # a port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WeightsError, match=r"could not download tiny\.pt .*--weights PATH"):
        resolve_weights(_spec(f"http://127.0.0.1:{port}/tiny.pt"), None)
    assert not any(data_dir.glob("tiny.pt")), "nothing half-written may look like a good file"


def test_download_reports_progress_checks_sha256_and_lands_in_the_data_dir(data_dir, server):
    seen: list[tuple[int, int | None]] = []
    spec = _spec(server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = resolve_weights(spec, "tiny.pt", progress=lambda done, total: seen.append((done, total)))
    assert path == data_dir / "tiny.pt"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(seen) > 2 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert resolve_weights(spec, "tiny.pt") == path and len(_RangeHandler.requests) == 1  # cached, no 2nd fetch


def test_interrupted_download_resumes_from_the_part_file(data_dir, server):
    data_dir.mkdir(parents=True)
    (data_dir / "tiny.pt.part").write_bytes(PAYLOAD[:1000])
    path = resolve_weights(_spec(server, sha256=hashlib.sha256(PAYLOAD).hexdigest()), "tiny.pt")
    assert _RangeHandler.requests == ["bytes=1000-"]
    assert path.read_bytes() == PAYLOAD
    assert not (data_dir / "tiny.pt.part").exists()


def test_sha256_mismatch_is_refused_and_leaves_no_file(data_dir, server):
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        resolve_weights(_spec(server, sha256="0" * 64), "tiny.pt")
    assert list(data_dir.iterdir()) == []


def test_local_file_is_used_as_is_and_unknown_names_list_the_known_ones(tmp_path, data_dir):
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    spec = _spec("http://127.0.0.1:9/tiny.pt")
    assert resolve_weights(spec, str(local)) == local
    with pytest.raises(WeightsError, match=r"known: tiny\.pt"):
        resolve_weights(spec, "other.pt")
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(spec, str(tmp_path / "missing.pt"))
