"""The LP optimum at every budget at once, for one batch limit: the accuracy-vs-budget frontier.

Under a single limit the relaxation's optimum is a concave, piecewise-linear function of the
bound ``B``, and it is built greedily. Each group starts at its cheapest option (best value among
equally cheap ones); the only moves worth paying for are along the upper concave hull of the
group's allowed ``(cost, value)`` points, from that option up to its best one. A hull segment
costs ``w Δc`` of the batch budget and gains ``w Δv``; since each group's segments have
decreasing slopes, taking all segments of all groups in order of slope (gain per unit cost),
steepest first, takes every group's segments in their own order, and stopping part-way through a
segment is the LP optimum at that spend — the same mix the Lagrangian solver finds (the slope
where the budget runs out is its ``λ*``). Options under the hull are never used by the
relaxation, which is why non-concave curves need the hull rather than their consecutive steps.

So one sort of the segments, and cumulative sums of their weighted costs and gains, answer every
bound by a binary search and a linear interpolation: ``ttc plan --sweep`` and its plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ttcdsl.planner.knapsack import Knapsack

FEASIBILITY_RTOL = 1e-12  # the same as ttcdsl.planner.lagrangian's (not imported: that loads JAX)


class Hull(NamedTuple):
    """Every group's hull segments, steepest first across the batch (``[S]`` arrays)."""

    start: np.ndarray  # [G] int: each group's cheapest option (the hull's first vertex)
    vertices: np.ndarray  # [G, K] int: each group's hull vertices in cost order, -1 padded
    group: np.ndarray  # [S] the segment's group
    step: np.ndarray  # [S] its position within the group's hull (0 = from the cheapest option)
    slope: np.ndarray  # [S] gain per unit cost, non-increasing along S
    cost: np.ndarray  # [S] w Δc: share of the batch budget the segment uses (> 0)
    gain: np.ndarray  # [S] w Δv: objective it adds
    spend_end: np.ndarray  # [S] batch spend once this and every earlier segment are taken
    value_end: np.ndarray  # [S] objective then


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontier:
    """The relaxation's optimum at each of ``bounds`` (mean cost per query of ``resource``).

    Below ``min_spend`` (the cheapest allocation's spend; by more than rounding) a bound is
    infeasible: objective, spend and marginal are NaN. At or above ``max_spend`` (the spend of the best allocation,
    cheapest among equally good ones) more budget buys nothing: objective ``max_objective``,
    spend ``max_spend``, marginal 0.
    """

    bounds: np.ndarray  # [B]
    objective: np.ndarray  # [B] Σ w v x at the optimum
    spend: np.ndarray  # [B] its spend (the bound itself between min_spend and max_spend)
    marginal: np.ndarray  # [B] objective gained per unit of budget there (λ*, from the left)
    min_spend: float
    min_objective: float  # the cheapest allocation's objective
    max_spend: float
    max_objective: float
    resource: int
    hull: Hull

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """``(spend, objective)`` at every kink, from the cheapest to the best allocation: the
        exact frontier between ``min_spend`` and ``max_spend`` is the polyline through them."""
        h = self.hull
        return (
            np.concatenate([[self.min_spend], h.spend_end]),
            np.concatenate([[self.min_objective], h.value_end]),
        )

    def x_at(self, bound: float) -> np.ndarray:
        """``[G, K]`` an optimal allocation at ``bound``: whole hull vertices, except at most
        one group split between two adjacent vertices. Raises ``ValueError`` below
        ``min_spend``."""
        if not _feasible(bound, self.min_spend):
            raise ValueError(f"bound {bound:g} is below the cheapest allocation's spend {self.min_spend:g}")
        h = self.hull
        n_groups, n_options = h.vertices.shape
        i, frac = (a.item() for a in _locate(h, bound))
        steps = np.bincount(h.group[:i], minlength=n_groups)  # segments fully taken, per group
        vertex = h.vertices[np.arange(n_groups), steps]
        x = np.zeros((n_groups, n_options))
        x[np.arange(n_groups), vertex] = 1.0
        if i < len(h.group) and frac > 0.0:  # the segment being filled: split its group
            g = h.group[i]
            x[g, h.vertices[g, h.step[i] + 1]] = frac
            x[g, vertex[g]] = 1.0 - frac
        return x


def _feasible(bound, min_spend: float):
    """``bound >= min_spend`` up to rounding (as :mod:`ttcdsl.planner.lagrangian` decides)."""
    return np.asarray(bound) >= min_spend - FEASIBILITY_RTOL * max(1.0, abs(min_spend))


def _locate(h: Hull, bound):
    """The segment being filled at ``bound`` (>= the cheapest spend) and its taken share; index
    ``len(S)`` and share 0 once every segment fits. Scalars or arrays."""
    bound = np.asarray(bound, dtype=np.float64)
    n = len(h.cost)
    if n == 0:
        return np.zeros(bound.shape, np.int64), np.zeros(bound.shape)
    i = np.searchsorted(h.spend_end, bound, side="left")
    safe = np.minimum(i, n - 1)
    start = h.spend_end[safe] - h.cost[safe]
    frac = np.where(i < n, np.clip((bound - start) / h.cost[safe], 0.0, 1.0), 0.0)
    return i, frac


def hull(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray, weight: np.ndarray) -> Hull:
    """Each group's upper concave hull from its cheapest option to its best, as segments sorted
    steepest first (gift wrapping: from the current vertex, the next is the allowed dearer option
    with the steepest gain per unit cost, the dearest among equally steep ones, until no option
    gains). Vectorized over groups; at most K - 1 rounds."""
    n_groups, n_options = value.shape
    rows = np.arange(n_groups)
    big = np.where(allowed, cost, np.inf)
    cmin = big.min(axis=1)
    at_min = allowed & (cost == cmin[:, None])
    start = np.argmax(np.where(at_min, value, -np.inf), axis=1)  # best value among the cheapest
    vertices = np.full((n_groups, n_options), -1, dtype=np.int64)
    vertices[:, 0] = start
    current, live = start.copy(), np.ones(n_groups, bool)
    last_slope = np.full(n_groups, np.inf)
    parts = []
    for step in range(n_options - 1):
        cv, cc = value[rows, current], cost[rows, current]
        dearer = allowed & (cost > cc[:, None]) & live[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dearer, (value - cv[:, None]) / (cost - cc[:, None]), -np.inf)
        steepest = slope.max(axis=1)
        live &= steepest > 0  # nothing dearer gains: the best option is reached
        if not live.any():
            break
        nxt = np.argmax(np.where(slope == steepest[:, None], cost, -np.inf), axis=1)
        g = np.flatnonzero(live)
        # Hull slopes decrease in exact arithmetic; keep them so in float, so a group's segments
        # stay in order under the global sort.
        s = np.minimum(steepest[g], last_slope[g])
        last_slope[g] = s
        vertices[g, step + 1] = nxt[g]
        parts.append((g, np.full(len(g), step), s, cost[g, nxt[g]] - cc[g], value[g, nxt[g]] - cv[g]))
        current = np.where(live, nxt, current)
    if parts:
        group, step, slope, dc, dv = (np.concatenate(p) for p in zip(*parts, strict=True))
    else:
        group = step = np.zeros(0, np.int64)
        slope = dc = dv = np.zeros(0)
    w = weight[group]
    keep = w > 0  # a weightless group's segments cost and gain nothing
    group, step, slope, wdc, wdv = group[keep], step[keep], slope[keep], (w * dc)[keep], (w * dv)[keep]
    order = np.lexsort((step, group, -slope))  # steepest first; a group's own segments in order
    group, step, slope, wdc, wdv = group[order], step[order], slope[order], wdc[order], wdv[order]
    base_spend = float(weight @ cmin)
    base_value = float(weight @ value[rows, start])
    return Hull(
        start=start,
        vertices=vertices,
        group=group,
        step=step,
        slope=slope,
        cost=wdc,
        gain=wdv,
        spend_end=base_spend + np.cumsum(wdc),
        value_end=base_value + np.cumsum(wdv),
    )


def frontier(problem: Knapsack, bounds: Sequence[float]) -> Frontier:
    """The relaxation's optimum at every bound of the problem's one batch limit (its own bound
    is ignored), or of resource 0 when it has no limit. Raises ``ValueError`` for group limits or
    several batch limits (the LP, re-solved per bound, handles those)."""
    extra = [l for l in problem.limits if l.group is not None] + list(problem.batch_limits[1:])
    if extra:
        raise ValueError(
            "the frontier takes one batch limit and no group limits; cannot handle: "
            + "; ".join(l.label or f"{problem.resources[l.resource]} <= {l.bound:g}" for l in extra)
        )
    if (problem.weight < 0).any():
        raise ValueError("group weights must be non-negative")
    resource = problem.limits[0].resource if problem.limits else 0
    allowed = np.asarray(problem.allowed, dtype=bool)
    value = np.where(allowed, problem.value, 0.0)
    cost = np.where(allowed, problem.cost[resource], 0.0)
    h = hull(value, cost, allowed, np.asarray(problem.weight, dtype=np.float64))

    min_spend = float(problem.weight @ cost[np.arange(problem.n_groups), h.start])
    min_objective = float(problem.weight @ value[np.arange(problem.n_groups), h.start])
    max_spend = float(h.spend_end[-1]) if len(h.cost) else min_spend
    max_objective = float(h.value_end[-1]) if len(h.cost) else min_objective

    b = np.asarray(bounds, dtype=np.float64).reshape(-1)
    i, frac = _locate(h, b)
    n = len(h.cost)
    safe = np.minimum(i, max(n - 1, 0))
    if n:
        before = h.value_end[safe] - h.gain[safe]
        objective = np.where(i < n, before + frac * h.gain[safe], max_objective)
        marginal = np.where(i < n, h.slope[safe], 0.0)
    else:
        objective, marginal = np.full(b.shape, max_objective), np.zeros(b.shape)
    spend = np.clip(b, min_spend, max_spend)
    infeasible = ~_feasible(b, min_spend)
    return Frontier(
        bounds=b,
        objective=np.where(infeasible, np.nan, objective),
        spend=np.where(infeasible, np.nan, spend),
        marginal=np.where(infeasible, np.nan, marginal),
        min_spend=min_spend,
        min_objective=min_objective,
        max_spend=max_spend,
        max_objective=max_objective,
        resource=resource,
        hull=h,
    )
