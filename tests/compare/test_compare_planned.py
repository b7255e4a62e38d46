"""Each compare row carries the plan's own prediction and whether the replay agrees with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.compare.comparison import _planned
from ttcdsl.datasets.split import split_ids
from ttcdsl.samples import load
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


@pytest.fixture(scope="module")
def builtin_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("builtin") / "w.jsonl"
    assert main(["workload", "-o", str(path), "--queries", "300", "--samples", "16"]) == 0
    return path


@pytest.mark.slow
def test_a_bandit_row_carries_the_plans_simulated_prediction(builtin_table, tmp_path):
    """A bandit's row gets ``ttc plan``'s own prediction (the simulator on the calibration
    queries), the figure ``ttc plan`` records for the same policy, budget and half; with
    ``--no-simulate`` the row has none and the replay is the same."""
    policy = REPO / "bench" / "policies" / "elimination_gold.ttc"
    docs = {}
    for flags in ((), ("--no-simulate",)):
        out = tmp_path / ("plain" if flags else "simulated")
        argv = ["compare", str(policy), "--samples", str(builtin_table), "--budgets", "3",
                "--repeats", "2", "--out", str(out), "--format", "json", *flags]
        assert main(argv) == 0
        docs[bool(flags)] = json.loads((out / "compare.json").read_text())
    (row,), (plain,) = docs[False]["rows"], docs[True]["rows"]
    assert plain["planned"] is None and plain["planned_agrees"] is None
    assert plain["value"] == row["value"]  # the same plan and orders: the same replay

    # the same plan from ttc plan: the calibration half, the policy at budget 3
    from ttcdsl.compare.runs import at_budget
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.build import make_plan

    table = load(builtin_table)
    calibration_ids, _ = split_ids(table.query_ids(), fraction=0.5, seed=0)
    planned = make_plan(at_budget(load_policy(policy), 3.0), table.where(query_ids=calibration_ids),
                        predict_bandit=True).plan["predicted"]
    assert row["metric"] == "coverage"
    assert row["planned"] == pytest.approx(planned["coverage"], abs=1e-12)
    assert row["planned_se"] == pytest.approx(planned["coverage_se"], abs=1e-12)
    assert 0 < row["planned_se"] < 0.1
    # the built-in workload's halves are alike: the replay lands within the plan's interval
    assert row["planned_agrees"] is True


@pytest.mark.slow
def test_a_bandit_the_simulation_cannot_finish_is_planned_without_a_prediction():
    """A bandit with no per-query cap at a budget past the simulator's longest draw failed the
    comparison row after minutes of simulation, though its replay ran; its plan now stands with
    no prediction and the reason."""
    from ttcdsl.lang.api import parse_policy
    from ttcdsl.planner.build import make_plan
    from ttcdsl.workloads import builtin_workload

    policy = parse_policy("""
policy uncapped "a bandit without a per-query cap"
budget { mean samples per query <= 2000 }
sampling { temperature 0.8  max_tokens 4096 }
scorer prm = reward_model "m"
allocate bandit {
  round 2 samples
  explore entropy
  solved when score(prm) >= 0.99
} maximize accuracy
answer best_of_n(prm)
""")
    table, _ = builtin_workload(8, 16, seed=1)
    plan = make_plan(policy, table, cross_check=False, reps=8, predict_bandit=True,
                     score_columns={"prm": "prm"}).plan
    assert plan["predicted"] is None
    (why,) = [w for w in plan["warnings"] if w.startswith("no prediction")]
    assert "took 1024 samples or more" in why and "samples per query <= N" in why
