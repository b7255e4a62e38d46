"""The backend protocol's data types and the per-sample seeds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import REPO
from ttcdsl.errors import UserError
from ttcdsl.lang.ir import Sampling
from ttcdsl.runtime import (
    BackendCapabilities,
    BackendError,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
    sample_seed,
)
from ttcdsl.samples import SampleRow

# ----------------------------------------------------------------------------------- seeds


def test_sample_seed_values_are_pinned() -> None:
    # Computed once from the SHA-256 definition: a change here breaks resuming old runs.
    assert sample_seed(0, "q", 0) == 2062172411386038584
    assert sample_seed(1, "q", 0) == 3672983071006978499
    assert sample_seed(0, "synth-0000", 3) == 3126709267343730325


def test_sample_seed_is_the_same_in_another_process() -> None:
    """Python's hash() is salted per process; the seed must not be."""
    code = "from ttcdsl.runtime import sample_seed; print(sample_seed(42, 'problème-7', 11))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={"PYTHONHASHSEED": salt, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for salt in ("1", "2")
    }
    assert outputs == {str(sample_seed(42, "problème-7", 11))}


def test_sample_seeds_are_distinct_and_in_range() -> None:
    seeds = [sample_seed(3, f"q{q}", i) for q in range(20) for i in range(500)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)
    # Each input matters: run seed, query id and index.
    assert len({sample_seed(s, "q", 0) for s in range(100)}) == 100
    assert sample_seed(0, "1", 10) != sample_seed(0, "11", 0)


def test_sample_seed_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="sample_index"):
        sample_seed(0, "q", -1)
    with pytest.raises(ValueError, match="run_seed"):
        sample_seed(True, "q", 0)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- requests


def test_request_seeds_extend_across_rounds() -> None:
    def seeds(n: int, first: int = 0) -> tuple[int, ...]:
        req = GenerationRequest(query_id="q", n=n, first_sample_index=first, max_tokens=8, seed=5)
        assert req.seeds is not None
        return req.seeds

    assert seeds(3) + seeds(2, first=3) == seeds(5)
    assert seeds(5) == tuple(sample_seed(5, "q", i) for i in range(5))
    assert GenerationRequest(query_id="q", n=2, max_tokens=8).seeds is None
    assert list(GenerationRequest(query_id="q", n=2, first_sample_index=4, max_tokens=8)
                .sample_indices) == [4, 5]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n": 0}, "n must be"),
        ({"n": True}, "n must be"),
        ({"first_sample_index": -1}, "first_sample_index"),
        ({"query_id": ""}, "query_id"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": None}, "max_tokens is required"),
        ({"max_tokens": 8.0}, "max_tokens must be an integer"),
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"logprobs": 21}, "logprobs"),
        ({"seed": -1}, "seed"),
        ({"prompt": None}, "prompt"),
    ],
)
def test_request_rejects_bad_values(changes: dict, message: str) -> None:
    values = {"query_id": "q", "n": 2, "max_tokens": 16, **changes}
    with pytest.raises(ValueError, match=message):
        GenerationRequest(**values)


def test_request_from_policy_sampling() -> None:
    sampling = Sampling(max_tokens=512, temperature=0.7, top_p=0.95, top_k=-1, seed=9)
    req = GenerationRequest.from_sampling(
        sampling, query_id="q", n=4, first_sample_index=2, prompt="2+2?"
    )
    assert (req.max_tokens, req.temperature, req.top_p, req.top_k, req.seed) == (
        512, 0.7, 0.95, -1, 9
    )
    assert (req.n, req.first_sample_index, req.prompt) == (4, 2, "2+2?")
    assert req.sampling == {"max_tokens": 512, "temperature": 0.7, "top_p": 0.95, "top_k": -1}
    assert req.seeds == tuple(sample_seed(9, "q", i) for i in range(2, 6))


def test_request_is_frozen() -> None:
    req = GenerationRequest(query_id="q", n=1, max_tokens=8)
    with pytest.raises(AttributeError):
        req.n = 2  # type: ignore[misc]


# --------------------------------------------------------------------------------- results


def test_result_needs_a_reason_for_a_shortfall() -> None:
    with pytest.raises(ValueError, match="reason"):
        GenerationResult(query_id="q", samples=(), shortfall=2)
    with pytest.raises(ValueError, match=">= 0"):
        GenerationResult(query_id="q", samples=(), shortfall=-1, reason="x")
    result = GenerationResult(query_id="q", samples=[], shortfall=1, reason="log ran out")
    assert result.samples == ()


def test_sample_becomes_a_row() -> None:
    scores = {"prm": 0.5}
    sample = GeneratedSample(
        sample_index=3,
        text="... 4",
        answer="4",
        correct=True,
        prompt_tokens=10,
        completion_tokens=20,
        finish_reason="stop",
        mean_logprob=-0.25,
        scores=scores,
        seed=77,
        source_index=9,
    )
    scores["prm"] = 1.0  # the sample keeps its own copy
    row = sample.to_row("q", round=2, temperature=0.6)
    assert row == SampleRow(
        query_id="q",
        sample_index=3,
        round=2,
        prompt_tokens=10,
        completion_tokens=20,
        finish_reason="stop",
        text="... 4",
        answer="4",
        correct=True,
        mean_logprob=-0.25,
        scores={"prm": 0.5},
        temperature=0.6,
        seed=77,
    )
    with pytest.raises(TypeError):
        sample.scores["prm"] = 2.0  # type: ignore[index]


def test_capabilities_check_max_batch() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BackendCapabilities(logprobs=False, prompt_tokens=False, deterministic=True, max_batch=0)


def test_backend_error_is_a_user_error() -> None:
    error = BackendError("server down", hint="start it")
    assert isinstance(error, UserError)
    assert error.render() == "error: server down\n  help: start it"
