"""Monte Carlo response curves in JAX: the runtime's rules applied to random sample orders.

One replication of one query draws a uniformly random priority per sample (its position in a random
order), and for every level n takes the samples ranked below n: exactly the without-replacement
draw the exact estimators average over, but here the runtime's tie rule is applied literally (the
tied answer, or best-of-n sample, that came first wins). Beyond the ``m`` logged samples the draw
is all ``m`` of them plus ``n - m`` new samples from a fitted model (see
:mod:`ttcdsl.curves.extrapolate`), in a uniformly random order.

Everything is pure ``jax.numpy``: ``vmap`` over queries and replications, ``lax.scan`` over
batches of replications. One pass over a per-replication sequence yields every level: the logged
samples sorted by priority, then the new ones in the order they were drawn, so the first n valid
entries are the level-n draw both below and beyond ``m`` (cumulative votes and score sums, a
running first-seen priority per answer, a running best sample; O((M + e) A) per replication).
Random numbers come from the Threefry-2x32 hash of a counter per (query row, replication) and
then per use (:func:`_uniform`), so a row's results do not depend on the other rows, on padding
or on batching; the hash is written out in ``jax.numpy`` because the CPU lowering of
``jax.random`` costs seconds of compilation per call site.
It runs under ``jax.enable_x64`` so that weighted-vote score sums tie as the float64 exact
estimator's do (float32 sums of reward-model scores could order two answers differently). Ties
between sums are exact float equality, so scores whose sums depend on summation order (0.1 + 0.2
vs 0.3) can tie in one estimator and not the other; integer-valued or dyadic scores never do.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ttcdsl.curves.pool import QueryPool
from ttcdsl.features.weights import check_vote_weights

STRATEGIES: tuple[str, ...] = ("single", "pass_at_k", "majority_vote", "best_of_n", "weighted_vote")

MEMORY_ELEMENTS = 1 << 24
"""Rough cap on the elements alive in one simulation step (sequence x answers x queries x batch)."""


class MonteCarlo(NamedTuple):
    """Per-query means over replications and their standard errors, ``[Q, N]`` each."""

    mean: np.ndarray
    stderr: np.ndarray
    reps: int


class _Arrays(NamedTuple):
    answer: jax.Array  # [Q, M] int32, -1 no answer / padding
    valid: jax.Array  # [Q, M] bool
    correct: jax.Array  # [Q, M] bool
    answer_correct: jax.Array  # [Q, A] bool
    score: jax.Array  # [Q, M] float64, NaN absent
    alpha: jax.Array  # [Q, A + 1] float64 Dirichlet parameters: answers, then non-voting mass


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k0, k1, x0, x1):
    """The Threefry-2x32 hash (20 rounds) of the counter pair ``(x0, x1)`` under key ``(k0, k1)``.

    Bit for bit the hash behind ``jax.random``'s default generator, written out with constant
    rotations: the CPU lowering of ``jax.random`` rolls the rounds into a loop with rotation
    amounts as loop state, and XLA's CPU backend takes seconds to compile every such site
    (several per simulation), against milliseconds for this form. All arguments are uint32 and
    broadcast together.
    """
    k2 = k0 ^ k1 ^ jnp.uint32(0x1BD11BDA)
    keys = (k0, k1, k2)
    x0, x1 = x0 + k0, x1 + k1
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = ((x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r))) ^ x0
        x0 = x0 + keys[(i + 1) % 3]
        x1 = x1 + keys[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


def _uniform(key: tuple[jax.Array, jax.Array], stream: int, index: jax.Array, dtype) -> jax.Array:
    """Uniform [0, 1) numbers with 53 random bits, one per ``index``: the hash of the counter
    ``(stream, index)`` under ``key``, so each number depends on its own counter only."""
    w0, w1 = _threefry2x32(*key, jnp.uint32(stream), index.astype(jnp.uint32))
    high = (w0 >> jnp.uint32(5)).astype(dtype)  # 27 bits
    low = (w1 >> jnp.uint32(6)).astype(dtype)  # 26 bits
    return (high * 2.0**26 + low) * 2.0**-53


def _key_words(key: jax.Array) -> np.ndarray:
    """The two uint32 words of a threefry key (new-style or raw); other generators are hashed
    down to two words with their own ``bits``."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(key)
        if data.shape != (2,):
            data = jax.random.bits(key, (2,), dtype=jnp.uint32)
    else:
        data = key
    return np.asarray(data, dtype=np.uint32).reshape(2)


def outcome(
    strategy: str,
    member: jax.Array,
    prio: jax.Array,
    answer: jax.Array,
    score: jax.Array,
    correct: jax.Array,
    answer_correct: jax.Array,
) -> jax.Array:
    """Whether the runtime's answer from the ``member`` samples, taken in ``prio`` order, is right.

    Shapes: ``[K]`` per-sample arrays and ``[A]`` per-answer correctness; returns a bool scalar.
    For ``weighted_vote`` ``score`` holds the vote weights (:mod:`ttcdsl.features.weights`), not
    the scorer's raw values.
    """
    n_answers = answer_correct.shape[0]
    inf = jnp.inf
    if strategy == "pass_at_k":
        return jnp.any(member & correct)
    if strategy == "single":
        first = jnp.argmin(jnp.where(member, prio, inf))
        return jnp.any(member) & correct[first]
    if strategy == "best_of_n":
        elig = member & (answer >= 0) & jnp.isfinite(score)
        s = jnp.where(elig, score, -inf)
        tied = elig & (s == jnp.max(s))
        pick = jnp.argmin(jnp.where(tied, prio, inf))
        return jnp.any(elig) & correct[pick]
    onehot = (answer[:, None] == jnp.arange(n_answers)[None, :]) & member[:, None]
    votes = onehot.sum(0)
    present = votes > 0
    first_seen = jnp.min(jnp.where(onehot, prio[:, None], inf), axis=0)
    if strategy == "majority_vote":
        weight = votes.astype(score.dtype)
    elif strategy == "weighted_vote":
        weight = jnp.sum(
            jnp.where(onehot, jnp.where(jnp.isfinite(score), score, 0.0)[:, None], 0.0), 0
        )
    else:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    w = jnp.where(present, weight, -inf)
    tied = present & (w == jnp.max(w))
    winner = jnp.argmin(jnp.where(tied, first_seen, inf))
    return jnp.any(present) & answer_correct[winner]


def _new_samples(u_urn: jax.Array, u_donor: jax.Array, q: _Arrays):
    """``E`` posterior-predictive samples: answers, scores and correctness, ``[E]`` each.

    Answers follow the Dirichlet-categorical predictive, drawn exactly as a Polya urn (each draw
    adds one ball of its colour) so no gamma variates are needed; a new sample's score is resampled
    from a logged sample with the same answer; it is correct iff its answer is. Both draws invert a
    CDF with one uniform each (``u_urn``, ``u_donor``), so no random numbers are made in the loop.
    """
    n_answers = q.answer_correct.shape[0]

    def draw(weights, u):
        total = jnp.cumsum(weights)
        # the smallest category whose cumulative weight exceeds u x total: P(b) = w_b / total;
        # an empty urn (a padding row) draws the non-voting category
        cat = jnp.minimum(jnp.sum(total <= u * total[-1]), n_answers)
        return weights.at[cat].add(1.0), cat

    _, cat = jax.lax.scan(draw, q.alpha, u_urn)
    new_answer = jnp.where(cat < n_answers, cat, -1).astype(q.answer.dtype)
    same = (q.answer[None, :] == new_answer[:, None]) & (new_answer[:, None] >= 0)  # [E, M]
    # the donor: uniformly one of the logged samples with the same answer (the first if none)
    target = jnp.floor(u_donor * same.sum(1)).astype(jnp.int32)
    donor = jnp.argmax(jnp.cumsum(same, axis=1) > target[:, None], axis=1)
    new_score = jnp.where(new_answer >= 0, q.score[donor], jnp.nan)
    new_correct = (new_answer >= 0) & q.answer_correct[jnp.clip(new_answer, 0, n_answers - 1)]
    return new_answer, new_score, new_correct


def _running_pick(value: jax.Array, prio: jax.Array, payload: jax.Array) -> jax.Array:
    """At each position, ``payload`` of the element with the largest ``value`` so far, ties to the
    smallest ``prio`` (the one that came first): a lexicographic running maximum.

    A sequential ``lax.scan``: one small loop body, where ``lax.associative_scan`` unrolls into
    dozens of kernels that XLA's CPU backend compiles one by one.
    """

    def step(best, item):
        take = (item[0] > best[0]) | ((item[0] == best[0]) & (item[1] < best[1]))
        best = tuple(jnp.where(take, new, old) for new, old in zip(item, best, strict=True))
        return best, best[2]

    init = (jnp.array(-jnp.inf, value.dtype), jnp.array(jnp.inf, prio.dtype), jnp.array(False))
    return jax.lax.scan(step, init, (value, prio, payload))[1]


def _sequence_hits(
    strategy: str,
    answer: jax.Array,
    score: jax.Array,
    correct: jax.Array,
    member: jax.Array,
    prio: jax.Array,
    answer_correct: jax.Array,
) -> jax.Array:
    """``[L]`` bool: is the runtime's answer from the ``member`` samples among the first ``i + 1``
    of the sequence right, for every prefix ``i``.

    The tie rules read ``prio`` (not the position), so the sequence may be in any order: the
    answer, or best-of-n sample, with the smallest priority among the tied wins, as in
    :func:`outcome`. One pass serves every prefix: cumulative votes and score sums per answer, a
    running first-seen priority per answer, a running best sample; O(L A).
    """
    inf = jnp.inf
    if strategy == "pass_at_k":
        return jnp.cumsum(member & correct) > 0
    if strategy == "single":
        first = _running_pick(jnp.where(member, 0.0, -inf), prio, correct)
        return (jnp.cumsum(member) > 0) & first
    if strategy == "best_of_n":
        elig = member & (answer >= 0) & jnp.isfinite(score)
        best = _running_pick(jnp.where(elig, score, -inf), prio, correct)
        return (jnp.cumsum(elig) > 0) & best
    if strategy not in ("majority_vote", "weighted_vote"):
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    n_answers = answer_correct.shape[0]
    onehot = (answer[:, None] == jnp.arange(n_answers)[None, :]) & member[:, None]  # [L, A]
    if strategy == "majority_vote":
        add = onehot.astype(score.dtype)
    else:
        add = jnp.where(onehot, jnp.where(jnp.isfinite(score), score, 0.0)[:, None], 0.0)

    def step(state, item):
        votes, weight, first_seen = state
        hot, plus, p = item
        votes = votes + hot
        weight = weight + plus
        first_seen = jnp.where(hot, jnp.minimum(first_seen, p), first_seen)
        present = votes > 0
        w = jnp.where(present, weight, -inf)
        tied = present & (w == w.max())
        winner = jnp.argmin(jnp.where(tied, first_seen, inf))
        return (votes, weight, first_seen), present.any() & answer_correct[winner]

    init = (
        jnp.zeros(n_answers, jnp.int32),
        jnp.zeros(n_answers, score.dtype),
        jnp.full(n_answers, inf, prio.dtype),
    )
    return jax.lax.scan(step, init, (onehot.astype(jnp.int32), add, prio))[1]


def _one(key, q: _Arrays, *, strategy: str, levels: int, extra: int) -> jax.Array:
    """One replication of one query: correctness at n = 1..levels, ``[levels]`` bool.

    The sequence is the logged samples sorted by their priorities (invalid ones last), then the
    ``extra`` new samples in the order they were drawn: its first n valid entries are the level-n
    member set for n <= m (the n smallest priorities) and for n > m (all m plus the first n - m new
    ones). ``key`` is a pair of uint32 words; every uniform has its own counter (logged sample i,
    or new sample j and its use), so none depends on ``extra`` or on the logged width.
    """
    width = q.answer.shape[0]
    dtype = q.score.dtype
    m = q.valid.sum()
    prio = _uniform(key, 0, jnp.arange(width), dtype)
    order = jnp.argsort(jnp.where(q.valid, prio, jnp.inf))
    answer, score, correct = q.answer[order], q.score[order], q.correct[order]
    member, prio = q.valid[order], prio[order]
    if extra:
        j = jnp.arange(extra)
        new_answer, new_score, new_correct = _new_samples(
            _uniform(key, 2, j, dtype), _uniform(key, 3, j, dtype), q
        )
        answer = jnp.concatenate([answer, new_answer])
        score = jnp.concatenate([score, new_score])
        correct = jnp.concatenate([correct, new_correct])
        member = jnp.concatenate([member, jnp.ones(extra, dtype=bool)])
        prio = jnp.concatenate([prio, _uniform(key, 1, j, dtype)])
    hit = _sequence_hits(strategy, answer, score, correct, member, prio, q.answer_correct)
    n = jnp.arange(1, levels + 1)
    # level n is the prefix ending at the n-th valid entry; beyond m without new samples the
    # index is clipped (the caller masks those levels)
    position = jnp.where(n <= m, n - 1, width + n - m - 1)
    return hit[jnp.minimum(position, hit.shape[0] - 1)]


@partial(jax.jit, static_argnames=("strategy", "levels", "extra", "batches", "batch"))
def _simulate(
    key: jax.Array,
    rows: jax.Array,
    arrays: _Arrays,
    *,
    strategy: str,
    levels: int,
    extra: int,
    batches: int,
    batch: int,
):
    """Sum and sum of squares of hits over ``batches x batch`` replications, ``[Q, levels]``.

    Replication ``r`` of the query in row ``rows[i]`` draws from the key ``hash(key, (rows[i], r))``
    (``key``: two uint32 words): a row's results do not depend on the other rows, on padding, or on
    how replications are batched.
    """
    one = partial(_one, strategy=strategy, levels=levels, extra=extra)
    per_query = jax.vmap(one, in_axes=((0, 0), 0))
    per_batch = jax.vmap(per_query, in_axes=((0, 0), None))
    dtype = arrays.score.dtype
    row_ids = rows.astype(jnp.uint32)[None, :]

    def step(carry, b):
        reps = (b * batch + jnp.arange(batch)).astype(jnp.uint32)[:, None]
        keys = _threefry2x32(key[0], key[1], row_ids, reps)  # [batch, Q] each
        hits = per_batch(keys, arrays).astype(dtype)
        return (carry[0] + hits.sum(0), carry[1] + (hits**2).sum(0)), None

    zero = jnp.zeros((rows.shape[0], levels), dtype=dtype)
    (total, squares), _ = jax.lax.scan(step, (zero, zero), jnp.arange(batches))
    return total, squares


def _bucket(n: int) -> int:
    """The power of two at or above ``n`` (at least 1)."""
    return 1 << max(0, n - 1).bit_length()


def simulate(
    pool: QueryPool,
    strategy: str,
    levels: int,
    *,
    key: jax.Array | int = 0,
    reps: int = 256,
    score: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
    batch: int = 32,
    bucket: bool = True,
) -> MonteCarlo:
    """Monte Carlo estimate of the per-query curve for ``strategy`` at n = 1..levels.

    ``reps`` is rounded up to a multiple of ``batch`` (replications simulated together).
    ``score`` ([Q, M]) is required by ``best_of_n`` (the scores) and ``weighted_vote`` (the vote
    weights, >= 0, from :func:`ttcdsl.features.weights.vote_weights`; a negative weight is
    refused). ``alpha`` ([Q, A + 1])
    are the Dirichlet parameters of new samples (answers, then one non-voting mass); it is needed
    only where ``levels`` exceeds a query's ``m`` and is normally supplied by
    :func:`ttcdsl.curves.extrapolate.fit_dirichlet`. Where n exceeds ``m`` and no ``alpha`` is
    given, the result is NaN.

    With ``bucket`` the query axis is padded with empty rows, and the number of new samples per
    replication rounded up, to powers of two, so that calls on bins of different sizes reuse one
    compiled program; the results are the same with or without it (row ``i`` and replication ``r``
    always draw from the same keys).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if strategy in ("best_of_n", "weighted_vote") and score is None:
        raise ValueError(f"{strategy} needs a score array")
    if reps < 2:
        raise ValueError("reps must be at least 2 to estimate a standard error")
    q, width = pool.answer.shape
    n_answers = pool.answer_correct.shape[1]
    m = pool.n_samples
    extra = max(0, levels - int(m.min(initial=levels))) if alpha is not None else 0
    if bucket and extra:
        extra = min(levels, _bucket(extra))
    if alpha is None:
        alpha = np.zeros((q, n_answers + 1))
    if isinstance(key, int):
        key = jax.random.key(key)
    words = _key_words(key)
    s = np.full((q, width), np.nan) if score is None else np.asarray(score, dtype=np.float64)
    if strategy == "weighted_vote":
        s = check_vote_weights(s)
    answer_correct = pool.answer_correct.reshape(q, n_answers)
    if n_answers == 0:  # no answers at all: one never-used answer id keeps the shapes non-empty
        answer_correct = np.zeros((q, 1), dtype=bool)
        alpha = np.concatenate([np.zeros((q, 1)), np.asarray(alpha, dtype=np.float64)], axis=1)
        n_answers = 1
    # Memory per replication and query is the sequence length x answers; cap the live elements by
    # simulating fewer replications at once and, if needed, the queries in equal-sized chunks
    # (the last one padded with empty rows, so one compilation serves every chunk).
    rows_wanted = _bucket(q) if bucket else max(q, 1)
    per_query = (width + extra) * max(n_answers, 1)
    batch = max(1, min(batch, reps, MEMORY_ELEMENTS // max(per_query * rows_wanted, 1)))
    batches = -(-reps // batch)
    reps = batches * batch
    chunk = max(1, min(rows_wanted, MEMORY_ELEMENTS // max(per_query * batch, 1)))
    if bucket:
        chunk = 1 << (chunk.bit_length() - 1)  # a power of two too
    n_chunks = max(1, -(-q // chunk))
    total = np.zeros((n_chunks * chunk, levels))
    squares = np.zeros_like(total)

    def padded(a: np.ndarray, fill) -> np.ndarray:
        pad = n_chunks * chunk - q
        return np.concatenate([a, np.full((pad, *a.shape[1:]), fill, dtype=a.dtype)]) if pad else a

    cols = {
        "answer": padded(pool.answer.astype(np.int32), -1),
        "valid": padded(pool.valid, False),
        "correct": padded(pool.correct, False),
        "answer_correct": padded(answer_correct, False),
        "score": padded(s, np.nan),
        "alpha": padded(np.asarray(alpha, dtype=np.float64), 0.0),
    }
    row_ids = np.arange(n_chunks * chunk, dtype=np.int32)
    with jax.enable_x64(True):
        for c in range(n_chunks):
            rows = slice(c * chunk, (c + 1) * chunk)
            arrays = _Arrays(**{k: jnp.asarray(v[rows]) for k, v in cols.items()})
            t, sq = _simulate(
                jnp.asarray(words),
                jnp.asarray(row_ids[rows]),
                arrays,
                strategy=strategy,
                levels=levels,
                extra=extra,
                batches=batches,
                batch=batch,
            )
            total[rows], squares[rows] = np.asarray(t), np.asarray(sq)
    mean = total[:q] / reps
    var = np.maximum(squares[:q] / reps - mean**2, 0.0)
    se = np.sqrt(var / (reps - 1))
    beyond = np.arange(1, levels + 1)[None, :] > m[:, None]
    if extra == 0:
        mean = np.where(beyond, np.nan, mean)
        se = np.where(beyond, np.nan, se)
    return MonteCarlo(mean=mean, stderr=se, reps=reps)


def evaluate_order(
    pool: QueryPool,
    strategy: str,
    *,
    score: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """``[Q]`` bool: the runtime's verdict on each query using all its logged samples.

    Samples are taken in ``order`` (``[Q, M]`` priorities, smaller first; default the logged
    order), so ties fall to the earliest as at run time: this is how a replay of the whole pool
    scores, e.g. maj@m over the logged order.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    q, width = pool.answer.shape
    prio = (
        np.broadcast_to(np.arange(width, dtype=np.float64), (q, width)) if order is None else order
    )
    s = np.full((q, width), np.nan) if score is None else np.asarray(score, dtype=np.float64)
    if strategy == "weighted_vote":
        s = check_vote_weights(s)
    answer_correct = pool.answer_correct if pool.answer_correct.shape[1] else np.zeros((q, 1), bool)
    with jax.enable_x64(True):
        verdict = jax.vmap(partial(outcome, strategy))(
            jnp.asarray(pool.valid),
            jnp.asarray(prio, dtype=jnp.float64),
            jnp.asarray(pool.answer, dtype=jnp.int32),
            jnp.asarray(s, dtype=jnp.float64),
            jnp.asarray(pool.correct),
            jnp.asarray(answer_correct),
        )
        return np.asarray(verdict)
