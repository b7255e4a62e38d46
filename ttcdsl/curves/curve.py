"""Response curves: expected accuracy, coverage and cost of a strategy at n samples, per query.

:func:`response_curve` is what the planner calls: for a bin of queries and a strategy it returns a
:class:`Curve` holding ``[queries x levels]`` matrices, each entry flagged by :class:`Method`:

* ``EXACT`` — a closed form or exact enumeration over the logged samples (:mod:`.exact`);
* ``MONTE_CARLO`` — JAX simulation of the runtime rules, with a standard error (:mod:`.montecarlo`);
* ``EXTRAPOLATED`` — ``n`` exceeds the query's logged samples: a fitted model (:mod:`.extrapolate`),
  computed exactly under the model for coverage, pass@k and majority vote, and simulated (with a
  standard error) for best-of-n and weighted vote.

Cost is exact in expectation: ``n`` samples, and ``n`` times the mean completion tokens of the
query's logged samples (under sampling without replacement every logged sample is equally likely
to be drawn). Beyond ``m`` the same per-sample mean is assumed (and flagged with the level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from ttcdsl.curves import exact, extrapolate
from ttcdsl.curves.extrapolate import DEFAULT_MODEL, Extrapolation
from ttcdsl.curves.pool import QueryPool
from ttcdsl.features.weights import vote_weights

if TYPE_CHECKING:
    import jax  # only for annotations: JAX is imported where a curve needs Monte Carlo

STRATEGIES: tuple[str, ...] = ("single", "pass_at_k", "majority_vote", "best_of_n", "weighted_vote")
ALIASES = {
    "coverage": "pass_at_k",
    "pass@k": "pass_at_k",
    "majority": "majority_vote",
    "best_of": "best_of_n",
    "weighted": "weighted_vote",
}
SCORED = ("best_of_n", "weighted_vote")


class Method(IntEnum):
    EXACT = 0
    MONTE_CARLO = 1
    EXTRAPOLATED = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Curve:
    """Per-query curves of one strategy over a bin; rows follow ``query_index``."""

    strategy: str
    levels: np.ndarray  # [N] sample counts n
    query_index: np.ndarray  # [Q] rows of the pool
    accuracy: np.ndarray  # [Q, N]
    accuracy_stderr: np.ndarray  # [Q, N], 0 where exact or closed-form
    coverage: np.ndarray  # [Q, N] P(some drawn sample is correct)
    method: np.ndarray  # [Q, N] int8 Method of the accuracy entry
    tokens: np.ndarray  # [Q, N] expected completion tokens (NaN where unknown)

    @property
    def samples(self) -> np.ndarray:
        """``[N]`` expected samples spent per query at each level: n."""
        return self.levels.astype(np.float64)

    @property
    def mean_accuracy(self) -> np.ndarray:
        return self.accuracy.mean(0)

    @property
    def mean_accuracy_stderr(self) -> np.ndarray:
        """Standard error of the bin mean (queries are simulated independently)."""
        return np.sqrt((self.accuracy_stderr**2).sum(0)) / max(len(self.query_index), 1)

    @property
    def mean_coverage(self) -> np.ndarray:
        return self.coverage.mean(0)

    @property
    def mean_tokens(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (
                np.nanmean(self.tokens, axis=0)
                if np.isfinite(self.tokens).any()
                else np.full(len(self.levels), np.nan)
            )

    @property
    def level_method(self) -> np.ndarray:
        """``[N]`` the least exact method used at each level across the bin."""
        return self.method.max(0) if self.method.size else np.zeros(len(self.levels), np.int8)


def response_curve(
    pool: QueryPool,
    strategy: str,
    levels: int | Sequence[int],
    *,
    queries: Sequence[int] | np.ndarray | None = None,
    score: str | np.ndarray | None = None,
    reps: int = 256,
    key: jax.Array | int = 0,
    model: Extrapolation = DEFAULT_MODEL,
    scorer_kind: str | None = None,
) -> Curve:
    """The curve of ``strategy`` for the ``queries`` rows of ``pool`` (default: all) at ``levels``.

    ``levels`` is ``N`` (meaning 1..N) or a sequence of sample counts. ``score`` (a scorer name in
    the pool or a ``[Q, M]`` array over the whole pool, the scorer's raw values) is required by
    ``best_of_n`` and ``weighted_vote``; ``weighted_vote`` also needs ``scorer_kind``
    (``confidence``, ``gold`` or ``reward_model``), which decides what a value is worth as a vote
    (:func:`ttcdsl.features.weights.vote_weights`, the runtime's rule). ``reps`` and ``key``
    drive the Monte Carlo parts, if any are needed.
    """
    name = ALIASES.get(strategy, strategy)
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    wanted = (
        np.arange(1, levels + 1) if isinstance(levels, int) else np.asarray(levels, dtype=np.int64)
    )
    if wanted.size == 0 or wanted.min() < 1:
        raise ValueError("levels must be positive sample counts")
    top = int(wanted.max())
    index = np.arange(pool.n_queries) if queries is None else np.asarray(queries, dtype=np.int64)
    sub = pool.take(index)
    s = None
    if name in SCORED:
        if score is None:
            raise ValueError(f"{name} needs a score (a scorer name or a [Q, M] array)")
        s = (
            sub.score(score)
            if isinstance(score, str)
            else np.asarray(score, dtype=np.float64)[index]
        )
        if name == "weighted_vote":
            if scorer_kind is None:
                raise ValueError(
                    "weighted_vote needs scorer_kind (confidence, gold or reward_model): the kind "
                    "decides what each score is worth as a vote"
                )
            s = vote_weights(scorer_kind, s, score if isinstance(score, str) else None)

    m = sub.n_samples
    beyond = np.arange(1, top + 1)[None, :] > m[:, None]
    cov = np.where(beyond, extrapolate.coverage_beyond(sub, top, model), exact.coverage(sub, top))
    stderr = np.zeros_like(cov)
    method = np.where(beyond, Method.EXTRAPOLATED, Method.EXACT).astype(np.int8)

    if name == "pass_at_k":
        acc = cov.copy()
    elif name == "single":
        with np.errstate(invalid="ignore", divide="ignore"):
            first = sub.n_correct / np.where(m > 0, m, np.nan)
        acc = np.broadcast_to(np.nan_to_num(first)[:, None], cov.shape).copy()
    else:
        if name == "majority_vote":
            # beyond m: exact under the Dirichlet model, no simulation needed
            model_values = extrapolate.majority_vote_beyond(sub, top, model)
            acc = np.where(beyond, model_values, exact.majority_vote(sub, top))
            done = np.ones_like(beyond)
        elif name == "best_of_n":
            acc, done = exact.best_of_n(sub, top, s), ~beyond
        else:
            acc, done = exact.weighted_vote(sub, top, s)
        missing = ~done
        if missing.any():
            rows = np.flatnonzero(missing.any(1))
            part = sub.take(rows)
            from ttcdsl.curves import montecarlo  # JAX: only when a curve needs it

            mc = montecarlo.simulate(
                part,
                name,
                top,
                key=key,
                reps=reps,
                score=None if s is None else s[rows],
                alpha=extrapolate.fit_dirichlet(part, model),
            )
            sel = missing[rows]
            acc[rows] = np.where(sel, mc.mean, acc[rows])
            stderr[rows] = np.where(sel, mc.stderr, 0.0)
            method[rows] = np.where(sel & ~beyond[rows], Method.MONTE_CARLO, method[rows])

    cols = wanted - 1
    tokens = wanted[None, :] * sub.mean_tokens()[:, None]
    return Curve(
        strategy=name,
        levels=wanted,
        query_index=index,
        accuracy=acc[:, cols],
        accuracy_stderr=stderr[:, cols],
        coverage=cov[:, cols],
        method=method[:, cols],
        tokens=tokens,
    )
