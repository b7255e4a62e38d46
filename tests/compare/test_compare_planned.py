"""Each compare row carries the plan's own prediction and whether the replay agrees with it."""

from __future__ import annotations

import math

import numpy as np

from ttcdsl.compare.comparison import _planned
from ttcdsl.compare.runs import RunResult


def _run(seed: int, correct: list[float]) -> RunResult:
    n = len(correct)
    zeros = np.zeros(n)
    return RunResult(seed=seed, correct=np.array(correct), covered=np.array(correct),
                     samples=np.full(n, 4), tokens=zeros, uniform_correct=zeros,
                     uniform_covered=zeros)


def test_agreement_is_within_both_means_errors_combined():
    runs = [_run(0, [1, 0, 1, 1, 0, 1, 1, 1]), _run(1, [1, 1, 1, 0, 0, 1, 1, 0])]
    per_query = np.array([1, 0.5, 1, 0.5, 0, 1, 1, 0.5])
    value = per_query.mean()
    run_se = per_query.std(ddof=1) / math.sqrt(8)
    row = {"metric": "accuracy", "value": value}
    for plan_value, plan_se in ((0.6, 0.05), (0.2, 0.05), (0.9, 0.2)):
        got = _planned({"predicted": {"accuracy": plan_value, "accuracy_se": plan_se}}, row, runs)
        expected = abs(value - plan_value) <= 1.959964 * math.hypot(plan_se, run_se)
        assert got == {"planned": plan_value, "planned_se": plan_se, "planned_agrees": expected}
    assert _planned({"predicted": None}, row, runs)["planned_agrees"] is None
