"""``math-verify`` equivalence in a separate worker process with a hard timeout.

``math-verify`` parses LaTeX with sympy, which can take unbounded time on adversarial input, and its
own timeouts rely on ``signal.alarm`` (main thread only). So every comparison is sent to a long-lived
worker process; the caller waits at most ``timeout`` seconds for the verdict and, past that, kills the
worker (a fresh one starts on the next request) and reports a timeout. A hang never stalls a run.

The worker uses the ``spawn`` start method by default, so it inherits no threads or locks from the
caller (JAX, thread pools); its one-off start (importing sympy) has its own, generous, limit.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

Handler = Callable[[str, str], bool]

DEFAULT_TIMEOUT = 5.0
START_TIMEOUT = 120.0


class EquivalenceTimeout(RuntimeWarning):
    """A math equivalence check ran past its hard timeout and was counted as not equivalent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The outcome of one check: ``equal`` is False whenever ``timed_out`` or ``error`` is set."""

    equal: bool
    timed_out: bool = False
    error: str | None = None


def math_verify_equal(gold: str, answer: str) -> bool:
    """``math-verify``'s judgement that ``answer`` equals ``gold`` (both LaTeX answers, no ``$``)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    parsed_gold = parse(f"${gold}$", configs)
    parsed_answer = parse(f"${answer}$", configs)
    if not parsed_gold or not parsed_answer:
        return False
    return bool(verify(parsed_gold, parsed_answer))


def _warm_math_verify() -> None:
    import math_verify  # noqa: F401  (sympy's import is the slow part of a worker's start)


def _serve(conn: Connection, handler: Handler, warm: Callable[[], None] | None) -> None:
    """The worker's loop; it ends quietly when the parent goes away (closed, killed, or gave
    up on a request), which a write to the pipe then finds as a broken pipe."""
    try:
        if warm is not None:
            warm()
        conn.send(("ready", None))
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            if request is None:
                return
            a, b = request
            try:
                reply = ("ok", bool(handler(a, b)))
            except Exception as exc:  # noqa: BLE001  (the worker reports, the caller decides)
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return


class VerifyWorker:
    """A worker process answering ``handler(a, b)`` requests, restarted after any timeout."""

    def __init__(
        self,
        handler: Handler = math_verify_equal,
        *,
        warm: Callable[[], None] | None = _warm_math_verify,
        context: str = "spawn",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self._handler = handler
        self._warm = warm
        self._ctx = multiprocessing.get_context(context)
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.timeouts = 0
        self.restarts = 0

    def check(self, a: str, b: str, timeout: float = DEFAULT_TIMEOUT) -> Verdict:
        """``handler(a, b)`` computed in the worker, waiting at most ``timeout`` seconds."""
        with self._lock:
            try:
                conn = self._ensure_started()
            except TimeoutError as exc:
                self.timeouts += 1
                return Verdict(equal=False, timed_out=True, error=str(exc))
            conn.send((a, b))
            if not conn.poll(timeout):
                self.timeouts += 1
                self._kill()
                return Verdict(
                    equal=False, timed_out=True, error=f"no verdict within {timeout:g} s"
                )
            try:
                status, value = conn.recv()
            except EOFError:
                self._kill()
                return Verdict(equal=False, error="worker exited")
            if status == "ok":
                return Verdict(equal=bool(value))
            return Verdict(equal=False, error=str(value))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except (OSError, ValueError):
                    pass
            self._kill()

    def _ensure_started(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._kill()
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_serve, args=(child, self._handler, self._warm), daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.restarts += 1
        if not parent.poll(self._start_timeout):
            self._kill()
            raise TimeoutError(
                f"verification worker did not start within {self._start_timeout:g} s"
            )
        parent.recv()
        return parent

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)


_worker: VerifyWorker | None = None
_worker_lock = threading.Lock()
_cache: dict[tuple[str, str], bool] = {}
_CACHE_LIMIT = 200_000


def default_worker() -> VerifyWorker:
    """The process-wide ``math-verify`` worker, started on first use, closed at exit."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = VerifyWorker()
            atexit.register(_worker.close)
        return _worker


def set_default_worker(worker: VerifyWorker | None) -> VerifyWorker | None:
    """Replace the process-wide worker (returning the previous one) and forget cached verdicts."""
    global _worker
    with _worker_lock:
        previous, _worker = _worker, worker
        _cache.clear()
        return previous


def check_math(gold: str, answer: str, timeout: float = DEFAULT_TIMEOUT) -> Verdict:
    """Whether two canonical math answers are equal per ``math-verify``; timeouts are reported.

    Verdicts that completed are cached; a timeout warns with :class:`EquivalenceTimeout` and is not
    cached (a later call may have more time).
    """
    key = (gold, answer)
    if key in _cache:
        return Verdict(equal=_cache[key])
    verdict = default_worker().check(gold, answer, timeout)
    if verdict.timed_out:
        warnings.warn(
            f"math equivalence of {gold!r} and {answer!r} timed out ({verdict.error}); "
            "counted as not equivalent",
            EquivalenceTimeout,
            stacklevel=3,
        )
    elif verdict.error is None:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = verdict.equal
    return verdict
