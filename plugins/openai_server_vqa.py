"""Any OpenAI-compatible chat server as a VisionQA backend: Ollama, llama.cpp's server, vLLM, LM Studio, or
a hosted API with a key.

Speaks `POST {base_url}/chat/completions` with httpx (the openai client would hide the SSE lines, and its
own retries would hide which failure happened): images travel as base64 data URIs (Ollama accepts nothing
else), answers stream as server-sent events, connect and read timeouts are separate, and connection
failures or busy servers (429, 5xx) are retried a bounded number of times with exponential backoff, but
only before the first token (a half-streamed answer is never silently restarted). Every failure is one
StudioError naming the server and what happened.

The API key comes from an environment variable (STUDIO_API_KEY unless told another) or the system keyring
(service "studio", user = the base URL; `store_api_key` puts it there). It is never written to the project:
only the variable's name is recorded with the answers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.protocols import DEFAULT_ASK_PARAMS, AskParams, ChatTurn, PluginSpec
from studio.models.vqa import conversation, image_data_uri, region_view

API_KEY_ENV = "STUDIO_API_KEY"
KEYRING_SERVICE = "studio"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def api_key_for(base_url: str, env_name: str = API_KEY_ENV) -> str | None:
    """The key for a server: the environment variable first, then the system keyring, else None."""
    key = os.environ.get(env_name, "").strip()
    if key:
        return key
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, base_url.rstrip("/"))
    except KeyringError:  # no keyring backend on this machine: not an error, there is simply no key
        return None


def store_api_key(base_url: str, key: str) -> None:
    """Save a server's key in the system keyring (never in the project)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, base_url.rstrip("/"), key)
    except KeyringError as exc:
        raise StudioError(f"no system keyring to store the key in ({exc}); set {API_KEY_ENV} instead") from exc


class ChatServerVQA:
    """A model served behind `/v1/chat/completions`. Thread-safe: one httpx client, used by many workers."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = API_KEY_ENV,
        stream: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise StudioError(f"server address must start with http:// or https://, got {base_url!r}")
        if not model.strip():
            raise StudioError("name the model the server should use (--server-model)")
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.api_key_env = api_key_env
        self.stream = stream
        self.read_timeout = read_timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        key = api_key_for(self.base_url, api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def close(self) -> None:
        self._client.close()

    def messages(self, image: np.ndarray, question: str, history: Sequence[ChatTurn]) -> list[dict[str, Any]]:
        """The chat: the image with the first question, then the earlier answers and questions as text."""
        picture = {"type": "image_url", "image_url": {"url": image_data_uri(image)}}
        (role, first), *later = conversation(question, history)
        messages: list[dict[str, Any]] = [{"role": role, "content": [picture, {"type": "text", "text": first}]}]
        return messages + [{"role": role, "content": text} for role, text in later]

    def ask(
        self,
        image: np.ndarray,
        question: str,
        *,
        region: Box | None = None,
        history: Sequence[ChatTurn] = (),
        params: AskParams = DEFAULT_ASK_PARAMS,
    ) -> Generator[str, None, None]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": self.messages(region_view(image, region, params), question, history),
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "stream": self.stream,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        return self._answer(body)

    def _answer(self, body: dict[str, Any]) -> Generator[str, None, None]:
        import httpx

        try:
            for attempt in range(self.retries + 1):
                yielded = False
                try:
                    with self._client.stream("POST", "/chat/completions", json=body) as response:
                        if response.status_code in RETRY_STATUSES and attempt < self.retries:
                            time.sleep(self.backoff * 2**attempt)
                            continue
                        if response.status_code >= 400:
                            response.read()
                            raise StudioError(
                                f"server {self.endpoint} answered HTTP {response.status_code}: {_error_text(response.text)}"
                            )
                        pieces = self._events(response) if _is_event_stream(response) else self._whole(response)
                        for piece in pieces:
                            yielded = True
                            yield piece
                        return
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    if attempt < self.retries:
                        time.sleep(self.backoff * 2**attempt)
                        continue
                    raise StudioError(
                        f"cannot reach the server at {self.base_url} ({_reason(exc)}); is it running, and is the address right?"
                    ) from exc
                except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    if not yielded and attempt < self.retries:
                        time.sleep(self.backoff * 2**attempt)
                        continue
                    raise StudioError(f"server {self.endpoint} broke off the answer ({_reason(exc)})") from exc
        except httpx.ReadTimeout as exc:
            raise StudioError(
                f"server {self.endpoint} sent nothing for {self.read_timeout:g} s (read timeout); it may be "
                "loading the model or overloaded"
            ) from exc
        except httpx.HTTPError as exc:
            raise StudioError(f"request to {self.endpoint} failed ({_reason(exc)})") from exc

    def _events(self, response: Any) -> Iterator[str]:
        """Content pieces of a server-sent event stream, up to `data: [DONE]` (or the end of the body)."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError as exc:
                raise StudioError(f"server {self.endpoint} sent a malformed stream (not JSON: {data[:80]!r})") from exc
            if isinstance(event, dict) and "error" in event:
                raise StudioError(f"server {self.endpoint} reported an error: {_error_text(json.dumps(event))}")
            piece = _content(event, "delta", self.endpoint)
            if piece:
                yield piece

    def _whole(self, response: Any) -> Iterator[str]:
        """A non-streamed answer (the server ignored "stream", or streaming is off) as one piece."""
        response.read()
        try:
            document = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StudioError(f"server {self.endpoint} answered with something that is not JSON: {response.text[:80]!r}") from exc
        piece = _content(document, "message", self.endpoint)
        if piece:
            yield piece


def _is_event_stream(response: Any) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip() == "text/event-stream"


def _content(document: Any, key: str, endpoint: str) -> str:
    """choices[0][key]["content"] of a chat completion (chunk), with one clear error when it is not one."""
    try:
        choice = document["choices"][0] if document["choices"] else {}
        content = choice.get(key, {}).get("content") if choice else ""
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise StudioError(f"server {endpoint} did not answer like a chat completion: {json.dumps(document)[:120]}") from exc
    return content or ""


def _error_text(body: str) -> str:
    """The message of an OpenAI-style error body, or the start of whatever the server sent."""
    try:
        document = json.loads(body)
        error = document.get("error", document)
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:200]
    except (json.JSONDecodeError, AttributeError):
        return body.strip()[:200] or "(empty body)"


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if "refused" in text.lower() or "errno 111" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


def load(
    *, weights: str | None = None, device: str | None = None, base_url: str = "", model: str = "", **options: Any
) -> ChatServerVQA:
    """A client for the server at `base_url` using `model`; no weights and no device: the server has them."""
    if weights is not None:
        raise StudioError(f"a server model takes no weights file (got {weights}); name it with --server-model")
    return ChatServerVQA(base_url, model, **options)


SPECS = (
    PluginSpec(
        id="openai-server",
        family="openai-compatible",
        task="ask",
        title="Any OpenAI-compatible server (Ollama, llama.cpp, vLLM, LM Studio, hosted APIs)",
        load=load,
        devices=("cpu",),
        needs_weights=False,
        options={"api_key_env": API_KEY_ENV},
    ),
)
