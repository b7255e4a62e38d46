"""The LP relaxation through cvxpy: statuses, multipliers, the dual bound, and budget sweeps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.knapsack_instances import knapsacks, random_knapsack
from ttcdsl.planner import lp
from ttcdsl.planner.knapsack import Limit
from ttcdsl.planner.lp import LPModel, lagrangian_bound


@pytest.mark.parametrize("solver", ["highs", "clarabel"])
@pytest.mark.parametrize("seed", range(4))
def test_optimal_solution_is_feasible_and_certified(seed, solver):
    problem = random_knapsack(seed, 40, 6, tokens=True, max_count=5, group_caps=8)
    sol = LPModel(problem).solve(solver=solver)
    assert sol.status == "optimal", sol.message
    assert sol.x.min() >= 0 and np.allclose(sol.x.sum(axis=1), 1.0, atol=1e-12)
    assert (sol.x[~problem.allowed] == 0).all()
    assert not problem.violations(sol.x, tol=1e-6)
    assert len(sol.multipliers) == len(problem.limits) and min(sol.multipliers) >= 0
    assert sol.objective == pytest.approx(problem.objective(sol.x), abs=1e-15)
    # the recomputed Lagrangian bound is an upper bound, and tight at the solver's multipliers
    assert sol.dual_bound >= sol.objective - 1e-9
    assert sol.gap <= 1e-6 * max(1.0, abs(sol.objective))


def test_group_limit_multipliers_are_not_weighted():
    """A group limit's row carries no weight: a binding cap must still give a tight bound."""
    problem = random_knapsack(3, 30, 8, max_count=4, budget=0.9)
    capped = tuple(
        Limit(
            resource=0,
            bound=float(problem.cost[0, g][problem.allowed[g]].min()) + 0.5,
            group=g,
        )
        for g in range(0, 30, 3)
    )
    problem = replace(problem, limits=problem.limits + capped)
    sol = LPModel(problem).solve()
    assert sol.status == "optimal"
    assert any(m > 1e-6 for m in sol.multipliers[1:]), "some cap should bind"
    assert sol.gap == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    knapsacks(max_groups=10, max_options=6, tokens=True, max_count=4, group_caps=3),
    st.data(),
)
def test_lagrangian_bound_holds_for_any_multipliers(problem, data):
    sol = LPModel(problem).solve()
    if sol.status != "optimal":
        return
    lam = np.array(
        data.draw(
            st.lists(
                st.floats(0, 10),
                min_size=len(problem.limits),
                max_size=len(problem.limits),
            )
        )
    )
    lam = lam / np.maximum(
        1.0, np.abs(problem.cost).max(axis=(1, 2))[[l.resource for l in problem.limits]]
    )
    assert lagrangian_bound(problem, lam) >= sol.objective - 1e-9


def test_sweep_reuses_the_canonicalisation():
    problem = random_knapsack(5, 60, 8, tokens=True, group_caps=5)
    model = LPModel(problem)
    base = [l.bound for l in problem.limits]
    first = model.solve(base)
    program = model._problems["highs"]._cache.param_prog
    assert model._problems["highs"].is_dpp()
    for frac in (0.6, 0.8, 1.2, 2.0):
        bounds = [base[0] * frac, *base[1:]]
        swept = model.solve(bounds)
        fresh = LPModel(
            replace(
                problem,
                limits=(
                    replace(problem.limits[0], bound=bounds[0]),
                    *problem.limits[1:],
                ),
            )
        )
        assert swept.objective == pytest.approx(fresh.solve().objective, rel=1e-9)
        assert model._problems["highs"]._cache.param_prog is program
    assert first.status == "optimal" and set(model.compile_seconds) == {"highs"}
    assert model.build_seconds > 0


@pytest.mark.parametrize("solver", ["auto", "highs", "clarabel"])
def test_infeasible_is_a_status(solver):
    problem = random_knapsack(1, 10, 4)
    cheapest = float(problem.spend(problem.cheapest())[0])
    sol = LPModel(problem).solve([cheapest - 0.5], solver=solver)
    assert sol.status == "infeasible" and np.isnan(sol.objective)
    feasible = LPModel(problem).solve([cheapest], solver=solver)
    assert feasible.status == "optimal"


def test_solver_failure_is_a_status_and_auto_falls_back(monkeypatch):
    problem = random_knapsack(2, 10, 4)
    broken = dict(lp._SOLVERS)
    broken["highs"] = (
        broken["highs"][0],
        {"highs_options": {"no_such_option": 1}},
        "cvxpy/HIGHS-ipm",
    )
    monkeypatch.setattr(lp, "_SOLVERS", broken)
    model = LPModel(problem)
    failed = model.solve(solver="highs")
    assert failed.status == "solver_error" and "no_such_option" in failed.message
    auto = model.solve()
    assert (
        auto.status == "optimal"
        and auto.solver == "cvxpy/CLARABEL"
        and "HiGHS failed" in auto.message
    )


def test_unknown_solver_and_wrong_bounds_are_errors():
    model = LPModel(random_knapsack(0, 3, 3))
    with pytest.raises(ValueError, match="unknown solver"):
        model.solve(solver="gurobi")
    with pytest.raises(ValueError, match="expected 1 bounds"):
        model.solve([1.0, 2.0])


def test_problem_without_limits_takes_the_best_option():
    problem = random_knapsack(4, 12, 5)
    problem = replace(problem, limits=())
    sol = LPModel(problem).solve()
    best = np.where(problem.allowed, problem.value, -np.inf).max(axis=1)
    assert sol.objective == pytest.approx(float(problem.weight @ best), rel=1e-9)
    assert sol.multipliers == ()
