"""The exact one-option-per-group DP against brute force, its discretisation, and its statuses."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings

from tests.planner.knapsack_instances import (
    brute_force,
    knapsacks,
    one_hot,
    random_knapsack,
)
from ttcdsl.planner.dp import budget_units, solve_dp
from ttcdsl.planner.knapsack import Limit


def _fits_in_units(problem):
    """Feasibility as the DP sees it with whole-number costs: total samples <= budget units,
    group caps compared directly."""
    budget = budget_units(problem)
    rows = np.arange(problem.n_groups)

    def fits(pick):
        if (
            problem.batch_limits
            and int((problem.counts * problem.cost[0, rows, pick]).sum()) > budget
        ):
            return False
        return all(
            problem.cost[l.resource, l.group, pick[l.group]] <= l.bound
            for l in problem.group_limits
        )

    return fits


@settings(max_examples=80, deadline=None)
@given(knapsacks(max_groups=5, max_options=4, max_count=4, group_caps=2))
def test_dp_equals_brute_force(problem):
    best, _ = brute_force(problem, _fits_in_units(problem))
    sol = solve_dp(problem)
    if not np.isfinite(best):
        assert sol.status == "infeasible"
        return
    assert sol.status == "optimal" and sol.integral
    assert sol.objective == pytest.approx(best, rel=1e-12, abs=1e-15)
    assert (sol.x.sum(axis=1) == 1).all() and set(np.unique(sol.x)) <= {0.0, 1.0}
    assert not problem.violations(sol.x, tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(knapsacks(max_groups=5, max_options=4, max_count=3, tokens=True))
def test_fractional_costs_round_up_and_never_overspend(problem):
    """Tokens are not whole units: the DP on them (one token limit, unit 50) stays within the true
    limit and is no better than the true integer optimum."""
    problem = replace(problem, limits=(problem.limits[1],))
    limit = problem.limits[0]
    sol = solve_dp(problem, unit=50.0)
    rows = np.arange(problem.n_groups)
    n = int(problem.counts.sum())

    def truly_fits(pick):
        total = sum(
            Fraction(float(c)) * int(m)
            for c, m in zip(problem.cost[1, rows, pick], problem.counts)
        )
        return total / n <= Fraction(float(limit.bound))

    best, _ = brute_force(problem, truly_fits)
    if sol.status == "infeasible":
        return
    pick = sol.x.argmax(axis=1)
    assert truly_fits(pick) or float(problem.spend(sol.x)[1]) <= limit.bound * (
        1 + 1e-12
    )
    assert sol.objective <= best + 1e-12


def test_group_caps_prune_options():
    problem = random_knapsack(7, 6, 5, budget=1.0)
    cap = Limit(
        resource=0, bound=float(problem.cost[0, 2][problem.allowed[2]].min()), group=2
    )
    sol = solve_dp(replace(problem, limits=problem.limits + (cap,)))
    assert problem.cost[0, 2, sol.x[2].argmax()] <= cap.bound


def test_no_batch_limit_takes_each_groups_best():
    problem = random_knapsack(8, 20, 6)
    sol = solve_dp(replace(problem, limits=()))
    best = np.where(problem.allowed, problem.value, -np.inf).max(axis=1)
    assert sol.objective == pytest.approx(float(problem.weight @ best))


def test_budget_units_forgive_float_noise_only():
    problem = random_knapsack(9, 3, 3, max_count=1)
    n = int(problem.counts.sum())
    for total in (7, 10, 11):
        limit = replace(problem.limits[0], bound=total / n)
        assert budget_units(replace(problem, limits=(limit,))) == total
    limit = replace(problem.limits[0], bound=(10 - 1e-6) / n)
    assert budget_units(replace(problem, limits=(limit,))) == 9


def test_infeasible_and_unsupported():
    problem = random_knapsack(1, 5, 3)
    cheapest = float(problem.spend(problem.cheapest())[0])
    tight = replace(problem, limits=(replace(problem.limits[0], bound=cheapest - 0.3),))
    assert solve_dp(tight).status == "infeasible"
    impossible = replace(problem, limits=(Limit(resource=0, bound=-1.0, group=0),))
    assert solve_dp(impossible).status == "infeasible"
    two = replace(problem, limits=problem.limits * 2)
    with pytest.raises(ValueError, match="one batch limit"):
        solve_dp(two)


def test_matches_the_relaxation_when_it_is_integral():
    """Every group with the same two options and whole budget: the LP optimum is integral (or
    the DP is below it by at most one level's gain of one group)."""
    problem = random_knapsack(11, 30, 8, budget=0.4)
    from ttcdsl.planner.lp import LPModel

    lp = LPModel(problem).solve()
    dp = solve_dp(problem)
    assert dp.objective <= lp.objective + 1e-9
    assert math.isnan(dp.dual_bound) and dp.solver == "dp"
    assert one_hot(problem, dp.x.argmax(axis=1)).tolist() == dp.x.tolist()
