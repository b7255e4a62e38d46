"""A table whose queries hold different numbers of samples: at a budget past some queries' logs
they get only what they hold in every column, and `ttc compare` says how many, per budget."""

from __future__ import annotations

import json

import numpy as np

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.datasets.split import split_ids
from ttcdsl.samples import save
from ttcdsl.workloads import builtin_workload


def test_queries_shallower_than_a_budget_are_counted_and_said(tmp_path, capsys):
    table, _ = builtin_workload(n_queries=120, n_samples=8, seed=6)
    ids = table.query_ids()
    short = set(ids[::6])  # a sixth of the queries logged only 3 samples
    keep = np.array([q not in short or i < 3 for q, i in zip(table.query_id, table.sample_index)])
    table = table.take(np.flatnonzero(keep))
    path = tmp_path / "ragged.jsonl"
    save(table, path)
    out = tmp_path / "cmp"
    assert main(["compare", str(REPO / "policies" / "self_consistency.ttc"), "--samples", str(path),
                 "--budgets", "2,4,8", "--repeats", "1", "--out", str(out), "--format", "md"]) == 0
    captured = capsys.readouterr()
    _, evaluation = split_ids(ids, fraction=0.5, seed=0)
    expected = sum(q in short for q in evaluation)
    assert expected > 0
    doc = json.loads((out / "compare.json").read_text())
    assert doc["shallow_queries"] == {"4": expected, "8": expected}
    assert doc["fewest_logged"] == 3
    assert f"warning: {expected} of {len(evaluation)} evaluation queries hold fewer than 4" in captured.err
    assert f"at budget 8, {expected} queries hold fewer samples and get only those" in captured.out
