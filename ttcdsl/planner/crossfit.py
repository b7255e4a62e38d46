"""An honest estimate of what the planner's choice gains over uniform: cross-fitting.

The plan's allocation is the optimum of curves measured on the calibration queries, and its
predicted accuracy is read off the same curves. Choosing the best of many options on noisy
estimates and then scoring the winner on the estimates that made it win is optimistic (the
winner's curse): with a few hundred queries per bin, a count whose curve is high by chance is the
one chosen. A new batch does not share that luck.

Cross-fitting scores the *procedure* instead: the calibration queries are split into folds
(stratified by bin, seeded); for each fold the knapsack is solved on the curves of the OTHER
folds' queries, and the allocation it picks is valued on the held-out fold's queries, against
uniform at the spend that allocation realises on those same queries. Every query is held out
once, so the difference is a mean over all calibration queries, paired per query, with the
standard error of that mean. The per-query values are the ones the curves were averaged from
(:attr:`ttcdsl.planner.problem.BinCurves.per_query`): the folds cost a few solves, no
simulation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ttcdsl.planner.calibration import Calibration
from ttcdsl.planner.knapsack import Knapsack, Solution
from ttcdsl.planner.problem import BinCurves

FOLDS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossFit:
    """Out-of-fold value of the planner's choice, and uniform's at the same spend."""

    folds: int
    value: float  # mean over calibration queries of the held-out allocation's objective
    uniform: float  # uniform's objective at each fold's realised spend, same queries
    difference: float  # value - uniform (paired per query)
    difference_se: float | None
    samples: float  # mean samples per query the held-out allocations spent


def cross_fit(
    calibration: Calibration,
    curves: BinCurves,
    problem: Knapsack,
    solve: Callable[[Knapsack], Solution],
    *,
    folds: int = FOLDS,
    seed: int = 0,
) -> CrossFit | None:
    """Cross-fitted value of ``solve`` on ``problem`` (module docstring); ``None`` when it cannot
    be estimated (fewer queries than two per fold, or per-query values missing)."""
    from ttcdsl.planner.uniform import equal_spend, uniform_at

    metric = "coverage" if calibration.policy.objective == "coverage" else "accuracy"
    per_query = curves.per_query[metric]
    spent = curves.per_query["samples"]
    billed = curves.per_query["tokens"]
    q = calibration.n_queries
    if q < 2 * folds or per_query.shape[0] != q:
        return None
    bins = calibration.bin_index
    fold = _folds(bins, folds, seed)
    value = np.full(q, np.nan)
    spend = np.full(q, np.nan)
    fold_spend = np.zeros(folds)
    fold_tokens = np.zeros(folds)
    for f in range(folds):
        train, held = fold != f, fold == f
        x = solve(_restrict(problem, curves, metric, bins, train)).x
        mix = x[bins[held]]  # [H, K] each held-out query's allocation
        used = mix > 0
        if not np.isfinite(np.where(used, per_query[held], 0.0)).all():
            return None
        value[held] = (mix * np.where(used, per_query[held], 0.0)).sum(1)
        spend[held] = (mix * np.where(used, spent[held], 0.0)).sum(1)
        fold_spend[f] = spend[held].mean()
        with np.errstate(invalid="ignore"):
            fold_tokens[f] = (mix * np.where(used, billed[held], 0.0)).sum(1).mean()
    # uniform at each fold's spend in the budget's unit (tokens for a token budget)
    matched = [equal_spend(calibration, s, t if np.isfinite(t) else None) for s, t in zip(fold_spend, fold_tokens)]
    uniform = np.full(q, np.nan)
    for f, entry in enumerate(uniform_at(calibration, np.array(matched), per_query=True)):
        if entry is None:
            return None
        uniform[fold == f] = entry["objective_per_query"][fold == f]
    diff = value - uniform
    return CrossFit(
        folds=folds,
        value=float(value.mean()),
        uniform=float(uniform.mean()),
        difference=float(diff.mean()),
        difference_se=float(diff.std(ddof=1) / math.sqrt(q)),
        samples=float(spend.mean()),
    )


def _folds(bins: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``[Q]`` fold of each query: a seeded shuffle within each bin, dealt round-robin, so every
    fold holds about its share of every bin."""
    rng = np.random.default_rng([seed, 0xC0F1])
    out = np.empty(len(bins), dtype=np.int64)
    start = 0
    for b in np.unique(bins):
        rows = rng.permutation(np.flatnonzero(bins == b))
        out[rows] = (start + np.arange(len(rows))) % folds
        start += len(rows)  # continue the deal so small bins do not all land in fold 0
    return out


def _restrict(
    problem: Knapsack, curves: BinCurves, metric: str, bins: np.ndarray, rows: np.ndarray
) -> Knapsack:
    """``problem`` with its values, costs and bin shares measured on ``rows`` only. A bin with no
    query among them keeps the full calibration's values (it has too few queries to split)."""
    value = problem.value.copy()
    cost = problem.cost.copy()
    counts = np.bincount(bins[rows], minlength=problem.n_groups)
    for g in np.flatnonzero(counts):
        members = rows & (bins == g)
        allowed = problem.allowed[g]
        value[g, allowed] = curves.per_query[metric][members][:, allowed].mean(0)
        for r, resource in enumerate(problem.resources):
            values = curves.per_query[resource][members][:, allowed]
            if np.isfinite(values).all():
                cost[r, g, allowed] = values.mean(0)
    weight = counts / counts.sum()
    return dataclasses.replace(problem, value=value, cost=cost, weight=weight, counts=counts)
