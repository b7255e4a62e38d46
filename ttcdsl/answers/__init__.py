"""Answers: extraction per task kind, canonical forms for voting, equivalence and correctness.

Kinds: ``"math"``, ``"multiple_choice"``, ``"exact"`` (CRUXEval-style literals) and ``"code"``.

    extract(text, kind)            -> the stated answer as written, or None
    canonicalize(answer, kind)     -> the form under which votes are counted
    canonical_vote(answer, kind)   -> canonicalize(answer, kind), or None where that is empty
    parse_answer(text, kind)       -> canonical_vote(extract(text, kind), kind), or None
    equivalent(a, b, kind)         -> canonical equality, then math-verify (hard timeout) for math
    is_correct(answer, gold, kind) -> via a registered checker (code: real execution) or equivalence
    register_checker(kind, fn)     -> the plug-in point for code execution (or any other kind)
"""

from ttcdsl.answers.canonical import canonical_vote, canonicalize
from ttcdsl.answers.correct import equivalent, is_correct, parse_answer
from ttcdsl.answers.execution import (
    Checker,
    CruxevalCase,
    ExecutionResult,
    PythonAssertChecker,
    get_checker,
    register_checker,
    run_python,
    unregister_checker,
)
from ttcdsl.answers.extract import extract
from ttcdsl.answers.kinds import KINDS, Kind
from ttcdsl.answers.verify import EquivalenceTimeout, Verdict, VerifyWorker, check_math

__all__ = [
    "KINDS",
    "Checker",
    "CruxevalCase",
    "EquivalenceTimeout",
    "ExecutionResult",
    "Kind",
    "PythonAssertChecker",
    "Verdict",
    "VerifyWorker",
    "canonical_vote",
    "canonicalize",
    "check_math",
    "equivalent",
    "extract",
    "get_checker",
    "is_correct",
    "parse_answer",
    "register_checker",
    "run_python",
    "unregister_checker",
]
