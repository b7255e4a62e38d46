"""A stand-in OpenAI-compatible server on 127.0.0.1 for what a real one never does on request:
malformed usage, missing text or logprobs, odd finish reasons, endless Retry-After, a model list
without the model asked for. The backend against the real server (vLLM's, with a proxy that
injects a cluster's failures) is tested in tests/live; this double only answers the misbehaviour.

``post(body) -> (status, payload, headers)`` answers each POST (the request's JSON body);
the default is a well-formed chat completion of ``text``. ``models``: the ids ``/v1/models``
lists (None: that path answers 404, as a router without the listing does); ``listing``: the
``/v1/models`` body as given instead (a malformed one), sent with ``listing_headers``."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_http import LocalServer

Answer = tuple[int, Any, dict[str, str]]


def completion(text: Any = "The answer is 2.", *, usage: Any = None, finish: Any = "stop",
               logprobs: Any = None) -> dict[str, Any]:
    """A chat completion response (``usage`` None: the default counts)."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return {"choices": [choice],
            "usage": {"prompt_tokens": 7, "completion_tokens": 4} if usage is None else usage}


class OpenAIDouble:
    def __init__(self, post: Callable[[dict], Answer] | None = None,
                 models: list[str] | None = ("m",), listing: Any = None,
                 listing_headers: dict[str, str] | None = None) -> None:
        self.post = post or (lambda body: (200, completion(), {}))
        self.models = None if models is None else list(models)
        self.listing = listing
        self.listing_headers = listing_headers or {}
        self.posts = 0
        self._local = LocalServer(self._handle)
        self.server, self.url = self._local.server, self._local.url

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if handler.command == "GET":
            if handler.path.rstrip("/") == "/v1/models" and self.listing is not None:
                self._send(handler, 200, self.listing, self.listing_headers)
            elif handler.path.rstrip("/") == "/v1/models" and self.models is not None:
                self._send(handler, 200, {"data": [{"id": m} for m in self.models]}, {})
            else:
                self._send(handler, 404, {"error": "not found"}, {})
            return
        self.posts += 1
        self._send(handler, *self.post(json.loads(body or b"{}")))

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: Any,
              headers: dict[str, str]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self._local.close()

    def __enter__(self) -> OpenAIDouble:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
