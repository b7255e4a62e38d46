"""Uniform is a candidate the planner weighs, on calibration queries its choice did not see.

Before, `compute_optimal` at a mean budget of 8 on the built-in workload (then with one
hand-picked strategy per bin, kept here as HAND_PICKED) got a plan that its own comparison put
1.1 points BELOW uniform at the same spend (its `keep_probe` and `best_of_n` bins cost more than
they gain there), and the run lost 1.6 points to uniform: the planner executed an allocation it
expected to lose, although uniform was a plan it could run.

Now the plan runs whichever is ahead out of fold: uniform when the cross-fitted difference is
below zero. The warning says whether the loss is beyond noise (LOSE: the whole 95% interval below
zero) or within it (HAND_PICKED at 8, -1.4 ± 1.2 out of fold, -1.2 ± 1.2 on the evaluation half:
a near tie, where uniform is still the better bet)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.compare.runs import at_budget, replay
from ttcdsl.datasets.split import split_ids
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.explain import plan_verdict
from ttcdsl.planner.uniform import versus_uniform
from ttcdsl.runtime.plancheck import check_plan_against_policy
from ttcdsl.samples.errors import FileFormatError
from ttcdsl.verdict import Z95
from ttcdsl.workloads import builtin_workload


@pytest.fixture(scope="module")
def halves():
    table, _ = builtin_workload(1000, 32, seed=0)  # `ttc workload --queries 1000 --samples 32`
    calibration, evaluation = split_ids(table.query_ids(), fraction=0.5, seed=0)
    return table.where(query_ids=calibration), table.where(query_ids=evaluation)


HAND_PICKED = """\
policy compute_optimal "Snell-style strategy per difficulty bin under a mean budget"
budget {
  mean samples per query <= 16
  samples per query in 4..64
}
sampling { temperature 0.8  top_p 0.95  max_tokens 2048 }
probe 4 samples
scorer prm = reward_model "Qwen/Qwen2.5-Math-PRM-7B"
feature agreement = top_share(answers)
feature verifier = mean(scores(prm))
difficulty = 0.5 * (1 - agreement) + 0.5 * (1 - verifier)
bins by difficulty quantiles [0.2, 0.4, 0.6, 0.8] as level1, level2, level3, level4, level5
strategy level1 = majority_vote
strategy level2 = majority_vote
strategy level3 = weighted_vote(prm)
strategy level4 = best_of_n(prm)
strategy level5 = keep_probe
allocate optimal maximize accuracy
"""


# most of the budget can only go to the easy half, where more samples gain little: out of fold
# it is clearly worse than uniform (beyond noise) on the built-in workload
LOSE = """\
policy lose "the hard half keeps its probe"
budget { mean samples per query <= 8  samples per query in 1..32 }
sampling { temperature 0.8  max_tokens 1024 }
probe 4 samples
feature agreement = top_share(answers)
bins by agreement quantiles [0.5] as hard, easy
strategy hard = keep_probe
strategy easy = majority_vote
allocate optimal maximize accuracy
"""


def test_a_policy_worse_beyond_noise_runs_uniform(halves, tmp_path) -> None:
    calibration, evaluation = halves
    path = tmp_path / "lose.ttc"
    path.write_text(LOSE)
    policy = load_policy(path)
    plan = make_plan(policy, calibration, reps=64, cross_check=False).plan
    choice = plan.get("uniform_choice")
    assert choice is not None, plan["baseline"]
    # why: out of fold, the policy's allocation is worse than uniform, the whole 95% CI below 0
    fitted = plan["baseline"]["cross_fitted"]
    assert fitted["difference"] + Z95 * fitted["difference_se"] < 0
    assert fitted["verdict"].startswith("worse than uniform")
    assert choice["allocation"] == [{"samples": 8, "share": 1.0}]
    assert choice["strategy"] == "majority_vote"
    assert any("UNIFORM" in w and "beyond noise" in w for w in plan["warnings"])
    # the plan predicts what it runs: uniform, at equal spend, so no difference
    assert plan["baseline"]["difference"] == 0.0
    assert plan["predicted"]["accuracy"] == plan["baseline"]["accuracy"]
    # `ttc run` accepts it: every bin's counts are uniform's (a keep_probe bin's too)
    check_plan_against_policy(plan, policy, "plan.yaml")
    edited = {**plan, "uniform_choice": {**choice, "strategy": "best_of_n"}}
    with pytest.raises(FileFormatError, match="uniform_choice.strategy"):
        check_plan_against_policy(edited, policy, "plan.yaml")
    # a uniform count past the policy's per-query cap was run (and cut by the ledger)
    edited = {**plan, "uniform_choice": {**choice, "allocation": [{"samples": 400, "share": 1.0}]}}
    with pytest.raises(FileFormatError, match=r"uniform_choice.allocation\[0\].samples"):
        check_plan_against_policy(edited, policy, "plan.yaml")
    # the run IS uniform, query by query, on the same served samples as the run report's baseline
    ids = evaluation.query_ids()
    (run,) = replay(policy, plan, evaluation, ids, {}, [0])
    assert (run.samples == 8).all()
    assert np.array_equal(run.correct, run.uniform_correct)


def test_behind_within_noise_runs_uniform_and_says_it_is_a_near_tie(halves, tmp_path) -> None:
    # HAND_PICKED at 8: behind uniform out of fold, within noise; it lost on the evaluation half
    calibration, _ = halves
    path = tmp_path / "compute_optimal.ttc"
    path.write_text(HAND_PICKED)
    plan = make_plan(at_budget(load_policy(path), 8), calibration, reps=64, cross_check=False).plan
    fitted = plan["baseline"]["cross_fitted"]
    assert fitted["difference"] < 0 < fitted["difference"] + Z95 * fitted["difference_se"]
    assert "uniform_choice" in plan
    (warning,) = [w for w in plan["warnings"] if "UNIFORM" in w]
    assert f"{100 * fitted['difference']:+.1f} points" in warning
    assert "within noise" in warning and "near tie" in warning and "beyond noise" not in warning
    assert plan["baseline"]["difference"] == 0.0


def _constructed(monkeypatch, difference: float, se: float):
    """The cross-fit made to say ``difference ± se`` (the rule's input), on a real plan."""
    from ttcdsl.planner import choice
    from ttcdsl.planner.crossfit import CrossFit

    fit = CrossFit(folds=5, value=0.5 + difference, uniform=0.5, difference=difference,
                   difference_se=se, samples=8.0)
    monkeypatch.setattr(choice, "cross_fit", lambda *args, **kwargs: fit)


@pytest.mark.parametrize(("difference", "runs_uniform", "words"), [
    (-1e-4, True, "within noise"),  # just behind: uniform, a near tie
    (1e-4, False, None),  # just ahead: the policy
    (-Z95 * 0.013 - 1e-4, True, "beyond noise"),  # the whole interval below zero
])
def test_the_rule_is_the_sign_of_the_out_of_fold_difference(
    halves, tmp_path, monkeypatch, difference, runs_uniform, words
):
    _constructed(monkeypatch, difference, 0.013)
    path = tmp_path / "compute_optimal.ttc"
    path.write_text(HAND_PICKED)
    plan = make_plan(at_budget(load_policy(path), 8), halves[0], reps=16, cross_check=False).plan
    assert ("uniform_choice" in plan) is runs_uniform
    said = [w for w in plan["warnings"] if "UNIFORM" in w]
    assert bool(said) is runs_uniform
    if words:
        assert words in said[0]


def test_a_policy_level_with_uniform_is_kept_without_a_warning(halves, tmp_path, monkeypatch) -> None:
    _constructed(monkeypatch, 0.0, 0.013)
    path = tmp_path / "compute_optimal.ttc"
    path.write_text(HAND_PICKED)
    plan = make_plan(at_budget(load_policy(path), 8), halves[0], reps=16, cross_check=False).plan
    assert "uniform_choice" not in plan
    assert not any("uniform" in w.lower() and "out of fold" in w for w in plan["warnings"])


def test_without_a_choice_cross_fitting_changes_nothing(halves) -> None:
    """At a mean budget of 4 every bin of `adaptive_vote` can only keep its 4-sample probe: there
    is nothing to select, so the out-of-fold difference is the in-sample one (recomputed here
    from the plan's per-query curves by `versus_uniform`, the plan's paired comparison)."""
    calibration, _ = halves
    policy = at_budget(load_policy(REPO / "policies" / "adaptive_vote.ttc"), 4)
    result = make_plan(policy, calibration, reps=16, cross_check=False)
    fitted = result.plan["baseline"]["cross_fitted"]
    x = np.zeros_like(result.problem.value)
    x[:, list(result.curves.levels).index(4)] = 1.0
    paired = versus_uniform(result.calibration, result.curves, x, 4.0)
    assert fitted["difference"] == pytest.approx(paired["difference"], abs=1e-12)
    assert fitted["difference_se"] == pytest.approx(paired["difference_se"], rel=1e-9)
    assert fitted["samples"] == pytest.approx(4.0)
    assert "uniform_choice" not in result.plan  # it gains: the policy's plan stands
    # `ttc plan --explain` leads with the out-of-fold verdict
    assert plan_verdict(result.plan).startswith(fitted["verdict"] + " (out of fold")


# adaptive_vote as it was before its bins could choose their strategy and its stop threshold
# (`one of`, `tuned`): a fixed strategy per bin, so what it gains over uniform is allocation only
FIXED_STRATEGIES = """\
policy adaptive_vote "majority vote, more samples where probes disagree"
budget {
  mean samples per query <= 8
  samples per query in 1..32
}
sampling { temperature 0.8  top_p 0.95  max_tokens 1024 }
probe 4 samples
scorer conf = confidence
feature agreement = top_share(answers)
feature length = mean(tokens) / 1024
difficulty = 0.7 * (1 - agreement) + 0.3 * length
bins by difficulty quantiles [0.3, 0.6, 0.9] as easy, medium, hard, hopeless
strategy easy = majority_vote
strategy medium = majority_vote
strategy hard = weighted_vote(conf)
strategy hopeless = keep_probe
stop {
  when beta_confidence >= 0.95
  when unanimous last 4
}
allocate optimal maximize accuracy
"""


def _fixed_strategies(tmp_path):
    path = tmp_path / "adaptive_vote.ttc"
    path.write_text(FIXED_STRATEGIES)
    return load_policy(path)


def test_cross_fitting_removes_the_winners_curse(tmp_path) -> None:
    """Every query alike (one difficulty tier): bins split them by probe noise only, so what the
    knapsack gains over uniform on its own curves is luck. Out of fold the gain is gone: the
    cross-fitted difference is below the in-sample one and not 'better than uniform'."""
    table, _ = builtin_workload(400, 16, seed=5, mix={"medium": 1.0})
    policy = at_budget(_fixed_strategies(tmp_path), 8)
    plan = make_plan(policy, table, reps=32, cross_check=False).plan
    fitted = plan["baseline"]["cross_fitted"]
    inside = plan.get("uniform_choice", {}).get("policy_baseline", plan["baseline"])
    assert fitted["difference"] < inside["difference"]
    assert not fitted["verdict"].startswith("better")
    assert math.isfinite(fitted["difference_se"]) and fitted["difference_se"] > 0


def test_the_simulator_lowers_a_uniform_plan_as_uniform(tmp_path) -> None:
    """`ttc simulate` of a plan that chose uniform simulates uniform: every bin votes by majority
    over its uniform count, no stop rule (not the bins' strategies and stop rules)."""
    pytest.importorskip("jax")
    from simulator.rollout import MAJORITY
    from ttcdsl.simulate import lower

    table, _ = builtin_workload(400, 16, seed=1, mix={"medium": 0.7, "easy": 0.3})
    path = tmp_path / "lose.ttc"
    path.write_text(LOSE.replace("1..32", "1..16"))
    policy = load_policy(path)
    plan = make_plan(policy, table, reps=16, cross_check=False).plan
    assert "uniform_choice" in plan  # it loses beyond noise on this table
    lowered = lower(policy, plan, 100)
    assert (np.asarray(lowered.arrays.strategy) == MAJORITY).all()
    assert not np.asarray(lowered.arrays.rules.any).any()
    assert not lowered.config.stops
    counts = {o["samples"] for o in plan["uniform_choice"]["allocation"]}
    assert set(np.asarray(lowered.arrays.options).ravel().tolist()) == counts
