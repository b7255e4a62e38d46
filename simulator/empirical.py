"""Empirical mode: replay a samples table's logged samples in random orders, the fitted model
only past the logged depth.

A parametric workload (:mod:`simulator.fit`) reproduces a table's response curves within
sampling error; the empirical mode reproduces the table itself. Per simulated draw and per
question, the question's logged samples (answers, correctness, reward-model scores, tokens,
log-probabilities) come in a fresh uniformly random order: averaged over draws, the first ``n``
are a uniform draw of ``n`` of the ``m`` logged ones, which is what the replay backend serves
and what the planner's exact curves assume. A question asked for more than its ``m`` logged
samples continues with samples of its fitted posterior (:func:`simulator.fit.draw_fitted`,
the posterior predictive given those ``m`` samples): those positions are **extrapolated**, and
the rollout reports how many it spent (:class:`Outcome` ``.extrapolated``), so a figure that
leans on the model says so.

Answer ids follow the fit's slots so that the model's continuation votes with the logged
answers: a question's correct answers are ids ``0..R-1`` by descending logged count, its wrong
answers ``R..R+D-1`` by descending count (``R``, ``D``: the fit's correct and wrong slots), the
order :func:`simulator.fit.fit` sorts its Dirichlet counts in.

Tokens are the logged completion lengths and pass the serving cap as the replay backend does: a
logged sample longer than the cap is cut at it and loses its answer, score and log-probability
(:func:`simulator.model.serve`); unknown lengths stay NaN (token spend unknown, not zero).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from simulator import threefry
from simulator.fit import Fitted, draw_fitted
from simulator.model import Latent, draw_latent
from jax.experimental import checkify

from simulator import bandit
from simulator import ledger as budget
from simulator.order import seeded_order
from simulator.rollout import Config, PlanArrays, _run


class Logged(NamedTuple):
    """A table's logged samples, answer ids relabelled to the fit's slots (module docstring)."""

    answer: jax.Array  # [Q, M] int32: 0..R-1 correct, R..R+D-1 wrong, -1 none
    length: jax.Array  # [Q, M] float32 logged completion tokens (NaN unknown)
    score: jax.Array  # [Q, M] float32 (NaN unknown)
    logprob: jax.Array  # [Q, M] float32 (NaN unknown)
    valid: jax.Array  # [Q, M] bool: a logged sample (rows are ragged)


class Outcome(NamedTuple):
    """:class:`simulator.rollout.Outcome`'s figures, and the spent positions the model made."""

    correct: jax.Array
    covered: jax.Array
    samples: jax.Array
    tokens: jax.Array
    bin: jax.Array
    rounds: jax.Array
    extrapolated: jax.Array  # [Q] int32: spent samples past the question's logged depth


def _slots(ids: np.ndarray, mask: np.ndarray) -> list:
    """The distinct ids under ``mask``, most common first (ties by id: the fit's sort does not
    distinguish tied slots, their posteriors are equal)."""
    values, counts = np.unique(ids[mask], return_counts=True)
    return list(values[np.lexsort((values, -counts))])


def logged_samples(answer, correct, valid, tokens, fitted: Fitted, *, score=None, logprob=None) -> Logged:
    """The table's arrays (``[Q, M]``, as :func:`simulator.fit.fit` reads them; ``answer`` ids
    compare within a row, -1 none) as :class:`Logged`, ids in ``fitted``'s slots."""
    answer = np.asarray(answer)
    valid = np.asarray(valid, bool)
    correct = np.asarray(correct, bool) & valid
    answered = valid & (answer >= 0)
    r, d = int(fitted.right_alpha.shape[1]), int(fitted.wrong_alpha.shape[1])
    out = np.full(answer.shape, -1, np.int32)
    for q in range(answer.shape[0]):
        right = _slots(answer[q], answered[q] & correct[q])
        wrong = _slots(answer[q], answered[q] & ~correct[q])
        if len(right) > r or len(wrong) > d or set(right) & set(wrong):
            raise ValueError(f"question {q}: its answers do not fit the fit's {r} correct and {d} wrong "
                             "slots (fit and logged samples from different tables?), or one answer is "
                             "both correct and wrong")
        for slot, value in enumerate(right):
            out[q][answered[q] & (answer[q] == value)] = slot
        for slot, value in enumerate(wrong):
            out[q][answered[q] & (answer[q] == value)] = r + slot

    def column(x):
        if x is None:
            return jnp.full(answer.shape, jnp.nan, jnp.float32)
        return jnp.asarray(np.where(valid, np.asarray(x, np.float64), np.nan), jnp.float32)

    return Logged(answer=jnp.asarray(out), length=column(tokens), score=column(score),
                  logprob=column(logprob), valid=jnp.asarray(valid))


def draw_sequences(key: jax.Array, logged: Logged, fitted: Fitted, length: int, *, scores: bool = True,
                   logprobs: bool = True) -> tuple[Latent, jax.Array]:
    """``[Q, length]`` latent sequences (module docstring) and ``[Q, length]`` bool: the
    position came from the fitted model (past the question's logged depth)."""
    k_order, k_questions, k_model = jax.random.split(key, 3)
    q, m = logged.answer.shape
    # a uniform random order of each row's logged samples, the padding after them
    u = jnp.where(logged.valid, threefry.uniform(k_order, (q, m)), 2.0)
    order = jnp.argsort(u, axis=1)
    take = partial(jnp.take_along_axis, indices=order, axis=1)
    depth = logged.valid.sum(1)
    from_model = jnp.arange(length)[None, :] >= depth[:, None]
    model = draw_latent(k_model, draw_fitted(k_questions, fitted), length, scores=scores, logprobs=logprobs)

    def fill(logged_column, model_column):
        x = take(logged_column)[:, :length]
        if m < length:
            x = jnp.pad(x, ((0, 0), (0, length - m)))
        return jnp.where(from_model, model_column, x.astype(model_column.dtype))

    latent = Latent(answer=fill(logged.answer, model.answer), length=fill(logged.length, model.length),
                    score=fill(logged.score, model.score), logprob=fill(logged.logprob, model.logprob))
    return latent, from_model


def rollout(key: jax.Array, logged: Logged, fitted: Fitted, plan: PlanArrays, config: Config) -> Outcome:
    """One simulated run of the plan on the logged questions (:func:`simulator.rollout.run_sequences`
    on :func:`draw_sequences`)."""
    return _rollout(key, logged, fitted, plan, config)[0]


def _rollout(key, logged, fitted, plan, config):
    k_seq, k_run = jax.random.split(key)
    latent, from_model = draw_sequences(k_seq, logged, fitted, config.n_positions, scores=config.scores,
                                        logprobs=config.logprobs)
    r, d = fitted.right_alpha.shape[1], fitted.wrong_alpha.shape[1]
    # run_sequences' body, so that its ledger check joins the vmapped one in simulate()
    k_target, k_rank = jax.random.split(k_run)
    out, spend = _run(k_target, k_rank, latent, r + d, plan, config, prompt=fitted.prompt_tokens,
                      n_right=r)
    spent = jnp.arange(config.n_positions)[None, :] < out.samples[:, None]
    return Outcome(*out, extrapolated=(from_model & spent).sum(1).astype(jnp.int32)), spend


def draw_rows(keys: jax.Array, n_table: int, n_queries: int) -> jax.Array:
    """``[S, n_queries]``: the table's questions each draw simulates: all of them in order, or
    ``n_queries`` resampled with replacement."""
    if n_queries == n_table:
        return jnp.broadcast_to(jnp.arange(n_table), (keys.shape[0], n_table))
    return jax.vmap(lambda k: jax.random.randint(k, (n_queries,), 0, n_table))(keys)


def take_rows(x, rows: jax.Array):
    """A :class:`Logged` or :class:`~simulator.fit.Fitted` restricted to ``rows`` (fields over
    questions; the fit's pooled prior stays)."""
    return x._replace(**{k: v[rows] for k, v in x._asdict().items()
                         if k != "prior" and v is not None})


def posterior(keys: jax.Array, rows: jax.Array, fitted: Fitted):
    """``[S, Q]`` :class:`~simulator.model.Questions`: a posterior draw of each drawn row (an
    oracle's knowledge of the questions: the fitted model's)."""
    return jax.vmap(lambda k, r: draw_fitted(k, take_rows(fitted, r)))(keys, rows)


def simulate(keys: jax.Array, rows: jax.Array, logged: Logged, fitted: Fitted, plan: PlanArrays,
             config: Config) -> Outcome:
    """:func:`rollout` for each key (``[S]``) on its ``rows`` (``[S, Q]``, :func:`draw_rows`):
    ``[S, Q]`` outcomes. Raises :class:`simulator.ledger.LedgerBreach` if a rollout spent beyond
    a limit (checked inside jit, as :func:`simulator.rollout.simulate`)."""
    error, out = _simulate(keys, rows, logged, fitted, plan, config)
    budget.raise_breach(error)
    return out


def _over_draws(rollout, keys, rows, logged: Logged, fitted: Fitted, *args):
    """``rollout(key, logged, fitted, *args)`` for each key (``[S]``) on its ``rows`` of the table
    (``[S, Q]``), vmapped over the draws."""
    return jax.vmap(lambda key, r: rollout(key, take_rows(logged, r), take_rows(fitted, r), *args))(keys, rows)


@partial(jax.jit, static_argnames=("config",))
def _simulate(keys, rows, logged, fitted, plan, config):
    out, spend = _over_draws(_rollout, keys, rows, logged, fitted, plan, config)
    check = jax.vmap(budget.check_spend, in_axes=(None, None, 0))
    error, _ = checkify.checkify(check)(plan.limits, plan.sample_cap, spend)
    return error, out


def _bandit_rollout(key, logged, fitted, arrays: bandit.BanditArrays, config: bandit.BanditConfig) -> Outcome:
    # the sequences of _rollout for the same key and length: a uniform baseline simulated on the
    # same draw serves the same samples (a paired comparison)
    k_seq, k_run = jax.random.split(key)
    latent, from_model = draw_sequences(k_seq, logged, fitted, config.n_positions, scores=config.scores)
    q = logged.answer.shape[0]
    order = seeded_order(jax.random.split(k_run)[1], q)
    r, d = fitted.right_alpha.shape[1], fitted.wrong_alpha.shape[1]
    # past its logged depth a question continues with its fitted posterior (flagged), so no
    # question runs out of samples here, as none does in a live run
    out = bandit._run(latent, r + d, arrays, config, order, jnp.full(q, config.cap, jnp.int32), r,
                      prompt=fitted.prompt_tokens)
    spent = jnp.arange(config.n_positions)[None, :] < out.samples[:, None]
    return Outcome(*out, extrapolated=(from_model & spent).sum(1).astype(jnp.int32))


def simulate_bandit(keys: jax.Array, rows: jax.Array, logged: Logged, fitted: Fitted,
                    arrays: bandit.BanditArrays, config: bandit.BanditConfig) -> Outcome:
    """The online bandit (:mod:`simulator.bandit`) on the logged questions: one run per key
    (``[S]``) on its ``rows`` (``[S, Q]``, :func:`draw_rows`), each question's logged samples in
    a fresh random order and the fitted model past them: ``[S, Q]`` outcomes. Raises
    :class:`simulator.ledger.LedgerBreach` if a run spent beyond a limit (checked inside jit)."""
    error, out = _simulate_bandit(keys, rows, logged, fitted, arrays, config)
    budget.raise_breach(error)
    return out


@partial(jax.jit, static_argnames=("config",))
def _simulate_bandit(keys, rows, logged, fitted, arrays, config):
    out = _over_draws(_bandit_rollout, keys, rows, logged, fitted, arrays, config)
    return bandit.checked(out, arrays), out
