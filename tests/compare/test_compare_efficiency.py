"""Efficiency: uniform's smallest spend that matches the policy, over the policy's spend.

One sample per query is the smallest run (a table where every sample is wrong read 0.00x: uniform
"matched" at 0 samples); a policy whose results are uniform's own at equal spend reads 1.00x,
also where uniform's curve is flat or falls (it read 0.25x..0.54x beside a difference of exactly
+0.0); a policy that merely scores as uniform does on a falling curve reads below 1, which is a
fact: uniform matches it with fewer samples."""

from __future__ import annotations

import json

import pytest

from tests.compare.test_compare_ragged import POLICY, _row, _write
from ttcdsl.cli import main
from ttcdsl.compare.baselines import exact_curves
from ttcdsl.curves.pool import QueryPool


def _falling(query):
    """3 right answers, 4 votes for one wrong answer and 1 for another: majority vote falls from
    3/8 at one sample to 0 at all eight."""
    answers = ["A", "A", "A", "B", "B", "B", "B", "C"]
    return [_row(query, j, a, a == "A") for j, a in enumerate(answers)]


def test_the_smallest_run_is_one_sample_per_query():
    pool = QueryPool.from_lists([["a", "b", "c"], ["d", "e"]], [[False] * 3, [False] * 2])
    curves = exact_curves(pool, "majority_vote")
    assert curves.spend_to_reach(0.0) == pytest.approx(1.0)


def test_on_a_falling_curve_uniform_matches_with_fewer_samples():
    answers = [["A", "A", "A", "B", "B", "B", "B", "C"]] * 3
    pool = QueryPool.from_lists(answers, [[a == "A" for a in row] for row in answers])
    curves = exact_curves(pool, "majority_vote")
    assert curves.mean_at(4) < curves.mean_at(1)
    assert curves.spend_to_reach(curves.mean_at(4)) < 4


def _compare(tmp_path, rows, budget):
    _write(tmp_path / "t.jsonl", rows)
    (tmp_path / "unif.ttc").write_text(POLICY)
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "unif.ttc"), "--samples", str(tmp_path / "t.jsonl"),
                 "--budgets", str(budget), "--repeats", "2", "--out", str(out),
                 "--format", "json"]) == 0
    (row,) = json.loads((out / "compare.json").read_text())["rows"]
    return row


def test_uniform_on_a_table_where_every_sample_is_wrong_reads_1x(tmp_path):
    rows = [_row(f"q{i}", j, f"w{j}", False) for i in range(40) for j in range(8)]
    row = _compare(tmp_path, rows, 2)
    assert row["diff"] == 0 and row["se"] == 0
    assert row["efficiency"] == pytest.approx(1.0)


def test_uniform_on_a_falling_curve_reads_1x(tmp_path):
    rows = [r for i in range(40) for r in _falling(f"q{i}")]
    row = _compare(tmp_path, rows, 4)
    assert row["samples_per_query"] == pytest.approx(4.0)
    assert row["diff"] == pytest.approx(0.0, abs=1e-12)
    assert row["efficiency"] == pytest.approx(1.0)
