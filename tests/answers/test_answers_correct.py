from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest

from ttcdsl.answers import (
    CruxevalCase,
    EquivalenceTimeout,
    PythonAssertChecker,
    VerifyWorker,
    canonicalize,
    equivalent,
    get_checker,
    is_correct,
    parse_answer,
    register_checker,
    run_python,
)
from ttcdsl.answers import verify as verify_module


def test_math_equivalence_beyond_canonical_forms() -> None:
    assert equivalent("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2", "math")
    assert equivalent("x+1", "1+x", "math")
    assert not equivalent("3", "4", "math")
    assert not equivalent("\\sqrt{34}+3\\sqrt{10}", "\\sqrt{34}+3\\sqrt{11}", "math")


def test_non_math_kinds_use_canonical_equality() -> None:
    assert equivalent("(b)", "B", "multiple_choice")
    assert not equivalent("B", "C", "multiple_choice")
    assert equivalent('"ab"', "'ab'", "exact")
    assert not equivalent("{8: 2}", "{8: 5, 8: 2}", "exact")


def test_is_correct_none_never_counts() -> None:
    assert not is_correct(None, "1", "math")


def test_an_answer_whose_canonical_form_is_empty_is_no_answer() -> None:
    # it was "": one more answer, for which every such sample of a query voted
    assert parse_answer("so the answer is \\boxed{\\text{}}", "math") is None
    assert parse_answer("The answer is \\boxed{}.", "math") is None
    assert parse_answer("so \\boxed{\\text{}}", "multiple_choice") is None
    assert parse_answer("so \\boxed{42}", "math") == "42"


def test_qwen_pool_correctness_agrees_with_logged_scores(shared_data: Path) -> None:
    """Our correctness equals the pool's ``score`` on all 800 samples but one, where the pool errs:
    problem 72's gold is ``10{,}000`` and the sample answering ``10000`` was scored False."""
    with (shared_data / "pools" / "qwen25math_math100_x8.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    disagreements = [
        (row["idx"], i, pred)
        for row in rows
        for i, (pred, score) in enumerate(zip(row["pred"], row["score"], strict=True))
        if is_correct(canonicalize(pred, "math"), row["gt"], "math") != score
    ]
    assert disagreements == [(72, 7, "10000")]


# --- the hard timeout -------------------------------------------------------------------------


# Module-level handlers, so that a spawned worker (the production start method) can import them.


def _hang(a: str, b: str) -> bool:
    if a == "hang":
        time.sleep(60)
    return a == b


def _boom(a: str, b: str) -> bool:
    raise ValueError("cannot parse")


def test_worker_times_out_kills_and_recovers() -> None:
    worker = VerifyWorker(_hang, warm=None, context="spawn")
    try:
        assert worker.check("x", "x", timeout=10).equal
        started = time.monotonic()
        verdict = worker.check("hang", "x", timeout=0.5)
        elapsed = time.monotonic() - started
        assert verdict.timed_out and not verdict.equal
        assert elapsed < 5
        assert worker.timeouts == 1
        # A fresh worker answers the next request.
        assert worker.check("y", "y", timeout=10).equal
        assert worker.restarts == 2
    finally:
        worker.close()


@pytest.mark.parametrize("parent_sent_a_request", [False, True])
def test_a_worker_whose_parent_is_gone_ends_quietly(parent_sent_a_request) -> None:
    """A worker orphaned by its parent (killed with SIGKILL mid-run) printed a BrokenPipeError
    traceback when it answered. It now returns without a word."""
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    if parent_sent_a_request:
        parent.send(("x", "x"))
    parent.close()
    verify_module._serve(child, lambda a, b: a == b, None)  # returns: no exception escapes
    child.close()


def test_worker_reports_handler_errors() -> None:
    worker = VerifyWorker(_boom, warm=None, context="spawn")
    try:
        verdict = worker.check("a", "b", timeout=10)
        assert not verdict.equal and not verdict.timed_out
        assert verdict.error is not None and "cannot parse" in verdict.error
    finally:
        worker.close()


def test_equivalent_counts_a_hang_as_not_equivalent_and_warns() -> None:
    previous = verify_module.set_default_worker(VerifyWorker(_hang, warm=None, context="spawn"))
    try:
        with pytest.warns(EquivalenceTimeout, match="timed out"):
            assert not equivalent("hang", "\\frac{1}{3}", "math", timeout=0.3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert equivalent("7.0", "7", "math", timeout=0.3)  # canonical: no worker needed
    finally:
        worker = verify_module.set_default_worker(previous)
        assert worker is not None
        worker.close()


# --- code execution ---------------------------------------------------------------------------

_DOUBLE = "def f(x):\n    return x * 2\n"


def test_cruxeval_output_and_input_prediction_execute() -> None:
    output_case = CruxevalCase(code=_DOUBLE, input="3")
    assert is_correct("6", output_case, "code")
    assert not is_correct("7", output_case, "code")
    input_case = CruxevalCase(code=_DOUBLE, output="[1, 1]")
    assert is_correct("f([1])", input_case, "code")
    assert not is_correct("f([2])", input_case, "code")


def test_program_with_test_code() -> None:
    assert is_correct("def add(a, b):\n    return a + b", "assert add(2, 3) == 5", "code")
    assert not is_correct("def add(a, b):\n    return a - b", "assert add(2, 3) == 5", "code")
    assert not is_correct("def add(a, b) return", "assert add(2, 3) == 5", "code")


def test_execution_timeout_and_isolation() -> None:
    started = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout=1.0)
    assert result.timed_out and not result.passed
    assert time.monotonic() - started < 10
    crashed = run_python("raise SystemExit(3)")
    assert crashed.returncode == 3 and not crashed.passed


def test_register_a_checker_plug_in() -> None:
    calls: list[tuple[str, object]] = []

    def checker(answer: str, gold: object, *, timeout: float) -> bool:
        calls.append((answer, gold))
        return answer.strip() == "ok"

    previous = register_checker("code", checker)
    try:
        assert is_correct(" ok ", {"tests": []}, "code")
        assert not is_correct("no", {"tests": []}, "code")
        assert calls == [(" ok ", {"tests": []}), ("no", {"tests": []})]
    finally:
        register_checker("code", previous)
    assert isinstance(get_checker("code"), PythonAssertChecker)


def _crux(shared_data: Path, task: str) -> tuple[dict, dict]:
    problems = {}
    with (shared_data / "problems" / "cruxeval.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            problems[row["id"]] = row
    pool = json.loads((shared_data / "pools" / f"cruxeval_{task}_codellama7b_x10.json").read_text())
    return problems, pool


def test_cruxeval_execution_reproduces_logged_booleans(shared_data: Path) -> None:
    """Real execution of real CodeLlama generations agrees with CRUXEval's own scoring, including
    the dict literals that only execution gets right (``{8: 5, 8: 2, 5: 3}`` == ``{8: 2, 5: 3}``)."""
    checker = PythonAssertChecker()
    for task, ids in (
        ("output", ["sample_2", "sample_100", "sample_415", "sample_636"]),
        ("input", ["sample_0", "sample_1", "sample_2"]),
    ):
        problems, pool = _crux(shared_data, task)
        for sid in ids:
            p = problems[sid]
            case = (
                CruxevalCase(code=p["code"], input=p["input"])
                if task == "output"
                else CruxevalCase(code=p["code"], output=p["output"])
            )
            gens, scores = pool["raw_generations"][sid], pool["raw_scored_generations"][sid]
            verdicts = {g: checker(g, case, timeout=10) for g in set(gens)}
            assert [verdicts[g] for g in gens] == scores, (task, sid)


def test_cruxeval_exact_strings_match_scoring_except_dict_literals(shared_data: Path) -> None:
    problems, pool = _crux(shared_data, "output")
    wrong = {
        sid
        for sid, gens in pool["raw_generations"].items()
        for g, ok in zip(gens, pool["raw_scored_generations"][sid], strict=True)
        if (canonicalize(g, "exact") == canonicalize(problems[sid]["output"], "exact")) != ok
    }
    assert wrong == {"sample_100", "sample_415", "sample_636"}
