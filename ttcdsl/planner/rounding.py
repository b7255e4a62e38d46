"""Fractional plan to whole queries, never over any limit.

A relaxation's ``x[g, k]`` is the share of group ``g``'s queries that use option ``k``; the batch
runs whole queries. :func:`round_to_queries` floors each ``x * count`` and gives the queries left
over in a group to the support option that is cheapest in every resource. Within a group that can
only lower every resource's spend, so a plan that fits its limits still fits after rounding, and
the value lost in a group is at most ``(w_g / count_g) * leftover_g * (max - min value over its
support)`` (``leftover_g <= 1`` when the support has two options, as at an LP vertex with one batch
limit: one level's gain at most). With several resources the support may have no such option (one
is cheaper in samples, another in tokens); the left-over queries then go to the support option
cheapest in the first resource and the exact check below repairs any overspend — and if the repair
gets stuck, to an option cheaper than the whole support in every resource (outside the support, so
the loss bound above no longer holds for that group), else the group's cheapest option.

Solvers stop within a tolerance, so their plans can exceed a bound by ~1e-9. Every limit is
therefore checked exactly: the spend of a near-binding limit is summed without rounding from the
float inputs and compared with the real number the bound stands for. A bound is a float, and the
one the planner computes as ``total / N`` is the float *nearest* the real mean, so the comparison
admits spends up to half the gap to the next float above the bound (a relative 1.1e-16: the
representation, not a tolerance; a 1e-12 leak is still caught). While a limit is exceeded a
single query moves from the group's most expensive option to an option that is no more expensive in any resource and cuts the exceeded limit the most.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import fsum

import numpy as np

from ttcdsl.planner.knapsack import Knapsack, Limit, Solution

SNAP = 1e-6  # x * count within this of an integer counts as that integer (solver noise)
ROW_TOL = 1e-6  # a row of x must sum to 1 within this


@dataclass(frozen=True, slots=True, kw_only=True)
class Rounded:
    """Whole-query plan: ``queries[g, k]`` of group ``g``'s ``counts[g]`` queries use option ``k``."""

    queries: np.ndarray  # [G, K] int64, rows sum to counts
    x: np.ndarray  # [G, K] queries / counts
    objective: float  # problem.objective(x)
    spend: np.ndarray  # [R] problem.spend(x)
    counts: np.ndarray  # [G] int64
    moves: int = (
        0  # queries moved to a cheaper option because a limit was still exceeded
    )


def round_to_queries(
    problem: Knapsack, solution: Solution, counts: np.ndarray | None = None
) -> Rounded:
    """Whole queries from ``solution.x`` within every limit of ``problem`` (exact comparison).

    ``counts`` defaults to ``problem.counts``, else one query per group. Raises ``ValueError`` when
    a limit is exceeded even by every group's cheapest option (the planner reports infeasibility
    before it gets here) or when no cheaper move is left.
    """
    if counts is None:
        counts = (
            problem.counts
            if problem.counts is not None
            else np.ones(problem.n_groups, np.int64)
        )
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (problem.n_groups,) or (counts < 1).any():
        raise ValueError("counts must be [G] positive integers")
    x = np.where(
        problem.allowed,
        np.clip(np.asarray(solution.x, dtype=np.float64), 0.0, None),
        0.0,
    )
    rows = x.sum(axis=1)
    if (np.abs(rows - 1.0) > ROW_TOL).any():
        raise ValueError(
            f"solution rows must sum to 1, group {int(np.argmax(np.abs(rows - 1)))} does not"
        )

    share = x * counts[:, None]
    queries = np.floor(share + SNAP).astype(np.int64)
    over = queries.sum(axis=1) - counts
    if (
        over > 0
    ).any():  # only with pathological noise; take the excess off the largest entry
        for g in np.flatnonzero(over > 0):
            queries[g, np.argmax(queries[g])] -= over[g]
    left = counts - queries.sum(axis=1)
    support = (x > SNAP / counts[:, None]) & problem.allowed
    floored = queries
    try:
        queries = _place(problem, floored, left, support, conservative=False)
        moves = _repair(problem, queries, counts)
    except _Stuck:
        # a support option that is cheapest in one resource but not another left the repair no
        # move; the options cheaper than the whole support in every resource always fit
        queries = _place(problem, floored, left, support, conservative=True)
        moves = _repair(problem, queries, counts)
    xq = queries / counts[:, None]
    return Rounded(
        queries=queries,
        x=xq,
        objective=problem.objective(xq),
        spend=problem.spend(xq),
        counts=counts,
        moves=moves,
    )


class _Stuck(ValueError):
    """A limit is still exceeded and no single-query move to a cheaper option is left."""


def _place(
    problem: Knapsack,
    floored: np.ndarray,
    left: np.ndarray,
    support: np.ndarray,
    *,
    conservative: bool,
) -> np.ndarray:
    queries = floored.copy()
    fallback = None
    for g in np.flatnonzero(left > 0):
        k = _sink(problem, g, support[g], conservative)
        if k < 0:
            if fallback is None:
                fallback = problem.cheapest().argmax(axis=1)
            k = int(fallback[g])
        queries[g, k] += left[g]
    return queries


def _sink(problem: Knapsack, g: int, support: np.ndarray, conservative: bool) -> int:
    """Where group ``g``'s left-over queries go (-1: the group's overall cheapest option).

    The support option that is cheapest in every resource, when there is one: that keeps every
    resource's spend at or below the fractional plan's. Otherwise (two resources that rank the
    support differently) the support option cheapest in the first resource — within the support
    the loss stays bounded, and :func:`_repair` fixes what it may overspend — or, ``conservative``,
    the best-valued option no more expensive than every support option in every resource, failing
    that the group's overall cheapest."""
    allowed = problem.allowed[g]
    if not support.any():
        support = allowed
    cost = problem.cost[:, g, :]  # [R, K]
    floor = cost[:, support].min(axis=1)  # [R]
    dominating = allowed & (cost <= floor[:, None]).all(axis=0)
    inside = dominating & support
    if inside.any():
        cand = np.flatnonzero(inside)
        return int(cand[np.argmax(problem.value[g, cand])])
    if not conservative:
        cand = np.flatnonzero(support)
        return int(cand[np.lexsort(cost[::-1][:, cand])[0]])
    if dominating.any():
        cand = np.flatnonzero(dominating)
        return int(cand[np.argmax(problem.value[g, cand])])
    return -1


def _repair(problem: Knapsack, queries: np.ndarray, counts: np.ndarray) -> int:
    """Move single queries to cheaper options until every limit holds exactly; returns the moves.

    A move never raises any resource (the destination costs no more in every resource), so each
    one lowers the plan's cost vector strictly and the loop ends."""
    for r in range(len(problem.resources)):
        cheap = np.zeros_like(queries)
        rc = np.where(problem.allowed, problem.cost[r], np.inf)
        cheap[np.arange(problem.n_groups), rc.argmin(axis=1)] = counts
        on_r = [
            j
            for j in _exceeded(problem, cheap, counts)
            if problem.limits[j].resource == r
        ]
        if on_r:
            limit = problem.limits[on_r[0]]
            raise ValueError(
                f"{limit.label or _describe(problem, limit)}: exceeded even by the cheapest options"
            )
    cost = np.where(problem.allowed[None], problem.cost, np.inf)
    moves = 0
    while True:
        bad = _exceeded(problem, queries, counts)
        if not bad:
            return moves
        limit = problem.limits[bad[0]]
        r = limit.resource
        groups = (
            np.arange(problem.n_groups)
            if limit.group is None
            else np.array([limit.group])
        )
        used = queries[groups] > 0  # [g, K]
        # from: each group's most expensive used option in the exceeded resource
        src = np.where(used, cost[r, groups], -np.inf).argmax(axis=1)
        src_cost = cost[:, groups, src]  # [R, g]
        # to: an allowed option no more expensive in any resource, cheapest in resource r
        fits = (cost[:, groups, :] <= src_cost[:, :, None]).all(
            axis=0
        ) & problem.allowed[groups]
        dst_cost = np.where(fits, cost[r, groups], np.inf)
        dst = dst_cost.argmin(axis=1)
        cut = src_cost[r] - dst_cost[np.arange(len(groups)), dst]
        scale = problem.weight[groups] if limit.group is None else np.ones(len(groups))
        cut = np.where(cut > 0, cut * scale / counts[groups], 0.0)
        if not (cut > 0).any():
            raise _Stuck(
                f"{limit.label or _describe(problem, limit)}: still exceeded and no query can move "
                "to a cheaper option without raising another resource"
            )
        i = int(np.argmax(cut))
        g = groups[i]
        queries[g, src[i]] -= 1
        queries[g, dst[i]] += 1
        moves += 1


def exceeded(
    problem: Knapsack, queries: np.ndarray, counts: np.ndarray | None = None
) -> list[Limit]:
    """The limits that whole-query plan ``queries`` exceeds, decided exactly (no tolerance)."""
    if counts is None:
        counts = (
            problem.counts
            if problem.counts is not None
            else np.ones(problem.n_groups, np.int64)
        )
    return [
        problem.limits[j]
        for j in _exceeded(problem, queries, np.asarray(counts, dtype=np.int64))
    ]


def _exceeded(problem: Knapsack, queries: np.ndarray, counts: np.ndarray) -> list[int]:
    """Indices of exceeded limits. Floats settle every limit whose spend is farther from the bound
    than the float error bound; the rest are decided exactly by :func:`_exact_exceeds`."""
    if not problem.limits:
        return []
    cost = np.where(problem.allowed[None], problem.cost, 0.0)
    q = queries.astype(np.float64)
    group = np.einsum("rgk,gk->rg", cost, q) / counts  # [R, G]
    group_mag = np.einsum("rgk,gk->rg", np.abs(cost), q) / counts
    weight = problem.weight.astype(np.float64)
    batch, batch_mag = group @ weight, group_mag @ np.abs(weight)
    n_terms = problem.n_groups * problem.n_options + 8
    out = []
    for j, limit in enumerate(problem.limits):
        if limit.group is None:
            spent, mag = batch[limit.resource], batch_mag[limit.resource]
        else:
            spent, mag = (
                group[limit.resource, limit.group],
                group_mag[limit.resource, limit.group],
            )
        err = 2 * n_terms * np.finfo(float).eps * (mag + abs(limit.bound)) + 1e-300
        if spent > limit.bound + err or (
            spent >= limit.bound - err
            and _exact_exceeds(problem, limit, queries, counts)
        ):
            out.append(j)
    return out


def _exact_exceeds(
    problem: Knapsack, limit: Limit, queries: np.ndarray, counts: np.ndarray
) -> bool:
    """``spend > bound`` in exact arithmetic on the float inputs.

    A batch limit's spend is ``Σ_g w_g Σ_k c q / count_g``; when the weights are the counts' shares
    (``w_g = count_g / N`` up to float rounding) it is taken as what the batch really spends,
    ``Σ c q / N``, so the weights' own rounding cannot tip the comparison. With one divisor for all
    terms the test is ``Σ w c q > bound * d``: every product is split exactly into two floats
    (Dekker) and ``math.fsum`` of the pieces has the exact sum's sign. Mixed divisors: rationals."""
    cost = problem.cost[limit.resource]
    if limit.group is None:
        g, k = np.nonzero(queries)
        total = int(counts.sum())
        if np.allclose(problem.weight * total, counts, rtol=1e-12, atol=0):
            w, d = np.ones(len(g)), np.full(len(g), total)
        else:
            w, d = problem.weight[g].astype(np.float64), counts[g]
    else:
        k = np.flatnonzero(queries[limit.group])
        g = np.full(len(k), limit.group)
        w, d = np.ones(len(k)), counts[g]
    if len(g) == 0 or (d == d[0]).all():
        d0 = np.array([float(d[0]) if len(g) else 1.0])
        hi, lo = _two_prod(w, cost[g, k])
        n = queries[g, k].astype(np.float64)  # exact: counts are far below 2**53
        b_hi, b_lo = _two_prod(np.array([float(limit.bound)]), d0)
        half_up = (
            _half_gap_above(limit.bound) * d0
        )  # exact: a power of two times an integer
        parts = np.concatenate(
            [*_two_prod(hi, n), *_two_prod(lo, n), -b_hi, -b_lo, -half_up]
        )
        return fsum(parts.tolist()) > 0
    exact = sum(
        Fraction(float(wi)) * Fraction(float(ci)) * int(qi) / int(di)
        for wi, ci, qi, di in zip(w, cost[g, k], queries[g, k], d)
    )
    return exact > Fraction(float(limit.bound)) + Fraction(
        _half_gap_above(limit.bound)[0]
    )


def _half_gap_above(bound: float) -> np.ndarray:
    """Half the gap from ``bound`` to the next float up: a bound computed as ``total / N`` is the
    float nearest the real mean, which may lie up to this much above it."""
    b = float(bound)
    return np.array([(float(np.nextafter(b, np.inf)) - b) / 2])


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a * b == hi + lo`` exactly (Dekker's product; exact barring overflow/underflow)."""
    hi = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = 134217729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _describe(problem: Knapsack, limit: Limit) -> str:
    where = "the batch" if limit.group is None else f"group {limit.group}"
    return f"mean {problem.resources[limit.resource]} per query in {where} <= {limit.bound:g}"
