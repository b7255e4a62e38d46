"""Equivalence of two answers and correctness against a gold answer."""

from __future__ import annotations

from ttcdsl.answers.canonical import canonical_vote, canonicalize
from ttcdsl.answers.execution import DEFAULT_TIMEOUT as EXEC_TIMEOUT
from ttcdsl.answers.execution import get_checker
from ttcdsl.answers.extract import extract, gold_answer
from ttcdsl.answers.kinds import check_kind
from ttcdsl.answers.verify import DEFAULT_TIMEOUT, check_math


def equivalent(a: str, b: str, kind: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether two answers of ``kind`` mean the same.

    Equal canonical forms are equivalent for every kind. For ``math`` other pairs go to
    ``math-verify`` in a worker process with a hard ``timeout``; a timeout counts as not equivalent and
    warns :class:`~ttcdsl.answers.verify.EquivalenceTimeout`. For the other kinds canonical equality
    is the whole rule (program equivalence is undecidable; use :func:`is_correct` for code).
    """
    check_kind(kind)
    ca, cb = canonicalize(a, kind), canonicalize(b, kind)
    if ca == cb:
        return True
    if kind != "math":
        return False
    return check_math(ca, cb, timeout).equal


def is_correct(answer: str | None, gold: object, kind: str, timeout: float | None = None) -> bool:
    """Whether ``answer`` (extracted, canonical or not) is correct for ``gold``.

    None is never correct. A checker registered for ``kind`` (see
    :func:`~ttcdsl.answers.execution.register_checker`; kind ``code`` has a real Python executor)
    decides when present; otherwise the answer must be :func:`equivalent` to the gold string.
    """
    check_kind(kind)
    if answer is None:
        return False
    checker = get_checker(kind)
    if checker is not None:
        return bool(checker(answer, gold, timeout=EXEC_TIMEOUT if timeout is None else timeout))
    if not isinstance(gold, str):
        raise TypeError(f"gold for kind {kind!r} must be a string, not {type(gold).__name__}")
    # a GSM8K or MATH solution given as the gold is held to its final answer, not to the whole text
    gold = gold_answer(gold, kind)
    return equivalent(gold, answer, kind, DEFAULT_TIMEOUT if timeout is None else timeout)


def parse_answer(text: str, kind: str) -> str | None:
    """``canonical_vote(extract(text, kind), kind)``: the answer a sample votes for, or None."""
    raw = extract(text, kind)
    return None if raw is None else canonical_vote(raw, kind)
