"""`ttc plan --sweep` applies the plan's cross-fitted switch to uniform at every budget.

Before, a sweep point was the policy's knapsack optimum even where the plan `ttc plan` makes at
that budget runs uniform (the policy behind uniform out of fold): the sweep showed, as the
policy's frontier, figures no plan would run. Now each point is the plan made at its budget:
uniform's figures where that plan switches (``runs: uniform``, with the policy's own optimum and
the cross-fitted difference that decided it), the policy's where it does not."""

from __future__ import annotations

import pytest

from tests.planner.test_planner_uniform_choice import LOSE, halves  # noqa: F401 (a fixture)
from ttcdsl.compare.runs import at_budget
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.explain import render_sweep
from ttcdsl.planner.sweep import sweep_budget

# LOSE keeps the probe of its hard half: at 4 every query gets its probe, as uniform's 4 (a tie:
# the policy's plan stands); from 6 on its easy half gets the rest and it falls behind
BUDGETS = [4.0, 6.0, 8.0, 16.0]


def test_each_sweep_point_switches_to_uniform_as_the_plan_at_its_budget_does(halves, tmp_path, capsys):  # noqa: F811
    calibration, _ = halves
    path = tmp_path / "lose.ttc"
    path.write_text(LOSE)
    policy = load_policy(path)
    sweep = sweep_budget(make_plan(policy, calibration, reps=32, cross_check=False), BUDGETS)
    runs = []
    for point in sweep["points"]:
        direct = make_plan(at_budget(policy, point["budget"]), calibration, reps=32, cross_check=False)
        fitted = direct.plan["baseline"]["cross_fitted"]
        assert point["policy_objective"] == pytest.approx(direct.solution.objective, abs=1e-9)
        if "uniform_choice" in direct.plan:
            assert point["runs"] == "uniform", point
            assert point["objective"] == pytest.approx(direct.plan["predicted"]["accuracy"], abs=1e-9)
            assert point["samples_per_query"] == pytest.approx(direct.plan["predicted"]["samples"])
            assert point["cross_fitted"]["difference"] == pytest.approx(fitted["difference"], abs=1e-12)
            assert point["difference"] == 0.0 and point["verdict"].startswith("no better than uniform")
        else:
            assert point["runs"] == "policy", point
            assert point["objective"] == pytest.approx(direct.solution.objective, abs=1e-9)
            assert point["cross_fitted"] is None
        runs.append(point["runs"])
    # the workload makes the switch depend on the budget: otherwise the test would prove nothing
    assert set(runs) == {"uniform", "policy"}, runs
    render_sweep(sweep)
    table = capsys.readouterr().out
    assert table.count("(uniform)") == runs.count("uniform")
