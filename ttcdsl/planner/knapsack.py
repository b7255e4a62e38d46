"""The allocation problem every solver reads: a multiple-choice knapsack over groups and options.

A *group* is a set of queries that must be treated alike — a difficulty bin, or one query when the
curves are per query. An *option* is one (strategy, sample count) the group may use. A solution
``x[g, k]`` is the share of group ``g``'s queries that use option ``k``:

    maximize    Σ_g w_g Σ_k value[g, k] x[g, k]
    subject to  Σ_g w_g Σ_k cost[r, g, k] x[g, k] <= bound      for each batch limit on resource r
                Σ_k cost[r, g, k] x[g, k]         <= bound      for each limit on one group g
                Σ_k x[g, k] = 1,   x >= 0,   x[g, k] = 0 where not allowed[g, k]

``w_g`` is the group's share of the batch's queries, so every batch quantity is a *mean per query*:
a total budget is divided by the batch size before it gets here, and a per-query bound prunes
options (``allowed``) rather than adding rows. The relaxation lets a group mix options; the plan
implements a mix by giving each option to a share of the group's queries, which
:mod:`ttcdsl.planner.rounding` turns into whole numbers of queries without exceeding any bound.

The integer problem (what :mod:`ttcdsl.planner.dp` solves exactly) picks one option per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """``mean cost of resource <= bound``, over the batch (``group=None``) or over one group."""

    resource: int  # index into Knapsack.resources
    bound: float
    group: int | None = None
    label: str = ""  # what the user wrote, for messages ("mean samples per query <= 8")


@dataclass(frozen=True, slots=True, kw_only=True)
class Knapsack:
    value: np.ndarray  # [G, K] float64: expected accuracy (or coverage) of option k in group g
    cost: np.ndarray  # [R, G, K] float64: expected cost per query, one slice per resource
    allowed: np.ndarray  # [G, K] bool: options the policy permits (at least one per group)
    weight: np.ndarray  # [G] float64: share of the batch's queries in each group (sums to 1)
    limits: tuple[Limit, ...]
    resources: tuple[str, ...] = ("samples",)  # names of the cost slices ("samples", "tokens")
    counts: np.ndarray | None = None  # [G] int64: queries per group, when known (for rounding)
    group_names: tuple[str, ...] = ()
    option_names: tuple[str, ...] = ()  # one per column k, e.g. "majority_vote@8"
    meta: dict = field(default_factory=dict)  # free-form provenance (levels, strategies, ...)

    def __post_init__(self) -> None:
        g, k = self.value.shape
        if self.cost.shape != (len(self.resources), g, k):
            raise ValueError(
                f"cost has shape {self.cost.shape}, expected {(len(self.resources), g, k)}"
            )
        if self.allowed.shape != (g, k) or self.weight.shape != (g,):
            raise ValueError("allowed must be [G, K] and weight [G]")
        if not self.allowed.any(axis=1).all():
            raise ValueError(f"groups without any allowed option: {np.flatnonzero(~self.allowed.any(1))}")
        if not (np.isfinite(self.value[self.allowed]).all() and np.isfinite(self.cost[:, self.allowed]).all()):
            raise ValueError("allowed options must have finite values and costs")
        if self.counts is not None and self.counts.shape != (g,):
            raise ValueError("counts must be [G]")
        for limit in self.limits:
            if not 0 <= limit.resource < len(self.resources):
                raise ValueError(f"limit on unknown resource {limit.resource}")
            if limit.group is not None and not 0 <= limit.group < g:
                raise ValueError(f"limit on unknown group {limit.group}")

    @property
    def n_groups(self) -> int:
        return self.value.shape[0]

    @property
    def n_options(self) -> int:
        return self.value.shape[1]

    @property
    def batch_limits(self) -> tuple[Limit, ...]:
        return tuple(l for l in self.limits if l.group is None)

    @property
    def group_limits(self) -> tuple[Limit, ...]:
        return tuple(l for l in self.limits if l.group is not None)

    def objective(self, x: np.ndarray) -> float:
        """``Σ_g w_g Σ_k value x`` for a (possibly fractional) allocation ``x`` [G, K]."""
        return float(np.einsum("g,gk,gk->", self.weight, np.where(self.allowed, self.value, 0.0), x))

    def spend(self, x: np.ndarray) -> np.ndarray:
        """``[R]`` mean cost per query of each resource under ``x``."""
        cost = np.where(self.allowed[None], self.cost, 0.0)
        return np.einsum("g,rgk,gk->r", self.weight, cost, x)

    def group_spend(self, x: np.ndarray) -> np.ndarray:
        """``[R, G]`` mean cost per query of each resource within each group."""
        cost = np.where(self.allowed[None], self.cost, 0.0)
        return np.einsum("rgk,gk->rg", cost, x)

    def violations(self, x: np.ndarray, *, tol: float = 1e-9) -> list[tuple[Limit, float]]:
        """Limits that ``x`` exceeds by more than ``tol`` (relative), with the amount spent."""
        out = []
        batch, per_group = self.spend(x), self.group_spend(x)
        for limit in self.limits:
            spent = batch[limit.resource] if limit.group is None else per_group[limit.resource, limit.group]
            if spent > limit.bound + tol * max(1.0, abs(limit.bound)):
                out.append((limit, float(spent)))
        return out

    def cheapest(self) -> np.ndarray:
        """``[G, K]`` one-hot: each group's cheapest allowed option (lowest cost in the first
        resource, ties broken by the next) — the allocation that spends least."""
        big = np.where(self.allowed[None], self.cost, np.inf)
        best = np.empty(self.n_groups, dtype=np.int64)
        for g in range(self.n_groups):
            # np.lexsort sorts by its last key first
            best[g] = np.lexsort(tuple(big[r, g] for r in reversed(range(len(self.resources)))))[0]
        x = np.zeros_like(self.value)
        x[np.arange(self.n_groups), best] = 1.0
        return x


@dataclass(frozen=True, slots=True, kw_only=True)
class Solution:
    """A solver's answer. ``x`` may be fractional (a relaxation) or one-hot (an integer solution)."""

    x: np.ndarray  # [G, K]
    objective: float  # primal value Σ w v x
    dual_bound: float  # an upper bound on the relaxation's optimum (NaN when the solver gives none)
    spend: np.ndarray  # [R] mean cost per query of each resource
    solver: str  # "lagrangian", "cvxpy/HIGHS-ipm", "cvxpy/CLARABEL", "dp", ...
    status: str  # "optimal", "infeasible", ...
    seconds: float
    multipliers: tuple[float, ...] = ()  # one per limit, in Knapsack.limits order (NaN if unknown)
    integral: bool = False
    message: str = ""  # why, when status is not "optimal" (the solver's own words for "solver_error")

    @property
    def gap(self) -> float:
        """``dual_bound - objective`` (>= 0 up to tolerance; NaN without a dual bound)."""
        return self.dual_bound - self.objective
