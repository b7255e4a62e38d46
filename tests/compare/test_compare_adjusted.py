"""The difference from uniform is regression-adjusted on the same sample orders.

Plain pairing (the run minus uniform on the orders it was served) adds uniform's luck on those
orders whenever the policy's runs do not follow it: `adaptive_vote` at 8 samples per query on the
built-in workload read -0.5 points on orders 0-2, where uniform was lucky by 1.5 points, while
over 18 orders it gains +1.1 (paired) to +1.4 (against the exact curve). Here the estimate is
recomputed from the replays: the least-squares slope of the run's deviations from exact uniform
on uniform's deviations, by numpy's lstsq, and the adjusted mean difference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.compare.comparison import Baselines, Setup
from ttcdsl.compare.runs import at_budget, plan_for, replay
from ttcdsl.datasets.split import split_ids
from ttcdsl.lang.api import load_policy
from ttcdsl.samples import save
from ttcdsl.workloads import builtin_workload


def test_the_difference_is_regression_adjusted(tmp_path) -> None:
    table, _ = builtin_workload(300, 16, seed=2)
    path = tmp_path / "w.jsonl"
    save(table, path)
    policy_file = REPO / "policies" / "adaptive_vote.ttc"
    out = tmp_path / "cmp"
    assert main(["compare", str(policy_file), "--samples", str(path), "--budgets", "8",
                 "--repeats", "3", "--reps", "16", "--out", str(out), "--format", "json"]) == 0
    (row,) = json.loads((out / "compare.json").read_text())["rows"]

    # the same plan and replays, outside `ttc compare`
    cal, ev = split_ids(table.query_ids(), fraction=0.5, seed=0)
    calibration, evaluation = table.where(query_ids=cal), table.where(query_ids=ev)
    policy = at_budget(load_policy(policy_file), 8)
    plan = plan_for(policy, calibration, {}, reps=16, progress=lambda m: None)
    base = Baselines(Setup(calibration=calibration, evaluation=evaluation, split="",
                           budgets=(8.0,), repeats=3))
    runs = replay(policy, plan, evaluation, base.query_ids, {}, range(3))
    curves = base.curves("majority_vote", None, None, policy.sampling.max_tokens)
    run = np.stack([r.correct for r in runs])
    same = np.stack([r.uniform_correct for r in runs])
    exact = np.stack([curves.per_query_at(r.samples.mean()) for r in runs])
    (c,), *_ = np.linalg.lstsq((same - exact).reshape(-1, 1), (run - exact).ravel(), rcond=None)
    per_query = ((run - exact) - c * (same - exact)).mean(0)

    assert row["uniform_adjustment"] == pytest.approx(c, rel=1e-9)
    assert 0 < c < 1  # the runs share some of uniform's luck on an order, not all of it
    assert row["diff"] == pytest.approx(per_query.mean(), abs=1e-12)
    assert row["se"] == pytest.approx(per_query.std(ddof=1) / np.sqrt(len(per_query)), rel=1e-9)
    # plain pairing is the special case c = 1
    plain = (run - same).mean()
    assert row["diff"] != pytest.approx(plain, abs=1e-6)
