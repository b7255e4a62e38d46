"""Declared limits are never exceeded, recomputed from the samples a run stored: prompt tokens
bounded by the table's per-query maximum (not the largest seen so far), bin-scoped limits during
the probe, and the per-query minimum before any stop rule."""

from __future__ import annotations

import pytest

from tests.runtime.runs import hand_plan, results, run_args, ttc, workload_files, write_policy
from tests.runtime.tables import stored_samples, vary_prompts

PROMPTS = """\
policy prompts "a token budget with prompts charged"
budget {
  total tokens <= 30000
  charge prompt tokens
  samples per query in 1..10
}
sampling { max_tokens 600 }
probe 1 samples
allocate optimal maximize accuracy
"""


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_prompt_tokens_are_bounded_by_the_tables_largest(tmp_path, seed) -> None:
    """A table whose samples were logged with different prompts: a later sample may have a
    longer prompt than any seen so far, so the largest seen is no bound (the old rule overspent
    a binding ``total tokens`` limit)."""
    policy = write_policy(tmp_path, PROMPTS)
    plan = hand_plan(policy, {"all": [{"samples": 10, "share": 1.0}]}, edges=None)
    samples, queries = workload_files(tmp_path, n=8, m=16, seed=seed)
    vary_prompts(samples, seed, high=1500)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=seed)) == 0
    rows = stored_samples(out)
    spent = sum(r["completion_tokens"] + r["prompt_tokens"] for r in rows)
    assert spent <= 30000
    assert len(rows) > 8  # the budget let the run go past the probe


BINNED = """\
policy binned "limits scoped to a bin"
budget {{
  mean samples per query <= 8
  samples per query in 1..12
  tokens per query <= {cap} for long
  mean tokens per query <= {mean_cap} for long
}}
sampling {{ max_tokens {max_tokens} }}
probe 2 samples
feature length = mean(tokens)
bins by length thresholds [700] as short, long
strategy short = majority_vote
strategy long = majority_vote
allocate optimal maximize accuracy
"""


def test_bin_scoped_limits_hold_through_the_probe(tmp_path) -> None:
    text = BINNED.format(cap=3000, mean_cap=2500, max_tokens=1200)
    policy = write_policy(tmp_path, text)
    plan = hand_plan(
        policy, {"short": [{"samples": 4, "share": 1.0}], "long": [{"samples": 12, "share": 1.0}]},
        edges=[700],
    )
    samples, queries = workload_files(tmp_path, n=40, m=16)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    rows = stored_samples(out)
    bins = {r["query_id"]: r["bin"] for r in results(out)}
    long_queries = [q for q, b in bins.items() if b == "long"]
    assert long_queries
    per_query = {q: sum(r["completion_tokens"] for r in rows if r["query_id"] == q)
                 for q in long_queries}
    assert max(per_query.values()) <= 3000
    assert sum(per_query.values()) <= 2500 * len(long_queries)


def test_a_probe_that_could_break_a_bins_limit_is_refused(tmp_path, capsys) -> None:
    """2 probe samples of up to 4096 tokens may cost 8192 before the bin is known; a per-query
    cap of 3000 on `long` cannot be guaranteed: refused before anything is spent."""
    text = BINNED.format(cap=3000, mean_cap=2500, max_tokens=4096)
    policy = write_policy(tmp_path, text)
    plan = hand_plan(
        policy, {"short": [{"samples": 4, "share": 1.0}], "long": [{"samples": 12, "share": 1.0}]},
        edges=[700],
    )
    samples, queries = workload_files(tmp_path, n=10, m=16)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 1
    err = capsys.readouterr().err
    assert "tokens per query in long <= 3000" in err and "cannot guarantee" in err
    assert not out.exists()


FLOOR = """\
policy floor "a per-query minimum with an early stop rule"
budget {
  mean samples per query <= 12
  samples per query in 6..16
}
sampling { max_tokens 4096 }
probe 2 samples
stop { when unanimous last 2 }
allocate optimal maximize accuracy
"""


def test_stop_rules_never_end_a_query_below_the_minimum(tmp_path) -> None:
    policy = write_policy(tmp_path, FLOOR)
    plan = hand_plan(policy, {"all": [{"samples": 12, "share": 1.0}]}, edges=None)
    samples, queries = workload_files(tmp_path, n=40, m=16)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    done = results(out)
    assert any(r["stopped"] for r in done)  # the rule does fire
    assert min(r["samples"] for r in done) >= 6
