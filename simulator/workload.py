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

:func:`synthetic_workload` draws these parameters from a difficulty mixture (:data:`DEFAULT_MIX`);
:func:`draw_samples` draws the logged samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from simulator._normal import ndtr, ndtri
from simulator.verifier import verifier_beta

TIERS: tuple[str, ...] = ("easy", "medium", "hard", "hopeless")
"""The mixture components, in the order of :attr:`Workload.tier` codes 0..3."""

DEFAULT_MIX: Mapping[str, float] = {"easy": 0.5, "medium": 0.25, "hard": 0.15, "hopeless": 0.10}
"""Shares of the difficulty tiers.

* ``easy`` (50%): ``p_correct ~ U(0.85, 1)``. Most benchmark questions are solved by nearly every
  sample of a competent model.
* ``medium`` (25%): ``p_correct ~ U(0.3, 0.7)``; wrong answers mostly spread out, so the vote
  usually finds the right one: the questions where more samples pay.
* ``hard`` (15%): ``p_correct ~ U(0.05, 0.3)``, and 60% of them have a dominant distractor
  (50-85% of the wrong mass): majority vote fails, coverage or a verifier can still win.
* ``hopeless`` (10%): ``p_correct = 0``; half confidently wrong. Compute spent here is wasted.

With the default model this gives, on 500 questions and 16 samples per question (seed 0), single
sample accuracy 0.62, maj@8 0.73, best-of-8 by the verifier 0.75 and coverage@8 0.87: inside the
range of MATH-style pools (maj@8 from about 0.6 to 0.9 depending on the model), with the usual
ordering single < majority < best-of-n with a decent verifier < coverage.
"""

# Per tier: p_correct range, p_none range, share with a dominant distractor.
_P_CORRECT = {
    "easy": (0.85, 1.0),
    "medium": (0.3, 0.7),
    "hard": (0.05, 0.3),
    "hopeless": (0.0, 0.0),
}
_P_NONE = {
    "easy": (0.0, 0.03),
    "medium": (0.02, 0.08),
    "hard": (0.04, 0.15),
    "hopeless": (0.08, 0.25),
}
_DOMINANT = {"easy": 0.1, "medium": 0.2, "hard": 0.6, "hopeless": 0.5}
_DOMINANT_SHARE = (0.5, 0.85)
_DISTRACTOR_CONCENTRATION = 0.5  # Dirichlet: a few wrong answers take most of the wrong mass

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
    unknown = sorted(set(mix) - set(TIERS))
    if unknown:
        raise ValueError(f"unknown tier {unknown[0]!r} in mix (tiers: {', '.join(TIERS)})")
    shares = np.array([float(mix.get(t, 0.0)) for t in TIERS])
    if not np.all(np.isfinite(shares)) or shares.min() < 0 or shares.sum() <= 0:
        raise ValueError(f"mix shares must be non-negative with a positive sum, got {dict(mix)}")
    exact = shares / shares.sum() * n
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
    counts = _tier_counts(q, mix)
    tier = rng.permutation(np.repeat(np.arange(len(TIERS), dtype=np.int8), counts))

    def per_tier(table: Mapping[str, float | tuple[float, float]], column: int) -> np.ndarray:
        values = [table[t] if isinstance(table[t], float) else table[t][column] for t in TIERS]
        return np.asarray(values, dtype=np.float64)[tier]

    def uniform(table: Mapping[str, tuple[float, float]]) -> np.ndarray:
        low, high = per_tier(table, 0), per_tier(table, 1)
        return low + (high - low) * rng.random(q)

    p_correct = uniform(_P_CORRECT)
    p_none = np.minimum(uniform(_P_NONE), 1.0 - p_correct)

    # Wrong answers: a sparse Dirichlet spread; "confidently wrong" questions put a large share on
    # one distractor. Sorted so distractor 1 is the most likely wrong answer.
    spread = rng.dirichlet(np.full(d, _DISTRACTOR_CONCENTRATION), size=q) if q else np.zeros((0, d))
    dominant = rng.random(q) < per_tier(_DOMINANT, 0)
    share = _DOMINANT_SHARE[0] + (_DOMINANT_SHARE[1] - _DOMINANT_SHARE[0]) * rng.random(q)
    if d > 1:
        rest = spread[:, 1:] / np.maximum(spread[:, 1:].sum(1, keepdims=True), 1e-300)
        boosted = np.concatenate([share[:, None], (1.0 - share)[:, None] * rest], axis=1)
        spread = np.where(dominant[:, None], boosted, spread)
    distractors = -np.sort(-spread, axis=1)
    distractors /= distractors.sum(1, keepdims=True)

    # Difficulty 0 (always right) .. 1 (never right) drives length, verifier and confidence.
    hard = 1.0 - p_correct

    # Tokens: ~380 for an easy correct sample, ~3.3x that for a hopeless one; wrong samples
    # ~1.35x longer, answerless ones ~3.7x (many reach the cap on hard questions).
    base = np.log(380.0) + 1.2 * hard + 0.3 * rng.standard_normal(q)
    wrong_shift = 0.3 + 0.1 * rng.standard_normal(q)
    tokens_loc = np.stack([base, base + wrong_shift, base + 1.3], axis=1)
    tokens_scale = 0.35 + 0.25 * rng.random(q)

    # Verifier: simulator.verifier (the JAX model draws its scores with the same rule).
    z_separation = rng.standard_normal(q)
    z_centre = rng.standard_normal(q)
    score_a, score_b = verifier_beta(np, hard, dominant, z_separation, z_centre, rng.random(q))

    # Confidence: median mean logprob about -0.10 for an easy correct sample, -0.33 for a hard
    # one; wrong samples lower (less so on confidently wrong questions), answerless ones lowest.
    conf = np.log(0.10) + 1.2 * hard + 0.25 * rng.standard_normal(q)
    wrong_gap = np.where(dominant, 0.15, 0.5)
    logprob_loc = np.stack([conf, conf + wrong_gap, conf + 0.8], axis=1)
    logprob_scale = np.full(q, 0.3)

    prompt = np.exp(np.log(110.0) + 0.4 * hard + 0.4 * rng.standard_normal(q))
    return Workload(
        tier=tier,
        p_correct=p_correct,
        p_none=p_none,
        distractors=distractors,
        tokens_loc=tokens_loc,
        tokens_scale=tokens_scale,
        max_tokens=np.full(q, max_tokens, dtype=np.int64),
        score_a=score_a,
        score_b=score_b,
        logprob_loc=logprob_loc,
        logprob_scale=logprob_scale,
        prompt_tokens=np.maximum(np.rint(prompt), 16).astype(np.int64),
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
