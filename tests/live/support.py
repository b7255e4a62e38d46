"""Helpers for the live-generation tests: the real vLLM OpenAI-compatible server as a subprocess,
and a fault-injecting HTTP proxy in front of it.

The proxy decides each request's fate from the request itself (a hash of its body, which holds
the sample's seed), never from timing: the first ``k`` attempts of a request fail (``k`` is 0, 1
or 2), each in one of the ways a cluster fails (a dropped connection, a 500, a 429, a stall past
the client's timeout, a response cut off mid-body, or a delay that still succeeds), and the next
attempt goes through. So a client that retries enough gets every sample exactly once, and the
test does not flake on scheduling.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.local_http import LocalServer

FAULTS = ("drop", "500", "429", "stall", "cut", "delay")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


GENERATION_ARGS = ("--served-model-name", "smollm2", "--kv-cache-memory-bytes", "256M",
                   "--no-enable-chunked-prefill", "--generation-config", "vllm",
                   "--enable-prefix-caching")
"""The generation server: the CPU settings of the in-process engine
(vllm_backend.engine_arguments), so both give the same samples for the same seeds."""

JUDGE_ARGS = ("--served-model-name", "smollm2-judge", "--kv-cache-memory-bytes", "128M",
              "--runner", "pooling", "--convert", "classify", "--hf-overrides",
              '{"classifier_from_token": ["No", "Yes"], "method": "from_2_way_softmax"}')
"""A pooling server of the same model as an LLM-as-judge classifier (reward.engine_arguments)."""


def start_server(model: Path, port: int, log: Path,
                 role: tuple[str, ...] = GENERATION_ARGS) -> subprocess.Popen:
    """``python -m vllm.entrypoints.openai.api_server`` on the CPU, with ``role``'s settings."""
    env = dict(os.environ)
    cores = os.cpu_count() or 1
    # The in-process engine of the same test session binds the first core; give the server the last.
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", str(cores - 1) if cores > 1 else "auto")
    args = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager",
        "--max-model-len", "2048", "--distributed-executor-backend", "uni", *role,
    ]
    handle = open(log, "wb")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def wait_healthy(process: subprocess.Popen, url: str, log: Path, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the vLLM server exited ({process.returncode}):\n"
                               + log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the vLLM server did not become healthy in {timeout:g} s")


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the API server and its engine core)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def running_server(model: Path, log: Path, args: tuple[str, ...] = GENERATION_ARGS):
    """A vLLM server of ``model`` on a free port of 127.0.0.1, healthy, for the ``with`` block;
    its URL. Stopped however the block ends."""
    port = free_port()
    process = start_server(model, port, log, args)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url, log)
        yield url
    finally:
        stop_server(process)


def wait_for_hangup(connection: socket.socket, limit: float) -> None:
    """Hold ``connection`` until its client closes it, or ``limit`` seconds. Waiting for the
    client's own timeout, rather than a fixed stall, lets the tests give the client a timeout
    generous enough for a server slowed by the rest of the suite without stalls costing more."""
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([connection], [], [], min(left, 1.0))
        if readable:
            try:
                if not connection.recv(1, socket.MSG_PEEK):
                    return
            except OSError:
                return
            time.sleep(0.05)  # bytes past the request (never sent by the clients tested): wait on


class FaultyProxy:
    """An HTTP proxy to ``upstream`` that fails requests as the module docstring says.
    ``faults`` counts what it did. A stalled request is held until the client hangs up (its
    timeout), or ``stall`` seconds at most."""

    def __init__(self, upstream: str, *, stall: float = 300.0, delay: float = 0.3,
                 always: str | None = None, only: bytes | None = None, gets: bool = False) -> None:
        """``only``: ``always`` applies to the requests whose body holds these bytes (one
        query's prompt, say); the others pass. ``gets``: GETs (``/v1/models``) meet ``always``
        too; otherwise they pass."""
        self.upstream = upstream.rstrip("/")
        self.stall, self.delay, self.always, self.only = stall, delay, always, only
        self.gets = gets
        self.faults: Counter[str] = Counter()
        self.attempts: Counter[bytes] = Counter()
        self.authorization: set[str] = set()  # the Authorization headers clients sent
        self._lock = threading.Lock()
        self._local = LocalServer(self._handle)
        self.server, self.url = self._local.server, self._local.url

    def close(self) -> None:
        self._local.close()

    def _fate(self, body: bytes) -> str:
        if self.always:
            return self.always if self.only is None or self.only in body else "pass"
        digest = hashlib.sha256(body).digest()
        with self._lock:
            attempt = self.attempts[digest]
            self.attempts[digest] += 1
        failing = digest[0] % 3  # 0, 1 or 2 failed attempts before one goes through
        if attempt >= failing:
            return "pass"
        return FAULTS[(digest[1] + attempt) % len(FAULTS)]

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        import httpx

        fate = "pass" if handler.command == "GET" and not self.gets else self._fate(body)
        with self._lock:
            self.faults[fate] += 1
            if "Authorization" in handler.headers:
                self.authorization.add(handler.headers["Authorization"])
        if fate == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fate.isdigit():  # an HTTP status: "500", "429", or any other ("404", "400")
            payload = b'{"error": "injected"}'
            handler.send_response(int(fate))
            if fate == "429":
                handler.send_header("Retry-After", "0")
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if fate == "stall":
            wait_for_hangup(handler.connection, self.stall)
            handler.close_connection = True
            return
        if fate == "delay":
            time.sleep(self.delay)
        headers = {"Content-Type": "application/json"}
        if "Authorization" in handler.headers:
            headers["Authorization"] = handler.headers["Authorization"]
        url = self.upstream + handler.path
        with httpx.Client(timeout=120) as client:
            response = (client.get(url, headers=headers) if handler.command == "GET"
                        else client.post(url, content=body, headers=headers))
        payload = response.content
        handler.send_response(response.status_code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if fate == "cut":  # the headers promise more than comes: a response cut off mid-body
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(payload)
