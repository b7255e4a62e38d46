"""The online bandit as one pure JAX function: rounds of ``K`` samples per active query.

The run's rules, as the runtime's bandit executor applies them (``ttcdsl.runtime.bandit``):

1. **First round.** Every query asks for ``first`` samples (``max(probe, K, per-query
   minimum)``); a query whose first round was cut asks for the rest of it next.
2. **Solved.** Before every round, a query with ``have >= first_check`` samples where a solved
   rule holds on its samples so far retires (the rules are :class:`simulator.rollout.Rules` of
   one bin, checked by the stop-rule scan of :mod:`simulator.rollout`); so does a query at the
   per-query cap ``L`` (``BanditConfig.cap``) or one whose logged samples ran out (``depth``).
   A policy without a per-query cap is run with ``L`` the drawn length and ``capped=False``:
   the same run while no question comes within a round of ``L`` (the caller checks).
3. **Order.** Every active query is served ``K`` samples (capped at ``L``), in the order of the
   exploration rule's index, highest first, ties by the seeded rank: ``all`` (rank only),
   ``ucb`` (mean signal + ``sqrt(2 ln N / n)``), ``gap`` (``1 - (v1 - v2) / n``), ``entropy``
   (of the answer distribution); with ``bill tokens`` each index is divided by the query's
   tokens per sample relative to the batch mean.
4. **Learned skip** (a plan fitted on calibration data): a query whose next round is worth less
   per sample than the last round the remaining budget buys waits. Its value tables come from
   the caller (:class:`SkipTables`) as integer RANKS of the runtime's float64 values, so every
   comparison here is the runtime's comparison.
5. **Ledger.** A round that does not fit the batch's sample cap is cut by
   :func:`simulator.rollout.water_fill` with every query at level 0 and the rule's order as the
   tie order (the runtime's asks carry ``have=0, rank=position``): one sample at a time in that
   order, level by level. The run ends when no query is active, nothing is granted, or the
   policy's ``rounds`` are used up.
6. **Answer.** The answer strategy over all of a query's samples
   (:func:`simulator.rollout.final_vote`).

Decisions read only what a run sees (answers, scores, log-probabilities, tokens); the ``score``
array is the verifier's score, or the gold label where the policy declares ``offline evaluation``
with a gold scorer (the caller substitutes it: ``BanditConfig.gold``).

Precision: the exploration indices are float32 here and float64 in the runtime. Queries whose
vote counts are proportional get equal indices in both (a correctly rounded ``c / n`` is the same
float), so the ties the runtime breaks by rank are broken by rank here too; two DIFFERENT indices
closer than float32 resolution could be ordered differently, which matters only for who gets the
samples of a round the budget cuts. The learned skip compares integer ranks (exact).

The number of rounds depends on the data (a skipped query comes back later), so the rounds are a
``lax.while_loop`` (every round serves at least one query, so it ends); ``jax.vmap`` over seeds
(:func:`simulate_bandit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax.experimental import checkify

from simulator import ledger as budget
from simulator.model import Latent, Questions, Samples, draw_latent, is_right, n_right as n_right_of, serve
from simulator.order import ranks, seeded_order
from simulator.rollout import Outcome, Rules, _prefix_scan, final_vote, simple_plan, water_fill

EXPLORE = ("all", "ucb", "gap", "entropy")
# the per-sample signal UCB reads: the top share (no scorer), the score in [0, 1], exp(logprob)
SIGNAL_VOTES, SIGNAL_SCORE, SIGNAL_CONFIDENCE = 0, 1, 2


class SkipTables(NamedTuple):
    """The learned skip (``ttcdsl.runtime.bandit_gain.skipped``) tabulated per state: ``[L + 1,
    3, V]`` by sample count, agreement (unanimous, majority, split) and signal level (``V`` = 3,
    or 1 when the state reads no level). Values are ranks of the runtime's float64 values (equal
    values, equal ranks); -1: the state was never seen in calibration (never skipped)."""

    now: jax.Array  # [L + 1, 3, V] int32: the next round's value, at the upper end of its interval
    value: jax.Array  # [L + 1, 3, V, M] int32: the projected rounds' values (ironed); -1 padding
    cost: jax.Array  # [L + 1, 3, V, M] int32: their samples; 0 padding
    edges: jax.Array  # [2] float32: level edges, rounded so that ``best < edge`` is the runtime's


class BanditArrays(NamedTuple):
    rules: Rules  # one bin: the solved rules
    strategy: jax.Array  # scalar int32: the answer strategy (simulator.rollout codes)
    max_tokens: jax.Array  # scalar float32
    room: jax.Array  # scalar float32: samples the batch may spend (inf: no batch limit)
    skip: SkipTables | None = None
    # token limits, per-query sample limits or prompt charges: the general ledger
    # (simulator.ledger); None: the batch sample cap ``room`` is the only limit
    limits: budget.Limits | None = None


@dataclass(frozen=True)
class BanditConfig:
    n_positions: int  # sample positions drawn (at least ``cap``; the same length as a planned
    # rollout's gives the same draws for the same key: see rollout_bandit)
    cap: int  # L: samples per query at most
    round_samples: int  # K
    first: int  # the first round's samples
    first_check: int  # the first count the solved rules are checked at
    explore: str = "all"
    signal: int = SIGNAL_VOTES
    bill_tokens: bool = False
    rounds: int | None = None
    gold: bool = False  # the score is the gold label (offline evaluation)
    charge_prompt: bool = False  # the ledger bills each sample its question's prompt tokens
    scores: bool = False  # draw the verifier's scores
    weighted: bool = False
    best: bool = False
    # False: the policy sets no per-query cap, and ``cap`` is only how far the sequences are
    # drawn; the run is the uncapped one as long as no question comes within a round of it (the
    # caller checks, and draws longer sequences when one does)
    capped: bool = True


def rollout_bandit(key: jax.Array, questions: Questions, arrays: BanditArrays,
                   config: BanditConfig) -> Outcome:
    """One simulated bandit run on ``questions``; the seeded rank is a random order."""
    # the keys of simulator.rollout.rollout: a uniform baseline rolled with the same key and
    # length serves the same sample sequences
    k_draw, _, k_rank = jax.random.split(key, 3)
    latent = draw_latent(k_draw, questions, config.n_positions, scores=config.scores)
    q = questions.p_correct.shape[0]
    order = seeded_order(k_rank, q)
    depth = jnp.full(q, config.cap, jnp.int32)
    r = n_right_of(questions)  # answer ids below r are correct (several correct answers)
    return _run(latent, questions.wrong.shape[1] + r, arrays, config, order, depth, r,
                prompt=questions.prompt_tokens)


def simulate_bandit(keys: jax.Array, questions: Questions, arrays: BanditArrays,
                    config: BanditConfig) -> Outcome:
    """:func:`rollout_bandit` for each key (``questions`` with a leading ``[S]`` axis). Raises
    :class:`simulator.ledger.LedgerBreach` if a run spent beyond a limit (checked inside jit)."""
    error, out = _simulate_bandit(keys, questions, arrays, config)
    budget.raise_breach(error)
    return out


@partial(jax.jit, static_argnames=("config",))
def _simulate_bandit(keys, questions, arrays, config):
    out = jax.vmap(rollout_bandit, in_axes=(0, 0, None, None))(keys, questions, arrays, config)
    return checked(out, arrays), out


def checked(out: Outcome, arrays: BanditArrays):
    """The ledger's promise on bandit outcomes (``[..., Q]``), as a checkify error value: no
    limit exceeded at the end of the run. A bandit's queries are in its one bin from the start
    and spend only grows, so the end is where every limit is tightest."""
    if arrays.limits is None:
        return checkify.checkify(lambda: None)()[0]
    samples = out.samples.reshape(-1, out.samples.shape[-1])
    # billed tokens are whole numbers; unknown ones (NaN) cannot meet a token limit (a policy
    # with one is refused on a table without token counts)
    tokens = jnp.round(jnp.nan_to_num(out.tokens)).astype(jnp.int32).reshape(samples.shape)

    def one(have, billed):
        q = have.shape[0]
        budget.check_within(arrays.limits, have, billed, jnp.asarray(True), jnp.zeros(q, jnp.int32))

    error, _ = checkify.checkify(jax.vmap(one))(samples, tokens)
    return error


def run_bandit_sequences(latent: Latent, n_ids: int, arrays: BanditArrays, config: BanditConfig,
                         order: jax.Array, depth: jax.Array | None = None,
                         prompt: jax.Array | None = None) -> Outcome:
    """The bandit's run on GIVEN sample sequences (``[Q, L]`` in the order a replay serves them,
    answer id 0 the correct one), the seeded rank ``order`` (first to last), each query's logged
    ``depth`` (a replay runs short there: the query retires) and its ``prompt`` tokens (where the
    policy charges them). Raises :class:`simulator.ledger.LedgerBreach` on a broken limit."""
    q, length = latent.answer.shape
    if depth is None:
        depth = jnp.full(q, length, jnp.int32)
    error, out = _run_bandit_sequences(latent, n_ids, arrays, config, order, jnp.asarray(depth, jnp.int32),
                                       prompt)
    budget.raise_breach(error)
    return out


@partial(jax.jit, static_argnames=("n_ids", "config"))
def _run_bandit_sequences(latent, n_ids, arrays, config, order, depth, prompt):
    out = _run(latent, n_ids, arrays, config, order, depth, prompt=prompt)
    return checked(out, arrays), out


def _signals(obs: Samples, config: BanditConfig) -> jax.Array:
    """Each sample's signal in [0, 1] (NaN: unknown), ``ttcdsl.runtime.bandit_gain.signal``."""
    if config.signal == SIGNAL_CONFIDENCE:
        value = jnp.exp(obs.logprob)
    else:
        value = obs.score
    return jnp.clip(value, 0.0, 1.0)  # NaN stays NaN


def _run(latent: Latent, n_ids: int, arrays: BanditArrays, config: BanditConfig, order: jax.Array,
         depth: jax.Array, n_right: int = 1, prompt: jax.Array | None = None) -> Outcome:
    cap, k = config.cap, config.round_samples
    q, length = latent.answer.shape
    obs = serve(latent, arrays.max_tokens)
    limits = arrays.limits
    if limits is not None:  # the general ledger: the runtime's bills and worst cases, int32
        charged, billed = budget.bills(obs.tokens, prompt, config.charge_prompt)
        worst = arrays.max_tokens.astype(jnp.int32) + charged  # a sample's most
    correct = is_right(obs.answer, n_right)  # scoring, and the gold label of an offline evaluation
    if config.gold:
        obs = obs._replace(score=correct.astype(jnp.float32))
    plan = simple_plan(1, length, [length], [1.0], strategy=arrays.strategy, rules=arrays.rules)
    holds, _, _ = _prefix_scan(obs, correct, jnp.zeros(q, jnp.int32), plan, n_ids, weighted_votes=False,
                               n_right=n_right)
    holds_q = holds.T  # [Q, L]: a solved rule holds on the first j + 1 samples

    positions = jnp.arange(length)
    hot = (obs.answer[:, :, None] == jnp.arange(n_ids)) & (obs.answer >= 0)[:, :, None]
    votes_at = jnp.concatenate([jnp.zeros((q, 1, n_ids), jnp.int32),
                                jnp.cumsum(hot, axis=1, dtype=jnp.int32)], axis=1)  # [Q, L + 1, A]
    signal = _signals(obs, config)
    known = ~jnp.isnan(signal)
    zero = jnp.zeros((q, 1), jnp.float32)
    signal_sum = jnp.concatenate([zero, jnp.cumsum(jnp.where(known, signal, 0.0), 1)], 1)
    best_at = jnp.concatenate([zero, jax.lax.cummax(jnp.where(known, signal, 0.0), axis=1)], 1)
    tokens_at = jnp.concatenate([zero, jnp.cumsum(obs.tokens, 1)], 1)
    rank = ranks(order)  # position of each query in the seeded order
    room0 = jnp.floor(arrays.room + 1e-6)

    def at(table, have):
        return jnp.take_along_axis(table, have[:, None], 1)[:, 0]

    def cond(state):
        return ~state[-1]

    def body(state):
        have, stopped, exhausted, spent, r, used, _ = state
        # 2. solved rules on the samples so far (the same samples give the same answer, so a
        # query checked before without new samples is not changed)
        due = ~stopped & ~exhausted & (have > 0) & (have >= config.first_check)
        now = jnp.take_along_axis(holds_q, jnp.clip(have - 1, 0, length - 1)[:, None], 1)[:, 0]
        stopped = stopped | (due & now)
        want = jnp.where(have < config.first, config.first - have, k)
        want = jnp.where(stopped | exhausted | (have >= cap), 0, jnp.minimum(want, cap - have))
        active = want > 0
        # 3. the rule's order
        counts = jnp.take_along_axis(votes_at, have[:, None, None], 1)[:, 0]  # [Q, A]
        n = jnp.maximum(have, 1).astype(jnp.float32)
        ranked = -jnp.sort(-counts, axis=1)  # votes, largest first (the runtime's sum order)
        v1, v2 = ranked[:, 0], ranked[:, 1] if n_ids > 1 else jnp.zeros(q, jnp.int32)
        if config.explore == "all":
            index = jnp.zeros(q, jnp.float32)
        else:
            if config.explore == "ucb":
                total = jnp.maximum(have.sum(), 2).astype(jnp.float32)
                mean = (v1 / n) if config.signal == SIGNAL_VOTES else at(signal_sum, have) / n
                index = mean + jnp.sqrt(2.0 * jnp.log(total) / n)
            elif config.explore == "gap":
                index = 1.0 - (v1 - v2) / n
            else:  # entropy of the answered samples' distribution
                answered = ranked.sum(1)
                p = ranked / jnp.maximum(answered, 1)[:, None]
                terms = jnp.where(ranked > 0, p * jnp.log(jnp.where(ranked > 0, p, 1.0)), 0.0)
                index = jnp.where(answered > 0, -terms.sum(1), 0.0)
            index = jnp.where(have == 0, jnp.inf, index)
            if config.bill_tokens:
                per = at(tokens_at, have) / n
                seen = have > 0
                mean_cost = jnp.where(seen, per, 0.0).sum() / jnp.maximum(seen.sum(), 1)
                scale = jnp.where(seen & (per > 0) & (mean_cost > 0), per / mean_cost, 1.0)
                index = index / scale
        served_order = jnp.lexsort((rank, -index, (~active).astype(jnp.int32)))
        # 4. the learned skip
        served = active
        if arrays.skip is not None:
            fresh = active & (have < config.first)
            room = jnp.maximum(room0 - spent, 0.0)
            if config.capped:  # every active query to the cap
                room = jnp.minimum(room, jnp.where(active, cap - have, 0).sum())
            room = jnp.floor(room) - jnp.where(fresh, want, 0).sum()
            top = counts.max(1)
            agreement = jnp.where((have > 0) & (top == have), 0, jnp.where(2 * top > have, 1, 2))
            served = active & ~_skipped(arrays.skip, have, agreement, at(best_at, have),
                                        active & ~fresh, rank, room)
        # 5. the ledger: every served query at level 0, ties by its position in the rule's order
        ask = jnp.where(served, want, 0)
        position = jnp.argsort(served_order)
        if limits is None:
            grant = water_fill(ask, jnp.zeros(q, jnp.int32), room0 - spent, served_order, position,
                               levels=max(config.first, k))
        else:  # the queries are in the bandit's one bin from the start
            grant = budget.fit(ask, have, at(billed, have), worst, jnp.asarray(True), jnp.zeros(q, jnp.int32),
                               limits, served_order, position, max(config.first, k),
                               start=jnp.zeros(q, jnp.int32))
        got = jnp.minimum(grant, jnp.maximum(depth - have, 0))  # a replay log runs short
        exhausted = exhausted | (got < grant)
        some = grant.sum() > 0
        r = r + 1
        done = ~active.any() | ~some
        if config.rounds is not None:
            done = done | (r >= config.rounds)
        return (have + got, stopped, exhausted, spent + got.sum(), r, used + some, done)

    init = (jnp.zeros(q, jnp.int32), jnp.zeros(q, bool), jnp.zeros(q, bool), jnp.zeros((), jnp.float32),
            jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.asarray(config.rounds == 0))
    have, *_, used, _ = jax.lax.while_loop(cond, body, init)

    right, covered = final_vote(obs, correct, have, jnp.full(q, arrays.strategy), n_ids,
                                config.weighted, config.best, n_right)
    # completion tokens of the spent samples (NaN where a table logged none: unknown, never 0),
    # plus the prompts where charged: the ledger's bill
    tokens = jnp.where(positions[None, :] < have[:, None], obs.tokens, 0.0).sum(1)
    if limits is not None and config.charge_prompt:
        tokens = tokens + (charged * have).astype(jnp.float32)
    return Outcome(correct=right, covered=covered, samples=have, tokens=tokens,
                   bin=jnp.zeros(q, jnp.int32), rounds=used)


def _skipped(tables: SkipTables, have, agreement, best, candidate, rank, room) -> jax.Array:
    """Which ``candidate`` queries (active, past their first round) wait this round
    (``ttcdsl.runtime.bandit_gain.skipped``): the ``room`` samples buy the most valuable projected
    rounds of the batch, ties by rank; ``tau`` is the last round bought; a query whose next round
    is worth less than ``tau`` waits. Nothing waits when nothing or everything is bought."""
    levels = tables.now.shape[2]
    if levels > 1:
        level = (best >= tables.edges[0]).astype(jnp.int32) + (best >= tables.edges[1])
    else:
        level = jnp.zeros_like(have)
    now = tables.now[have, agreement, level]  # [Q]
    value = tables.value[have, agreement, level]  # [Q, M]
    cost = tables.cost[have, agreement, level]
    q, m = value.shape
    valid = candidate[:, None] & (value >= 0)
    flat_valid = valid.ravel()
    flat_value = jnp.where(valid, value, -1).ravel()
    flat_rank = jnp.broadcast_to(rank[:, None], (q, m)).ravel()
    flat_cost = jnp.where(valid, cost, 0).ravel()
    flat_m = jnp.broadcast_to(jnp.arange(m)[None, :], (q, m)).ravel()
    # the runtime sorts (-value, rank, cost, id); one query's rounds keep their order
    sorted_ = jnp.lexsort((flat_m, flat_cost, flat_rank, -flat_value, (~flat_valid).astype(jnp.int32)))
    spent = jnp.cumsum(flat_cost[sorted_])
    bought = flat_valid[sorted_] & (spent <= room)
    n_bought = bought.sum()
    tau = jnp.where(n_bought > 0, flat_value[sorted_][jnp.maximum(n_bought - 1, 0)], -1)
    everything = n_bought == flat_valid.sum()
    skip = candidate & (now >= 0) & (now < tau)
    return jnp.where((room >= 0) & (n_bought > 0) & ~everything, skip, False)
