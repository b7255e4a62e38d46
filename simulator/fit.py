"""Fit a workload to a samples table's arrays (empirical Bayes); draw questions from the fit.

Input: the table as arrays (``ttcdsl`` makes them; this package never reads files), per question
``q`` and logged sample ``j``: ``answer[q, j]`` (answer ids, -1 none; ids only compare within a
row), ``correct``, ``valid`` (ragged rows), ``tokens`` (NaN unknown), ``cut`` (finish reason
``length``) and the ``max_tokens`` the table was logged under.

The fit, per question, with priors estimated from the whole table (empirical Bayes):

* ``p_correct``: a Beta mixture over difficulty (components on a grid of means), its weights
  fitted by maximum beta-binomial likelihood over the questions (EM), and each question's
  posterior, a Beta mixture with components ``Beta(a_k + c, b_k + n - c)``: a question's rate is drawn from its
  posterior at every simulated draw, so a question seen 8 times is not taken for its 8-sample
  frequency (a 0/8 question keeps a small chance of a correct sample, in proportion to how often
  that happens in this table).
* correct answers: a question may have several (CRUXEval input: any input that gives the
  output), and votes split between them. ``R`` correct-answer slots (the most distinct correct
  answers any question shows), a symmetric Dirichlet over them whose concentration maximises the
  Dirichlet-multinomial likelihood of the questions' correct-answer counts, each question's
  posterior ``Dirichlet(counts + alpha)`` with its counts sorted, most common first. One
  correct answer everywhere (``R = 1``): one slot, nothing drawn.
* wrong answers: a symmetric Dirichlet over ``D`` distractor slots whose concentration maximises
  the Dirichlet-multinomial likelihood of the questions' wrong-answer counts (the *wrong-answer
  concentration*: low when wrong answers pile on a few values, high when they scatter); each
  question's posterior is ``Dirichlet(counts + alpha)`` with its counts sorted, most common first.
* no answer: the share of the non-correct samples with no answer, ``Beta(none + s, wrong + 1 - s)``
  with ``s`` the table's pooled share (a prior worth one sample).
* tokens: log-normal, a per-question location (shrunk toward the table's) plus one gap between
  the classes (wrong - correct) measured within questions, one pooled log-scale; the no-answer class's location is set so that the
  share of answerless samples that reach the cap is the table's.
* the cap: a sample is cut (no answer) when its length reaches ``max_tokens``, so the latent rates
  are the observed ones divided by P(length < cap) of their class: served at the table's cap,
  the fitted workload gives back the table's observed rates.
* reward-model scores: per question and class (correct, other) a Beta whose mean is the
  question's mean score shrunk toward the class mean at its difficulty (normal-normal empirical Bayes) and whose
  concentration comes from the pooled within-question variance (:func:`_score_beta`);
* log-probabilities: per class (correct, other) moments pooled over the table.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from simulator.model import Questions

_SHRINK = 2.0  # pseudo-samples pulling a question's token offset to 0


class Fitted(NamedTuple):
    """Per-question posteriors; :func:`draw_fitted` turns them into :class:`Questions`."""

    correct_a: jax.Array  # [Q, K] Beta mixture posterior of the observed P(correct)
    correct_b: jax.Array  # [Q, K]
    correct_w: jax.Array  # [Q, K] posterior component weights
    none_a: jax.Array  # [Q] Beta posterior of P(no answer | not correct)
    none_b: jax.Array  # [Q]
    wrong_alpha: jax.Array  # [Q, D] Dirichlet posterior over distractors
    right_alpha: jax.Array  # [Q, R] Dirichlet posterior over the correct answers
    tokens_loc: jax.Array  # [Q, 3]
    tokens_scale: jax.Array  # [Q]
    keep: jax.Array  # [Q, 3] P(length < cap) per class at the table's cap
    score_a: jax.Array  # [Q, 2]
    score_b: jax.Array  # [Q, 2]
    logprob_loc: jax.Array  # [Q, 2]
    logprob_scale: jax.Array  # [Q]
    prior: jax.Array  # [1]: the fitted wrong-answer concentration alpha
    prompt_tokens: jax.Array | None = None  # [Q] int32: the largest logged prompt count (None: unknown)


def _sorted_counts(answer: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """``[Q, K]`` counts of each distinct answer of each row among ``wrong`` (a mask), descending."""
    q, m = answer.shape
    counts = np.zeros((q, max(m, 1)), dtype=np.int64)
    for i in range(q):  # one pass over the table; the fit is not a hot path
        _, c = np.unique(answer[i][wrong[i]], return_counts=True)
        counts[i, : len(c)] = np.sort(c)[::-1]
    return counts


# The difficulty mixture's components: Beta(k m, k (1 - m)) over a grid of means m.
_MEANS = np.array([0.002, 0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 0.99, 0.998])
_CONCENTRATION = 6.0


def _beta_mixture_prior(c: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Beta mixture over difficulty, its weights by maximum beta-binomial likelihood (EM over
    a fixed grid of components); returns the components' a, b and each question's posterior
    component weights ``[Q, K]``."""
    a = _CONCENTRATION * _MEANS
    b = _CONCENTRATION * (1.0 - _MEANS)
    cj, nj = jnp.asarray(c, jnp.float32)[:, None], jnp.asarray(n, jnp.float32)[:, None]

    def betaln(x, y):
        return gammaln(x) + gammaln(y) - gammaln(x + y)

    loglik = np.asarray(betaln(a + cj, b + nj - cj) - betaln(a, b), np.float64)  # [Q, K]
    loglik -= loglik.max(1, keepdims=True)
    like = np.exp(loglik)
    weights = np.full(len(a), 1.0 / len(a))
    for _ in range(300):
        post = like * weights
        post /= post.sum(1, keepdims=True)
        weights = post.mean(0)
    post = like * weights
    post /= post.sum(1, keepdims=True)
    return a, b, post


def _concentration(counts: np.ndarray, d: int) -> float:
    """Maximum-likelihood symmetric Dirichlet alpha of answer counts over ``d`` slots."""
    grid = jnp.exp(jnp.linspace(jnp.log(0.01), jnp.log(20.0), 80))[:, None, None]
    x = jnp.asarray(counts[:, :d], jnp.float32)[None]
    total = x.sum(-1)
    ll = (
        gammaln(d * grid[..., 0]) - gammaln(d * grid[..., 0] + total)
        + (gammaln(grid + x) - gammaln(grid)).sum(-1)
    ).sum(-1)
    return float(grid.ravel()[int(jnp.argmax(ll))])


def _score_beta(score: np.ndarray | None, correct: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[Q, 2]`` Beta a, b of each question's reward-model scores, correct samples (0) and the
    rest (1): empirical Bayes per class. A question's mean score is its samples' mean shrunk
    toward the class's prior mean (a line in the question's observed correct share: verifiers
    are weaker on hard questions) by the normal-normal rule (weights ``n / within-variance`` and
    ``1 / between-variance``, both estimated from the table), so a question whose verifier
    separates its classes well (or badly) keeps that; the within-question variance is pooled
    and sets the concentration. No score column: ``Beta(1, 1)`` (never read)."""
    q = correct.shape[0]
    a, b = np.ones((q, 2)), np.ones((q, 2))
    if score is None:
        return a, b
    x = np.clip(np.asarray(score, np.float64), 1e-4, 1 - 1e-4)
    for c, mask in enumerate((correct, valid & ~correct)):
        mask = mask & np.isfinite(x)
        n = mask.sum(1)
        if n.sum() < 2:
            continue
        total = np.where(mask, x, 0.0).sum(1)
        mean_q = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        pooled = total.sum() / n.sum()
        # within: pooled squared deviations from each question's own mean (n - 1 dof each)
        dev = np.where(mask, x - np.nan_to_num(mean_q)[:, None], 0.0)
        dof = np.maximum(n - 1, 0).sum()
        within = max((dev**2).sum() / dof if dof > 0 else float(np.var(x[mask])), 1e-6)
        seen = n > 0
        # the prior mean follows difficulty (a verifier is weaker on hard questions): a line in
        # the question's observed correct share, fitted over the questions with such samples
        share = correct.sum(1) / np.maximum(valid.sum(1), 1)
        prior = np.full(q, pooled)
        if seen.sum() > 2 and np.ptp(share[seen]) > 0:
            slope, intercept = np.polyfit(share[seen], mean_q[seen], 1, w=np.sqrt(n[seen]))
            prior = intercept + slope * share
        resid = mean_q[seen] - prior[seen]
        between = float(np.mean(resid**2) - np.mean(within / n[seen])) if seen.sum() > 1 else 0.0
        between = max(between, 1e-6)
        precision = n / within + 1.0 / between
        m = (np.where(seen, n * mean_q, 0.0) / within + prior / between) / precision
        m = np.clip(m, 1e-3, 1 - 1e-3)
        k = np.maximum(m * (1 - m) / within - 1.0, 0.5)
        a[:, c], b[:, c] = m * k, (1 - m) * k
    return a, b


def _class_gap(log_t: np.ndarray, correct: np.ndarray, wrong: np.ndarray) -> float:
    """The mean log-length gap between a question's wrong and correct samples, over the
    questions that show both (each weighted by ``1 / (1/n_correct + 1/n_wrong)``, the inverse
    variance of its difference); 0 where no question does."""
    n_c, n_w = correct.sum(1), wrong.sum(1)
    both = (n_c > 0) & (n_w > 0)
    if not both.any():
        return 0.0
    mean_c = np.where(correct, log_t, 0.0).sum(1)[both] / n_c[both]
    mean_w = np.where(wrong, log_t, 0.0).sum(1)[both] / n_w[both]
    weight = 1.0 / (1.0 / n_c[both] + 1.0 / n_w[both])
    return float(np.sum(weight * (mean_w - mean_c)) / weight.sum())


def fit(
    answer: np.ndarray,
    correct: np.ndarray,
    valid: np.ndarray,
    tokens: np.ndarray,
    cut: np.ndarray,
    max_tokens: float,
    *,
    score: np.ndarray | None = None,
    logprob: np.ndarray | None = None,
    n_wrong: int | None = None,
    prompt_tokens: np.ndarray | None = None,
) -> Fitted:
    """Fit a workload to a table's arrays (module docstring); all ``[Q, M]``; ``prompt_tokens``
    ``[Q]``: each question's prompt length (the largest the table logs), kept as logged."""
    answer = np.asarray(answer)
    valid = np.asarray(valid, bool)
    correct = np.asarray(correct, bool) & valid
    cut = np.asarray(cut, bool) & valid
    answered = valid & (answer >= 0) & ~cut
    wrong = answered & ~correct
    none = valid & ~correct & ~wrong
    n = valid.sum(1)
    c = correct.sum(1)
    if (n == 0).any():
        raise ValueError("every question needs at least one logged sample")

    mix_a, mix_b, mix_w = _beta_mixture_prior(c, n)
    counts = _sorted_counts(answer, wrong)
    d = int(n_wrong or max(8, int((counts > 0).sum(1).max()) + 2))
    if counts.shape[1] < d:
        counts = np.pad(counts, ((0, 0), (0, d - counts.shape[1])))
    alpha = _concentration(counts, d)
    right_counts = _sorted_counts(answer, correct & answered)
    r = max(1, int((right_counts > 0).sum(1).max()))
    right_counts = right_counts[:, :r]
    right_alpha = right_counts + (_concentration(right_counts, r) if r > 1 else 1.0)

    # Tokens: per question a location, and one gap between the classes (wrong - correct) from
    # the answered, uncut samples. The gap is measured within questions that show both classes:
    # pooled over the table it would be confounded with difficulty (hard questions give most of
    # the wrong samples, and run long on every sample), and a hard question's correct samples
    # would be fitted too short, so too few of them cut under a lower cap.
    log_t = np.log(np.where(np.isfinite(tokens) & (tokens > 0), tokens, np.nan))
    known = np.isfinite(log_t)
    classes = (correct & known & ~cut, wrong & known)
    if any(k.any() for k in classes):
        gap = _class_gap(log_t, *classes)
        adjusted = np.where(classes[0], log_t, np.where(classes[1], log_t - gap, np.nan))
        has = np.isfinite(adjusted)
        centre = float(np.nanmean(adjusted))
        offset = np.where(has, adjusted - centre, 0.0).sum(1) / (has.sum(1) + _SHRINK)
        spread = adjusted - (centre + offset)[:, None]
        scale = float(np.sqrt(np.nanmean(spread**2))) if has.sum() > 1 else 0.5
        scale = max(scale, 0.05)
        loc = np.stack([centre + offset, centre + offset + gap], axis=1)
        # no answer: match the share of answerless samples that reach the cap
        frac = np.clip(cut.sum() / max(none.sum(), 1), 0.01, 0.99)
        none_loc = np.log(max_tokens) - scale * float(jax.scipy.special.ndtri(1.0 - frac))
        loc = np.concatenate([loc, np.full((len(n), 1), none_loc)], axis=1)
    else:  # no token counts: nothing is ever cut
        scale = 0.5
        loc = np.full((len(n), 3), np.log(max_tokens) - 20 * scale)
    z = (np.log(max_tokens) - loc) / scale
    keep = np.asarray(jax.scipy.stats.norm.cdf(z))

    def class_moments(values, transform, default):
        out = []
        for mask in (correct, valid & ~correct):
            v = transform(values[mask & np.isfinite(values)]) if values is not None else np.empty(0)
            out.append((v.mean(), max(v.std(), 1e-3)) if v.size > 1 else default)
        return out

    score_a, score_b = _score_beta(score, correct, valid)
    lp = class_moments(logprob, lambda x: np.log(np.maximum(-x, 1e-6)), (-2.0, 0.3))
    q = len(n)
    # prior of the no-answer share: the table's pooled share, worth one sample
    share = float(np.clip(none.sum() / max(none.sum() + wrong.sum(), 1), 0.01, 0.99))

    def f(x):
        return jnp.asarray(x, jnp.float32)

    return Fitted(
        correct_a=f(mix_a[None, :] + c[:, None]),
        correct_b=f(mix_b[None, :] + (n - c)[:, None]),
        correct_w=f(mix_w),
        none_a=f(none.sum(1) + share),
        none_b=f(wrong.sum(1) + 1.0 - share),
        wrong_alpha=f(counts[:, :d] + alpha),
        right_alpha=f(right_alpha),
        tokens_loc=f(loc),
        tokens_scale=f(np.full(q, scale)),
        keep=f(keep),
        score_a=f(score_a),
        score_b=f(score_b),
        logprob_loc=f(np.tile([lp[0][0], lp[1][0]], (q, 1))),
        logprob_scale=f(np.full(q, (lp[0][1] + lp[1][1]) / 2)),
        prior=f([alpha]),
        prompt_tokens=None if prompt_tokens is None else jnp.asarray(prompt_tokens, jnp.int32),
    )


@jax.jit
def draw_fitted(key: jax.Array, fitted: Fitted) -> Questions:
    """One draw of every question from its posterior (a fresh draw per simulated seed)."""
    k_comp, k_p, k_none, k_wrong = jax.random.split(key, 4)
    comp = jax.random.categorical(k_comp, jnp.log(fitted.correct_w))[:, None]
    p_obs = jax.random.beta(k_p, jnp.take_along_axis(fitted.correct_a, comp, 1)[:, 0],
                            jnp.take_along_axis(fitted.correct_b, comp, 1)[:, 0])
    none_share = jax.random.beta(k_none, fitted.none_a, fitted.none_b)
    wrong = jax.random.dirichlet(k_wrong, fitted.wrong_alpha)
    # one correct answer: nothing to draw (and the draws above are those of a one-answer fit)
    right = None if fitted.right_alpha.shape[1] == 1 else \
        jax.random.dirichlet(jax.random.fold_in(key, 4), fitted.right_alpha)
    # latent rates: observed ones divided by the chance of finishing below the cap
    p = jnp.minimum(p_obs / fitted.keep[:, 0], 1.0)
    w_obs = (1.0 - p_obs) * (1.0 - none_share)
    w = jnp.minimum(w_obs / fitted.keep[:, 1], 1.0 - p)
    return Questions(
        p_correct=p,
        p_none=1.0 - p - w,
        wrong=wrong,
        tokens_loc=fitted.tokens_loc,
        tokens_scale=fitted.tokens_scale,
        score_a=fitted.score_a,
        score_b=fitted.score_b,
        logprob_loc=fitted.logprob_loc,
        logprob_scale=fitted.logprob_scale,
        right=right,
        prompt_tokens=fitted.prompt_tokens,
    )
