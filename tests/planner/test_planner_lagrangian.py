"""The Lagrangian solver: hand-made optima, and random instances against the frontier and linprog."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from ttcdsl.planner.frontier import frontier
from ttcdsl.planner.knapsack import Knapsack, Limit
from ttcdsl.planner.lagrangian import allocate_per_query, solve_lagrangian

REL = 1e-9


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def make(value, cost, bound, *, allowed=None, weight=None, limits=None) -> Knapsack:
    value = np.asarray(value, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim == 1:
        cost = np.broadcast_to(cost, value.shape)
    g = value.shape[0]
    return Knapsack(
        value=value,
        cost=cost[None].copy(),
        allowed=np.ones(value.shape, bool) if allowed is None else np.asarray(allowed, bool),
        weight=np.full(g, 1.0 / g) if weight is None else np.asarray(weight, dtype=np.float64),
        limits=(Limit(resource=0, bound=bound),) if limits is None else limits,
    )


def linprog_optimum(problem: Knapsack) -> tuple[int, float]:
    """The relaxation by scipy's HiGHS: (status, optimum); status 2 is infeasible."""
    g, k = problem.value.shape
    ok = problem.allowed.reshape(-1)
    c = -(problem.weight[:, None] * np.where(problem.allowed, problem.value, 0.0)).reshape(-1)
    a_eq = np.kron(np.eye(g), np.ones(k))
    rows, rhs = [], []
    for limit in problem.limits:
        row = np.where(problem.allowed, problem.cost[limit.resource], 0.0) * problem.weight[:, None]
        rows.append(row.reshape(-1))
        rhs.append(limit.bound)
    bounds = [(0, 1 if a else 0) for a in ok]
    res = linprog(c, A_ub=np.array(rows) if rows else None, b_ub=rhs or None, A_eq=a_eq,
                  b_eq=np.ones(g), bounds=bounds, method="highs")
    return res.status, (-res.fun if res.status == 0 else np.nan)


def check_solution(problem: Knapsack, sol) -> None:
    """Shares form a distribution over allowed options, the limit holds, and the dual bounds it."""
    x = sol.x
    assert x.shape == problem.value.shape
    assert np.all(x >= -1e-12)
    assert np.allclose(x.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(x[~problem.allowed] == 0.0)
    limit = problem.limits[0]
    assert sol.spend[limit.resource] <= limit.bound + 1e-9 * max(1.0, abs(limit.bound))
    assert _close(sol.objective, problem.objective(x))
    assert sol.dual_bound >= sol.objective - 1e-9
    assert sol.dual_bound - sol.objective <= 1e-9 * max(1.0, abs(sol.objective))


# --- hand-made optima ----------------------------------------------------------------------------


def test_mixes_the_one_group_at_the_kink():
    # Gains per sample: group 0 0.4 then 0.05; group 1 0.1 then 0.3 (non-concave: hull 0.7/3).
    p = make([[0.1, 0.5, 0.6], [0.2, 0.3, 0.9]], [1, 2, 4], 2.5)
    sol = solve_lagrangian(p)
    assert sol.status == "optimal" and not sol.integral
    # group 0 takes its 0.4 step (spend 1.5 -> 2); the 0.5 left buys group 1 (weight 0.5) one
    # of the 3 samples per query its hull segment needs: 2/3 of it at option 2
    assert np.allclose(sol.x, [[0, 1, 0], [1 / 3, 0, 2 / 3]])
    assert _close(sol.objective, 0.5 * 0.5 + 0.5 * (0.2 + 0.7 * 2 / 3))
    assert _close(sol.multipliers[0], 0.7 / 3)
    assert _close(sol.dual_bound, sol.objective, 1e-12)


def test_non_concave_curve_skips_the_option_under_the_hull():
    # Option 1 lies under the chord from 0 to 2: the relaxation never uses it.
    p = make([[0.0, 0.1, 1.0]], [1, 2, 3], 2.0)
    sol = solve_lagrangian(p)
    assert np.allclose(sol.x, [[0.5, 0.0, 0.5]])
    assert _close(sol.objective, 0.5)
    assert _close(sol.multipliers[0], 0.5)


def test_ties_go_to_the_cheaper_option():
    # Options 1 and 2 are equally good: the unconstrained optimum still spends only 2.
    p = make([[0.2, 0.8, 0.8]], [1, 2, 4], 10.0)
    sol = solve_lagrangian(p)
    assert sol.status == "optimal" and sol.integral
    assert np.allclose(sol.x, [[0, 1, 0]])
    assert sol.multipliers == (0.0,) and _close(sol.spend[0], 2.0)


def test_equal_slopes_in_two_groups_split_one_budget():
    # Both groups gain 0.1 per sample: any split is optimal; the value must be exact.
    p = make([[0.0, 0.1], [0.0, 0.1]], [1, 2], 1.5)
    sol = solve_lagrangian(p)
    check_solution(p, sol)
    assert _close(sol.objective, 0.05) and _close(sol.spend[0], 1.5)


def test_infeasible_bound_returns_the_cheapest_allocation():
    p = make([[0.5, 0.9], [0.1, 0.2]], [2, 3], 1.0)
    sol = solve_lagrangian(p)
    assert sol.status == "infeasible" and sol.message
    assert np.allclose(sol.x, [[1, 0], [1, 0]])
    assert np.isnan(sol.dual_bound)


def test_bound_equal_to_the_cheapest_spend_is_feasible():
    p = make([[0.5, 0.9], [0.1, 0.2]], [2, 3], 2.0)
    sol = solve_lagrangian(p)
    assert sol.status == "optimal"
    assert np.allclose(sol.x, [[1, 0], [1, 0]]) and _close(sol.objective, 0.3)


def test_bound_above_the_best_spend_is_not_spent():
    p = make([[0.1, 0.5, 0.6], [0.2, 0.3, 0.9]], [1, 2, 4], 100.0)
    sol = solve_lagrangian(p)
    assert sol.integral and sol.multipliers == (0.0,)
    assert np.allclose(sol.x, [[0, 0, 1], [0, 0, 1]]) and _close(sol.spend[0], 4.0)


def test_group_with_one_allowed_option_and_unequal_weights():
    allowed = [[True, True, True], [False, True, False], [True, False, True]]
    p = make(
        [[0.0, 0.6, 0.7], [9.0, 0.4, 9.0], [0.3, 9.0, 0.9]],
        [1, 2, 4],
        2.0,
        allowed=allowed,
        weight=[0.5, 0.3, 0.2],
    )
    sol = solve_lagrangian(p)
    check_solution(p, sol)
    assert sol.x[1, 1] == 1.0  # its only option, whatever the disallowed values say
    status, optimum = linprog_optimum(p)
    assert status == 0 and _close(sol.objective, optimum)
    # budget 2 - 0.3*2 (group 1) = 1.4 for groups 0 and 2: group 0's step (0.6 per sample,
    # weight 0.5) fits in 0.5 of it; group 2 then gets (1.4 - 0.5 - 0.5 - 0.2) / (0.2 * 3) of its step
    assert np.allclose(sol.x[0], [0, 1, 0])
    assert np.allclose(sol.x[2], [2 / 3, 0, 1 / 3])


def test_no_limit_takes_the_best_options():
    p = make([[0.1, 0.5, 0.6], [0.2, 0.9, 0.9]], [1, 2, 4], 0.0, limits=())
    sol = solve_lagrangian(p)
    assert sol.multipliers == () and np.allclose(sol.x, [[0, 0, 1], [0, 1, 0]])


def test_rejects_limits_it_cannot_handle():
    base = make([[0.1, 0.5]], [1, 2], 1.5)
    two = Knapsack(
        value=base.value, cost=np.stack([base.cost[0], base.cost[0]]), allowed=base.allowed,
        weight=base.weight, resources=("samples", "tokens"),
        limits=(Limit(resource=0, bound=1.5), Limit(resource=1, bound=1.2, label="tokens <= 1.2")),
    )
    with pytest.raises(ValueError, match="tokens <= 1.2"):
        solve_lagrangian(two)
    per_group = make([[0.1, 0.5]], [1, 2], 1.5,
                     limits=(Limit(resource=0, bound=1.5), Limit(resource=0, bound=1.0, group=0)))
    with pytest.raises(ValueError, match="group 0"):
        solve_lagrangian(per_group)


def test_leaves_the_global_precision_alone():
    import jax

    before = jax.config.jax_enable_x64
    solve_lagrangian(make([[0.1, 0.5]], [1, 2], 1.5))
    assert jax.config.jax_enable_x64 == before


# --- random instances ----------------------------------------------------------------------------


@st.composite
def knapsacks(draw, max_groups: int = 30, max_options: int = 8):
    """Random one-limit problems: costs increasing in k like sample counts (with ties), values
    monotone or not, random masks with at least one option per group, random weights."""
    g = draw(st.integers(1, max_groups))
    k = draw(st.integers(1, max_options))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.choice([0.0, 1.0, 2.0, 0.5], size=(g, k), p=[0.1, 0.5, 0.2, 0.2])
    cost = 1.0 + np.cumsum(steps, axis=1) - steps[:, :1]
    if draw(st.booleans()):
        cost = np.broadcast_to(cost[:1], (g, k)).copy()  # levels shared by all groups
    kind = draw(st.sampled_from(["monotone", "noisy", "coarse"]))
    value = rng.random((g, k))
    if kind == "monotone":
        value = np.sort(value, axis=1)
    elif kind == "coarse":
        value = np.round(np.sort(value, axis=1), 1)  # many exact ties
    allowed = rng.random((g, k)) < draw(st.floats(0.3, 1.0))
    allowed[np.arange(g), rng.integers(0, k, g)] = True
    weight = rng.random(g) * (rng.random(g) > 0.1)
    weight = weight / weight.sum() if weight.sum() > 0 else np.full(g, 1.0 / g)
    cheapest = float(weight @ np.where(allowed, cost, np.inf).min(axis=1))
    best = float(weight @ np.where(allowed, cost, 0.0).max(axis=1))
    where = draw(st.sampled_from(["inside", "inside", "inside", "below", "above"]))
    if where == "below":
        bound = cheapest * 0.9 - 0.01
    elif where == "above":
        bound = best + 1.0
    else:
        bound = cheapest + draw(st.floats(0.0, 1.0)) * (best - cheapest)
    return make(value, cost, bound, allowed=allowed, weight=weight)


@settings(max_examples=150, deadline=None)
@given(knapsacks())
def test_lagrangian_equals_frontier(problem):
    sol = solve_lagrangian(problem)
    bound = problem.limits[0].bound
    front = frontier(problem, [bound])
    if sol.status == "infeasible":
        assert bound < front.min_spend and np.isnan(front.objective[0])
        assert np.allclose(problem.spend(sol.x)[0], front.min_spend)
        return
    assert not np.isnan(front.objective[0])
    assert sol.status == "optimal", sol.message
    check_solution(problem, sol)
    assert _close(sol.objective, front.objective[0]), (sol.objective, front.objective[0])
    x = front.x_at(bound)
    assert _close(problem.objective(x), front.objective[0])
    assert problem.spend(x)[0] <= bound + 1e-9


@settings(max_examples=80, deadline=None)
@given(knapsacks(max_groups=6, max_options=5))
def test_lagrangian_and_frontier_equal_linprog(problem):
    status, optimum = linprog_optimum(problem)
    sol = solve_lagrangian(problem)
    front = frontier(problem, [problem.limits[0].bound])
    if status == 2:
        assert sol.status == "infeasible" and np.isnan(front.objective[0])
        return
    assert status == 0
    assert sol.status == "optimal"
    assert _close(sol.objective, optimum), (sol.objective, optimum)
    assert _close(front.objective[0], optimum), (front.objective[0], optimum)
    assert sol.dual_bound >= optimum - 1e-9


# --- per-query curves ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(knapsacks(max_groups=25, max_options=8), st.booleans())
def test_per_query_equals_the_knapsack(problem, shared_levels):
    q = problem.n_groups
    problem = make(problem.value, problem.cost[0], problem.limits[0].bound, allowed=problem.allowed)
    cost = problem.cost[0]
    if shared_levels:
        cost = np.broadcast_to(cost[:1], cost.shape)
        problem = make(problem.value, cost, problem.limits[0].bound, allowed=problem.allowed)
        levels = cost[0]
    else:
        levels = cost
    sol = solve_lagrangian(problem)
    nan_value = np.where(problem.allowed, problem.value, np.nan)
    for per_query in (
        allocate_per_query(nan_value, levels, problem.limits[0].bound),
        allocate_per_query(problem.value, levels, problem.limits[0].bound, allowed=problem.allowed),
    ):
        assert per_query.status == sol.status
        assert per_query.x.shape == (q, problem.n_options)
        if sol.status == "optimal":
            assert _close(per_query.objective, sol.objective)
            assert _close(per_query.dual_bound, sol.dual_bound)
            assert per_query.spend[0] <= problem.limits[0].bound + 1e-9
            assert np.all(per_query.x[~problem.allowed] == 0.0)
            assert np.allclose(per_query.x.sum(axis=1), 1.0)


def test_per_query_rejects_a_query_without_levels():
    value = np.array([[0.1, 0.5], [np.nan, np.nan]])
    with pytest.raises(ValueError, match="1 groups have no allowed"):
        allocate_per_query(value, np.array([1.0, 2.0]), 1.5)
    with pytest.raises(ValueError, match="cost must be"):
        allocate_per_query(value[:1], np.array([1.0, 2.0, 3.0]), 1.5)


def test_per_query_many_queries_matches_frontier():
    rng = np.random.default_rng(7)
    q, levels = 5000, np.arange(1.0, 17.0)
    p = rng.beta(0.5, 0.5, size=(q, 1))
    value = 1 - (1 - p) ** levels + 0.01 * rng.standard_normal((q, 16))
    for budget in (1.0, 2.7, 6.0, 40.0):
        sol = allocate_per_query(value, levels, budget)
        front = frontier(make(value, levels, budget), [budget])
        assert sol.status == "optimal"
        assert _close(sol.objective, front.objective[0]), (budget, sol.objective, front.objective[0])
