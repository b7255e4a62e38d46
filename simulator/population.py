"""The built-in workload's population of questions, written once for both generators.

``ttc workload`` draws its tables in NumPy (:mod:`simulator.workload`, bit-stable by seed: the
README's figures and the golden plans rest on them); ``ttc simulate`` draws questions in JAX
(:mod:`simulator.model`), millions at a time under ``jit``. Both take each question's parameters
from :func:`question_parameters`: the same difficulty tiers, the same rules from a question's
difficulty to its wrong answers, token lengths, verifier and confidence, and its prompt. Only the
source of the standard random draws differs (NumPy's Philox streams or JAX's keys), so the two
are one workload model, drawn two ways; ``tests/simulator/test_one_generator.py`` holds them to
the same distribution.

The mixture (module constants below), per question:

* a **tier** (``TIERS``, shares :data:`DEFAULT_MIX`) fixes the ranges its ``p_correct`` and
  ``p_none`` are uniform on, and the chance that one distractor dominates its wrong answers;
* **wrong answers**: a sparse Dirichlet spread over ``D`` distractors (concentration
  :data:`DISTRACTOR_CONCENTRATION`); a "confidently wrong" question puts 50-85% of the wrong mass
  on one, so it out-votes a rarer correct answer. Sorted, most likely first;
* difficulty ``hard = 1 - p_correct`` drives the rest: completion lengths (log-normal, per
  outcome class correct / wrong / none), the verifier's Beta pair
  (:func:`simulator.verifier.verifier_beta`), the mean log-probability's location (per class) and
  the prompt length.

Pure array code over ``xp`` (``numpy`` or ``jax.numpy``); this module imports neither JAX nor
``ttcdsl``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from simulator.verifier import verifier_beta

TIERS: tuple[str, ...] = ("easy", "medium", "hard", "hopeless")
"""The mixture components, in the order of tier codes 0..3."""

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

# Per tier, in TIERS order: the p_correct range, the p_none range, the share of questions with a
# dominant distractor.
P_CORRECT = ((0.85, 1.0), (0.3, 0.7), (0.05, 0.3), (0.0, 0.0))
P_NONE = ((0.0, 0.03), (0.02, 0.08), (0.04, 0.15), (0.08, 0.25))
DOMINANT = (0.1, 0.2, 0.6, 0.5)
DOMINANT_SHARE = (0.5, 0.85)
DISTRACTOR_CONCENTRATION = 0.5  # Dirichlet: a few wrong answers take most of the wrong mass
MAX_TOKENS = 4096  # the completion cap the questions are generated under


def tier_weights(mix: Mapping[str, float]) -> np.ndarray:
    """``mix`` (tier -> share; missing tiers 0) as normalised shares in :data:`TIERS` order;
    ``ValueError`` naming an unknown tier or bad shares."""
    unknown = sorted(set(mix) - set(TIERS))
    if unknown:
        raise ValueError(f"unknown tier {unknown[0]!r} in mix (tiers: {', '.join(TIERS)})")
    shares = np.array([float(mix.get(t, 0.0)) for t in TIERS])
    if not np.all(np.isfinite(shares)) or shares.min() < 0 or shares.sum() <= 0:
        raise ValueError(f"mix shares must be non-negative with a positive sum, got {dict(mix)}")
    return shares / shares.sum()


class StandardDraws(NamedTuple):
    """The random inputs of :func:`question_parameters`, ``[Q]`` each: uniforms on [0, 1) (``u_``),
    standard normals (``z_``), and the Dirichlet spread of the wrong answers (``[Q, D]``, drawn
    with :data:`DISTRACTOR_CONCENTRATION` or a named workload's own). The field order is the order
    ``ttc workload`` draws them in (its tables are fixed by it)."""

    u_p_correct: Any
    u_p_none: Any
    spread: Any
    u_dominant: Any
    u_share: Any
    z_tokens: Any
    z_wrong_shift: Any
    u_tokens_scale: Any
    z_separation: Any
    z_centre: Any
    u_concentration: Any
    z_confidence: Any
    z_prompt: Any


class QuestionParameters(NamedTuple):
    """Per-question response processes (``[Q]`` or ``[Q, ...]``); outcome classes ``k``: 0
    correct, 1 wrong, 2 no answer."""

    p_correct: Any  # P(sample correct)
    p_none: Any  # P(no extractable answer); p_correct + p_none <= 1
    distractors: Any  # [Q, D] P(distractor d | wrong), rows sum to 1, descending
    dominant: Any  # bool: one distractor holds 50-85% of the wrong mass
    tokens_loc: Any  # [Q, 3] log-median completion tokens per outcome class
    tokens_scale: Any  # log-normal scale of completion tokens
    score_a: Any  # [Q, 2] verifier Beta a for correct (0) and other (1) samples
    score_b: Any  # [Q, 2]
    logprob_loc: Any  # [Q, 3] location of log(-mean_logprob) per outcome class
    logprob_scale: Any
    prompt_tokens: Any  # float, whole numbers >= 16


def question_parameters(xp, tier, draws: StandardDraws) -> QuestionParameters:
    """Each question's parameters from its tier code (``[Q]`` ints, :data:`TIERS` order) and its
    standard draws; ``xp`` is ``numpy`` or ``jax.numpy``."""
    dtype = draws.u_p_correct.dtype

    def per_tier(values) -> Any:
        return xp.asarray(values, dtype=dtype)[tier]

    def uniform(ranges, u) -> Any:
        low, high = per_tier([r[0] for r in ranges]), per_tier([r[1] for r in ranges])
        return low + (high - low) * u

    p_correct = uniform(P_CORRECT, draws.u_p_correct)
    p_none = xp.minimum(uniform(P_NONE, draws.u_p_none), 1.0 - p_correct)

    # Wrong answers: "confidently wrong" questions put a large share on one distractor.
    spread = draws.spread
    dominant = draws.u_dominant < per_tier(DOMINANT)
    share = DOMINANT_SHARE[0] + (DOMINANT_SHARE[1] - DOMINANT_SHARE[0]) * draws.u_share
    if spread.shape[1] > 1:
        rest = spread[:, 1:] / xp.maximum(spread[:, 1:].sum(1, keepdims=True), _tiny(spread.dtype))
        boosted = xp.concatenate([share[:, None], (1.0 - share)[:, None] * rest], axis=1)
        spread = xp.where(dominant[:, None], boosted, spread)
    distractors = -xp.sort(-spread, axis=1)
    distractors = distractors / distractors.sum(1, keepdims=True)

    # Difficulty 0 (always right) .. 1 (never right) drives length, verifier and confidence.
    hard = 1.0 - p_correct

    # Tokens: ~380 for an easy correct sample, ~3.3x that for a hopeless one; wrong samples
    # ~1.35x longer, answerless ones ~3.7x (many reach the cap on hard questions).
    base = np.log(380.0) + 1.2 * hard + 0.3 * draws.z_tokens
    wrong_shift = 0.3 + 0.1 * draws.z_wrong_shift
    tokens_loc = xp.stack([base, base + wrong_shift, base + 1.3], axis=1)
    tokens_scale = 0.35 + 0.25 * draws.u_tokens_scale

    score_a, score_b = verifier_beta(xp, hard, dominant.astype(dtype), draws.z_separation,
                                     draws.z_centre, draws.u_concentration)

    # Confidence: median mean logprob about -0.10 for an easy correct sample, -0.33 for a hard
    # one; wrong samples lower (less so on confidently wrong questions), answerless ones lowest.
    conf = np.log(0.10) + 1.2 * hard + 0.25 * draws.z_confidence
    wrong_gap = xp.where(dominant, 0.15, 0.5)
    logprob_loc = xp.stack([conf, conf + wrong_gap, conf + 0.8], axis=1)
    logprob_scale = xp.full(p_correct.shape, 0.3, dtype=dtype)

    prompt = xp.exp(np.log(110.0) + 0.4 * hard + 0.4 * draws.z_prompt)
    return QuestionParameters(
        p_correct=p_correct, p_none=p_none, distractors=distractors, dominant=dominant,
        tokens_loc=tokens_loc, tokens_scale=tokens_scale, score_a=score_a, score_b=score_b,
        logprob_loc=logprob_loc, logprob_scale=logprob_scale,
        prompt_tokens=xp.maximum(xp.rint(prompt), 16.0),
    )


def _tiny(dtype) -> float:
    """A floor for a sum that may be 0 (a sparse Dirichlet row): 1e-300 in float64 (what ``ttc
    workload`` has always used), the smallest normal number in narrower floats."""
    return 1e-300 if np.dtype(dtype) == np.float64 else float(np.finfo(dtype).tiny)
