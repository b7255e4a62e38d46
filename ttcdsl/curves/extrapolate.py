"""Explicit models for levels beyond the ``m`` logged samples of a query.

Nothing beyond ``m`` is estimated from the table alone; these fitted models say what ``n > m``
samples would do, and every value they produce is flagged *extrapolated*. In both, a draw of
``n > m`` samples is the ``m`` logged samples plus ``n - m`` new ones from the posterior predictive
given the logged ones, so the curves continue the exact values at ``n = m`` without a jump.

* Correctness (coverage, pass@k): a per-query Beta posterior on the chance p that a sample is
  correct, ``Beta(c + a0, m - c + b0)``. A query already covered stays covered; otherwise
  ``P(no correct among n - m new) = E[(1 - p)^(n-m)] = prod_{i < n-m} (m + b0 + i) / (m + a0 + b0 + i)``.
* Answers (votes, best-of-n): a per-query Dirichlet posterior over its seen answers plus one
  non-voting mass, ``Dirichlet(K_1 + a, ..., K_A + a, K_0 + u)``, with K_0 the samples without an
  answer and ``u`` the weight of answers never seen. A new sample's score is resampled from a
  logged sample with the same answer. Unseen answers are treated as scattered (they do not vote
  and are never correct): a conservative simplification that only matters when single votes tie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttcdsl.curves.pool import QueryPool


@dataclass(frozen=True, slots=True, kw_only=True)
class Extrapolation:
    """Priors of the models above (defaults: Jeffreys' Beta(1/2, 1/2) and a = u = 1/2)."""

    correct_prior: float = 0.5
    wrong_prior: float = 0.5
    answer_prior: float = 0.5
    unseen_mass: float = 0.5

    def __post_init__(self) -> None:
        for name in ("correct_prior", "wrong_prior", "answer_prior", "unseen_mass"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.correct_prior + self.wrong_prior <= 0:
            raise ValueError("correct_prior + wrong_prior must be > 0")


DEFAULT_MODEL = Extrapolation()


def coverage_beyond(pool: QueryPool, levels: int, model: Extrapolation | None = None) -> np.ndarray:
    """``[Q, levels]`` model coverage where n > m (NaN where n <= m)."""
    model = DEFAULT_MODEL if model is None else model
    m = pool.n_samples.astype(np.float64)
    c = pool.n_correct
    n = np.arange(1, levels + 1)
    extra = n[None, :] - m[:, None]
    # log prod_{i < e} (m + b0 + i) / (m + a0 + b0 + i), as a cumulative sum over i
    i = np.arange(levels)
    step = np.log(m[:, None] + model.wrong_prior + i) - np.log(
        m[:, None] + model.correct_prior + model.wrong_prior + i
    )
    cum = np.concatenate([np.zeros((len(m), 1)), np.cumsum(step, axis=1)], axis=1)
    idx = np.clip(extra, 0, levels).astype(np.int64)
    miss = np.exp(np.take_along_axis(cum, idx, axis=1))
    value = np.where(c[:, None] > 0, 1.0, 1.0 - miss)
    return np.where(extra > 0, value, np.nan)


def fit_dirichlet(pool: QueryPool, model: Extrapolation | None = None) -> np.ndarray:
    """``[Q, A + 1]`` Dirichlet parameters: seen answers, then the non-voting mass."""
    model = DEFAULT_MODEL if model is None else model
    counts = pool.answer_counts().astype(np.float64)
    seen = np.where(counts > 0, counts + model.answer_prior, 0.0)
    abstain = pool.n_samples - counts.sum(1) + model.unseen_mass
    return np.concatenate([seen, abstain[:, None]], axis=1)
