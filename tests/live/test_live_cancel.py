"""Fire-and-cancel on the real engine: a round asks several samples of a query whose stop rule
holds early; the samples past the stop point are cancelled (over HTTP: never sent, or their
requests aborted in flight; in process: aborted in the engine), every generated sample is stored
once, and the answer reads only the samples up to the stop point."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.live.conftest import QUERIES, sample_rows
from tests.live.test_live_run import openai_args, ttc
from tests.runtime.runs import hand_plan, results, write_policy
from ttcdsl.runtime import GenerationRequest
from ttcdsl.runtime.live import LiveQueries

pytestmark = pytest.mark.slow

# Probe 1, then ONE more round (rounds <= 2) that asks the other 7 samples of the target 8 at
# once; the rule (true on any sample) is first checked at the per-query minimum, 3 samples.
POLICY = """\
policy fire_and_cancel "a stop rule that holds at the third sample, asked in one round of seven"

budget {
  mean samples per query <= 8
  samples per query in 3..8
  rounds <= 2
}

sampling { temperature 0.9  max_tokens 8 }
probe 1 samples

feature length = mean(tokens)

bins by length thresholds [1000] as short, long
strategy short = majority_vote
strategy long = majority_vote

stop {
  when length >= 1
}

allocate optimal maximize accuracy
"""
TARGET, STOP_AT = 8, 3


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cancel-plan")
    policy = write_policy(d, POLICY)
    return hand_plan(policy, {"short": [{"samples": TARGET, "share": 1.0}],
                              "long": [{"samples": TARGET, "share": 1.0}]}, edges=[1000])


def test_an_openai_round_is_cancelled_at_the_stop(plan, queries_file, server, tmp_path) -> None:
    """One request in flight per endpoint (concurrency=1), so the samples after the stop point
    wait their turn and are cancelled before they are sent (or in flight)."""
    from ttcdsl.runtime.aggregate import aggregate
    from ttcdsl.lang import ir
    from ttcdsl.samples.schema import SampleRow

    out = tmp_path / "run"
    done = ttc(["run", str(plan), "--queries", str(queries_file),
                *openai_args(server, "concurrency=1"), "--out", str(out), "--seed", "4"])
    assert done.returncode == 0, done.stderr[-3000:]
    rows = sample_rows(out)
    keys = Counter((r["query_id"], r["sample_index"]) for r in rows)
    assert all(c == 1 for c in keys.values()), "a sample stored twice"
    by_query: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["sample_index"]):
        by_query.setdefault(r["query_id"], []).append(r)
    for result in results(out):
        mine = by_query[result["query_id"]]
        assert result["stopped"] and result["samples"] == len(mine) < TARGET
        # round 1 asked TARGET - 1 samples: what it did not generate was cancelled
        assert result["cancelled"] == TARGET - len(mine) >= 1
        assert result["past_stop"] == len(mine) - STOP_AT
        # the answer is the vote over the samples up to the stop point only
        prefix = [SampleRow.from_dict(r) for r in mine[:STOP_AT]]
        vote = aggregate(ir.Strategy(kind="majority_vote"), prefix, scorers=(), probe=1,
                         labelled=True)
        assert result["answer"] == vote.answer
    report = json.loads((out / "report.json").read_text())
    assert report["stop_savings"]["cancelled_requests"] == sum(
        r["cancelled"] for r in results(out)) > 0
    assert report["spend"]["samples"] == len(rows)
    assert "cancelled at a stop" in done.stderr


def test_the_in_process_engine_aborts_the_samples_past_the_stop(engine_options, engine) -> None:
    """A stop test that holds on the first finished sample: the engine's unfinished samples of
    that query are aborted; the ones returned are the seeded samples `LLM.generate` makes."""
    from ttcdsl.runtime.vllm_backend import VllmBackend

    backend = VllmBackend(engine_options, LiveQueries(QUERIES), engine=engine)
    reqs = [GenerationRequest(query_id=q.id, n=6, first_sample_index=2, max_tokens=16,
                              temperature=1.0, seed=21) for q in QUERIES]
    full = backend.generate(reqs)
    calls: list[int] = []

    def holds(samples) -> bool:
        calls.append(len(samples))
        return True

    cut = backend.generate(reqs, [holds] * len(reqs))
    assert calls and min(calls) >= 1
    for whole, part in zip(full, cut, strict=True):
        indices = [s.sample_index for s in part.samples]
        assert indices == sorted(set(indices)) and indices[0] == 2
        assert len(part.samples) + part.cancelled == 6 and part.shortfall == 0
        reference = {s.sample_index: s for s in whole.samples}
        for s in part.samples:  # the same seeded sample, token for token
            ref = reference[s.sample_index]
            assert (s.text, s.completion_tokens, s.seed) == (ref.text, ref.completion_tokens,
                                                            ref.seed)
    assert sum(r.cancelled for r in cut) > 0, "no sample was still running at a stop"
    # the engine is left with nothing of ours running: a plain round still works
    assert backend.generate(reqs[:1])[0].samples == full[0].samples
