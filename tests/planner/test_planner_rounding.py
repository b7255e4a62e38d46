"""Rounding fractional plans to whole queries: never over a limit (exact), bounded loss, integral
plans unchanged, the leak repair, and the errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.planner.knapsack_instances import (
    exactly_within,
    knapsacks,
    one_hot,
    random_knapsack,
)
from ttcdsl.planner.knapsack import Limit, Solution
from ttcdsl.planner.lp import LPModel
from ttcdsl.planner.rounding import exceeded, round_to_queries


def _solution(problem, x):
    return Solution(
        x=x,
        objective=problem.objective(x),
        dual_bound=float("nan"),
        spend=problem.spend(x),
        solver="test",
        status="optimal",
        seconds=0.0,
    )


def _loss_allowance(problem, x, rounded):
    """Σ_g (w_g / count_g) · (max - min value over g's support) · Σ_k |x_gk count_g - floor|: the
    left-over queries (and any mass under the solver-noise snap) at most fall from the best to the
    worst option of the support; plus one whole range per repair move."""
    counts = rounded.counts
    share = x * counts[:, None]
    off = np.abs(share - np.floor(share + 1e-6)).sum(axis=1)
    allowance = 0.0
    for g in np.flatnonzero(off > 0):
        vals = problem.value[g, (x[g] > 0) & problem.allowed[g]]
        allowance += problem.weight[g] / counts[g] * off[g] * (vals.max() - vals.min())
    ranges = [
        np.ptp(problem.value[g, problem.allowed[g]]) * problem.weight[g] / counts[g]
        for g in range(problem.n_groups)
    ]
    return allowance + rounded.moves * max(ranges)


@pytest.mark.parametrize("solver", ["highs", "clarabel"])
@settings(max_examples=40, deadline=None)
@given(
    problem=knapsacks(
        max_groups=12, max_options=6, tokens=True, max_count=6, group_caps=3
    )
)
def test_lp_plans_round_within_every_limit(problem, solver):
    sol = LPModel(problem).solve(solver=solver)
    assume(sol.status == "optimal")
    rounded = round_to_queries(problem, sol)
    assert (
        rounded.queries.sum(axis=1) == problem.counts
    ).all() and rounded.queries.min() >= 0
    assert exactly_within(problem, rounded.queries, rounded.counts)
    assert not exceeded(problem, rounded.queries)
    assert (
        rounded.objective
        >= sol.objective - _loss_allowance(problem, sol.x, rounded) - 1e-9
    )


@settings(max_examples=40, deadline=None)
@given(knapsacks(max_groups=12, max_options=6, max_count=6))
def test_vertex_plans_lose_at_most_one_level_per_fractional_group(problem):
    """One batch limit, HiGHS (with crossover: a vertex): each fractional group mixes two options,
    so at most one query per group is left over, and the loss is at most (w/count)·(max - min),
    plus a level per query the exact check had to move (solver tolerance leaks)."""
    sol = LPModel(problem).solve(solver="highs")
    assume(sol.status == "optimal")
    rounded = round_to_queries(problem, sol)
    bound = 0.0
    for g in range(problem.n_groups):
        share = sol.x[g] * problem.counts[g]
        if np.abs(share - np.round(share)).max() > 1e-6:
            support = problem.value[g, sol.x[g] > 1e-9]
            bound += (
                problem.weight[g] / problem.counts[g] * (support.max() - support.min())
            )
    # a move (the solver a hair over the bound) may cost one more level's gain of one group
    ranges = [
        np.ptp(problem.value[g, problem.allowed[g]])
        * problem.weight[g]
        / problem.counts[g]
        for g in range(problem.n_groups)
    ]
    assert (
        rounded.objective >= sol.objective - bound - rounded.moves * max(ranges) - 1e-9
    )
    assert exactly_within(problem, rounded.queries, rounded.counts)


@settings(max_examples=60, deadline=None)
@given(
    knapsacks(max_groups=10, max_options=5, tokens=True, max_count=5, group_caps=2),
    st.data(),
)
def test_integral_plans_come_back_unchanged(problem, data):
    picks = [
        data.draw(st.sampled_from(np.flatnonzero(problem.allowed[g]).tolist()))
        for g in range(problem.n_groups)
    ]
    x = one_hot(problem, np.array(picks))
    assume(
        exactly_within(
            problem, (x * problem.counts[:, None]).astype(np.int64), problem.counts
        )
    )
    rounded = round_to_queries(problem, _solution(problem, x))
    assert rounded.moves == 0 and (rounded.x == x).all()


@settings(max_examples=60, deadline=None)
@given(
    knapsacks(max_groups=10, max_options=5, tokens=True, max_count=5, group_caps=2),
    st.floats(1e-10, 1e-7),
)
def test_leaks_over_the_bound_are_repaired(problem, leak):
    """A solver answer a hair over a bound (as tolerances allow) is pushed back within it."""
    sol = LPModel(problem).solve()
    assume(sol.status == "optimal")
    limits = tuple(replace(l, bound=l.bound * (1 - leak)) for l in problem.limits)
    tighter = replace(problem, limits=limits)
    try:
        rounded = round_to_queries(tighter, sol)
    except ValueError as err:  # only when even the cheapest options no longer fit
        assert "cheapest" in str(err) or "no query can move" in str(err)
        return
    assert exactly_within(tighter, rounded.queries, rounded.counts)


def test_left_over_queries_go_to_the_support_option_cheapest_everywhere():
    problem = random_knapsack(0, 1, 4, tokens=True, max_count=1, allowed_p=1.0)
    problem = replace(problem, counts=np.array([7]), weight=np.array([1.0]), limits=())
    x = np.array([[0.0, 0.5, 0.5, 0.0]])
    rounded = round_to_queries(problem, _solution(problem, x))
    cheaper = 1 if (problem.cost[:, 0, 1] <= problem.cost[:, 0, 2]).all() else 2
    assert rounded.queries[0].tolist()[cheaper] == 4 and rounded.queries.sum() == 7


def test_three_way_mix_can_leave_two_queries_over():
    """Why the loss allowance counts left-over queries: 1/3 each of three options in a group of 2
    floors to nothing, and both queries go to the cheapest option."""
    problem = random_knapsack(1, 1, 3, max_count=1, allowed_p=1.0)
    problem = replace(problem, counts=np.array([2]), weight=np.array([1.0]), limits=())
    rounded = round_to_queries(problem, _solution(problem, np.full((1, 3), 1 / 3)))
    assert rounded.queries.tolist() == [[2, 0, 0]]


def test_exact_comparison_at_the_bound():
    problem = random_knapsack(2, 8, 4, max_count=1, allowed_p=1.0)
    x = one_hot(problem, np.ones(8, dtype=int))
    at = float(problem.spend(x)[0])
    exactly = replace(problem, limits=(Limit(resource=0, bound=at),))
    assert round_to_queries(exactly, _solution(exactly, x)).moves == 0
    below = replace(
        problem, limits=(Limit(resource=0, bound=float(np.nextafter(at, 0))),)
    )
    rounded = round_to_queries(below, _solution(below, x))
    assert rounded.moves == 1 and exactly_within(below, rounded.queries, rounded.counts)


def test_impossible_limit_is_named():
    problem = random_knapsack(3, 5, 3)
    x = problem.cheapest()
    spend = float(problem.spend(x)[0])
    bad = replace(
        problem,
        limits=(
            Limit(resource=0, bound=spend * 0.9, label="mean samples per query <= 2"),
        ),
    )
    with pytest.raises(ValueError, match="mean samples per query <= 2"):
        round_to_queries(bad, _solution(bad, x))


def test_counts_and_rows_are_checked():
    problem = random_knapsack(4, 3, 3)
    x = problem.cheapest()
    with pytest.raises(ValueError, match="positive"):
        round_to_queries(problem, _solution(problem, x), counts=np.array([1, 0, 2]))
    with pytest.raises(ValueError, match="sum to 1"):
        round_to_queries(problem, _solution(problem, x * 0.5))
