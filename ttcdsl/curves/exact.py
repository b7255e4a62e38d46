"""Exact estimators of per-query response curves under sampling without replacement.

Each function takes a :class:`~ttcdsl.curves.pool.QueryPool` and a maximum level ``N`` and returns
a ``[Q, N]`` float64 array whose column ``n - 1`` is the expected value when ``n`` of the query's
``m`` logged samples are drawn uniformly without replacement (equivalently: a uniformly random
order of the logged samples, cut after ``n``). Entries with ``n > m`` are NaN: beyond the logged
samples only a fitted model speaks (:mod:`ttcdsl.curves.extrapolate`).

Vote semantics (the runtime's): samples without an answer do not vote; with no vote the answer is
None (incorrect). Ties go to the tied answer (best-of-n: sample) that came first. Averaged over
random orders, a tied candidate wins with probability 1/t when the t candidates are single samples
(best-of-n) or have equal vote counts (majority vote); for weighted vote see
:func:`weighted_vote`.

Numbers are float64 built from a Pascal-triangle table of binomials, so they are exact up to
rounding for ``m <= 1000`` (binomial products never exceed ``C(m, n) <= 2^m``); larger pools are
refused (use Monte Carlo).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from ttcdsl.curves.pool import QueryPool
from ttcdsl.features.weights import check_vote_weights

MAX_SAMPLES = 1000
"""Largest ``m`` the float64 binomial table supports."""

ENUMERATION_LIMIT = 5_000
"""Weighted vote is enumerated over subsets only while ``C(m, n)`` is at most this."""


@functools.lru_cache(maxsize=8)
def binomial_table(size: int) -> np.ndarray:
    """``T[a, b] = C(a, b)`` for ``0 <= a, b <= size`` (zero where ``b > a``), read-only float64."""
    if size > MAX_SAMPLES:
        raise ValueError(
            f"exact estimators support at most {MAX_SAMPLES} samples per query, got {size}"
        )
    table = np.zeros((size + 1, size + 1))
    table[:, 0] = 1.0
    for a in range(1, size + 1):
        table[a, 1 : a + 1] = table[a - 1, :a] + table[a - 1, 1 : a + 1]
    table.flags.writeable = False
    return table


def _levels_table(pool: QueryPool, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(binomial table, m per query, C(m, n) for n = 1..levels with NaN where n > m)."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    m = pool.n_samples
    size = max(int(m.max(initial=0)), levels)
    table = binomial_table(size)
    n = np.arange(1, levels + 1)
    total = table[m][:, n]
    total = np.where(total > 0, total, np.nan)
    return table, m, total


def coverage(pool: QueryPool, levels: int) -> np.ndarray:
    """pass@n: P(at least one of n drawn samples is correct) = 1 - C(m-c, n) / C(m, n).

    This is the unbiased pass@k estimator of Chen et al. (2021) applied per query.
    """
    table, m, total = _levels_table(pool, levels)
    c = pool.n_correct
    n = np.arange(1, levels + 1)
    return 1.0 - table[m - c][:, n] / total


def single(pool: QueryPool, levels: int) -> np.ndarray:
    """The first drawn sample's correctness, c/m, whatever n (extra samples are not used)."""
    _, m, total = _levels_table(pool, levels)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = pool.n_correct / np.where(m > 0, m, np.nan)
    return np.where(np.isnan(total), np.nan, p[:, None])


def best_of_n(
    pool: QueryPool, levels: int, score: np.ndarray, *, chunk_elements: int = 4_000_000
) -> np.ndarray:
    """The correctness of the drawn answered sample with the highest ``score`` ([Q, M]).

    Candidates are samples with an answer and a finite score. For a candidate i with G samples
    scoring above it and E scoring equal (itself included), P(i is picked) =
    [C(m-G, n) - C(m-G-E, n)] / C(m, n) / E: no higher one drawn, at least one of its level drawn,
    and the pick uniform within the level. O(Q M^2 + Q M N), in query chunks of about
    ``chunk_elements`` live values.
    """
    table, m, total = _levels_table(pool, levels)
    s = np.where(np.isfinite(score), score, -np.inf)
    elig = pool.valid & (pool.answer >= 0) & np.isfinite(score)
    n = np.arange(1, levels + 1)
    q, width = pool.answer.shape
    out = np.zeros((q, levels))
    step = max(1, chunk_elements // max(width * max(width, levels), 1))
    for lo in range(0, q, step):
        rows = slice(lo, lo + step)
        e, v = elig[rows], s[rows]
        higher = (e[:, None, :] & (v[:, None, :] > v[:, :, None])).sum(-1)
        equal = (e[:, None, :] & (v[:, None, :] == v[:, :, None])).sum(-1)
        rest = m[rows, None] - higher
        below = rest - equal
        p_level = table[rest[..., None], n] - table[np.maximum(below, 0)[..., None], n]
        p_level = np.where((below >= 0)[..., None], p_level, 0.0)
        weight = (e & pool.correct[rows]) / np.maximum(equal, 1)
        out[rows] = (weight[:, :, None] * p_level).sum(1)
    return out / total


def majority_vote(pool: QueryPool, levels: int, *, chunk_elements: int = 4_000_000) -> np.ndarray:
    """Majority-vote accuracy, exact: a DP over multivariate hypergeometric vote counts.

    For every correct answer a (count K_a) of a query, P(a wins) = sum over its drawn count x of
    C(K_a, x) * W_x(n - x) / C(m, n), where W_x(j) sums, over ways to draw j other samples with no
    competitor above x, the product of C(K_b, y_b) times the tie credit 1/(1 + #competitors at x).

    W_x is built as a polynomial in the number of draws j with a second index t counting ties:
    competitors that cannot reach x (K_b < x) and the no-answer samples are drawn freely, and by
    Vandermonde's identity their product is one binomial row C(S_free, j); each competitor with
    K_b >= x multiplies the state by sum_{y<x} C(K_b, y) z^y + u C(K_b, x) z^x (u marks a tie).

    Complexity per (query, correct answer): at most m/x competitors reach x, ties are at most
    (N - x)/x, and a multiplication costs O(x N) per tie level, so level x costs O(N^3 / x) and all
    levels O(N^3 log N); memory O(N^2 / x) per row. Rows are vectorised with numpy; the only Python
    loops run over x, competitors and y (never over queries). See ``bench/curves.py`` for timings.
    """
    table, m, total = _levels_table(pool, levels)
    counts = pool.answer_counts()
    q, a = counts.shape
    abstain = m - counts.sum(1)
    rows, targets = np.nonzero(pool.answer_correct & (counts > 0))
    out = np.zeros((q, levels))
    if rows.size == 0:
        return np.where(np.isnan(total), np.nan, out)
    comp = counts[rows].copy()
    comp[np.arange(rows.size), targets] = 0
    comp = -np.sort(-comp, axis=1)
    comp = comp[:, : max(1, int((comp > 0).sum(1).max()))]
    target_count = counts[rows, targets]
    per_row = max(1, levels) ** 2
    step = max(1, chunk_elements // per_row)
    win = np.zeros((rows.size, levels))
    for lo in range(0, rows.size, step):
        sl = slice(lo, lo + step)
        win[sl] = _win_numerators(table, target_count[sl], comp[sl], abstain[rows[sl]], levels)
    np.add.at(out, rows, win)
    return out / total


def _win_numerators(
    table: np.ndarray, target: np.ndarray, comp: np.ndarray, abstain: np.ndarray, levels: int
) -> np.ndarray:
    """Sum over draws of C-products with tie credit, for n = 1..levels (divide by C(m, n))."""
    r = target.shape[0]
    out = np.zeros((r, levels + 1))
    for x in range(1, min(int(target.max()), levels) + 1):
        span = levels - x  # other draws j = 0..levels-x
        active = comp >= x
        n_active = int(active.sum(1).max())
        ties = min(n_active, span // x)
        free = abstain + np.where(active, 0, comp).sum(1)
        state = np.zeros((r, ties + 1, span + 1))
        state[:, 0, :] = table[free][:, : span + 1]
        for b in range(n_active):
            k = comp[:, b]
            act = active[:, b]
            weights = table[k][:, : x + 1]
            new = state * np.where(act, weights[:, 0], 1.0)[:, None, None]
            for y in range(1, min(x, span + 1)):
                w = np.where(act, weights[:, y], 0.0)
                if w.any():
                    new[:, :, y:] += w[:, None, None] * state[:, :, : span + 1 - y]
            if ties and x <= span:
                w = np.where(act, weights[:, x], 0.0)
                new[:, 1:, x:] += w[:, None, None] * state[:, :-1, : span + 1 - x]
            state = new
        credit = (state / np.arange(1, ties + 2)[None, :, None]).sum(1)
        out[:, x:] += table[target, x][:, None] * credit
    return out[:, 1:]


def weighted_vote(
    pool: QueryPool, levels: int, weight: np.ndarray, *, chunk_elements: int = 4_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted-vote accuracy by enumerating every n-subset, where ``C(m, n) <= ENUMERATION_LIMIT``.

    ``weight`` ([Q, M]) holds the samples' vote weights, >= 0 (NaN reads 0), from
    :func:`ttcdsl.features.weights.vote_weights`; a negative weight (a raw log-probability) is
    refused. Each drawn answered sample adds its weight to its answer; the answer
    with the largest sum among answers with at least one vote wins. A tie goes to the tied answer
    seen first, and in a random order that is answer a with probability x_a / sum of x_b over the
    tied answers (x = drawn votes): tied sums need not come from equal vote counts, so the credit is
    not 1/t here (it is for majority vote, where tied answers have equal counts).
    No closed form exists for sums of real scores; returns ``(values, done)`` where ``done`` marks
    the entries computed (the rest are NaN, for Monte Carlo). Cost O(Q C(m, n) m A) per level,
    in chunks of about ``chunk_elements`` live values.
    """
    _, m, total = _levels_table(pool, levels)
    q, width = pool.answer.shape
    n_ans = max(pool.answer_correct.shape[1], 1)
    out = np.full((q, levels), np.nan)
    s = check_vote_weights(weight)
    for mq in np.unique(m):
        group = np.flatnonzero(m == mq)
        if mq == 0:
            continue
        ans = pool.answer[group, :mq]
        sc = s[group, :mq]
        right = pool.answer_correct[group]
        onehot = ans[:, :, None] == np.arange(n_ans)[None, None, :]  # [G, mq, A]
        for n in range(1, min(int(mq), levels) + 1):
            n_subsets = int(round(binomial_table(int(mq))[mq, n]))
            if n_subsets > ENUMERATION_LIMIT:
                continue
            subsets = np.array(list(itertools.combinations(range(int(mq)), n)), dtype=np.int64)
            credit = np.zeros(len(group))
            step = max(1, chunk_elements // max(len(group) * n_ans, 1))
            for lo in range(0, n_subsets, step):
                part = subsets[lo : lo + step]
                member = np.zeros((len(part), int(mq)))
                member[np.arange(len(part))[:, None], part] = 1.0
                votes = np.einsum("sj,gja->gsa", member, onehot.astype(np.float64))
                sums = np.einsum("sj,gja->gsa", member, onehot * sc[:, :, None])
                present = votes > 0
                best = np.where(present, sums, -np.inf).max(-1, keepdims=True)
                tied_votes = np.where(present & (sums == best), votes, 0.0)
                hit = (tied_votes * right[:, None, :]).sum(-1) / np.maximum(tied_votes.sum(-1), 1)
                credit += hit.sum(1)
            out[group, n - 1] = credit / n_subsets
    done = ~np.isnan(out)
    return np.where(np.isnan(total), np.nan, out), done & ~np.isnan(total)
