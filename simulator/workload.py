"""A synthetic workload: per-question response processes that look like a reasoning benchmark.

Why it exists: the planner calibrates on a samples table, and the replay backend and the simulator
run against one. A fresh machine has no GPU and none of our logged pools, so this module makes a
stand-in whose statistics resemble real ones (MATH-style pools: many easy questions, a long tail of
hard and unsolvable ones, wrong answers that concentrate on a few values, an imperfect verifier,
long-tailed token counts cut at ``max_tokens``).

The generative model, per question ``q`` (all parameters live in :class:`Workload`):

* **Outcome.** A sample is correct with ``p_correct[q]``, has no extractable answer with
  ``p_none[q]``, and is otherwise wrong; a wrong sample's answer is distractor ``d`` with
  ``distractors[q, d]`` (sorted, most likely first). "Confidently wrong" questions put most of
  the wrong mass on one distractor, so it out-votes a rarer correct answer: majority vote fails
  there, while coverage, or best-of-n with a verifier, can still win.
* **Tokens.** Completion length is log-normal with log-median ``tokens_loc[q, k]`` for outcome
  class ``k`` (0 correct, 1 wrong, 2 no answer) and log-scale ``tokens_scale[q]``: longer for
  harder questions and for wrong samples, much longer for answerless ones (runaway reasoning).
  A sample that finished with an answer stopped before the cap, so its length is drawn from the
  log-normal conditioned on ``< max_tokens[q]``; an answerless sample's length is not conditioned,
  and when it reaches the cap it is cut there: ``finish_reason_length``, ``max_tokens`` tokens.
  (So ``p_correct`` stays the exact probability a sample is correct.)
* **Verifier score** (a PRM/ORM stand-in, in [0, 1]): ``Beta(score_a[q, k], score_b[q, k])`` with
  ``k = 0`` for correct samples and ``k = 1`` for the rest. Each question draws its own separation
  between the two, weaker on hard questions and occasionally reversed: the verifier separates
  correct from wrong on average, imperfectly.
* **Mean token log-probability:** ``-exp(N(logprob_loc[q, k], logprob_scale[q]))``: closer to 0
  for correct samples and easy questions (confidence signals work, imperfectly).
* **Prompt tokens** per question, ``prompt_tokens[q]``.

:func:`synthetic_workload` draws these parameters from the difficulty mixture of
:mod:`simulator.population` (:data:`DEFAULT_MIX`), the one the JAX model (``ttc simulate``)
draws from too; :func:`draw_samples` draws the logged samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from simulator._normal import ndtr, ndtri
from simulator.population import (
    DEFAULT_MIX,
    DISTRACTOR_CONCENTRATION,
    TIERS,
    StandardDraws,
    question_parameters,
    tier_weights,
)

__all__ = ["DEFAULT_MIX", "TIERS", "Draws", "Workload", "draw_samples", "synthetic_workload"]

_WORKLOAD_STREAM = 0
_DRAW_STREAM = 1


class Workload(NamedTuple):
    """Per-question parameters of the response process (see the module docstring); ``Q``
    questions, ``D`` distractors. Outcome classes ``k``: 0 correct, 1 wrong, 2 no answer."""

    tier: np.ndarray  # [Q] int8: index into TIERS (the mixture component), for reports and tests
    p_correct: np.ndarray  # [Q] P(sample correct)
    p_none: np.ndarray  # [Q] P(no extractable answer); p_correct + p_none <= 1
    distractors: np.ndarray  # [Q, D] P(distractor d | wrong answer), rows sum to 1, descending
    tokens_loc: np.ndarray  # [Q, 3] log-median completion tokens per outcome class
    tokens_scale: np.ndarray  # [Q] log-normal scale of completion tokens
    max_tokens: np.ndarray  # [Q] int64 completion token cap
    score_a: np.ndarray  # [Q, 2] verifier Beta a for correct (0) and other (1) samples
    score_b: np.ndarray  # [Q, 2] verifier Beta b
    logprob_loc: np.ndarray  # [Q, 3] location of log(-mean_logprob) per outcome class
    logprob_scale: np.ndarray  # [Q] its scale
    prompt_tokens: np.ndarray  # [Q] int64

    @property
    def n_questions(self) -> int:
        return int(self.p_correct.shape[0])

    @property
    def n_distractors(self) -> int:
        return int(self.distractors.shape[1])

    def outcome_probs(self) -> np.ndarray:
        """``[Q, D + 2]``: P(answer) for the correct answer, each distractor, then no answer."""
        wrong = 1.0 - self.p_correct - self.p_none
        return np.concatenate(
            [self.p_correct[:, None], wrong[:, None] * self.distractors, self.p_none[:, None]],
            axis=1,
        )


class Draws(NamedTuple):
    """``M`` logged samples of each of ``Q`` questions."""

    answer: np.ndarray  # [Q, M] int64: 0 the correct answer, 1..D a distractor, -1 none
    correct: np.ndarray  # [Q, M] bool
    completion_tokens: np.ndarray  # [Q, M] int64
    finish_reason_length: np.ndarray  # [Q, M] bool: cut at the token cap
    score: np.ndarray  # [Q, M] float64 verifier score in [0, 1]
    mean_logprob: np.ndarray  # [Q, M] float64, < 0
    prompt_tokens: np.ndarray  # [Q] int64


def _stream(seed: int, *key: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(int(seed), spawn_key=key)))


def _tier_counts(n: int, mix: Mapping[str, float]) -> np.ndarray:
    """Questions per tier: the shares of ``mix`` rounded by largest remainder (exact totals)."""
    exact = tier_weights(mix) * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def synthetic_workload(
    n_questions: int,
    *,
    seed: int = 0,
    mix: Mapping[str, float] = DEFAULT_MIX,
    n_distractors: int = 8,
    max_tokens: int = 4096,
) -> Workload:
    """Draw ``n_questions`` questions from the difficulty mixture ``mix`` (tier -> share; missing
    tiers get 0, shares are normalised and rounded to exact counts, in a shuffled order).

    Deterministic in ``seed``. See :data:`DEFAULT_MIX` for the tiers and the figures they give.
    """
    if isinstance(n_questions, bool) or not isinstance(n_questions, int) or n_questions < 0:
        raise ValueError(f"n_questions must be a non-negative integer, got {n_questions!r}")
    if not isinstance(n_distractors, int) or n_distractors < 1:
        raise ValueError(f"n_distractors must be a positive integer, got {n_distractors!r}")
    if not isinstance(max_tokens, int) or max_tokens < 16:
        raise ValueError(f"max_tokens must be an integer >= 16, got {max_tokens!r}")
    rng = _stream(seed, _WORKLOAD_STREAM)
    q, d = n_questions, n_distractors
    tier = rng.permutation(np.repeat(np.arange(len(TIERS), dtype=np.int8), _tier_counts(q, mix)))
    # The standard draws, in StandardDraws' field order: the order fixes every table's content.
    u_p_correct, u_p_none = rng.random(q), rng.random(q)
    spread = rng.dirichlet(np.full(d, DISTRACTOR_CONCENTRATION), size=q) if q else np.zeros((0, d))
    u_dominant, u_share = rng.random(q), rng.random(q)
    z_tokens, z_wrong_shift = rng.standard_normal(q), rng.standard_normal(q)
    u_tokens_scale = rng.random(q)
    z_separation, z_centre, u_concentration = rng.standard_normal(q), rng.standard_normal(q), rng.random(q)
    z_confidence, z_prompt = rng.standard_normal(q), rng.standard_normal(q)
    draws = StandardDraws(u_p_correct, u_p_none, spread, u_dominant, u_share, z_tokens, z_wrong_shift,
                          u_tokens_scale, z_separation, z_centre, u_concentration, z_confidence, z_prompt)
    p = question_parameters(np, tier, draws)
    return Workload(
        tier=tier,
        p_correct=p.p_correct,
        p_none=p.p_none,
        distractors=p.distractors,
        tokens_loc=p.tokens_loc,
        tokens_scale=p.tokens_scale,
        max_tokens=np.full(q, max_tokens, dtype=np.int64),
        score_a=p.score_a,
        score_b=p.score_b,
        logprob_loc=p.logprob_loc,
        logprob_scale=p.logprob_scale,
        prompt_tokens=p.prompt_tokens.astype(np.int64),
    )


def draw_samples(workload: Workload, n_samples: int, *, seed: int) -> Draws:
    """Draw ``n_samples`` samples of every question of ``workload``.

    Sample ``j`` of every question comes from its own random stream, keyed by ``(seed, j)``, and
    within it question ``q`` takes the ``q``-th draws: so the result is deterministic in ``seed``,
    and drawing ``M + k`` samples extends drawing ``M`` (the first ``M`` columns are identical) —
    a run that asks for more samples later sees the same first ones. Each column is computed
    vectorised over the questions.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
        raise ValueError(f"n_samples must be a non-negative integer, got {n_samples!r}")
    _stream(seed)  # validate the seed even when there is nothing to draw
    q = workload.n_questions
    cumulative = np.cumsum(workload.outcome_probs(), axis=1)[:, :-1]
    columns = [
        _draw_column(workload, cumulative, _stream(seed, _DRAW_STREAM, j)) for j in range(n_samples)
    ]
    if columns:
        stacked = [np.stack(parts, axis=1) for parts in zip(*columns, strict=True)]
    else:
        empty = np.zeros((q, 0))
        stacked = [empty.astype(np.int64), empty.astype(np.int64), empty.astype(bool), empty, empty]
    answer, tokens, length, score, logprob = stacked
    return Draws(
        answer=answer,
        correct=answer == 0,
        completion_tokens=tokens,
        finish_reason_length=length,
        score=score,
        mean_logprob=logprob,
        prompt_tokens=workload.prompt_tokens.astype(np.int64, copy=True),
    )


def _draw_column(
    w: Workload, cumulative: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """One sample of every question: (answer, tokens, cut at cap, score, mean logprob)."""
    q = w.n_questions
    rows = np.arange(q)
    # Outcome by inverse CDF over [correct, distractor 1..D, none].
    choice = (rng.random(q)[:, None] >= cumulative).sum(axis=1)
    none = choice == w.n_distractors + 1
    answer = np.where(none, -1, choice).astype(np.int64)
    kind = np.where(none, 2, np.minimum(choice, 1))

    # Length: answered samples conditioned below the cap; answerless ones cut at it.
    loc, scale = w.tokens_loc[rows, kind], w.tokens_scale
    cap = w.max_tokens.astype(np.float64)
    below = ndtr((np.log(cap) - loc) / scale)
    u = rng.random(q)
    z = ndtri(np.where(none, u, u * below))
    raw = np.exp(loc + scale * z)
    length = none & (raw >= cap)
    tokens = np.where(length, cap, np.clip(np.rint(raw), 1.0, cap - 1.0)).astype(np.int64)

    verdict = np.minimum(kind, 1)
    score = rng.beta(w.score_a[rows, verdict], w.score_b[rows, verdict])
    logprob = -np.exp(w.logprob_loc[rows, kind] + w.logprob_scale * rng.standard_normal(q))
    return answer, tokens, length, score, logprob
