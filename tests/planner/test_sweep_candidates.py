"""`ttc plan --sweep` chooses a policy's candidates per budget, by the plan's own rule.

Before, the sweep kept the choice made at the plan's own budget for every budget it swept, so
the frontier of `compute_optimal` (a strategy to choose per bin) was below the plan that
`ttc plan` makes directly at another budget: at a mean budget of 4 on the built-in workload
the sweep of the plan made at 8 said 0.7167 where a plan at 4 gets 0.7183 (a plain
`weighted_vote` suits the hardest bin when few samples are left, `best_of_n` when more are)."""

from __future__ import annotations

import pytest

from tests.paths import REPO
from ttcdsl.compare.runs import at_budget
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.sweep import sweep_budget
from ttcdsl.workloads import builtin_workload

BUDGETS = [4.0, 5.0, 8.0, 16.0, 24.0]


@pytest.fixture(scope="module")
def table():
    table, _ = builtin_workload(600, 48, seed=0)  # `ttc workload --queries 600 --samples 48`
    return table


@pytest.fixture(scope="module")
def policy():
    return load_policy(REPO / "policies" / "compute_optimal.ttc")


def _bins_chosen(plan) -> list[dict]:
    return [
        {"bin": b["name"], "strategy": b["strategy"] if b.get("scorer") is None else f"{b['strategy']}({b['scorer']})"}
        for b in plan["bins"]
    ]


def test_each_sweep_point_is_the_plan_made_at_its_budget(table, policy) -> None:
    made = make_plan(at_budget(policy, 8), table, reps=32, cross_check=False)
    assert made.plan["candidate_search"]["method"] == "enumeration"
    sweep = sweep_budget(made, BUDGETS)
    choices = set()
    for point in sweep["points"]:
        direct = make_plan(at_budget(policy, point["budget"]), table, reps=32, cross_check=False)
        # the knapsack's optimum (the sweep's points are relaxation values, as the plan's solution)
        assert point["objective"] == pytest.approx(direct.solution.objective, abs=1e-9), point["budget"]
        assert point.get("choice") == _bins_chosen(direct.plan), point["budget"]
        choices.add(repr(point["choice"]))
    # the workload makes the choice move with the budget: otherwise the test would prove nothing
    assert len(choices) > 1
    assert "candidates chosen per budget" in sweep["method"]


def test_a_budget_no_allocation_meets_has_no_point_and_no_choice(table, policy) -> None:
    made = make_plan(at_budget(policy, 8), table, reps=32, cross_check=False)
    (low, ok) = sweep_budget(made, [2.0, 8.0])["points"]  # the probe alone is 4 samples
    assert low["objective"] is None and low["choice"] is None
    assert ok["objective"] == pytest.approx(made.solution.objective, abs=1e-9)


PER_BIN = """
policy cands "candidates per bin, and a limit on one bin"
budget {
  mean samples per query <= 4
  samples per query in 1..8
  mean samples per query <= 3 for agreed
}
sampling { temperature 0.7  max_tokens 4096 }
probe 2 samples
scorer prm = reward_model "rm"
feature agreement = top_share(answers)
bins by agreement thresholds [0.75] as split, agreed
strategy split = one of [majority_vote, best_of_n(prm)]
strategy agreed = one of [majority_vote, best_of_n(prm)]
stop { when beta_confidence >= tuned [0.8, 0.95] }
allocate optimal maximize accuracy
"""


@pytest.fixture(scope="module")
def qwen(shared_data):
    from ttcdsl.importers import ImportOptions, import_qwen25math_eval

    return import_qwen25math_eval(
        shared_data / "pools" / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7)
    )


def test_with_a_per_bin_limit_the_sweep_chooses_again_per_budget(qwen) -> None:
    # off the single-limit frontier the choice is the widened LP's, made again at each budget
    from ttcdsl.lang.api import parse_policy

    columns = {"prm": "rm"}
    policy = parse_policy(PER_BIN)
    made = make_plan(policy, qwen, score_columns=columns, reps=64, cross_check=False)
    assert made.plan["candidate_search"]["method"] == "widened relaxation"
    sweep = sweep_budget(made, [2.5, 3.0, 6.0])
    assert sweep["method"].startswith("LP re-solved per budget")
    for point in sweep["points"]:
        direct = make_plan(
            at_budget(policy, point["budget"]), qwen, score_columns=columns, reps=64, cross_check=False
        )
        assert point["objective"] == pytest.approx(direct.solution.objective, abs=1e-6), point["budget"]
        expected = [
            {"bin": b["name"], "strategy": b["strategy"] + (f"({b['scorer']})" if b["scorer"] else ""),
             "tuned": b["tuned"]}
            for b in direct.plan["bins"]
        ]
        assert point["choice"] == expected, point["budget"]


def test_the_lp_sweep_keeps_a_fractional_budget(qwen) -> None:
    # the LP path set the swept bound into an array of the policy's (integer) bounds: 2.5 became 2
    from ttcdsl.lang.api import parse_policy

    text = PER_BIN.replace("one of [majority_vote, best_of_n(prm)]", "majority_vote")
    policy = parse_policy(text.replace("tuned [0.8, 0.95]", "0.95"))
    made = make_plan(policy, qwen, score_columns={"prm": "rm"}, reps=64, cross_check=False)
    (point,) = sweep_budget(made, [2.5])["points"]
    direct = make_plan(at_budget(policy, 2.5), qwen, score_columns={"prm": "rm"}, reps=64, cross_check=False)
    assert point["objective"] == pytest.approx(direct.solution.objective, abs=1e-6)
    assert point["samples_per_query"] == pytest.approx(direct.solution.spend[0], abs=1e-6)
