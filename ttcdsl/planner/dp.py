"""Exact integer optimum (one option per group) by dynamic programming over budget units.

The integer problem picks one option per group. With at most one batch limit it is a group
(multiple-choice) knapsack: ``f_g[b]`` = best value of groups ``0..g`` spending at most ``b`` units,

    f_g[b] = max_k  f_{g-1}[b - u_gk] + w_g v_gk,

one numpy gather over all budget units per group, with a back-pointer table ``choice[g, b]`` to
recover the options. Group limits need no dimension: with one option per group, a group's spend is
that option's cost, so an option over a group limit is simply pruned.

Discretisation (what "exact" means here). The batch limit ``Σ_g w_g c_gk <= B`` is multiplied by
``N`` queries: ``Σ_g m_g c_gk <= B N`` with ``m_g = w_g N``. With ``problem.counts`` consistent
with the weights (``w_g = counts_g / N``, ``N = Σ counts``) ``m_g`` is the integer ``counts_g``,
so sample costs become whole units exactly; otherwise ``N = G`` and ``m_g = G w_g`` (one virtual
query per group, as in per-query problems). Option costs ``m_g c_gk / unit`` that are not whole
are rounded **up**, the budget ``floor(B N / unit + 1e-9)`` down, so whatever the DP picks also
fits the real limit (up to the 1e-9 unit slack that absorbs float noise such as 799.9999999 for
800). The answer is the exact optimum of the discretised problem; it equals the true integer
optimum whenever the costs are whole units (sample counts with ``unit=1``).
"""

from __future__ import annotations

import time

import numpy as np

from ttcdsl.planner.knapsack import Knapsack, Solution

SLACK = 1e-9  # units of float noise forgiven when discretising costs and the budget
MAX_TABLE = 200_000_000  # back-pointer entries (groups x budget units) before we refuse


def solve_dp(problem: Knapsack, *, unit: float = 1.0) -> Solution:
    """The best one-option-per-group allocation within every limit (at most one batch limit).

    ``unit`` is the budget granularity in the batch limit's resource, per query (``unit=1`` for
    sample counts; e.g. ``unit=100`` for tokens). Raises ``ValueError`` for more than one batch
    limit or a table that would not fit in memory; an infeasible problem comes back with status
    ``"infeasible"``.
    """
    start = time.perf_counter()
    if unit <= 0:
        raise ValueError("unit must be positive")
    batch = problem.batch_limits
    if len(batch) > 1:
        raise ValueError(
            f"solve_dp handles one batch limit, got {len(batch)}: {[l.label for l in batch]}"
        )
    n_groups, n_opts = problem.value.shape
    allowed = problem.allowed.copy()
    for (
        limit
    ) in problem.group_limits:  # one option per group: prune options over a group limit
        allowed[limit.group] &= problem.cost[limit.resource, limit.group] <= limit.bound
    weight = problem.weight.astype(np.float64)
    gain = np.where(allowed, weight[:, None] * problem.value, -np.inf)

    if batch:
        units, budget = _discretise(problem, batch[0], unit, allowed)
    else:
        units, budget = np.zeros((n_groups, n_opts), dtype=np.int64), 0
    if (units[allowed] < 0).any():
        raise ValueError(
            "solve_dp needs non-negative costs in the batch limit's resource"
        )
    dead = ~allowed.any(axis=1)
    if budget < 0 or dead.any():
        why = (
            f"no option of group {int(np.flatnonzero(dead)[0])} fits its group limits"
            if dead.any()
            else f"budget {batch[0].bound} is negative"
        )
        return _infeasible(problem, why, time.perf_counter() - start)
    if n_groups * (budget + 1) > MAX_TABLE:
        raise ValueError(
            f"DP table {n_groups} groups x {budget + 1} budget units is too large; raise `unit`"
        )

    # f[b]: best value of the groups so far spending <= b units, stored after `pad` slots of -inf
    # so that f shifted right by u units is the contiguous window pad - u : pad - u + budget + 1
    pad = int(units[allowed].max(initial=0))
    fpad = np.full(pad + budget + 1, -np.inf)
    fpad[pad:] = 0.0
    windows = np.lib.stride_tricks.sliding_window_view(
        fpad, budget + 1
    )  # a view, no copy
    choice = np.empty(
        (n_groups, budget + 1), dtype=np.int16 if n_opts < 2**15 else np.int64
    )
    cols = np.arange(budget + 1)
    for g in range(n_groups):
        opts = np.flatnonzero(allowed[g])
        cand = windows[pad - units[g, opts]]  # [k, B]: f[b - u_k], -inf where b < u_k
        cand += gain[g, opts][:, None]
        best = cand.argmax(axis=0)
        fpad[pad:] = cand[best, cols]
        choice[g] = opts[best]
    f = fpad[pad:]

    if not np.isfinite(f[budget]):
        why = f"even the cheapest options exceed {batch[0].label or 'the batch limit'}"
        return _infeasible(problem, why, time.perf_counter() - start)
    pick = np.empty(n_groups, dtype=np.int64)
    rest = budget
    for g in range(n_groups - 1, -1, -1):
        pick[g] = choice[g, rest]
        rest -= units[g, pick[g]]
    x = np.zeros((n_groups, n_opts))
    x[np.arange(n_groups), pick] = 1.0
    return Solution(
        x=x,
        objective=problem.objective(x),
        dual_bound=float("nan"),
        spend=problem.spend(x),
        solver="dp",
        status="optimal",
        seconds=time.perf_counter() - start,
        multipliers=tuple(float("nan") for _ in problem.limits),
        integral=True,
        message=f"exact for {budget} budget units of {unit:g}",
    )


def budget_units(problem: Knapsack, unit: float = 1.0) -> int:
    """How many budget units the DP would use for ``problem``'s batch limit (0 without one)."""
    batch = problem.batch_limits
    if not batch:
        return 0
    return _discretise(problem, batch[0], unit, problem.allowed)[1]


def _discretise(
    problem: Knapsack, limit, unit: float, allowed: np.ndarray
) -> tuple[np.ndarray, int]:
    """``[G, K]`` option costs in whole units (rounded up) and the budget in units (rounded down)."""
    weight = problem.weight.astype(np.float64)
    counts = problem.counts
    n_total = float(counts.sum()) if counts is not None else 0.0
    if (
        counts is not None
        and n_total > 0
        and np.allclose(weight * n_total, counts, rtol=1e-9, atol=0)
    ):
        mult = counts.astype(np.float64)  # exact integers: sample costs stay whole
    else:
        n_total = float(problem.n_groups)
        mult = weight * n_total
    raw = mult[:, None] * problem.cost[limit.resource] / unit
    raw = np.where(allowed, raw, 0.0)
    units = np.ceil(raw - SLACK * np.maximum(1.0, np.abs(raw))).astype(np.int64)
    budget = int(np.floor(limit.bound * n_total / unit + SLACK))
    return units, budget


def _infeasible(problem: Knapsack, why: str, seconds: float) -> Solution:
    return Solution(
        x=np.zeros(problem.value.shape),
        objective=float("nan"),
        dual_bound=float("nan"),
        spend=np.full(len(problem.resources), np.nan),
        solver="dp",
        status="infeasible",
        seconds=seconds,
        multipliers=tuple(float("nan") for _ in problem.limits),
        integral=True,
        message=why,
    )
