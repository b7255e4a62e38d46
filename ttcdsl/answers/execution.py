"""Correctness by running code: the plug-in point for kind ``code`` and a real Python checker.

A checker is any callable ``checker(answer, gold, *, timeout) -> bool``; register one per kind with
:func:`register_checker` and :func:`ttcdsl.answers.is_correct` will call it. The shipped checker for
``code`` is :class:`PythonAssertChecker`, which runs a program in a fresh, isolated Python subprocess
with a wall-clock timeout and memory/CPU limits, and passes when it exits cleanly:

* gold a :class:`CruxevalCase` (CRUXEval): for an output prediction (``case.input`` set) the program
  is ``case.code`` then ``assert f(<input>) == <answer>``; for an input prediction (``case.output``
  set, the answer being a call such as ``f([1, 2])``) it is ``case.code`` then
  ``assert <answer> == <output>``;
* gold a string: the answer is a program and gold its test code (asserts), run after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

DEFAULT_TIMEOUT = 10.0


class Checker(Protocol):
    def __call__(self, answer: str, gold: object, *, timeout: float) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CruxevalCase:
    """One CRUXEval problem: the function ``f`` and the known input and/or output literal."""

    code: str
    input: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResult:
    passed: bool
    timed_out: bool
    returncode: int | None
    stderr: str


_DRIVER = """\
import resource, sys
_limit = {memory_bytes}
if _limit:
    resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
resource.setrlimit(resource.RLIMIT_CPU, ({cpu_seconds}, {cpu_seconds}))
_source = open(sys.argv[1], encoding="utf-8").read()
_scope = {{"__name__": "__main__"}}
exec(compile(_source, "<answer>", "exec"), _scope)
"""


def run_python(
    program: str, *, timeout: float = DEFAULT_TIMEOUT, memory_bytes: int = 1 << 30
) -> ExecutionResult:
    """Run ``program`` in an isolated ``python -I`` subprocess; passed means exit status 0."""
    cpu_seconds = max(1, int(timeout) + 1)
    with tempfile.TemporaryDirectory(prefix="ttc-exec-") as tmp:
        source = os.path.join(tmp, "answer.py")
        with open(source, "w", encoding="utf-8") as f:
            f.write(program)
        driver = _DRIVER.format(memory_bytes=memory_bytes, cpu_seconds=cpu_seconds)
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", driver, source],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            return ExecutionResult(passed=False, timed_out=True, returncode=None, stderr=stderr)
    return ExecutionResult(
        passed=done.returncode == 0,
        timed_out=False,
        returncode=done.returncode,
        stderr=done.stderr[-2000:],
    )


def cruxeval_program(answer: str, case: CruxevalCase) -> str:
    """The program whose clean exit means ``answer`` solves ``case``."""
    if case.input is not None:
        check = f"assert f({case.input}) == ({answer})"
    elif case.output is not None:
        check = f"assert ({answer}) == ({case.output})"
    else:
        raise ValueError("a CruxevalCase needs an input (output prediction) or an output")
    return f"{case.code}\n{check}\n"


class PythonAssertChecker:
    """The shipped ``code`` checker: real execution in a subprocess (see module doc)."""

    def __init__(self, *, memory_bytes: int = 1 << 30) -> None:
        self.memory_bytes = memory_bytes

    def run(
        self, answer: str, gold: object, *, timeout: float = DEFAULT_TIMEOUT
    ) -> ExecutionResult:
        if isinstance(gold, CruxevalCase):
            program = cruxeval_program(answer, gold)
        elif isinstance(gold, str):
            program = f"{answer}\n\n{gold}\n"
        else:
            raise TypeError(
                f"gold for kind 'code' must be a CruxevalCase or test code, not {gold!r}"
            )
        return run_python(program, timeout=timeout, memory_bytes=self.memory_bytes)

    def __call__(self, answer: str, gold: object, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
        return self.run(answer, gold, timeout=timeout).passed


_CHECKERS: dict[str, Checker] = {"code": PythonAssertChecker()}


def register_checker(kind: str, checker: Checker | Callable[..., bool]) -> Checker | None:
    """Make ``checker`` decide correctness for ``kind``; returns the checker it replaces."""
    previous = _CHECKERS.get(kind)
    _CHECKERS[kind] = checker  # type: ignore[assignment]
    return previous


def unregister_checker(kind: str) -> Checker | None:
    """Remove the checker for ``kind`` (built-in rules apply again); returns it."""
    return _CHECKERS.pop(kind, None)


def get_checker(kind: str) -> Checker | None:
    return _CHECKERS.get(kind)
