"""The reference points every compared policy is set against, from the EXACT per-query curves.

* **uniform**: every evaluation query gets the same number of samples; at a fractional mean spend
  ``s`` each query gets ``floor(s)`` or ``ceil(s)`` (a share ``s - floor(s)`` of the queries the
  larger), so its expected value is the linear interpolation of the exact curve between the two
  counts: the rule of :func:`ttcdsl.planner.uniform.uniform_at`, without Monte Carlo noise. A
  query is never given more samples than its log holds, and on a ragged table the samples a
  shallow query cannot take go to the queries that can (water-filling, as the run report's
  baseline :func:`ttcdsl.runtime.report.uniform_baseline` draws them): uniform at mean spend
  ``s`` runs every query at the count ``c`` (mixed between ``floor(c)`` and ``ceil(c)``) for
  which the mean of ``min(c, logged)`` is ``s`` (:meth:`ExactCurves.level_at`). Capping each
  query at ``s`` instead spent less than ``s`` and judged policies against a cheaper uniform.
  Past the whole table (``s`` above its mean logged count) uniform spends all it holds.
* **static oracle**: knows every evaluation query's curve from its full pool (its true success
  rate, not an estimate from calibration) and allocates the batch's samples by the knapsack over
  (query, count), counts from 0 (a hopeless query gets nothing). The value is the relaxation's
  optimum from :func:`ttcdsl.planner.frontier.frontier` (the planner's exact frontier): an
  integer allocation with at most one query split between two counts, so it is never below the
  integer optimum and above it by at most one query's step (1/Q).
* **dynamic oracle**: sees whether each drawn sample is correct and stops a query at its first
  correct one; the batch is served round-robin (one sample per unsolved query per round, the last
  round in seeded rank order) until the mean budget is spent. It is computed on the replay's own
  sample orders, so it is an average over the same orders the policies run on.

Curves are per query (``[Q, M]``, column ``n - 1`` for ``n`` samples) so per-query values pair
with a policy's per-query results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ttcdsl.curves.pool import QueryPool


@dataclass(frozen=True, slots=True)
class ExactCurves:
    """Per-query exact curves of one strategy on the evaluation pool."""

    strategy: str  # majority_vote, best_of_n, pass_at_k (coverage), ...
    values: np.ndarray  # [Q, M]: value at n = 1..M samples, held at the query's last logged count
    logged: np.ndarray  # [Q] samples each query's log holds
    query_ids: tuple[str, ...]

    @property
    def levels(self) -> int:
        return self.values.shape[1]

    def level_spends(self) -> np.ndarray:
        """``[M + 1]`` the mean samples per query uniform actually spends when every query is
        asked for 0..M samples and takes at most what its log holds. Between two counts the
        spend is linear (a share of the queries gets the larger count, and only queries that
        hold more take it), and it rises strictly up to M, the deepest query's count."""
        counts = np.arange(self.levels + 1)
        return np.minimum(counts[:, None], self.logged[None, :]).mean(1).astype(np.float64)

    def level_at(self, spend: float) -> float:
        """The count per query (fractional: mixed between its two neighbours) at which uniform
        spends mean ``spend`` (module docstring): ``spend`` itself where every query holds at
        least that many samples, more where shallow queries leave samples to the others; M
        where ``spend`` is past what the table holds."""
        if not math.isfinite(spend) or spend < 0:
            raise ValueError(f"spend must be a finite number >= 0, got {spend}")
        return float(np.interp(spend, self.level_spends(), np.arange(self.levels + 1)))

    def per_query_at(self, spend: float) -> np.ndarray:
        """``[Q]`` each query's expected value under uniform allocation at mean ``spend``."""
        level = self.level_at(spend)
        padded = np.concatenate([np.zeros((len(self.logged), 1)), self.values], axis=1)
        lo = min(int(math.floor(level)), self.levels)
        hi = min(lo + 1, self.levels)
        theta = level - lo if lo < self.levels else 0.0
        return (1.0 - theta) * padded[:, lo] + theta * padded[:, hi]

    def mean_at(self, spend: float) -> float:
        return float(self.per_query_at(spend).mean())

    def mean_curve(self) -> np.ndarray:
        """``[M + 1]`` the batch mean at 0..M samples asked per query (spending
        :meth:`level_spends`)."""
        return np.concatenate([[0.0], self.values.mean(0)])

    def spend_to_reach(self, target: float) -> float | None:
        """Uniform's smallest mean spend whose value reaches ``target`` (interpolated on its
        exact curve, at the spends of :meth:`level_spends`); ``None`` when it never does within
        the logged samples. The smallest run is one sample per query: 0 samples is no run, and
        reading it as one made a table where every sample is wrong (uniform's value 0 "at 0
        samples") give a policy 0.00x. Where uniform's curve is flat or falls, the spend found
        is below that of a policy scoring the same at a larger spend: uniform matches it with
        fewer samples, and the ratio below 1 says so."""
        curve, spends = self.mean_curve(), self.level_spends()
        if len(curve) < 2:
            return None
        if target <= curve[1]:
            return float(spends[1])
        for n in range(2, len(curve)):
            if curve[n] >= target:
                lo, hi = curve[n - 1], curve[n]  # lo < target <= hi
                return float(spends[n - 1] + (target - lo) / (hi - lo) * (spends[n] - spends[n - 1]))
        return None


def exact_curves(
    pool: QueryPool,
    strategy: str,
    *,
    score: str | None = None,
    scorer_kind: str | None = None,
) -> ExactCurves:
    """The exact curve of ``strategy`` (``pass_at_k`` for coverage) for every query of ``pool``,
    up to its largest logged count; beyond a query's own count its value stays at its last one
    (replay cannot serve more). Raises ``ValueError`` where no exact estimator exists."""
    from ttcdsl.curves import Method, response_curve

    logged = pool.n_samples.astype(np.int64)
    top = int(logged.max(initial=0))
    if top < 1:
        raise ValueError("the evaluation pool holds no samples")
    curve = response_curve(pool, strategy, top, score=score, scorer_kind=scorer_kind, reps=2)
    values = curve.coverage if strategy == "pass_at_k" else curve.accuracy
    inside = np.arange(1, top + 1)[None, :] <= logged[:, None]
    if (curve.method[inside] != Method.EXACT).any():
        raise ValueError(f"no exact estimator of {strategy} for every count on this pool")
    last = values[np.arange(len(logged)), np.maximum(logged, 1) - 1]
    held = np.where(inside, values, last[:, None])
    held = np.where(logged[:, None] > 0, held, 0.0)
    return ExactCurves(strategy, held.astype(np.float64), logged, pool.query_ids)


def static_oracle(curves: ExactCurves, spends: Sequence[float]) -> np.ndarray:
    """The static oracle's mean value at each mean spend (module docstring)."""
    from ttcdsl.planner.frontier import frontier
    from ttcdsl.planner.knapsack import Knapsack, Limit

    q, m = curves.values.shape
    value = np.concatenate([np.zeros((q, 1)), curves.values], axis=1)  # option k = k samples
    counts = np.arange(m + 1, dtype=np.float64)
    allowed = counts[None, :] <= curves.logged[:, None]
    problem = Knapsack(
        value=value,
        cost=np.broadcast_to(counts, (1, q, m + 1)).astype(np.float64),
        allowed=allowed,
        weight=np.full(q, 1.0 / q),
        limits=(Limit(resource=0, bound=float(max(spends, default=0.0)), label="mean samples"),),
    )
    return frontier(problem, list(spends)).objective


def dynamic_oracle(
    correct: Sequence[np.ndarray], ranks: Sequence[float], budget: float
) -> tuple[np.ndarray, np.ndarray]:
    """Round-robin, stop at the first correct sample, at mean ``budget`` samples per query.

    ``correct[q]`` is query q's labels in its serving order, ``ranks[q]`` its seeded rank (who is
    served first in a round the budget cuts). Returns per query (covered [Q] bool, samples [Q])."""
    q = len(correct)
    logged = np.array([len(c) for c in correct], dtype=np.int64)
    first = np.array(
        [int(np.argmax(c)) + 1 if np.any(c) else np.iinfo(np.int64).max for c in correct],
        dtype=np.int64,
    )
    want = np.minimum(first, logged)  # samples each query takes when the budget never binds
    left = int(math.floor(budget * q + 1e-9))
    got = np.zeros(q, dtype=np.int64)
    order = np.argsort(np.asarray(ranks), kind="stable")
    while left > 0:
        active = order[got[order] < want[order]]
        if active.size == 0:
            break
        served = active[:left]
        got[served] += 1
        left -= served.size
    return first <= got, got
