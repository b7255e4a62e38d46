"""Live reward-model scorers without an engine: the engine each scorer mode gets, what the
reward model reads, and how scores (and failures to score) attach to a round's results.
(On the real engine and a real pooling server: tests/live/test_live_scorer.py.)"""

from __future__ import annotations

import socket

import pytest

from ttcdsl.datasets import Message, Query
from ttcdsl.lang.api import load_policy
from ttcdsl.runtime import GenerationRequest
from ttcdsl.runtime.backend import BackendCapabilities, GeneratedSample, GenerationResult
from ttcdsl.runtime.live import LiveQueries, parse_options
from ttcdsl.runtime.reward import (
    HttpScorer,
    ScoringBackend,
    attach_scores,
    conversation,
    engine_arguments,
    scorer_specs,
)

POLICY = """\
policy judged "best of 3 by a reward model"
sampling { temperature 0.9  max_tokens 10 }
scorer prm = reward_model "org/rm"
answer best_of_n(prm)
allocate fixed 3 maximize accuracy
"""

QUERIES = LiveQueries([
    Query(id="p", kind="math", prompt="What is 2 + 3?", gold="5"),
    Query(id="c", kind="math", gold="20", messages=(
        Message(role="system", content="Be brief."),
        Message(role="user", content="What is 10 + 10?"))),
])


def spec(tmp_path, *items, backend="vllm"):
    path = tmp_path / "p.ttc"
    path.write_text(POLICY)
    (one,) = scorer_specs([f"scorer.prm.{i}" for i in items], load_policy(path), ["prm"], backend)
    return one


def test_the_model_defaults_to_the_policys_and_modes_get_their_engines(tmp_path) -> None:
    judge = spec(tmp_path)
    assert judge.options["model"] == "org/rm" and judge.judge
    cpu = engine_arguments(judge, cpu=True)
    assert (cpu["runner"], cpu["convert"], cpu["dtype"], cpu["enforce_eager"],
            cpu["kv_cache_memory_bytes"], cpu["distributed_executor_backend"]) == (
            "pooling", "classify", "float32", True, 512 << 20, "uni")
    assert cpu["hf_overrides"] == {"classifier_from_token": ["No", "Yes"],
                                   "method": "from_2_way_softmax"}
    classify = spec(tmp_path, "mode=classify", "model=/rm", "gpu_memory_utilization=0.3")
    gpu = engine_arguments(classify, cpu=False)
    assert gpu == {"model": "/rm", "runner": "pooling", "convert": "classify",
                   "max_model_len": 2048, "gpu_memory_utilization": 0.3}


def test_what_the_reward_model_reads(tmp_path) -> None:
    """A judge is asked about the query's question (a chat's last user message); a classifier
    reads the conversation with the sample as the assistant's turn."""
    judge = spec(tmp_path, r"template=Q: {question}\nA: {answer}\nRight?")
    assert conversation(judge, QUERIES, "c", "20") == [
        {"role": "user", "content": "Q: What is 10 + 10?\nA: 20\nRight?"}]
    classify = spec(tmp_path, "mode=classify")
    assert conversation(classify, QUERIES, "c", "20") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 10 + 10?"},
        {"role": "assistant", "content": "20"}]


def _sample(i: int) -> GeneratedSample:
    return GeneratedSample(sample_index=i, text=f"t{i}", answer=str(i), completion_tokens=3)


def test_a_querys_samples_end_at_its_first_unscored_sample() -> None:
    """As at a failed generation: the samples before it are kept (scored), the rest become the
    shortfall with the scorer's reason; other queries are untouched."""
    results = [
        GenerationResult(query_id="a", samples=(_sample(0), _sample(1), _sample(2))),
        GenerationResult(query_id="b", samples=(_sample(4),), shortfall=1, reason="gen failed"),
        GenerationResult(query_id="c", samples=(_sample(0), _sample(1)), shortfall=2,
                         reason="gen failed"),
    ]
    got = attach_scores(results, {"prm": [0.1, "too long", 0.3, 0.4, "server down", 0.6],
                                  "orm": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    a, b, c = got
    assert [dict(s.scores) for s in a.samples] == [{"prm": 0.1, "orm": 1.0}]
    assert (a.shortfall, a.reason) == (2, "too long")
    assert [dict(s.scores) for s in b.samples] == [{"prm": 0.4, "orm": 4.0}]
    assert (b.shortfall, b.reason) == (1, "gen failed")
    assert c.samples == () and (c.shortfall, c.reason) == (4, "server down")


class _Fixed:
    """A generation backend that returns one fixed sample per request (the scorer is under test)."""

    name, model, settings = "fixed", "m", {"model": "m"}
    capabilities = BackendCapabilities(logprobs=False, prompt_tokens=False, deterministic=True)

    def generate(self, requests):
        return [GenerationResult(query_id=r.query_id, samples=(_sample(r.first_sample_index),))
                for r in requests]

    def close(self) -> None:
        pass


def test_an_unreachable_scoring_server_is_retried_then_a_shortfall(tmp_path) -> None:
    """A scoring server nothing answers at is refused before generating; one that goes away
    mid-run gets the generation requests' retries, and a request that keeps failing ends the
    query with the reason. The run's settings record how it scores."""
    pytest.importorskip("httpx")
    from ttcdsl.runtime.openai_backend import OPTIONS

    from tests.runtime.http_double import OpenAIDouble
    from ttcdsl.runtime.backend import BackendError

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    options = parse_options(["retries=2", "backoff=0"], OPTIONS, "openai")
    never_up = spec(tmp_path, f"endpoint={dead}", "model=judge", backend="openai")
    with pytest.raises(BackendError, match="no answer"):  # before anything is generated
        HttpScorer(never_up, QUERIES, options).ready()
    server = OpenAIDouble(models=["judge"])  # up when the run starts, gone when it scores
    scorer_spec = spec(tmp_path, f"endpoint={server.url}", "model=judge", backend="openai")
    scorer = HttpScorer(scorer_spec, QUERIES, options)
    scorer.ready()
    server.close()
    backend = ScoringBackend(_Fixed(), {"prm": scorer})
    (result,) = backend.generate([GenerationRequest(query_id="p", n=1, max_tokens=4, seed=0)])
    assert result.samples == () and result.shortfall == 1
    assert "connection failed" in result.reason and "3 attempts" in result.reason
    assert backend.settings == {"model": "m", "scorer.prm.model": "judge",
                                "scorer.prm.mode": "judge", "scorer.prm.label": None,
                                "scorer.prm.template": scorer_spec.options["template"],
                                "scorer.prm.logits": False}
