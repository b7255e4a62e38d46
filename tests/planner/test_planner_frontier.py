"""The one-sort frontier: hand-made sweeps, and its shape on random instances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcdsl.planner.frontier import frontier
from ttcdsl.planner.knapsack import Knapsack, Limit


def make(value, cost, *, allowed=None, weight=None, limits=None) -> Knapsack:
    value = np.asarray(value, dtype=np.float64)
    cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), value.shape)
    g = value.shape[0]
    return Knapsack(
        value=value,
        cost=cost[None].copy(),
        allowed=np.ones(value.shape, bool) if allowed is None else np.asarray(allowed, bool),
        weight=np.full(g, 1.0 / g) if weight is None else np.asarray(weight, dtype=np.float64),
        limits=(Limit(resource=0, bound=1.0),) if limits is None else limits,
    )


def test_sweep_through_a_non_concave_curve():
    # group 0: steps 0.4 then 0.05 per sample; group 1: 0.1 then 0.3, whose hull is 0.7 / 3
    p = make([[0.1, 0.5, 0.6], [0.2, 0.3, 0.9]], [1, 2, 4])
    f = frontier(p, [0.5, 1.0, 1.25, 2.5, 3.0, 3.5, 4.0, 9.0])
    assert f.min_spend == 1.0 and f.max_spend == 4.0
    assert np.isclose(f.min_objective, 0.15) and np.isclose(f.max_objective, 0.75)
    expected = [np.nan, 0.15, 0.25, 0.35 + 1.0 * 0.7 / 3, 0.7, 0.725, 0.75, 0.75]
    assert np.allclose(f.objective, expected, equal_nan=True)
    assert np.allclose(f.spend, [np.nan, 1, 1.25, 2.5, 3, 3.5, 4, 4], equal_nan=True)
    assert np.allclose(f.marginal, [np.nan, 0.4, 0.4, 0.7 / 3, 0.7 / 3, 0.05, 0.05, 0.0], equal_nan=True)
    spend, objective = f.knots()
    assert np.allclose(spend, [1.0, 1.5, 3.0, 4.0])
    assert np.allclose(objective, [0.15, 0.35, 0.7, 0.75])
    # group 1's middle option is under its hull: never used at any bound
    for b in np.linspace(1.0, 4.0, 13):
        assert f.x_at(b)[1, 1] == 0.0


def test_x_at_splits_at_most_one_group():
    p = make([[0.1, 0.5, 0.6], [0.2, 0.3, 0.9]], [1, 2, 4])
    f = frontier(p, [2.5])
    x = f.x_at(2.5)
    assert np.allclose(x, [[0, 1, 0], [1 / 3, 0, 2 / 3]])
    assert np.isclose(p.objective(x), f.objective[0]) and np.isclose(p.spend(x)[0], 2.5)
    with pytest.raises(ValueError, match="below the cheapest"):
        f.x_at(0.5)
    assert np.allclose(f.x_at(100.0), [[0, 0, 1], [0, 0, 1]])


def test_ties_stop_at_the_cheaper_option():
    f = frontier(make([[0.2, 0.8, 0.8]], [1, 2, 4]), [10.0])
    assert f.max_spend == 2.0 and f.spend[0] == 2.0 and f.objective[0] == 0.8


def test_one_option_groups_and_unequal_weights():
    allowed = [[True, True, True], [False, True, False], [True, False, True]]
    p = make(
        [[0.0, 0.6, 0.7], [9.0, 0.4, 9.0], [0.3, 9.0, 0.9]],
        [1, 2, 4],
        allowed=allowed,
        weight=[0.5, 0.3, 0.2],
    )
    f = frontier(p, [1.6, 2.0])
    assert np.isclose(f.min_spend, 0.5 + 0.6 + 0.2)
    # group 0's step (0.6 per sample, w Δc = 0.5) first: 0.3 of budget buys 0.3 * 0.6
    assert np.isclose(f.objective[0], (0.3 * 0.4 + 0.2 * 0.3) + 0.3 * 0.6)
    # then, of 0.7: all of it (0.5), and group 2's step (0.2 per sample) beats group 0's next (0.05)
    assert np.isclose(f.objective[1], (0.3 * 0.4 + 0.2 * 0.3) + 0.5 * 0.6 + 0.2 * 0.2)
    assert np.isclose(f.marginal[1], 0.2)
    assert f.x_at(2.0)[1, 1] == 1.0


def test_weightless_group_costs_nothing():
    p = make([[0.0, 1.0], [0.0, 1.0]], [1, 3], weight=[1.0, 0.0])
    f = frontier(p, [3.0])
    assert f.max_spend == 3.0 and f.objective[0] == 1.0


def test_a_group_limit_is_refused():
    p = make([[0.1, 0.5]], [1, 2], limits=(Limit(resource=0, bound=1.5), Limit(resource=0, bound=1.0, group=0)))
    with pytest.raises(ValueError, match="group limits"):
        frontier(p, [1.5])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_frontier_is_concave_and_increasing(g, k, seed):
    rng = np.random.default_rng(seed)
    cost = 1.0 + np.cumsum(rng.choice([0.0, 1.0, 2.0], size=(g, k)), axis=1)
    allowed = rng.random((g, k)) < 0.7
    allowed[np.arange(g), rng.integers(0, k, g)] = True
    weight = rng.random(g)
    p = make(rng.random((g, k)), cost, allowed=allowed, weight=weight / weight.sum())
    f0 = frontier(p, [])
    bounds = np.linspace(f0.min_spend, f0.max_spend + 1.0, 41)
    f = frontier(p, bounds)
    assert np.all(np.diff(f.objective) >= -1e-12)
    assert np.all(np.diff(f.marginal) <= 1e-12)  # slopes never increase: concave
    step = bounds[1] - bounds[0]
    second = np.diff(f.objective, 2)
    assert np.all(second <= 1e-12 * max(1.0, step))
    for b in bounds[::8]:
        x = f.x_at(b)
        assert np.allclose(x.sum(axis=1), 1.0) and np.all(x[~p.allowed] == 0)
        assert np.isclose(p.objective(x), f.objective[np.searchsorted(bounds, b)], rtol=1e-9, atol=1e-12)
        assert p.spend(x)[0] <= b + 1e-9
