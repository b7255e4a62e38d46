"""Every `ttc plan --explain` and sweep ends with a verdict: better, no better or worse than
uniform allocation at equal spend, with the paired difference and its 95% CI.

Before, a plan reported uniform's accuracy next to its own and left the comparison to the reader:
the README's main job showed the flagship losing to uniform without a word."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.sweep import sweep_budget
from ttcdsl.verdict import Z95
from ttcdsl.workloads import builtin_workload


@pytest.fixture(scope="module")
def table():
    table, _ = builtin_workload(240, 12, seed=3)
    return table


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "calib.jsonl"
    assert main(["workload", "-o", str(path), "--queries", "120", "--samples", "12", "--seed", "1"]) == 0
    return path


def _word(text: str) -> str:
    return next(w for w in ("better", "no better", "worse") if text.startswith(w + " than uniform"))


def _check_consistent(entry: dict) -> None:
    """The sentence says what its numbers say: better only when the whole 95% CI is above 0."""
    lo = entry["difference"] - Z95 * entry["difference_se"]
    hi = entry["difference"] + Z95 * entry["difference_se"]
    expected = "better" if lo > 0 else "worse" if hi < 0 else "no better"
    assert _word(entry["verdict"]) == expected, entry
    assert f"{100 * entry['difference']:+.1f} points" in entry["verdict"]


@pytest.mark.parametrize("name", ["adaptive_vote", "adaptive_consistency"])
def test_the_plan_difference_is_its_prediction_minus_uniform(table, name) -> None:
    plan = make_plan(load_policy(REPO / "policies" / f"{name}.ttc"), table, reps=16).plan
    base, predicted = plan["baseline"], plan["predicted"]
    if "uniform_choice" in plan:  # the plan runs uniform: the policy's allocation is kept aside
        base = plan["uniform_choice"]["policy_baseline"]
        predicted = plan["uniform_choice"]["policy_predicted"]
    # paired per query on the same calibration queries: the mean difference is the difference
    # of the means the plan reports separately (an independent path to the same number)
    metric = plan["objective"]
    assert base["difference"] == pytest.approx(predicted[metric] - base[metric], abs=1e-9)
    assert 0 < base["difference_se"] < 0.1
    _check_consistent(base)


def test_a_policy_that_is_uniform_is_no_better_than_uniform(table) -> None:
    """self_consistency spends 8 samples on every query: it IS uniform, so the paired difference
    is Monte Carlo noise against the exact curve and the verdict cannot be 'better'."""
    plan = make_plan(load_policy(REPO / "policies" / "self_consistency.ttc"), table, reps=16).plan
    base = plan["baseline"]
    assert abs(base["difference"]) < 0.01
    assert _word(base["verdict"]) == "no better"


def test_every_sweep_point_has_a_consistent_verdict(table) -> None:
    result = make_plan(load_policy(REPO / "policies" / "adaptive_vote.ttc"), table, reps=16)
    sweep = sweep_budget(result, [4.0, 6.0, 8.0])
    for point in sweep["points"]:
        assert point["uniform"] is not None
        assert point["difference"] == pytest.approx(point["objective"] - point["uniform"], abs=1e-9)
        _check_consistent(point)


def test_explain_and_sweep_end_with_a_verdict_line(calibration_file, capsys) -> None:
    policy = REPO / "policies" / "adaptive_vote.ttc"
    assert main(["plan", str(policy), "-c", str(calibration_file), "--explain", "--reps", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("verdict: ") and "than uniform at equal spend" in lines[-1]
    assert main(["plan", str(policy), "-c", str(calibration_file), "--sweep", "3..6", "--reps", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("verdict: ") and "at budget(s)" in lines[-1]
    bandit = REPO / "policies" / "bandit_entropy.ttc"
    # a bandit's plan predicts its run by simulating it on the calibration table, and judges it
    assert main(["plan", str(bandit), "-c", str(calibration_file), "--explain", "--reps", "8"]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("verdict: ") and "than uniform at equal spend" in last, last
    assert "the bandit simulated on the calibration queries" in last
    words = " ".join(out.split())  # rich wraps long lines
    assert "predicted: accuracy " in words and "simulated: the bandit on the calibration table" in words
    assert main(["plan", str(bandit), "-c", str(calibration_file), "--explain", "--reps", "8",
                 "--no-simulate"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "no simulated prediction" in last and "ttc run reports the run against uniform" in last


def test_verdict_wording_is_shared_with_the_run_report() -> None:
    from ttcdsl.verdict import verdict

    assert verdict(0.05, 0.01).startswith("better than uniform at equal spend: +5.0 points")
    assert verdict(-0.05, 0.01).startswith("worse than")
    assert verdict(0.01, 0.01).startswith("no better than")
    assert math.isclose(Z95, 1.959963984540054) and np.isfinite(Z95)
