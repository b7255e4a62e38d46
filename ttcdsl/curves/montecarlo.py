"""Monte Carlo response curves in JAX: the runtime's rules applied to random sample orders.

One replication of one query draws a uniformly random priority per sample (its position in a random
order), and for every level n takes the samples ranked below n: exactly the without-replacement
draw the exact estimators average over, but here the runtime's tie rule is applied literally (the
tied answer, or best-of-n sample, that came first wins). Beyond the ``m`` logged samples the draw
is all ``m`` of them plus ``n - m`` new samples from a fitted model (see
:mod:`ttcdsl.curves.extrapolate`), in a uniformly random order.

Everything is pure ``jax.numpy``: ``vmap`` over queries and replications, ``lax.scan`` over
batches of replications, ``jax.random`` keys split per (replication, query). Within the logged
samples one sorted pass yields every level (cumulative votes, a running best, O(M A) per
replication); beyond them each level is evaluated on its own member set (O(levels (M + e) A)).
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

STRATEGIES: tuple[str, ...] = ("single", "pass_at_k", "majority_vote", "best_of_n", "weighted_vote")

MEMORY_ELEMENTS = 1 << 24
"""Rough cap on the elements alive in one simulation step (levels x samples x answers x batch)."""


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


def _with_new_samples(k_urn, k_boot, q: _Arrays, extra: int):
    """Append ``extra`` posterior-predictive samples.

    Answers follow the Dirichlet-categorical predictive, drawn exactly as a Polya urn (each draw
    adds one ball of its colour) so no gamma variates are needed; a new sample's score is resampled
    from a logged sample with the same answer; it is correct iff its answer is.
    """
    n_answers = q.answer_correct.shape[0]
    keys = jax.random.split(k_urn, extra)

    def draw(weights, k):
        logits = jnp.where(weights > 0, jnp.log(jnp.maximum(weights, 1e-300)), -jnp.inf)
        cat = jax.random.categorical(k, logits)
        return weights.at[cat].add(1.0), cat

    _, cat = jax.lax.scan(draw, q.alpha, keys)
    new_answer = jnp.where(cat < n_answers, cat, -1).astype(q.answer.dtype)
    same = (q.answer[None, :] == new_answer[:, None]) & (new_answer[:, None] >= 0)
    donor = jax.random.categorical(k_boot, jnp.where(same, 0.0, -jnp.inf), axis=-1)
    new_score = jnp.where(new_answer >= 0, q.score[donor], jnp.nan)
    if n_answers:
        new_correct = (new_answer >= 0) & q.answer_correct[jnp.clip(new_answer, 0, n_answers - 1)]
    else:
        new_correct = jnp.zeros(extra, dtype=bool)
    return (
        jnp.concatenate([q.answer, new_answer]),
        jnp.concatenate([q.score, new_score]),
        jnp.concatenate([q.correct, new_correct]),
    )


def _prefix_hits(strategy: str, order: jax.Array, q: _Arrays, levels: int) -> jax.Array:
    """Correctness after each prefix of the samples taken in ``order`` (logged samples only).

    One pass over the sorted samples serves every level: cumulative votes and score sums per
    answer, a running best sample, a running "any correct"; O(M A) instead of O(levels M A).
    """
    a, s, c, v = q.answer[order], q.score[order], q.correct[order], q.valid[order]
    width = a.shape[0]
    if strategy == "pass_at_k":
        hit = jnp.cumsum(c & v) > 0
    elif strategy == "single":
        hit = jnp.broadcast_to(c[0] & v[0], (width,))
    elif strategy == "best_of_n":
        elig = v & (a >= 0) & jnp.isfinite(s)
        value = jnp.where(elig, s, -jnp.inf)

        def earliest_max(x, y):
            take = y[0] > x[0]
            return jnp.where(take, y[0], x[0]), jnp.where(take, y[1], x[1])

        _, best = jax.lax.associative_scan(earliest_max, (value, jnp.arange(width)))
        hit = (jnp.cumsum(elig) > 0) & c[best]
    else:
        n_answers = q.answer_correct.shape[0]
        onehot = (a[:, None] == jnp.arange(n_answers)[None, :]) & v[:, None]
        votes = jnp.cumsum(onehot, axis=0)
        if strategy == "majority_vote":
            weight = votes.astype(s.dtype)
        elif strategy == "weighted_vote":
            weight = jnp.cumsum(
                jnp.where(onehot, jnp.where(jnp.isfinite(s), s, 0.0)[:, None], 0.0), 0
            )
        else:
            raise ValueError(
                f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
            )
        first_seen = jnp.argmax(onehot, axis=0)
        present = votes > 0
        w = jnp.where(present, weight, -jnp.inf)
        tied = present & (w == w.max(axis=1, keepdims=True))
        winner = jnp.argmin(jnp.where(tied, first_seen[None, :], width + 1), axis=1)
        hit = present.any(axis=1) & q.answer_correct[winner]
    if levels <= width:
        return hit[:levels]
    return jnp.concatenate([hit, jnp.zeros(levels - width, dtype=bool)])


def _one(key, q: _Arrays, *, strategy: str, levels: int, extra: int) -> jax.Array:
    """One replication of one query: correctness at n = 1..levels, ``[levels]`` bool."""
    m_width = q.answer.shape[0]
    k_order, k_urn, k_boot = jax.random.split(key, 3)
    prio = jax.random.uniform(k_order, (m_width + extra,), dtype=q.score.dtype)
    logged_prio = jnp.where(q.valid, prio[:m_width], jnp.inf)
    if not extra:
        return _prefix_hits(strategy, jnp.argsort(logged_prio), q, levels)

    # Beyond m: all logged samples plus the first n - m new ones, in the random order ``prio``.
    rank = (logged_prio[None, :] < logged_prio[:, None]).sum(1)
    m = q.valid.sum()
    answer, score, correct = _with_new_samples(k_urn, k_boot, q, extra)
    new_index = jnp.arange(extra)

    def at_level(n):
        logged = q.valid & jnp.where(n <= m, rank < n, True)
        fresh = (n > m) & (new_index < n - m)
        member = jnp.concatenate([logged, fresh])
        return outcome(strategy, member, prio, answer, score, correct, q.answer_correct)

    return jax.vmap(at_level)(jnp.arange(1, levels + 1))


@partial(jax.jit, static_argnames=("strategy", "levels", "extra", "batches", "batch"))
def _simulate(
    key, arrays: _Arrays, *, strategy: str, levels: int, extra: int, batches: int, batch: int
):
    """Sum and sum of squares of hits over ``batches x batch`` replications, ``[Q, levels]``."""
    n_queries = arrays.answer.shape[0]
    keys = jax.random.split(key, batches * batch * n_queries).reshape(batches, batch, n_queries)
    one = partial(_one, strategy=strategy, levels=levels, extra=extra)
    per_rep = jax.vmap(one, in_axes=(0, 0))
    per_batch = jax.vmap(lambda k: per_rep(k, arrays))

    def step(carry, k):
        hits = per_batch(k).astype(arrays.score.dtype)
        return (carry[0] + hits.sum(0), carry[1] + (hits**2).sum(0)), None

    zero = jnp.zeros((n_queries, levels), dtype=arrays.score.dtype)
    (total, squares), _ = jax.lax.scan(step, (zero, zero), keys)
    return total, squares


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
) -> MonteCarlo:
    """Monte Carlo estimate of the per-query curve for ``strategy`` at n = 1..levels.

    ``reps`` is rounded up to a multiple of ``batch`` (replications simulated together).
    ``score`` ([Q, M]) is required by ``best_of_n`` and ``weighted_vote``. ``alpha`` ([Q, A + 1])
    are the Dirichlet parameters of new samples (answers, then one non-voting mass); it is needed
    only where ``levels`` exceeds a query's ``m`` and is normally supplied by
    :func:`ttcdsl.curves.extrapolate.fit_dirichlet`. Where n exceeds ``m`` and no ``alpha`` is
    given, the result is NaN.
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
    if alpha is None:
        alpha = np.zeros((q, n_answers + 1))
    if isinstance(key, int):
        key = jax.random.key(key)
    s = np.full((q, width), np.nan) if score is None else np.asarray(score, dtype=np.float64)
    answer_correct = pool.answer_correct.reshape(q, n_answers)
    if n_answers == 0:  # no answers at all: one never-used answer id keeps the shapes non-empty
        answer_correct = np.zeros((q, 1), dtype=bool)
        alpha = np.concatenate([np.zeros((q, 1)), np.asarray(alpha, dtype=np.float64)], axis=1)
        n_answers = 1
    # Memory per replication and query is levels x samples x answers; cap the live elements by
    # simulating fewer replications at once and, if needed, the queries in equal-sized chunks
    # (the last one padded with empty rows, so one compilation serves every chunk).
    per_query = (levels if extra else 1) * (width + extra) * max(n_answers, 1)
    batch = max(1, min(batch, reps, MEMORY_ELEMENTS // max(per_query * q, 1)))
    batches = -(-reps // batch)
    reps = batches * batch
    chunk = max(1, min(q, MEMORY_ELEMENTS // max(per_query * batch, 1)))
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
    with jax.enable_x64(True):
        for c in range(n_chunks):
            rows = slice(c * chunk, (c + 1) * chunk)
            arrays = _Arrays(**{k: jnp.asarray(v[rows]) for k, v in cols.items()})
            t, sq = _simulate(
                jax.random.fold_in(key, c),
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
