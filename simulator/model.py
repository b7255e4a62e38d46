"""The parametric workload model in JAX: per-question response processes, and samples drawn from them.

A *workload* is a population of questions; a question is a response process. Per question ``q``
(:class:`Questions`, arrays over questions):

* **Outcome.** A sample is latently correct with ``p_correct[q]``, has no answer with
  ``p_none[q]``, and is otherwise wrong, with wrong answer ``d`` (ids ``R..R+D-1``) drawn from
  ``wrong[q]`` (a distribution over ``D`` distractors). Answer ids ``0..R-1`` are correct: a
  correct sample's answer is drawn from ``right[q]`` (a distribution over ``R`` correct answers;
  a question with several right answers, e.g. any input giving a function's output, splits its
  correct votes). ``right`` None is one correct answer (``R = 1``, id 0).
* **Tokens.** Completion length is log-normal, log-median ``tokens_loc[q, k]`` for outcome class
  ``k`` (0 correct, 1 wrong, 2 none), log-scale ``tokens_scale[q]``. A sample whose length reaches
  the ``max_tokens`` cap it was served under is cut there and loses its answer (a cut reasoning
  trace has no final answer), so the observed P(correct) is ``p_correct * F_0(cap)``. A question
  with its own generation cap ``max_tokens[q]`` (the built-in population) draws an answered
  sample's length below that cap, as ``ttc workload`` does, and ``F_0`` is conditioned on it.
* **Scores.** A verifier (reward-model) score ``Beta(score_a[q, c], score_b[q, c])`` and a mean
  token log-probability ``-exp(N(logprob_loc[q, c], logprob_scale))``, ``c`` 0 for correct
  samples and 1 for the rest (or, where ``logprob_loc`` has three columns, 1 wrong and 2 none):
  correct and wrong samples differ, imperfectly. The mixture draws
  each question's Beta pair with :func:`simulator.verifier.verifier_beta`, the rule ``ttc
  workload`` uses.
* **Prompt.** ``prompt_tokens[q]``: the question's prompt length in tokens, the same for every
  sample (a live backend sends one prompt per query); a ledger that charges prompt tokens bills
  it per sample and bounds a round's worst case with it. The mixture draws it log-normal,
  longer for harder questions (``simulator.workload``'s rule); a fitted workload takes each
  question's largest logged count (None where the table has none).

A :class:`Mixture` is the parametric population: :mod:`simulator.population`'s difficulty tiers,
the one ``ttc workload`` draws its tables from (so the simulator's built-in workload and the
built-in table are one model, drawn with JAX's and NumPy's random numbers respectively).
:func:`draw_questions` draws questions from it; :mod:`simulator.fit` makes per-question posteriors
from a samples table instead. Either way the rollouts only see :class:`Questions`.

Pure functions of a PRNG key; shapes are static (``n_questions``, ``n_wrong``, ``n_samples``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from simulator import population, threefry

CORRECT, WRONG, NONE = 0, 1, 2


class Questions(NamedTuple):
    """Per-question response processes (module docstring); ``[Q]`` or ``[Q, ...]`` arrays."""

    p_correct: jax.Array  # [Q] latent P(correct), before the token cap
    p_none: jax.Array  # [Q] P(no answer), before the cap
    wrong: jax.Array  # [Q, D] P(distractor d | wrong), rows sum to 1
    tokens_loc: jax.Array  # [Q, 3] log-median completion tokens per outcome class
    tokens_scale: jax.Array  # [Q]
    score_a: jax.Array  # [Q, 2] verifier Beta a: correct, other
    score_b: jax.Array  # [Q, 2]
    logprob_loc: jax.Array  # [Q, 2] location of log(-mean_logprob): correct, other
    logprob_scale: jax.Array  # [Q]
    right: jax.Array | None = None  # [Q, R] P(correct answer r | correct); None: R = 1
    prompt_tokens: jax.Array | None = None  # [Q] int32 prompt tokens (None: unknown)
    # [Q] the cap the question generates under: a sample with an answer finished below it (its
    # length is drawn conditioned on that); None: lengths unconditioned
    max_tokens: jax.Array | None = None


def n_right(questions: Questions) -> int:
    """``R``: answer ids below it are correct (static: a shape)."""
    return 1 if questions.right is None else int(questions.right.shape[-1])


def is_right(answer: jax.Array, n_right: int = 1) -> jax.Array:
    """Whether answer ids are correct: ``0 <= answer < n_right`` (-1 is no answer)."""
    return (answer >= 0) & (answer < n_right)


class Mixture(NamedTuple):
    """A parametric population of questions: :mod:`simulator.population`'s difficulty tiers
    (``ttc workload`` draws from the same ones), with the knobs the named workloads turn."""

    weights: jax.Array  # [4] shares of population.TIERS
    wrong_concentration: jax.Array  # scalar: the Dirichlet alpha of the wrong answers' spread
    max_tokens: float = float(population.MAX_TOKENS)  # the cap the questions are generated under


class Samples(NamedTuple):
    """What a run observes of ``M`` samples per question (never correctness)."""

    answer: jax.Array  # [Q, M] int32: answer ids (0 .. R-1 correct, R .. R+D-1 wrong), -1 no answer
    tokens: jax.Array  # [Q, M] float32 completion tokens
    score: jax.Array  # [Q, M] float32 verifier score in (0, 1); NaN for a cut sample
    logprob: jax.Array  # [Q, M] float32 mean token log-probability (< 0); NaN for a cut sample


class Latent(NamedTuple):
    """Samples before the token cap is applied (the cap depends on where a sample is served)."""

    answer: jax.Array  # [Q, M] int32: 0..R-1 correct, R..R+D-1 wrong, -1 none
    length: jax.Array  # [Q, M] float32: untruncated completion length
    score: jax.Array
    logprob: jax.Array


def default_mixture() -> Mixture:
    """The built-in MATH-like population (``ttc workload``'s): half easy, a quarter medium, a tail
    of hard and hopeless questions (:data:`simulator.population.DEFAULT_MIX`)."""
    return Mixture(weights=jnp.asarray(population.tier_weights(population.DEFAULT_MIX), jnp.float32),
                   wrong_concentration=jnp.asarray(population.DISTRACTOR_CONCENTRATION, jnp.float32))


@partial(jax.jit, static_argnames=("n_questions", "n_wrong"))
def draw_questions(key: jax.Array, mixture: Mixture, n_questions: int, n_wrong: int = 8) -> Questions:
    """``n_questions`` questions drawn from ``mixture``: each one's tier, then its parameters by
    :func:`simulator.population.question_parameters` from JAX's standard draws."""
    q = n_questions
    keys = iter(jax.random.split(key, 2 + len(population.StandardDraws._fields)))
    tier = jax.random.categorical(next(keys), jnp.log(mixture.weights), shape=(q,))

    def draw(field: str) -> jax.Array:  # the field's prefix says its law
        if field == "spread":
            return jax.random.dirichlet(next(keys), jnp.full((n_wrong,), mixture.wrong_concentration), (q,))
        return (jax.random.uniform if field.startswith("u_") else jax.random.normal)(next(keys), (q,))

    draws = population.StandardDraws(*(draw(f) for f in population.StandardDraws._fields))
    p = population.question_parameters(jnp, tier, draws)
    return Questions(
        p_correct=p.p_correct,
        p_none=p.p_none,
        wrong=p.distractors,
        tokens_loc=p.tokens_loc,
        tokens_scale=p.tokens_scale,
        score_a=p.score_a,
        score_b=p.score_b,
        logprob_loc=p.logprob_loc,
        logprob_scale=p.logprob_scale,
        prompt_tokens=p.prompt_tokens.astype(jnp.int32),
        max_tokens=jnp.full((q,), mixture.max_tokens, jnp.float32),
    )


def outcome_probs(questions: Questions) -> jax.Array:
    """``[Q, R + D + 1]``: latent P(answer id) for ids 0..R+D-1, then no answer."""
    p, none = questions.p_correct, questions.p_none
    wrong = jnp.clip(1.0 - p - none, 0.0, 1.0)
    right = p[:, None] if questions.right is None else p[:, None] * questions.right
    return jnp.concatenate([right, wrong[:, None] * questions.wrong, none[:, None]], axis=1)


@partial(jax.jit, static_argnames=("n_samples", "scores", "logprobs"))
def draw_latent(key: jax.Array, questions: Questions, n_samples: int, scores: bool = True,
                logprobs: bool = True) -> Latent:
    """``n_samples`` latent samples of every question (i.i.d. given the question); without
    ``scores`` (``logprobs``) the verifier scores (log-probabilities) are not drawn: zeros, for
    rollouts that never read them (Beta draws are the costliest part)."""
    k_out, k_len, k_score, k_lp = jax.random.split(key, 4)
    q = questions.p_correct.shape[0]
    r = n_right(questions)
    d = questions.wrong.shape[1] + r - 1  # the last answer id
    probs = outcome_probs(questions)
    # inverse CDF: one uniform per sample (categorical's Gumbel trick draws one per class)
    cum = jnp.cumsum(probs, axis=1)[:, :-1]
    u = threefry.uniform(k_out, (q, n_samples)) * jnp.sum(probs, axis=1, keepdims=True)
    # the same comparisons summed one class at a time: XLA's CPU code reduces a [Q, M, A] array
    # over its short last axis several times slower (0.45 s against 0.11 s for 8e6 samples)
    choice = jnp.zeros((q, n_samples), jnp.int32)
    for a in range(cum.shape[1]):
        choice = choice + (u >= cum[:, a, None])
    none = choice == d + 1
    answer = jnp.where(none, -1, choice).astype(jnp.int32)
    # per-class parameters by selects, not gathers (a gather per sample is the slow part on CPU)
    right = ~none & (choice < r)

    def by_kind(x):  # [Q, 3] (correct, wrong, none) -> [Q, M]
        return jnp.where(none, x[:, NONE, None], jnp.where(right, x[:, CORRECT, None], x[:, WRONG, None]))

    loc = by_kind(questions.tokens_loc)
    scale = questions.tokens_scale[:, None]
    if questions.max_tokens is None:
        length = jnp.exp(loc + scale * threefry.normal(k_len, (q, n_samples)))
    else:  # answered samples finished before the cap: inverse CDF of the log-normal below it
        cap = questions.max_tokens[:, None]
        below = jax.scipy.special.ndtr((jnp.log(cap) - questions.tokens_loc) / scale)  # [Q, 3]
        below = by_kind(below.at[:, NONE].set(1.0))
        # ndtri(p) = sqrt(2) erfinv(2p - 1), as jax.random.normal draws (XLA's erfinv: several
        # times cheaper than ndtri's three branches); p below float32's resolution at -1 is
        # clamped there, as a normal draw's uniform is
        two_p = 2.0 * threefry.uniform(k_len, (q, n_samples)) * below - 1.0
        z = jnp.sqrt(2.0) * jax.lax.erf_inv(jnp.maximum(two_p, jnp.nextafter(-1.0, 0.0)))
        length = jnp.exp(loc + scale * z)
        length = jnp.where(none, length, jnp.minimum(length, cap - 1.0))

    def by_class(x):  # [Q, 2] (correct, other) -> [Q, M]
        return jnp.where(right, x[:, 0, None], x[:, 1, None])

    score = jax.random.beta(k_score, by_class(questions.score_a), by_class(questions.score_b)) if scores \
        else jnp.zeros((q, n_samples))
    lp = questions.logprob_loc  # [Q, 2] (correct, other) or [Q, 3] (correct, wrong, none)
    lp_loc = by_class(lp) if lp.shape[1] == 2 else by_kind(lp)
    logprob = (-jnp.exp(lp_loc + questions.logprob_scale[:, None] * threefry.normal(k_lp, (q, n_samples)))
               if logprobs else jnp.zeros((q, n_samples)))
    return Latent(answer=answer, length=length, score=score, logprob=logprob)


def serve(latent: Latent, cap: jax.Array) -> Samples:
    """The samples as served under ``cap`` (``max_tokens``, broadcast against ``[Q, M]``): a
    sample longer than the cap is cut at it and has no answer, score or log-probability (NaN:
    they belong to the full sample; ``ttcdsl.samples.truncation``)."""
    whole = jnp.maximum(jnp.round(latent.length), 1.0)
    cut = whole > cap  # the samples table's rule: more tokens than the cap means cut
    tokens = jnp.where(cut, cap, whole)
    answer = jnp.where(cut, -1, latent.answer)
    return Samples(answer=answer, tokens=tokens, score=jnp.where(cut, jnp.nan, latent.score),
                   logprob=jnp.where(cut, jnp.nan, latent.logprob))


def observed_p_correct(questions: Questions, cap: float) -> jax.Array:
    """``[Q]`` P(a sample served under ``cap`` is correct): latent correct and not cut."""
    def below(c):
        return jax.scipy.stats.norm.cdf((jnp.log(c) - questions.tokens_loc[:, CORRECT]) / questions.tokens_scale)

    if questions.max_tokens is None:
        return questions.p_correct * below(cap)
    # lengths are conditioned below the generation cap: a lower serving cap cuts the share
    # between the two
    return questions.p_correct * jnp.minimum(below(cap) / below(questions.max_tokens), 1.0)
