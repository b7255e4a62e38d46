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
  Majority vote is computed exactly under this model (:func:`majority_vote_beyond`, a DP over
  Dirichlet-multinomial counts); best-of-n and weighted vote are simulated from it
  (:func:`ttcdsl.curves.montecarlo.simulate` with :func:`fit_dirichlet`).
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


def rising_weights(alpha: np.ndarray, size: int) -> np.ndarray:
    """``w[..., y] = C(alpha + y - 1, y) = Gamma(alpha + y) / (Gamma(alpha) y!)`` for y = 0..size.

    The Dirichlet-multinomial analogue of a binomial coefficient: with ``A = sum(alpha)``,
    ``P(Y = y) = prod_b w(alpha_b, y_b) / w(A, E)`` for E draws, and ``sum over splits of
    prod_b w(alpha_b, y_b) = w(A, E)`` (the Vandermonde identity for rising factorials).
    ``alpha = 0`` gives ``[1, 0, 0, ...]`` (a category that is never drawn).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    y = np.arange(1, size + 1, dtype=np.float64)
    steps = (alpha[..., None] + y - 1) / y
    return np.concatenate([np.ones((*alpha.shape, 1)), np.cumprod(steps, axis=-1)], axis=-1)


def majority_vote_beyond(
    pool: QueryPool, levels: int, model: Extrapolation | None = None
) -> np.ndarray:
    """``[Q, levels]`` majority-vote accuracy where n > m under the Dirichlet model (NaN elsewhere).

    Exact under the model: the final count of answer b is ``K_b + Y_b`` with ``Y`` the
    Dirichlet-multinomial counts of the ``E = n - m`` new samples. For a correct answer t and each
    number y of its new votes, competitors must end at most at ``x = K_t + y`` (``Y_b <= x - K_b``,
    a tie at equality, credit 1/(1 + ties) since tied answers have equal counts); the same
    polynomial DP over draws and ties as :func:`ttcdsl.curves.exact.majority_vote`, with rising
    weights in place of binomials and the non-voting mass drawn freely. O(E^3 A^2) per correct
    answer, E the largest extension.
    """
    model = DEFAULT_MODEL if model is None else model
    m = pool.n_samples
    q = pool.n_queries
    out = np.full((q, levels), np.nan)
    extension = levels - int(m.min(initial=levels))
    if extension <= 0:
        return out
    counts = pool.answer_counts()
    alpha = fit_dirichlet(pool, model)
    rows, targets = np.nonzero(pool.answer_correct & (counts > 0))
    numer = np.zeros((q, extension + 1))
    if rows.size:
        comp_k = counts[rows].astype(np.int64)
        comp_a = alpha[rows, :-1].copy()
        comp_k[np.arange(rows.size), targets] = 0
        comp_a[np.arange(rows.size), targets] = 0.0
        keep = comp_a.any(0)  # drop answer columns no row uses as a competitor
        comp_k, comp_a = comp_k[:, keep], comp_a[:, keep]
        win = _polya_win_numerators(
            counts[rows, targets],
            rising_weights(alpha[rows, targets], extension),
            comp_k,
            rising_weights(comp_a, extension),
            rising_weights(alpha[rows, -1], extension),
            extension,
        )
        np.add.at(numer, rows, win)
    total = rising_weights(alpha.sum(1), extension)  # [Q, extension + 1]
    n = np.arange(1, levels + 1)
    e = n[None, :] - m[:, None]
    idx = np.clip(e, 0, extension)
    value = np.take_along_axis(numer, idx, 1) / np.take_along_axis(total, idx, 1)
    return np.where(e > 0, value, out)


def _polya_win_numerators(
    target_k: np.ndarray,
    target_w: np.ndarray,
    comp_k: np.ndarray,
    comp_w: np.ndarray,
    free_w: np.ndarray,
    extension: int,
) -> np.ndarray:
    """``[R, extension + 1]``: sum over new-vote splits of rising weights times tie credit."""
    r, n_comp = comp_k.shape
    out = np.zeros((r, extension + 1))
    ties = n_comp
    for y in range(extension + 1):
        span = extension - y
        x = target_k + y
        state = np.zeros((r, ties + 1, span + 1))
        state[:, 0, :] = free_w[:, : span + 1]
        for b in range(n_comp):
            cap = x - comp_k[:, b]  # new votes that bring competitor b level with the target
            w = comp_w[:, b, : span + 1]
            new = np.zeros_like(state)
            for yb in range(span + 1):
                below = np.where(yb < cap, w[:, yb], 0.0)
                tie = np.where(yb == cap, w[:, yb], 0.0)
                if below.any():
                    new[:, :, yb:] += below[:, None, None] * state[:, :, : span + 1 - yb]
                if tie.any():
                    new[:, 1:, yb:] += tie[:, None, None] * state[:, :-1, : span + 1 - yb]
            state = new
        credit = (state / np.arange(1, ties + 2)[None, :, None]).sum(1)
        out[:, y:] += target_w[:, y, None] * credit
    return out
