"""Every planner solver against the others on the same instances.

* LP relaxation: cvxpy (HiGHS-IPM and Clarabel) == the Lagrangian search (1e-7 relative), and
  == scipy's linprog on instances with several limits (samples and tokens, group caps).
* Integer problem: the DP == brute force on tiny instances; DP <= LP (a relaxation bounds it).
* Rounded LP plans are feasible integer plans, so with one query per group they are <= the DP
  (the integer optimum). With several queries per group they are not: a group may split its
  queries between two options, which one-option-per-group plans cannot.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from scipy.optimize import linprog

from tests.planner.knapsack_instances import brute_force, knapsacks, random_knapsack
from ttcdsl.planner.dp import budget_units, solve_dp
from ttcdsl.planner.knapsack import Knapsack, Limit
from ttcdsl.planner.lagrangian import allocate_per_query, solve_lagrangian
from ttcdsl.planner.lp import LPModel
from ttcdsl.planner.rounding import round_to_queries

REL = 1e-7


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(1.0, abs(a), abs(b))


def _linprog(problem):
    """The relaxation written out for scipy (dense enough at these sizes)."""
    g_idx, k_idx = np.nonzero(problem.allowed)
    n = len(g_idx)
    c = -(problem.weight[g_idx] * problem.value[g_idx, k_idx])
    a_eq = sp.csr_matrix(
        (np.ones(n), (g_idx, np.arange(n))), shape=(problem.n_groups, n)
    )
    rows, bounds = [], []
    for limit in problem.limits:
        cost = problem.cost[limit.resource, g_idx, k_idx]
        if limit.group is None:
            rows.append(problem.weight[g_idx] * cost)
        else:
            rows.append(np.where(g_idx == limit.group, cost, 0.0))
        bounds.append(limit.bound)
    res = linprog(
        c,
        A_ub=np.array(rows) if rows else None,
        b_ub=np.array(bounds) if rows else None,
        A_eq=a_eq,
        b_eq=np.ones(problem.n_groups),
        bounds=(0, None),
        method="highs",
    )
    return res.status, (-res.fun if res.status == 0 else np.nan)


def _one_limit(problem):
    return replace(problem, limits=problem.limits[:1])


def _at_cheapest(problem) -> bool:
    """The bound equals the cheapest allocation's spend up to float noise: see
    :func:`test_budget_at_the_cheapest_allocation_is_feasible`."""
    cheapest = float(problem.spend(problem.cheapest())[problem.limits[0].resource])
    return abs(cheapest - problem.limits[0].bound) <= 1e-12 * max(1.0, cheapest)


# --- LP relaxation -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(knapsacks(shapes=[(3, 4), (12, 8)], max_count=5, noise=0.05))
def test_cvxpy_equals_lagrangian(problem):
    problem = _one_limit(problem)
    assume(not _at_cheapest(problem))
    lag = solve_lagrangian(problem)
    model = LPModel(problem)
    for solver in ("highs", "clarabel"):
        sol = model.solve(solver=solver)
        assert sol.status == lag.status == "optimal"
        assert _close(sol.objective, lag.objective), (
            solver,
            sol.objective,
            lag.objective,
        )
        assert (
            sol.dual_bound >= lag.objective - REL
        )  # any multiplier bounds the optimum


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("budget", [0.05, 0.3, 0.7])
def test_cvxpy_equals_lagrangian_at_scale(seed, budget):
    problem = random_knapsack(seed, 2000, 16, max_count=1, budget=budget, allowed_p=0.9)
    lag = solve_lagrangian(problem)
    model = LPModel(problem)
    for solver in ("highs", "clarabel"):
        sol = model.solve(solver=solver)
        assert _close(sol.objective, lag.objective), (
            solver,
            sol.objective,
            lag.objective,
        )
    assert _close(model.solve().multipliers[0], lag.multipliers[0]) or abs(
        model.solve().multipliers[0] - lag.multipliers[0]
    ) <= 1e-6 * max(1.0, lag.multipliers[0])


def test_per_query_allocation_equals_cvxpy():
    problem = random_knapsack(21, 1500, 12, max_count=1, budget=0.35)
    levels = problem.cost[0, 0]
    value = np.where(problem.allowed, problem.value, np.nan)
    per_query = allocate_per_query(value, levels, problem.limits[0].bound)
    sol = LPModel(problem).solve()
    assert _close(per_query.objective, sol.objective)


@pytest.mark.parametrize("solver", ["highs", "clarabel"])
@settings(max_examples=40, deadline=None)
@given(
    problem=knapsacks(
        max_groups=10, max_options=6, tokens=True, max_count=4, group_caps=4
    )
)
def test_cvxpy_equals_linprog_with_several_limits(problem, solver):
    status, optimum = _linprog(problem)
    sol = LPModel(problem).solve(solver=solver)
    if status == 2:
        assert sol.status == "infeasible"
        return
    assert status == 0 and sol.status == "optimal"
    assert _close(sol.objective, optimum), (sol.objective, optimum)
    assert sol.dual_bound >= optimum - REL


def _at_the_cheapest():
    """Bins of 3, 4, 5 and 3 queries held at their cheapest options spend 55 samples for 15
    queries: the mean bound 55/15 is the float just below 11/3, while Σ w c in floats lands just
    above it."""
    counts = np.array([3, 4, 5, 3])
    return Knapsack(
        value=np.array([[0.95, 0.97], [0.0, 0.04], [0.05, 0.0], [0.10, 0.02]]),
        cost=np.broadcast_to(np.array([3.0, 5.0]), (1, 4, 2)).copy(),
        allowed=np.array([[True, True], [True, False], [False, True], [True, True]]),
        weight=counts / 15,
        limits=(Limit(resource=0, bound=55 / 15),),
        counts=counts,
    )


def test_budget_at_the_cheapest_allocation_is_feasible_for_lp_and_dp():
    problem = _at_the_cheapest()
    cheapest = problem.objective(problem.cheapest())
    assert LPModel(problem).solve().objective == pytest.approx(cheapest, rel=1e-9)
    assert solve_dp(problem).objective == pytest.approx(cheapest, rel=1e-12)


def test_budget_at_the_cheapest_allocation_is_feasible_for_the_lagrangian():
    problem = _at_the_cheapest()
    assert solve_lagrangian(problem).status == "optimal"


def test_infeasible_agrees():
    problem = random_knapsack(5, 20, 5)
    cheapest = float(problem.spend(problem.cheapest())[0])
    tight = replace(problem, limits=(replace(problem.limits[0], bound=cheapest * 0.9),))
    assert solve_lagrangian(tight).status == "infeasible"
    assert LPModel(tight).solve().status == "infeasible"
    assert solve_dp(tight).status == "infeasible"


# --- integer problem -----------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(knapsacks(shapes=[(4, 3), (6, 4)], max_count=3, noise=0.05))
def test_dp_equals_brute_force_and_stays_under_the_relaxation(problem):
    problem = _one_limit(problem)
    rows = np.arange(problem.n_groups)
    budget = budget_units(problem)
    best, _ = brute_force(
        problem,
        lambda pick: (problem.counts * problem.cost[0, rows, pick]).sum() <= budget,
    )
    dp = solve_dp(problem)
    assume(np.isfinite(best))
    assert dp.status == "optimal" and abs(dp.objective - best) <= 1e-12
    assume(not _at_cheapest(problem))
    lag = solve_lagrangian(problem)
    assert dp.objective <= lag.objective + 1e-12
    assert dp.objective <= lag.dual_bound + 1e-12


@settings(max_examples=80, deadline=None)
@given(knapsacks(shapes=[(5, 4), (10, 6)], max_count=1, noise=0.05))
def test_rounded_relaxation_is_at_most_the_integer_optimum(problem):
    """One query per group: a rounded plan is a one-option-per-group plan within the limit."""
    problem = _one_limit(problem)
    dp = solve_dp(problem)
    assume(dp.status == "optimal" and not _at_cheapest(problem))
    for sol in (solve_lagrangian(problem), LPModel(problem).solve()):
        rounded = round_to_queries(problem, sol)
        assert rounded.objective <= dp.objective + 1e-12
        assert dp.objective <= sol.objective + 1e-9  # and the relaxation bounds both


# --- budget sweeps -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_frontier_equals_a_cvxpy_sweep(seed):
    """One LP model re-solved at every bound (parameters, no rebuild) traces the same curve."""
    from ttcdsl.planner.frontier import frontier

    problem = random_knapsack(seed, 300, 10, max_count=4, noise=0.03)
    cheapest = float(problem.spend(problem.cheapest())[0])
    bounds = np.linspace(cheapest, cheapest * 3, 7)
    curve = frontier(problem, bounds)
    model = LPModel(problem)
    for bound, value in zip(bounds, curve.objective):
        sol = model.solve([bound])
        assert sol.status == "optimal" and _close(sol.objective, float(value)), (
            bound,
            sol.objective,
            value,
        )
