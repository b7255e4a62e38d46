"""What a bin's stop rules do to its curve: simulated spend and accuracy under each sample cap.

A stop rule ends a query early, so with a cap of ``n`` samples a query spends ``min(T, n)``
where ``T`` is the first count at which a rule holds. The rule's stopping time does not depend
on the cap, so one simulated sample sequence per (query, replication) serves every cap:

1. each replication orders the query's held-out samples at random (a prefix of length ``t <= m``
   is then a uniform draw without replacement, as the exact curves assume) and, where caps go past
   the ``m`` logged samples, continues with new samples from the Dirichlet model of
   :mod:`ttcdsl.curves.extrapolate`, drawn as a Polya urn; a new sample copies the tokens, scores
   and log-probability of a random logged sample with the same answer;
2. :func:`ttcdsl.features.first_stop` finds ``T``, with the rules checked after every sample from
   the probe on (the runtime checks at the same counts, so the plan and the run agree);
3. the strategy's answer after each prefix (cumulative votes, running best) gives the accuracy and
   coverage at ``min(T, n)`` for every cap ``n`` at once.

Pure numpy, vectorised over (query, replication) rows in chunks; the loop over sample positions
is short (at most the largest cap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttcdsl.curves.extrapolate import fit_dirichlet
from ttcdsl.curves.pool import QueryPool
from ttcdsl.features.weights import vote_weights
from ttcdsl.planner.calibration import Calibration

ROWS_PER_CHUNK = 1 << 14


@dataclass(frozen=True, slots=True, kw_only=True)
class StopCurves:
    """Per-cap bin means: ``[K]`` each."""

    caps: np.ndarray
    samples: np.ndarray  # expected samples spent per query
    accuracy: np.ndarray
    accuracy_se: np.ndarray  # standard error of the bin mean (queries and replications)
    coverage: np.ndarray
    stop_rate: np.ndarray  # share of queries that stopped before the cap


def simulate_stops(
    calibration: Calibration, b: int, caps: np.ndarray, *, reps: int = 64, seed: int = 0
) -> StopCurves:
    """Simulate bin ``b``'s stop rules on its held-out samples for every cap in ``caps``."""
    from ttcdsl.features import SampleBatch, first_stop

    policy = calibration.policy
    spec = policy.bins[b]
    rows = calibration.bin_rows(b)
    pool = calibration.heldout.take(rows)
    logprob = calibration.heldout_logprob[rows]
    caps = np.asarray(caps, dtype=np.int64)
    length = int(caps.max())
    rng = np.random.default_rng([seed, b, 0x5709])
    conditions = [rule.condition for rule in spec.stop]
    features = {f.name: f.expr for f in policy.features}
    checkpoints = np.arange(max(1, policy.probe), length + 1)
    strategy = spec.strategy

    q = pool.n_queries
    per_query_hits = np.zeros((q, len(caps)))
    per_query_hits_sq = np.zeros((q, len(caps)))
    per_query_cov = np.zeros((q, len(caps)))
    per_query_spent = np.zeros((q, len(caps)))
    per_query_stopped = np.zeros((q, len(caps)))
    queries_per_chunk = max(1, ROWS_PER_CHUNK // reps)
    alpha_all = fit_dirichlet(pool)
    for start in range(0, q, queries_per_chunk):
        chunk = np.arange(start, min(q, start + queries_per_chunk))
        seq = _sequences(pool, logprob, alpha_all, chunk, reps, length, rng)
        batch = SampleBatch(
            answer=seq.answer,
            valid=np.ones_like(seq.correct, dtype=bool),
            tokens=seq.tokens,
            logprob=seq.logprob,
            correct=seq.correct.astype(np.float64),
            scores=seq.scores,
            prompt_nll=np.full(len(seq.answer), np.nan),
        )
        stop = first_stop(conditions, batch, checkpoints, features)
        spent = np.minimum(stop[:, None], caps[None, :])  # [B, K]
        hit, covered = _prefix_outcomes(
            strategy.kind, strategy.scorer, seq, policy.scorer_kind(strategy.scorer)
        )
        pick = spent - 1
        hits = np.take_along_axis(hit, pick, axis=1).reshape(len(chunk), reps, -1)
        cov = np.take_along_axis(covered, pick, axis=1).reshape(len(chunk), reps, -1)
        per_query_hits[chunk] = hits.mean(1)
        per_query_hits_sq[chunk] = (hits**2).mean(1)
        per_query_cov[chunk] = cov.mean(1)
        per_query_spent[chunk] = spent.reshape(len(chunk), reps, -1).mean(1)
        per_query_stopped[chunk] = (stop[:, None] < caps[None, :]).reshape(len(chunk), reps, -1).mean(1)

    accuracy = per_query_hits.mean(0)
    # between-query spread (what a new batch would see) plus the replications' noise
    between = per_query_hits.var(0, ddof=1) / q if q > 1 else np.zeros(len(caps))
    within = np.maximum(per_query_hits_sq - per_query_hits**2, 0.0).sum(0) / (reps * q * q)
    return StopCurves(
        caps=caps,
        samples=per_query_spent.mean(0),
        accuracy=accuracy,
        accuracy_se=np.sqrt(between + within),
        coverage=per_query_cov.mean(0),
        stop_rate=per_query_stopped.mean(0),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sequences:
    answer: np.ndarray  # [B, L] int32, -1 none
    correct: np.ndarray  # [B, L] bool
    tokens: np.ndarray  # [B, L]
    logprob: np.ndarray  # [B, L]
    scores: dict[str, np.ndarray]  # [B, L] each
    answer_correct: np.ndarray  # [B, A]


def _sequences(
    pool: QueryPool,
    logprob: np.ndarray,
    alpha: np.ndarray,
    chunk: np.ndarray,
    reps: int,
    length: int,
    rng: np.random.Generator,
) -> _Sequences:
    """``reps`` random sample sequences of ``length`` for each query in ``chunk`` (row-major)."""
    sub = pool.take(chunk)
    rows = np.repeat(np.arange(len(chunk)), reps)  # [B] query within chunk
    m = sub.n_samples[rows]
    width = sub.answer.shape[1]
    n_answers = sub.answer_correct.shape[1]

    # 1. the logged samples in a random order (invalid columns sort last)
    prio = rng.random((len(rows), width))
    prio[~sub.valid[rows]] = np.inf
    order = np.argsort(prio, axis=1)  # [B, W] source column of each position
    position_source = np.empty((len(rows), length), dtype=np.int64)
    take = min(width, length)
    position_source[:, :take] = order[:, :take]

    # 2. past m: Polya-urn answers, each copying a random logged sample with the same answer
    extra = max(0, length - int(m.min(initial=length)))
    new_answer = np.full((len(rows), extra), -1, dtype=np.int64)
    if extra:
        urn = alpha[chunk][rows].copy()  # [B, A + 1], last = no answer
        for j in range(extra):
            cum = np.cumsum(urn, axis=1)
            draw = (rng.random(len(rows))[:, None] * cum[:, -1:] >= cum).sum(1)
            draw = np.minimum(draw, urn.shape[1] - 1)
            urn[np.arange(len(rows)), draw] += 1.0
            new_answer[:, j] = np.where(draw < n_answers, draw, -1)
        donors = _donors(sub.answer[rows], sub.valid[rows], new_answer, rng)
        for j in range(extra):
            at = m + j  # position of the j-th new sample in each row
            fill = at < length
            position_source[np.flatnonzero(fill), at[fill]] = donors[fill, j]

    def gather(values: np.ndarray) -> np.ndarray:
        return np.take_along_axis(values[rows], position_source, axis=1)

    answer = gather(sub.answer).astype(np.int64)
    positions = np.arange(length)[None, :]
    is_new = positions >= m[:, None]
    if extra:
        new_index = np.clip(positions - m[:, None], 0, extra - 1)
        answer = np.where(is_new, np.take_along_axis(new_answer, new_index, axis=1), answer)
    answer_correct = sub.answer_correct[rows]
    correct = np.where(
        is_new,
        (answer >= 0) & np.take_along_axis(answer_correct, np.maximum(answer, 0), axis=1)
        if n_answers
        else False,
        gather(sub.correct),
    )
    scores = {name: gather(values) for name, values in sub.scores.items()}
    return _Sequences(
        answer=answer.astype(np.int32),
        correct=np.asarray(correct, dtype=bool),
        tokens=gather(sub.tokens),
        logprob=gather(logprob[chunk]),
        scores=scores,
        answer_correct=answer_correct,
    )


def _donors(
    answer: np.ndarray, valid: np.ndarray, new_answer: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For each new sample, a random logged column with the same answer (any logged sample when
    none has it, e.g. an answer the urn invented: then only its answer id is kept)."""
    b, w = answer.shape
    same = (answer[:, None, :] == new_answer[:, :, None]) & valid[:, None, :]  # [B, E, W]
    none = ~same.any(2, keepdims=True)
    pool = np.where(none, valid[:, None, :], same)
    noise = rng.random(pool.shape)
    return np.argmax(np.where(pool, noise, -1.0), axis=2)


def _prefix_outcomes(
    kind: str, scorer: str | None, seq: _Sequences, scorer_kind: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """``[B, L]`` bool: whether the strategy's answer after each prefix is correct, and whether
    any sample of the prefix is (coverage). Ties go to the answer (or sample) seen first."""
    answer, correct = seq.answer, seq.correct
    b, length = answer.shape
    covered = np.cumsum(correct, axis=1) > 0
    if kind == "single":
        return np.broadcast_to(correct[:, :1], (b, length)).copy(), covered
    if kind == "best_of_n":
        score = seq.scores[scorer]
        eligible = (answer >= 0) & np.isfinite(score)
        value = np.where(eligible, score, -np.inf)
        best = np.zeros(b, dtype=np.int64)
        best_value = np.full(b, -np.inf)
        hit = np.zeros((b, length), dtype=bool)
        seen = np.zeros(b, dtype=bool)
        for j in range(length):
            better = value[:, j] > best_value
            best = np.where(better, j, best)
            best_value = np.where(better, value[:, j], best_value)
            seen |= eligible[:, j]
            hit[:, j] = seen & correct[np.arange(b), best]
        return hit, covered
    # votes: majority (keep_probe is a majority of the probe) or weighted
    n_answers = seq.answer_correct.shape[1]
    if n_answers == 0:
        return np.zeros((b, length), dtype=bool), covered
    weight = np.ones((b, length))
    if kind == "weighted_vote":
        weight = vote_weights(scorer_kind, seq.scores[scorer], scorer)
    totals = np.zeros((b, n_answers))
    first_seen = np.full((b, n_answers), np.inf)
    hit = np.zeros((b, length), dtype=bool)
    rows = np.arange(b)
    for j in range(length):
        a = answer[:, j]
        has = a >= 0
        idx = np.maximum(a, 0)
        totals[rows[has], idx[has]] += weight[has, j]
        first_seen[rows[has], idx[has]] = np.minimum(first_seen[rows[has], idx[has]], j)
        present = np.isfinite(first_seen)
        w = np.where(present, totals, -np.inf)
        tied = present & (w == w.max(axis=1, keepdims=True))
        winner = np.argmin(np.where(tied, first_seen, np.inf), axis=1)
        hit[:, j] = present.any(1) & seq.answer_correct[rows, winner]
    return hit, covered
