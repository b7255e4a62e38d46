"""A bin's curves as the run will realise them: simulated spend, accuracy and tokens per cap.

At run time a query of bin ``b`` holds its probe (the samples that put it in ``b``), then gets
more samples up to its target ``n`` (probe included), its stop rules checked after every sample
from :func:`~ttcdsl.features.stop_check.first_stop_check` on, and its answer aggregated over all
its samples, the probe's included. With a cap of ``n`` it spends ``min(T, n)`` where ``T`` is
the first count at which a rule holds; ``T`` does not depend on the cap, so one simulated
sequence per (query, replication) serves every cap:

1. a calibration query's sequence is its own probe (its first ``probe`` logged samples, cut at
   the policy's ``max_tokens`` as the run serves them) followed by its held-out samples in a
   random order (cut at the bin's ``max_tokens``). The probe is the query's real probe because
   the run's is the one that chose the bin: an "easy" query's probe agreed, and the run's stop
   check at the end of the probe sees that agreement. The held-out samples are never used to
   place the query, so what follows the probe is an honest draw of the samples the run will add;
2. only with extrapolation, counts past the ``m`` logged samples continue with new samples from
   the Dirichlet model of :mod:`ttcdsl.curves.extrapolate`, drawn as a Polya urn; a new sample
   copies the tokens, scores and log-probability of a random logged sample with the same answer;
3. :func:`ttcdsl.features.first_stop` finds ``T``;
4. the strategy's answer after each prefix (cumulative votes, running best), the samples and the
   billed tokens give accuracy, coverage, spend and tokens at ``min(T, n)`` for every cap at once.

A bin without stop rules is the same simulation with ``T`` never reached. Pure numpy, vectorised
over (query, replication) rows in chunks; the loop over sample positions is at most the largest
cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttcdsl.curves.extrapolate import fit_dirichlet
from ttcdsl.curves.pool import QueryPool
from ttcdsl.features.weights import vote_weights
from ttcdsl.planner.calibration import Calibration, cut_pool
from ttcdsl.rates import rate_se

ROWS_PER_CHUNK = 1 << 14
BILLED = "\0billed"  # completion tokens a sample is billed, carried through the sequences


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedCurves:
    """Per-cap bin means with the standard errors of the bin means (between queries plus the
    replications' noise): ``[K]`` each; ``tokens*`` are NaN when token counts are unknown."""

    caps: np.ndarray
    samples: np.ndarray  # expected samples spent per query, probe included
    samples_se: np.ndarray
    accuracy: np.ndarray
    accuracy_se: np.ndarray
    coverage: np.ndarray
    tokens: np.ndarray  # expected billed tokens per query, probe included
    tokens_se: np.ndarray
    tokens_query_max: np.ndarray  # the largest member's expected tokens per query
    stop_rate: np.ndarray  # share of queries that stopped before the cap
    extrapolated: np.ndarray  # bool: the cap exceeds some member's logged samples
    probe_tokens: np.ndarray  # [Q] each member's billed probe tokens (NaN unknown)
    per_query: dict[str, np.ndarray]  # accuracy, coverage, samples, tokens: [Q, K] each member's mean
    per_query_var: dict[str, np.ndarray]  # the same, their variance over the replications


def simulate_bin(
    calibration: Calibration, b: int, caps: np.ndarray, *, reps: int = 64, seed: int = 0
) -> SimulatedCurves:
    """Simulate bin ``b`` (its stop rules, strategy and ``max_tokens``) for every cap in ``caps``."""
    from ttcdsl.features import SampleBatch, first_stop
    from ttcdsl.features.stop_check import first_stop_check

    policy = calibration.policy
    spec = policy.bins[b]
    rows = calibration.bin_rows(b)
    pool, logprob, k = _bin_pool(calibration, b, rows)
    prompt = calibration.prompt_tokens[rows] if policy.budget.charge_prompt_tokens else np.zeros(len(rows))
    caps = np.asarray(caps, dtype=np.int64)
    length = int(caps.max())
    rng = np.random.default_rng([seed, b, 0x5709])
    conditions = [rule.condition for rule in spec.stop]
    features = {f.name: f.expr for f in policy.features}
    checkpoints = np.arange(first_stop_check(policy, spec.name), length + 1)
    strategy = spec.strategy

    q = pool.n_queries
    names = ("hits", "cov", "spent", "tokens", "stopped")
    mean = {n: np.zeros((q, len(caps))) for n in names}
    square = {n: np.zeros((q, len(caps))) for n in ("hits", "cov", "spent", "tokens")}
    queries_per_chunk = max(1, ROWS_PER_CHUNK // reps)
    alpha_all = fit_dirichlet(pool)
    for start in range(0, q, queries_per_chunk):
        chunk = np.arange(start, min(q, start + queries_per_chunk))
        seq = _sequences(pool, logprob, alpha_all, chunk, reps, length, k, rng)
        sample_bill = seq.scores.pop(BILLED)
        if conditions:
            batch = SampleBatch(
                answer=seq.answer,
                valid=np.ones_like(seq.correct, dtype=bool),
                tokens=seq.tokens,
                logprob=seq.logprob,
                correct=seq.correct.astype(np.float64),
                scores=seq.scores,
                # each row is one replication of a query of the chunk (_sequences' layout)
                prompt_nll=np.repeat(calibration.prompt_nll[rows][chunk], reps),
            )
            stop = first_stop(conditions, batch, checkpoints, features)
        else:
            stop = np.full(len(seq.answer), np.iinfo(np.int64).max)
        spent = np.minimum(stop[:, None], caps[None, :])  # [B, K]
        hit, covered = _prefix_outcomes(
            strategy.kind, strategy.scorer, seq, policy.scorer_kind(strategy.scorer)
        )
        billed = sample_bill + np.repeat(prompt[chunk], reps)[:, None]
        cum_tokens = np.cumsum(billed, axis=1)
        pick = spent - 1
        values = {
            "hits": np.take_along_axis(hit, pick, axis=1),
            "cov": np.take_along_axis(covered, pick, axis=1),
            "spent": spent,
            "tokens": np.take_along_axis(cum_tokens, pick, axis=1),
            "stopped": stop[:, None] < caps[None, :],
        }
        for name, v in values.items():
            v = np.asarray(v, dtype=np.float64).reshape(len(chunk), reps, -1)
            mean[name][chunk] = v.mean(1)
            if name in square:
                square[name][chunk] = (v**2).mean(1)

    def se(name: str) -> np.ndarray:
        # between-query spread (what a new batch would see) plus the replications' noise
        m = mean[name]
        between = m.var(0, ddof=1) / q if q > 1 else np.zeros(len(caps))
        within = np.maximum(square[name] - m**2, 0.0).sum(0) / (reps * q * q)
        return np.sqrt(between + within)

    probe_billed = pool.scores[BILLED][:, :k] + prompt[:, None]
    return SimulatedCurves(
        caps=caps,
        samples=mean["spent"].mean(0),
        samples_se=se("spent"),
        accuracy=mean["hits"].mean(0),
        accuracy_se=np.array([rate_se(s, p, q) for s, p in zip(se("hits"), mean["hits"].mean(0))]),
        coverage=mean["cov"].mean(0),
        tokens=mean["tokens"].mean(0),
        tokens_se=se("tokens"),
        tokens_query_max=mean["tokens"].max(0),
        stop_rate=mean["stopped"].mean(0),
        extrapolated=caps > int(pool.n_samples.min()),
        probe_tokens=probe_billed.sum(1) if k else np.zeros(q),
        per_query={"accuracy": mean["hits"], "coverage": mean["cov"], "samples": mean["spent"],
                   "tokens": mean["tokens"]},
        per_query_var={
            out: np.maximum(square[name] - mean[name] ** 2, 0.0)
            for out, name in (("accuracy", "hits"), ("coverage", "cov"), ("samples", "spent"),
                              ("tokens", "tokens"))
        },
    )


def _bin_pool(calibration: Calibration, b: int, rows: np.ndarray) -> tuple[QueryPool, np.ndarray, int]:
    """Bin ``b``'s members' samples as the run serves them: the probe cut at the policy's
    ``max_tokens``, the rest at the bin's; and the probe's size."""
    policy = calibration.policy
    k = int(policy.probe or 0)
    pool = calibration.pool.take(rows)
    logprob = calibration.logprob[rows]
    probe, probe_lp = cut_pool(pool.columns(0, k), logprob[:, :k], policy.sampling.max_tokens)
    rest, rest_lp = cut_pool(pool.columns(k), logprob[:, k:], policy.bins[b].sampling.max_tokens)
    tokens = np.concatenate([probe.tokens, rest.tokens], axis=1)
    # the run bills a sample of unknown length its max_tokens (ttcdsl.runtime.ledger.billed_tokens);
    # a table without any token counts leaves tokens unknown instead
    served_under = np.where(
        np.arange(tokens.shape[1]) < k,
        policy.sampling.max_tokens,
        policy.bins[b].sampling.max_tokens,
    )
    has_tokens = np.isfinite(calibration.pool.tokens[calibration.pool.valid]).any()
    billed = np.where(np.isnan(tokens) & has_tokens, served_under[None, :], tokens)
    joined = pool._replace(
        answer=np.concatenate([probe.answer, rest.answer], axis=1),
        valid=np.concatenate([probe.valid, rest.valid], axis=1),
        correct=np.concatenate([probe.correct, rest.correct], axis=1),
        scores={
            **{n: np.concatenate([probe.scores[n], rest.scores[n]], axis=1) for n in pool.scores},
            BILLED: billed.astype(np.float64),
        },
        tokens=tokens,
    )
    return joined, np.concatenate([probe_lp, rest_lp], axis=1), k


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
    probe: int,
    rng: np.random.Generator,
) -> _Sequences:
    """``reps`` sample sequences of ``length`` for each query in ``chunk`` (row-major): the
    query's first ``probe`` logged samples in their order, then the others in a random order."""
    sub = pool.take(chunk)
    rows = np.repeat(np.arange(len(chunk)), reps)  # [B] query within chunk
    m = sub.n_samples[rows]
    width = sub.answer.shape[1]
    n_answers = sub.answer_correct.shape[1]

    # 1. the probe, then the other logged samples in a random order (invalid columns sort last)
    prio = rng.random((len(rows), width))
    prio[:, :probe] = np.arange(probe) - probe  # negative: first, in logged order
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
