"""Rollouts: what a planned run does to a batch of simulated questions, as one pure JAX function.

The run's rules, as the runtime's executor applies them (``ttcdsl.runtime.executor``):

1. **Probe.** Every query gets ``probe`` samples (served under the policy's ``max_tokens``).
2. **Bins.** A key computed from the probe's observations (``Config.key_fn``, a function of
   :class:`ProbeStats`) gives the bin ``searchsorted(edges, key, side="right")``; a NaN key goes
   to the last bin. Each bin's allocation is a mix of targets (probe included); a query takes
   option ``o`` with the option's share, the largest options first, and the smallest option when
   the shares leave a remainder. ``keep_probe`` bins stop at the probe. Under ``allocate per
   query`` (``Config.target_fn``) one bin, and each query's target is what the caller's rule
   makes of the whole batch's probes.
3. **Rounds.** A query in a bin with stop rules asks for one sample per round (with a ``rounds``
   limit, ``ceil(remaining / rounds left)``); a query in a bin without asks for its whole target
   at once. Stop rules are checked at every new sample count from the bin's first check on,
   below the target, also inside a round that asks several samples; a query where one holds
   retires at that count, and the rest of its round is cancelled (not generated, not charged:
   the replay backend's exact cancel).
4. **Ledger.** The batch's sample cap (``mean samples per query <= m`` gives ``m x Q``): a round
   whose asks fit runs as asked; otherwise it is cut by water-filling, one sample at a time to
   the query with the fewest samples (counting this round's grants), ties by a random rank of
   the query (the runtime's seeded hash): spend never exceeds the cap. Token limits, per-query
   and per-bin limits and prompt charges go through :mod:`simulator.ledger` (the same rule with
   per-query worst cases); :func:`simulate` and :func:`run_sequences` check the spend against
   every limit inside jit and raise :class:`simulator.ledger.LedgerBreach` on a breach.
5. **Answer.** Majority vote over the answered samples (ties to the answer seen first), a
   weighted vote (weights ``exp(mean logprob)`` for a confidence scorer, the reward model's
   score for a reward model: :func:`sample_weights`; same tie rule), best-of-n (the answered
   sample with the highest score, ties to the earliest), or ``keep_probe`` (the probe's majority).

Stop rules, per bin, as arrays: ``votes[b, n, first, second]`` (does a threshold rule on the vote
counts hold with ``n`` samples and the two leading answers' votes ``first >= second``:
``beta_confidence >= t``, ``top_share >= t after a``), ``window[b]`` (``unanimous window K``: a completed disjoint window of
``K`` samples with one real answer, sticky) and ``last[b]`` (``unanimous last K``: the last ``K``
samples carry one real answer). The caller tabulates the threshold tests, so the simulator
compares nothing in floating point that the run compares exactly. Thresholds on running
statistics (``stat_*``: the best / worst reward-model score so far, and for an offline
evaluation max / min of the labels) are compared with a float32 threshold the caller rounded so
that the comparison is the runtime's float64 one.

Decisions read only :class:`~simulator.model.Samples` (answers, tokens, log-probabilities,
reward-model scores; a cut sample has none of them); correctness (answer ids below
``n_right``) is read when scoring the outcome, and by a stop rule only where the policy declares ``offline evaluation``
(the lowering refuses it otherwise).

Implementation: one ``lax.scan`` over sample positions computes, for every prefix length, whether
a stop rule holds (skipped when no bin has stop rules); a ``lax.while_loop`` over rounds runs the
asks, the ledger and the stop checks until a round grants nothing; the answer is then voted over
each question's samples at once (:func:`final_vote`). Seeds are vmapped in cache-sized batches, the batches looped over
(:func:`simulate`, :func:`seed_batch`): the same results as one vmap, several times faster on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from simulator import ledger as budget
from simulator.model import Latent, Questions, Samples, draw_latent, is_right, n_right as n_right_of, serve
from simulator.order import ranks, seeded_order

MAJORITY, KEEP_PROBE, WEIGHTED_CONFIDENCE, BEST_OF_N, WEIGHTED_SCORE = 0, 1, 2, 3, 4

# Running per-sample statistics a stop rule may compare with a constant (``Rules.stat_*``).
SCORE_MAX, SCORE_MIN, CORRECT_MAX, CORRECT_MIN = 0, 1, 2, 3
GE, GT, LE, LT, EQ, NE = 0, 1, 2, 3, 4, 5


class Rules(NamedTuple):
    """Stop rules per bin (module docstring); ``L`` = the longest target."""

    votes: jax.Array  # [B, L + 1, L + 1, L + 1] bool: [bin, samples, first, second]
    window: jax.Array  # [B] int32, 0: no rule
    last: jax.Array  # [B] int32, 0: no rule
    first_check: jax.Array  # [B] int32
    any: jax.Array  # [B] bool: the bin has stop rules
    # Thresholds on running statistics of the samples so far, ``K`` per bin (None: none):
    # ``stat_src`` (SCORE_MAX ...) ``stat_op`` (GE ...) ``stat_t``, holding from ``stat_after``
    # samples on, where ``stat_on``. The caller rounds ``stat_t`` to float32 so that the float32
    # comparison is the runtime's float64 one (see ttcdsl.simulate).
    stat_src: jax.Array | None = None  # [B, K] int32
    stat_op: jax.Array | None = None  # [B, K] int32
    stat_t: jax.Array | None = None  # [B, K] float32
    stat_after: jax.Array | None = None  # [B, K] int32
    stat_on: jax.Array | None = None  # [B, K] bool


class PlanArrays(NamedTuple):
    edges: jax.Array  # [B - 1] float32 absolute key edges
    options: jax.Array  # [B, O] int32 targets, descending (padded with the smallest)
    shares: jax.Array  # [B, O] float32 (0 for padding)
    strategy: jax.Array  # [B] int32: MAJORITY, KEEP_PROBE, WEIGHTED_CONFIDENCE, BEST_OF_N or WEIGHTED_SCORE
    probe_cap: jax.Array  # scalar: max_tokens of the probe
    bin_cap: jax.Array  # [B] max_tokens of each bin
    sample_cap: jax.Array  # scalar: the batch's sample cap (inf: none)
    rules: Rules
    # every limit, in the general ledger (simulator.ledger); None: the sample cap alone
    limits: budget.Limits | None = None


class ProbeStats(NamedTuple):
    """What a binning key may read from the probe (``[Q]`` each)."""

    top_share: jax.Array
    distinct: jax.Array
    mean_tokens: jax.Array
    mean_logprob: jax.Array
    entropy: jax.Array
    mean_score: jax.Array  # the reward model's scores (zeros when scores are not drawn)
    max_score: jax.Array
    min_score: jax.Array


@dataclass(frozen=True)
class Config:
    """The static shape of a rollout: jit compiles once per Config and array shapes."""

    n_positions: int  # L: the longest target (samples per query)
    probe: int
    n_bins: int
    rounds: int | None = None  # the policy's `rounds <= R`
    key_fn: Callable[[ProbeStats], jax.Array] | None = None
    # ``allocate per query``: each query's target from its probe (``[Q]`` stats) and its rank in
    # the ledger's tie order (``[Q]`` int32, 0 first), in place of the bins' allocations. The
    # caller supplies the run's own rule (a host callback: the simulator never reads plans)
    target_fn: Callable[[ProbeStats, jax.Array], jax.Array] | None = None
    stops: bool = True  # some bin has stop rules (False: the run takes at most 3 rounds)
    weighted: bool = True  # some bin votes with weights (confidence or score)
    scores: bool = False  # something reads the reward model's scores: draw them
    # something reads the log-probabilities (a binning key, a per-query rule, a confidence
    # scorer): draw them. False skips a normal draw per sample that nothing would read
    logprobs: bool = True
    best: bool = False  # some bin answers best-of-n
    charge_prompt: bool = False  # the ledger bills each sample its question's prompt tokens


class Outcome(NamedTuple):
    """Per question (``[Q]``, or ``[S, Q]`` from :func:`simulate`)."""

    correct: jax.Array  # bool: the strategy's answer is right
    covered: jax.Array  # bool: some sample is right
    samples: jax.Array  # int32 spent, probe included
    tokens: jax.Array  # float32 tokens spent: completion, plus prompt where charged (= billed)
    bin: jax.Array  # int32
    rounds: jax.Array  # int32 scalar: rounds that granted anything


def no_rules(n_bins: int, n_positions: int, first_check: int = 1) -> Rules:
    side = n_positions + 1
    false = jnp.zeros((n_bins, side, side, side), bool)
    zero = jnp.zeros(n_bins, jnp.int32)
    return Rules(false, zero, zero, jnp.full(n_bins, first_check, jnp.int32), jnp.zeros(n_bins, bool))


def probe_stats(samples: Samples) -> ProbeStats:
    a = samples.answer
    width = a.shape[1]
    same = (a[:, :, None] == a[:, None, :]) & (a[:, :, None] >= 0)  # [Q, k, k]
    count = same.sum(2)  # votes of each sample's answer
    first = jnp.where(width > 0, count.max(1, initial=0), 0)
    real = (a >= 0).sum(1)
    # an answer's first occurrence carries its count once
    earlier = jnp.tril(jnp.ones((width, width), bool), -1)
    is_first = (a >= 0) & ~(same & earlier[None]).any(2)
    distinct = is_first.sum(1)
    share = jnp.where(is_first, count / jnp.maximum(real, 1)[:, None], 1.0)
    entropy = jnp.where(real > 0, -(jnp.where(is_first, share * jnp.log(share), 0.0)).sum(1), 0.0)
    return ProbeStats(
        top_share=jnp.where(width > 0, first / max(width, 1), 0.0),
        distinct=distinct.astype(jnp.float32),
        mean_tokens=samples.tokens.mean(1) if width else jnp.full(a.shape[0], jnp.nan),
        mean_logprob=_known_mean(samples.logprob),
        entropy=entropy,
        mean_score=_known_mean(samples.score),
        max_score=_known_extreme(samples.score, jnp.max, -jnp.inf),
        min_score=_known_extreme(samples.score, jnp.min, jnp.inf),
    )


def _known_extreme(x: jax.Array, reduce, fill) -> jax.Array:
    """Row max / min over the known entries; NaN where none is."""
    known = ~jnp.isnan(x)
    return jnp.where(known.any(1), reduce(jnp.where(known, x, fill), axis=1, initial=fill), jnp.nan)


def _known_mean(x: jax.Array) -> jax.Array:
    """Row means over the known (non-NaN) entries; NaN where none is (ttcdsl.features.values)."""
    known = ~jnp.isnan(x)
    n = known.sum(1)
    return jnp.where(n > 0, jnp.where(known, x, 0.0).sum(1) / jnp.maximum(n, 1), jnp.nan)


def water_fill(ask: jax.Array, have: jax.Array, room: jax.Array, order: jax.Array, rank: jax.Array,
               levels: int = 1 << 16) -> jax.Array:
    """Grants for ``ask`` under ``room`` samples: all of it when it fits, otherwise one sample at
    a time to the asking query with the fewest (``have`` + granted), ties by ``rank``."""
    total = ask.sum()

    def level_sum(level):
        return jnp.clip(level - have, 0, ask).sum()

    def search(_, bounds):
        lo, hi = bounds  # level_sum(lo) <= room < level_sum(hi)
        mid = (lo + hi) // 2
        ok = level_sum(mid) <= room
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    lo0 = have.min()
    hi0 = (have + ask).max() + 1
    steps = max(1, math.ceil(math.log2(levels + 2)) + 1)  # hi - lo <= levels + 1 halves to 1

    def cut(_):
        lo, _ = jax.lax.fori_loop(0, steps, search, (lo0, hi0))
        granted = jnp.clip(lo - have, 0, ask)
        rest = jnp.floor(room - granted.sum())
        eligible = (have + granted == lo) & (granted < ask)
        in_order = eligible[order]
        extra = (in_order & (jnp.cumsum(in_order) <= rest))[rank]
        return granted + extra.astype(granted.dtype)

    # most rounds fit: skip the search (under vmap the cond is a select and both sides run)
    return jax.lax.cond(total <= room, lambda _: ask, cut, None)


def sample_weights(strategy: jax.Array, logprob: jax.Array, score: jax.Array) -> jax.Array:
    """A weighted vote's weight of each sample (``strategy`` broadcast against the samples): the
    runtime's rule (``ttcdsl.features.weights.vote_weights``): ``exp(mean logprob)`` for a
    confidence scorer, the score itself (a probability in [0, 1]) for a reward model."""
    return jnp.where(strategy == WEIGHTED_SCORE, score, jnp.exp(logprob))


def _compare(value: jax.Array, op: jax.Array, t: jax.Array) -> jax.Array:
    return jnp.select([op == GE, op == GT, op == LE, op == LT, op == EQ],
                      [value >= t, value > t, value <= t, value < t, value == t], value != t)


def _prefix_scan(obs: Samples, correct: jax.Array, bins: jax.Array, plan: PlanArrays, n_ids: int,
                 weighted_votes: bool = True, n_right: int = 1):
    """For every prefix length ``n = j + 1``: [L, Q] stop-rule hold, answer right (under each
    question's bin strategy; keep_probe as majority), covered. Answer ids below ``n_right``
    are correct."""
    q, length = obs.answer.shape
    rules = plan.rules
    window = rules.window[bins]
    last = rules.last[bins]
    strategy = plan.strategy[bins]
    weighted = (strategy == WEIGHTED_CONFIDENCE) | (strategy == WEIGHTED_SCORE)
    ids = jnp.arange(n_ids)
    stats = rules.stat_src is not None
    if stats:
        src, op, t = rules.stat_src[bins], rules.stat_op[bins], rules.stat_t[bins]
        after, on = rules.stat_after[bins], rules.stat_on[bins]

    def step(carry, column):
        counts, first_seen, weights, prev, run, wrun, ever, covered, every, first, second, smax, smin, \
            top, top_right = carry
        j, a, lp, sc, right = column
        real = a >= 0
        better = real & (sc > top)  # best-of-n: the first of the highest-scoring answered samples
        top, top_right = jnp.where(better, sc, top), jnp.where(better, a < n_right, top_right)
        hot = (ids[None, :] == a[:, None]) & real[:, None]
        counts = counts + hot
        first_seen = jnp.where(hot & (first_seen == length), j, first_seen)
        if weighted_votes:
            weights = weights + jnp.where(hot, sample_weights(strategy, lp, sc)[:, None], 0.0)
        # the two leading counts, updated as ttcdsl.features.votes.RunningVotes does
        c = jnp.where(real, (counts * hot).sum(1), 0)
        second = jnp.where(c > first, second, jnp.maximum(second, c))
        first = jnp.maximum(first, c)
        n = j + 1
        votes = rules.votes[bins, n, first, second]
        run = jnp.where(real & (a == prev), run + 1, real.astype(jnp.int32))
        pos = j % jnp.maximum(window, 1)
        wrun = jnp.where(pos == 0, real.astype(jnp.int32),
                         jnp.where(real & (a == prev) & (wrun == pos), wrun + 1, 0))
        ever = ever | ((window > 0) & (pos == window - 1) & (wrun == window))
        holds = votes | ever | ((last > 0) & (run >= last))
        covered = covered | right
        every = every & right
        smax, smin = jnp.fmax(smax, sc), jnp.fmin(smin, sc)  # over known scores; NaN: none yet
        if stats:  # running max / min of the scores and of the labels (max(correct): covered)
            running = jnp.stack([smax, smin, covered.astype(jnp.float32), every.astype(jnp.float32)], 1)
            value = jnp.take_along_axis(running, src, axis=1)
            # a comparison with an unknown side is False, != included (ttcdsl.features.evaluate)
            holds = holds | (on & (n >= after) & ~jnp.isnan(value) & _compare(value, op, t)).any(1)
        present = counts > 0
        value = jnp.where(weighted[:, None], weights, counts.astype(jnp.float32)) if weighted_votes \
            else counts
        best = jnp.where(present, value, -jnp.inf).max(1, keepdims=True)
        tied = present & (value == best)
        winner = jnp.argmin(jnp.where(tied, first_seen, length + 1), axis=1)
        hit = jnp.where(strategy == BEST_OF_N, top_right, present.any(1) & (winner < n_right))
        return (counts, first_seen, weights, a, run, wrun, ever, covered, every, first, second, smax, smin,
                top, top_right), (holds, hit, covered)

    zeros = jnp.zeros(q, jnp.int32)
    init = (
        jnp.zeros((q, n_ids), jnp.int32), jnp.full((q, n_ids), length, jnp.int32),
        jnp.zeros((q, n_ids), jnp.float32), jnp.full(q, -2, jnp.int32), zeros, zeros,
        jnp.zeros(q, bool), jnp.zeros(q, bool), jnp.ones(q, bool), zeros, zeros,
        jnp.full(q, jnp.nan, jnp.float32), jnp.full(q, jnp.nan, jnp.float32),
        jnp.full(q, -jnp.inf, jnp.float32), jnp.zeros(q, bool),
    )
    columns = (jnp.arange(length), obs.answer.T, obs.logprob.T, obs.score.T, correct.T)
    _, (holds, hit, covered) = jax.lax.scan(step, init, columns)
    return holds, hit, covered


def final_vote(obs: Samples, correct: jax.Array, count: jax.Array, strategy: jax.Array, n_ids: int,
               weighted_votes: bool = True, best: bool = True, n_right: int = 1) -> tuple[jax.Array, jax.Array]:
    """Whether each question's answer from its first ``count`` samples under ``strategy``
    (``[Q]``) is right, and whether one of them is: ``[Q]`` each, vectorised over positions.
    Votes tie to the answer seen first; best-of-n takes the answered sample with the highest
    score, ties to the earliest (``ttcdsl.runtime.aggregate``). ``weighted_votes`` / ``best``:
    some question may vote with weights / take the best sample (static: skips the work). Answer
    ids below ``n_right`` are correct."""
    q, length = obs.answer.shape
    j = jnp.arange(length)
    taken = j[None, :] < count[:, None]
    answered = taken & (obs.answer >= 0)
    if not weighted_votes:
        right = _count_vote(obs.answer, answered, n_ids) < n_right
        if best:
            right = jnp.where(strategy == BEST_OF_N, _best_right(obs, answered, n_right), right)
        return right, (correct & taken).any(1)
    hot = (obs.answer[:, :, None] == jnp.arange(n_ids)) & answered[:, :, None]
    counts = hot.sum(1)
    first_seen = jnp.where(hot, j[None, :, None], length).min(1)
    present = counts > 0
    value = counts.astype(jnp.float32)
    if weighted_votes:
        w = sample_weights(strategy[:, None], obs.logprob, obs.score)
        weights = jnp.where(hot, w[:, :, None], 0.0).sum(1)
        weighted = (strategy == WEIGHTED_CONFIDENCE) | (strategy == WEIGHTED_SCORE)
        value = jnp.where(weighted[:, None], weights, value)
    top = jnp.where(present, value, -jnp.inf).max(1, keepdims=True)
    tied = present & (value == top)
    winner = jnp.argmin(jnp.where(tied, first_seen, length + 1), axis=1)
    right = present.any(1) & (winner < n_right)
    if best:
        right = jnp.where(strategy == BEST_OF_N, _best_right(obs, answered, n_right), right)
    return right, (correct & taken).any(1)


def _best_right(obs: Samples, answered: jax.Array, n_right: int) -> jax.Array:
    """Best-of-n: whether the answered sample with the highest score (ties to the earliest) is right."""
    pick = jnp.argmax(jnp.where(answered, obs.score, -jnp.inf), axis=1)  # first of the ties
    picked = jnp.take_along_axis(obs.answer, pick[:, None], 1)[:, 0]
    return answered.any(1) & (picked < n_right)


def _count_vote(answer: jax.Array, answered: jax.Array, n_ids: int) -> jax.Array:
    """``[Q]`` the majority answer id of the ``answered`` samples (``[Q, L]``), ties to the answer
    seen first; ``n_ids`` where none is answered.

    The winner is the first sample whose answer has the most votes: the earliest answer among the
    tied ones. Every answer's votes are counted at once, packed as bit fields of uint32 words
    (``bits`` per field hold up to ``L`` votes): ``ceil(n_ids / fields per word)`` row sums in
    place of a one-hot count per answer, which XLA's CPU code runs several times slower."""
    q, length = answer.shape
    bits = max(1, math.ceil(math.log2(length + 1)))
    per_word = 32 // bits
    a = jnp.where(answered, answer, 0)
    word = a // per_word
    shift = ((a % per_word) * bits).astype(jnp.uint32)
    one = jnp.where(answered, jnp.left_shift(jnp.uint32(1), shift), jnp.uint32(0))
    packed = jnp.zeros((q, length), jnp.uint32)  # each sample's word of counts
    for w in range(-(-n_ids // per_word)):
        in_word = word == w
        total = jnp.where(in_word, one, jnp.uint32(0)).sum(1, dtype=jnp.uint32)
        packed = jnp.where(in_word, total[:, None], packed)
    votes = jnp.where(answered, (jnp.right_shift(packed, shift) & jnp.uint32((1 << bits) - 1)).astype(jnp.int32), 0)
    # the most votes, then the earliest sample, in one reduction: votes x (L + 1) + (L - position)
    j = jnp.arange(length, dtype=jnp.int32)
    best = (votes * (length + 1) + (length - j)[None, :]).max(1)
    first = length - best % (length + 1)
    winner = jnp.take_along_axis(answer, first[:, None], 1)[:, 0]
    return jnp.where(answered.any(1), winner, n_ids)


def rollout(key: jax.Array, questions: Questions, plan: PlanArrays, config: Config) -> Outcome:
    """One simulated run of the plan on ``questions`` (module docstring); :func:`simulate`
    also checks its spend against every limit."""
    return _rollout(key, questions, plan, config)[0]


def _rollout(key, questions, plan, config):
    k_draw, k_target, k_rank = jax.random.split(key, 3)
    latent = draw_latent(k_draw, questions, config.n_positions, scores=config.scores, logprobs=config.logprobs)
    r = n_right_of(questions)
    return _run(k_target, k_rank, latent, r + questions.wrong.shape[1], plan, config,
                prompt=questions.prompt_tokens, n_right=r)


def run_sequences(key: jax.Array, latent: Latent, n_ids: int, plan: PlanArrays, config: Config,
                  targets: jax.Array | None = None, order: jax.Array | None = None,
                  prompt: jax.Array | None = None, n_right: int = 1) -> Outcome:
    """The plan's run on GIVEN sample sequences (``[Q, L]``, served in column order; answer ids
    below ``n_right`` the correct ones, all below ``n_ids``): e.g. a samples table in the order
    a replay serves it, to check the simulator against the runtime sample for sample.
    ``targets`` (``[Q]``, before keep_probe) and ``order`` (the ledger's tie order, first to
    last) replace the random draws of :func:`rollout` where given (the runtime ranks queries by
    a hash of the run seed); ``prompt`` (``[Q]``): each query's prompt tokens, where the policy
    charges them. Raises :class:`simulator.ledger.LedgerBreach` if the run spent beyond a limit."""
    error, out = _run_sequences(key, latent, n_ids, plan, config, targets, order, prompt, n_right)
    budget.raise_breach(error)
    return out


@partial(jax.jit, static_argnames=("n_ids", "config", "n_right"))
def _run_sequences(key, latent, n_ids, plan, config, targets, order, prompt, n_right):
    k_target, k_rank = jax.random.split(key)
    out, spend = _run(k_target, k_rank, latent, n_ids, plan, config, targets, order, prompt, n_right)
    # the ledger's promise, checked on the spend (simulator.ledger.check_spend) as an error value
    error, _ = checkify.checkify(budget.check_spend)(plan.limits, plan.sample_cap, spend)
    return error, out


def _run(k_target, k_rank, latent: Latent, n_ids: int, plan: PlanArrays, config: Config,
         targets: jax.Array | None = None, order: jax.Array | None = None,
         prompt: jax.Array | None = None, n_right: int = 1) -> Outcome:
    length, k = config.n_positions, config.probe
    q = latent.answer.shape[0]

    # 1-2. probe, key, bin
    probe = serve(jax.tree.map(lambda x: x[:, :k], latent), plan.probe_cap)
    if config.n_bins > 1:
        key_value = config.key_fn(probe_stats(probe))
        bins = jnp.searchsorted(plan.edges, key_value, side="right")
        bins = jnp.where(jnp.isnan(key_value), config.n_bins - 1, bins).astype(jnp.int32)
    else:
        bins = jnp.zeros(q, jnp.int32)
    positions = jnp.arange(length)[None, :]
    caps = jnp.where(positions < k, plan.probe_cap, plan.bin_cap[bins][:, None])
    obs = serve(latent, caps)
    correct = is_right(obs.answer, n_right)  # scoring only

    if order is None:
        order = seeded_order(k_rank, q)
    rank = ranks(order)
    u = jax.random.uniform(k_target, (q,))
    cum = jnp.cumsum(plan.shares[bins], axis=1)
    option = (u[:, None] >= cum).sum(1)
    n_options = plan.options.shape[1]
    target = jnp.where(option < n_options,
                       jnp.take_along_axis(plan.options[bins], jnp.minimum(option, n_options - 1)[:, None], 1)[:, 0],
                       plan.options[bins, -1])
    if targets is not None:
        target = targets
    elif config.target_fn is not None:  # allocate per query: the probe decides each target
        target = config.target_fn(probe_stats(probe), rank.astype(jnp.int32))
    strategy = plan.strategy[bins]
    target = jnp.where(strategy == KEEP_PROBE, k, target).astype(jnp.int32)

    if config.stops:  # whether a rule holds at each count: a scan over positions
        holds, _, _ = _prefix_scan(obs, correct, bins, plan, n_ids, weighted_votes=False, n_right=n_right)
        holds_q = holds.T  # [Q, L]
    else:
        holds_q = jnp.zeros((q, length), bool)

    # 3-4. rounds with the ledger
    has_stop = plan.rules.any[bins]
    first_check = plan.rules.first_check[bins]
    room0 = jnp.floor(plan.sample_cap * q + 1e-6)
    rounds_cap = config.rounds
    limits = plan.limits
    if limits is not None:  # the general ledger (simulator.ledger): bills and worst cases, int32
        charged, billed = budget.bills(obs.tokens, prompt, config.charge_prompt)
        worst_probe = plan.probe_cap.astype(jnp.int32) + charged
        worst_bin = plan.bin_cap.astype(jnp.int32)[bins] + charged

    def grants(ask, have, binned, spent):
        """The ledger's grants for the round's asks."""
        if limits is None:
            return water_fill(ask, have, room0 - spent, order, rank, levels=length)
        spent_tokens = jnp.take_along_axis(billed, have[:, None], 1)[:, 0]
        cost = jnp.where(binned, worst_bin, worst_probe)
        return budget.fit(ask, have, spent_tokens, cost, binned, bins, limits, order, rank, length)

    def round_step(carry, r):
        have, stopped, checked, spent, binned, used = carry
        binned = binned | (have >= k).all()
        at = jnp.take_along_axis(holds_q, jnp.clip(have - 1, 0, length - 1)[:, None], 1)[:, 0]
        due = binned & has_stop & ~stopped & (have >= first_check) & (have != checked) & (have < target)
        stopped = stopped | (due & at)
        checked = jnp.where(due, have, checked)
        want = jnp.where(binned, jnp.where(stopped, 0, jnp.maximum(target - have, 0)), jnp.maximum(k - have, 0))
        if rounds_cap is None:
            step = jnp.ones_like(want)
        else:
            step = jnp.maximum(1, -(-want // jnp.maximum(1, rounds_cap - r)))
        ask = jnp.where(binned & has_stop, jnp.minimum(want, step), want)
        if rounds_cap is not None:
            ask = jnp.where(r >= rounds_cap, 0, ask)
        grant = grants(ask, have, binned, spent)
        new = have + grant
        # fire-and-cancel: the first count inside the round where a rule holds ends the query
        # there; the round's samples past it are never generated (nor billed)
        checking = binned & has_stop & ~stopped
        if rounds_cap is None:
            # a stop-rule query asks one sample per round: the only count inside it is `new`
            # (a gather per query, not a pass over every count: the rounds are O(Q) each)
            at_new = jnp.take_along_axis(holds_q, jnp.clip(new - 1, 0, length - 1)[:, None], 1)[:, 0]
            hit = checking & (new > have) & at_new & (new >= first_check) & (new < target)
        else:
            counts = jnp.arange(1, length + 1, dtype=jnp.int32)[None, :]
            inside = (checking[:, None] & holds_q & (counts > have[:, None]) & (counts <= new[:, None])
                      & (counts >= first_check[:, None]) & (counts < target[:, None]))
            hit = inside.any(1)
            new = jnp.where(hit, jnp.argmax(inside, 1).astype(jnp.int32) + 1, new)
        stopped = stopped | hit
        checked = jnp.where(checking & (grant > 0), new, checked)
        return (new, stopped, checked, spent + (new - have).sum(), binned,
                used + (grant.sum() > 0)), None

    init = (jnp.zeros(q, jnp.int32), jnp.zeros(q, bool), jnp.full(q, -1, jnp.int32),
            jnp.zeros((), jnp.float32), jnp.asarray(k == 0), jnp.zeros((), jnp.int32))
    # The rounds run until one grants nothing (the runtime's end): no query asks any more, or the
    # budget affords nothing more, and then no later round would grant either (asks only shrink,
    # and so does the room). Under the sample cap alone, one sample per round in stop-rule bins
    # takes at most L + 2 rounds, otherwise probe, targets and one cut round; under worst cases
    # in tokens a cut round grants what the worst case affords, bills less, and the next round
    # grants again, so the rounds are not counted in advance.
    most_rounds = (length + 2 if config.stops else 3) if limits is None else q * length + 2

    def more(state):
        _, r, granted = state
        return granted & (r < most_rounds)

    def next_round(state):
        carry, r, _ = state
        after, _ = round_step(carry, r)
        return after, r + 1, after[0].sum() > carry[0].sum()

    (have, _, _, _, binned, used), _, _ = jax.lax.while_loop(
        more, next_round, (init, jnp.int32(0), jnp.asarray(True)))
    # what the ledger's promise is checked on (simulator.ledger.check_spend)
    probed = jnp.minimum(have, k)
    if limits is None:
        spent_tokens = jnp.zeros((2, q), jnp.int32)
    else:
        spent_tokens = jnp.take_along_axis(billed, jnp.stack([probed, have], 1), 1).T
    spend = budget.Spend(probe=probed, probe_tokens=spent_tokens[0], samples=have,
                         tokens=spent_tokens[1], binned=binned, bins=bins)

    # 5. outcomes at the final count
    voters = jnp.where(strategy == KEEP_PROBE, jnp.minimum(have, k), have)
    right, _ = final_vote(obs, correct, voters, strategy, n_ids, config.weighted, config.best, n_right)
    _, cov = final_vote(obs, correct, have, strategy, n_ids, False, False, n_right)
    # completion tokens of the spent samples (NaN where a table logged none: unknown, never 0),
    # plus the prompts where charged: the ledger's bill wherever the counts are known
    tokens = jnp.where(positions < have[:, None], obs.tokens, 0.0).sum(1)
    if limits is not None and config.charge_prompt:
        tokens = tokens + (charged * have).astype(jnp.float32)
    return Outcome(correct=right, covered=cov, samples=have, tokens=tokens, bin=bins, rounds=used), spend


def simulate(keys: jax.Array, questions: Questions, plan: PlanArrays, config: Config,
             batch: int | None = None) -> Outcome:
    """:func:`rollout` for each key (``[S]`` keys; ``questions`` with a leading ``[S]`` axis: a
    fresh draw of the workload per seed), ``batch`` seeds vmapped at a time (None:
    :func:`seed_batch`); the results do not depend on ``batch``. Raises
    :class:`simulator.ledger.LedgerBreach` if a rollout spent beyond a limit (checked inside jit)."""
    if batch is None:
        batch = seed_batch(keys.shape[0], questions.p_correct.shape[1], config.n_positions)
    error, out = _simulate(keys, questions, plan, config, batch)
    budget.raise_breach(error)
    return out


@partial(jax.jit, static_argnames=("config", "batch"))
def _simulate(keys, questions, plan, config, batch):
    out, spend = jax.lax.map(lambda x: _rollout(x[0], x[1], plan, config), (keys, questions),
                             batch_size=batch)
    # the ledger's promise, checked on each seed's spend (simulator.ledger.check_spend) as an
    # error value. Only the check is functionalised: checkify cannot take the ledger's batched
    # while loop (jax 0.10: unsupported under checkify-of-vmap, failing under vmap-of-checkify).
    check = jax.vmap(budget.check_spend, in_axes=(None, None, 0))
    error, _ = checkify.checkify(check)(plan.limits, plan.sample_cap, spend)
    return error, out


# Seeds rolled out together (vmapped) hold about this many samples per [Q, L] array: XLA's CPU
# code slows several-fold once its arrays outgrow the cache, so a larger batch of seeds runs as
# a loop of smaller vmaps (the same arithmetic per seed: the same results).
SEED_BATCH_SAMPLES = 1 << 19


def seed_batch(n_seeds: int, n_questions: int, n_positions: int) -> int:
    return max(1, min(n_seeds, SEED_BATCH_SAMPLES // max(1, n_questions * n_positions)))


def simple_plan(
    n_bins: int,
    n_positions: int,
    options,
    shares,
    *,
    strategy=MAJORITY,
    cap: float = 1e9,
    sample_cap: float = float("inf"),
    rules: Rules | None = None,
    edges=None,
) -> PlanArrays:
    """A :class:`PlanArrays` from plain values (tests, baselines): the same options per bin."""
    options = jnp.broadcast_to(jnp.asarray(options, jnp.int32), (n_bins, len(options)))
    shares = jnp.broadcast_to(jnp.asarray(shares, jnp.float32), (n_bins, len(shares)))
    return PlanArrays(
        edges=jnp.asarray([] if edges is None else edges, jnp.float32),
        options=options,
        shares=shares,
        strategy=jnp.broadcast_to(jnp.asarray(strategy, jnp.int32), (n_bins,)),
        probe_cap=jnp.asarray(cap, jnp.float32),
        bin_cap=jnp.full(n_bins, cap, jnp.float32),
        sample_cap=jnp.asarray(sample_cap, jnp.float32),
        rules=rules if rules is not None else no_rules(n_bins, n_positions),
    )
