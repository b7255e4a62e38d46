"""Random knapsack instances for the planner tests, and the exact references they are checked by.

Values follow the accuracy-of-n-samples shape ``1 - (1 - p)^n`` (p from a Beta per group), with
optional noise so that some curves are not concave; sample costs are whole numbers (the levels),
token costs are not. Weights are always the counts' shares, as the planner builds them.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

from ttcdsl.planner.knapsack import Knapsack, Limit


def random_knapsack(
    seed: int,
    groups: int,
    options: int,
    *,
    tokens: bool = False,
    max_count: int = 1,
    group_caps: int = 0,
    budget: float = 0.5,
    token_budget: float = 0.6,
    allowed_p: float = 0.8,
    noise: float = 0.0,
) -> Knapsack:
    """``budget`` (and ``token_budget``) place the batch bounds between the cheapest and the most
    expensive allocation (0 = cheapest, 1 = everything at its most expensive option)."""
    rng = np.random.default_rng(seed)
    levels = np.cumsum(rng.integers(1, 4, size=options)).astype(
        np.float64
    )  # increasing sample counts
    p = rng.beta(0.7, 1.0, size=groups)
    value = 1.0 - (1.0 - p[:, None]) ** levels[None, :]
    if noise:
        value = np.clip(value + noise * rng.standard_normal(value.shape), 0.0, 1.0)
    allowed = rng.random((groups, options)) < allowed_p
    allowed[np.arange(groups), rng.integers(0, options, size=groups)] = True
    costs = [np.broadcast_to(levels, (groups, options)).copy()]
    resources = ("samples",)
    if tokens:
        per_sample = rng.uniform(100.0, 900.0, size=(groups, 1))
        costs.append(
            levels[None, :] * per_sample * rng.uniform(0.8, 1.2, size=(groups, options))
        )
        resources = ("samples", "tokens")
    cost = np.stack(costs)
    counts = rng.integers(1, max_count + 1, size=groups).astype(np.int64)
    weight = counts / counts.sum()

    def batch_bound(r: int, frac: float) -> float:
        # the float nearest the exact mean, as a planner dividing a total by N gets it
        masked = np.where(allowed, cost[r], np.nan)
        lo = sum(
            Fraction(float(c)) * int(m)
            for c, m in zip(np.nanmin(masked, axis=1), counts)
        )
        hi = sum(
            Fraction(float(c)) * int(m)
            for c, m in zip(np.nanmax(masked, axis=1), counts)
        )
        return float((lo + Fraction(frac) * (hi - lo)) / int(counts.sum()))

    limits = [Limit(resource=0, bound=batch_bound(0, budget), label="mean samples")]
    if tokens:
        limits.append(
            Limit(resource=1, bound=batch_bound(1, token_budget), label="mean tokens")
        )
    for g in rng.choice(groups, size=min(group_caps, groups), replace=False):
        r = int(rng.integers(0, len(resources)))
        row = cost[r, g][allowed[g]]
        cap = (
            float(rng.uniform(row.min(), row.max()))
            if rng.random() < 0.8
            else float(row.min())
        )
        limits.append(
            Limit(resource=r, bound=cap, group=int(g), label=f"group {g} cap")
        )
    return Knapsack(
        value=value,
        cost=cost,
        allowed=allowed,
        weight=weight,
        limits=tuple(limits),
        resources=resources,
        counts=counts,
    )


@st.composite
def knapsacks(
    draw, *, max_groups: int = 8, max_options: int = 6, shapes=None, **kwargs
) -> Knapsack:
    """A hypothesis strategy over :func:`random_knapsack` (sizes and the seed are drawn). ``shapes``
    (a list of ``(groups, options)``) restricts the sizes, so that jit-compiled solvers compile
    once per shape instead of once per example."""
    if shapes is not None:
        groups, options = draw(st.sampled_from(shapes))
    else:
        groups, options = (
            draw(st.integers(1, max_groups)),
            draw(st.integers(1, max_options)),
        )
    return random_knapsack(
        draw(st.integers(0, 2**32 - 1)),
        groups,
        options,
        budget=draw(st.floats(0.0, 1.0)),
        **kwargs,
    )


def exact_spend(
    problem: Knapsack, queries: np.ndarray, counts: np.ndarray, limit: Limit
) -> Fraction:
    """What a whole-query plan spends against ``limit``, in rationals: the batch mean is the total
    over the batch's queries divided by their number (the weights are the counts' shares)."""
    cost = problem.cost[limit.resource]
    if limit.group is None:
        total = sum(
            Fraction(float(cost[g, k])) * int(queries[g, k])
            for g, k in zip(*np.nonzero(queries))
        )
        return total / int(counts.sum())
    g = limit.group
    return sum(
        Fraction(float(cost[g, k])) * int(queries[g, k])
        for k in np.flatnonzero(queries[g])
    ) / int(counts[g])


def real_bound(limit: Limit) -> Fraction:
    """The largest real number whose nearest float is ``limit.bound`` (from above): a bound the
    planner got by dividing a total is the float nearest the true mean."""
    b = float(limit.bound)
    return Fraction(b) + (Fraction(float(np.nextafter(b, np.inf))) - Fraction(b)) / 2


def exactly_within(problem: Knapsack, queries: np.ndarray, counts: np.ndarray) -> bool:
    return all(
        exact_spend(problem, queries, counts, l) <= real_bound(l)
        for l in problem.limits
    )


def brute_force(problem: Knapsack, fits) -> tuple[float, np.ndarray | None]:
    """Best one-option-per-group value over every combination that ``fits(choice)`` accepts."""
    best, best_pick = -np.inf, None
    options = [np.flatnonzero(problem.allowed[g]) for g in range(problem.n_groups)]
    rows = np.arange(problem.n_groups)
    for pick in itertools.product(*options):
        pick = np.array(pick)
        if not fits(pick):
            continue
        value = float(problem.weight @ problem.value[rows, pick])
        if value > best:
            best, best_pick = value, pick
    return best, best_pick


def one_hot(problem: Knapsack, pick: np.ndarray) -> np.ndarray:
    x = np.zeros(problem.value.shape)
    x[np.arange(problem.n_groups), pick] = 1.0
    return x
