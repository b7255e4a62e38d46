"""Uniform at a mean spend on a ragged table (queries holding different numbers of samples)
spends that mean: the samples a shallow query cannot take go to the queries that can, as the run
report's baseline draws them. Capping every query at the spend instead spent less (20 queries of
8 samples and 20 of 1: "uniform at 2.50" spent 1.75) and called a policy that runs uniform
"better than uniform" by 5 points."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from tests.policy_texts import one_bin_vote
from ttcdsl.cli import main
from ttcdsl.compare.baselines import exact_curves
from ttcdsl.curves.pool import QueryPool


def _coverage(labels, n):
    n = min(n, len(labels))
    subsets = list(itertools.combinations(range(len(labels)), n))
    return sum(any(labels[i] for i in s) for s in subsets) / len(subsets)


def _ragged_pool() -> tuple[QueryPool, list[list[bool]]]:
    rng = np.random.default_rng(3)
    labels = [list(rng.random(8) < 0.3) for _ in range(4)] + [[bool(i % 2)] for i in range(4)]
    answers = [["a" if c else f"w{j}" for j, c in enumerate(row)] for row in labels]
    return QueryPool.from_lists(answers, labels), labels


@pytest.mark.parametrize("spend", [1.0, 1.5, 2.5, 3.25, 4.5])
def test_uniform_on_a_ragged_pool_spends_the_mean_it_is_at(spend):
    pool, labels = _ragged_pool()
    curves = exact_curves(pool, "pass_at_k")
    level = curves.level_at(spend)
    lo, theta = int(np.floor(level)), level - np.floor(level)
    held = np.array([len(row) for row in labels])
    spent = ((1 - theta) * np.minimum(lo, held) + theta * np.minimum(lo + 1, held)).mean()
    assert spent == pytest.approx(spend)
    expected = [(1 - theta) * _coverage(row, lo) + theta * _coverage(row, lo + 1) for row in labels]
    assert curves.per_query_at(spend) == pytest.approx(expected)
    # and the spend uniform needs to reach its own value is that spend
    assert curves.spend_to_reach(curves.mean_at(spend)) == pytest.approx(spend)


def test_at_2_5_the_deep_queries_get_4_and_the_shallow_their_one():
    pool, labels = _ragged_pool()
    curves = exact_curves(pool, "pass_at_k")
    assert curves.level_at(2.5) == pytest.approx(4.0)  # (4 * 4 + 4 * 1) / 8 = 2.5
    assert curves.mean_at(2.5) == pytest.approx(np.mean([_coverage(row, 4) for row in labels]))
    # past what the table holds uniform spends it all
    assert curves.level_at(100) == 8
    assert curves.mean_at(100) == pytest.approx(np.mean([_coverage(row, 8) for row in labels]))


POLICY = one_bin_vote("unif", "uniform majority vote under a mean budget")


def _row(query, index, answer, correct):
    return {"query_id": query, "sample_index": index, "round": 0, "prompt_tokens": None,
            "completion_tokens": None, "finish_reason": None, "text": None, "answer": answer,
            "correct": correct, "mean_logprob": None, "prompt_nll": None, "scores": {},
            "temperature": None, "seed": None}


def _write(path, rows):
    header = {"ttc_samples": 1, "meta": {
        "schema_version": 1, "policy_hash": None, "model": None, "backend": "import",
        "seed": None, "sampling": {}, "created_at": "2026-01-01T00:00:00Z", "source": "test",
        "tokenizer": None, "notes": {}}}
    path.write_text("\n".join(json.dumps(r) for r in [header, *rows]) + "\n")


def _deep(query, rng):
    """5 right answers and 3 different wrong ones: majority vote climbs from 0.625 to 1."""
    answers = ["A"] * 5 + ["w1", "w2", "w3"]
    rng.shuffle(answers)
    return [_row(query, j, a, a == "A") for j, a in enumerate(answers)]


def _majority(subset):
    votes = {}
    for answer, _ in subset:
        votes[answer] = votes.get(answer, 0) + 1
    top = max(votes.values())
    tied = [a for a, v in votes.items() if v == top]
    right = {a for a, c in subset if c}
    return sum(a in right for a in tied) / len(tied)


def test_a_policy_that_runs_uniform_on_a_ragged_table_is_no_better_than_uniform(tmp_path):
    rng = random.Random(0)
    calibration = [r for i in range(30) for r in _deep(f"c{i}", rng)]
    evaluation = [r for i in range(20) for r in _deep(f"d{i}", rng)]
    evaluation += [_row(f"s{i}", 0, "A" if i % 2 == 0 else "w", i % 2 == 0) for i in range(20)]
    _write(tmp_path / "cal.jsonl", calibration)
    _write(tmp_path / "eval.jsonl", evaluation)
    (tmp_path / "unif.ttc").write_text(POLICY)
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "unif.ttc"), "--calibration", str(tmp_path / "cal.jsonl"),
                 "--samples", str(tmp_path / "eval.jsonl"), "--budgets", "4", "--repeats", "3",
                 "--out", str(out), "--format", "json"]) == 0
    (row,) = json.loads((out / "compare.json").read_text())["rows"]
    # the policy runs 4 samples per deep query and the one a shallow query holds: 2.5 per query
    assert row["samples_per_query"] == pytest.approx(2.5)
    # uniform at that spend, by brute force: 4 of each deep query's 8 samples, the shallow one's 1
    by_query: dict[str, list] = {}
    for r in evaluation:
        by_query.setdefault(r["query_id"], []).append((r["answer"], r["correct"]))
    expected = np.mean([
        np.mean([_majority(s) for s in itertools.combinations(v, min(4, len(v)))])
        for v in by_query.values()
    ])
    assert row["uniform"] == pytest.approx(expected)  # 0.723; capping each query at 2.5: 0.607
    assert row["verdict"].startswith("no better than uniform")
    assert row["ci"][0] < 0 < row["ci"][1]
