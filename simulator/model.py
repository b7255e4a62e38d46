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
  trace has no final answer), so the observed P(correct) is ``p_correct * F_0(cap)``.
* **Scores.** A verifier (reward-model) score ``Beta(score_a[q, c], score_b[q, c])`` and a mean
  token log-probability ``-exp(N(logprob_loc[q, c], logprob_scale))``, ``c`` 0 for correct
  samples and 1 for the rest: correct and wrong samples differ, imperfectly. The mixture draws
  each question's Beta pair with :func:`simulator.verifier.verifier_beta`, the rule ``ttc
  workload`` uses.
* **Prompt.** ``prompt_tokens[q]``: the question's prompt length in tokens, the same for every
  sample (a live backend sends one prompt per query); a ledger that charges prompt tokens bills
  it per sample and bounds a round's worst case with it. The mixture draws it log-normal,
  longer for harder questions (``simulator.workload``'s rule); a fitted workload takes each
  question's largest logged count (None where the table has none).

A :class:`Mixture` is the parametric population: ``p_correct`` from a Beta mixture over
difficulty, wrong answers from a symmetric Dirichlet, token locations rising with difficulty.
:func:`draw_questions` draws questions from it; :mod:`simulator.fit` makes per-question posteriors
from a samples table instead. Either way the rollouts only see :class:`Questions`.

Pure functions of a PRNG key; shapes are static (``n_questions``, ``n_wrong``, ``n_samples``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from simulator.verifier import verifier_beta

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


def n_right(questions: Questions) -> int:
    """``R``: answer ids below it are correct (static: a shape)."""
    return 1 if questions.right is None else int(questions.right.shape[-1])


def is_right(answer: jax.Array, n_right: int = 1) -> jax.Array:
    """Whether answer ids are correct: ``0 <= answer < n_right`` (-1 is no answer)."""
    return (answer >= 0) & (answer < n_right)


class Mixture(NamedTuple):
    """A parametric population of questions (module docstring). Component ``c`` has weight
    ``weights[c]`` and ``p_correct ~ Beta(a[c], b[c])``."""

    weights: jax.Array  # [C]
    a: jax.Array  # [C]
    b: jax.Array  # [C]
    none_rate: jax.Array  # scalar: P(no answer) at difficulty 1, scaled down for easier ones
    wrong_concentration: jax.Array  # scalar: symmetric Dirichlet alpha per distractor
    tokens_loc: jax.Array  # [3] log-median tokens per class for an easy question
    tokens_slope: jax.Array  # scalar: added to the log-median at difficulty 1 (1 - p)
    tokens_spread: jax.Array  # scalar: between-question sd of the log-median
    tokens_scale: jax.Array  # scalar: within-question log-scale
    logprob_loc: jax.Array  # [2]
    logprob_scale: jax.Array  # scalar
    # prompt tokens: exp(prompt_loc + prompt_slope x difficulty + prompt_scale x N(0, 1)), at least
    # prompt_min (simulator.workload draws prompts by the same rule)
    prompt_loc: float = 4.70048  # log 110
    prompt_slope: float = 0.4
    prompt_scale: float = 0.4
    prompt_min: float = 16.0


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
    """A MATH-like population: half easy, a quarter medium, a tail of hard and hopeless questions."""
    f = partial(jnp.asarray, dtype=jnp.float32)
    return Mixture(
        weights=f([0.5, 0.25, 0.15, 0.10]),
        a=f([18.0, 5.0, 1.5, 0.05]),
        b=f([1.0, 5.0, 8.0, 20.0]),
        none_rate=f(0.15),
        wrong_concentration=f(0.5),
        tokens_loc=f([5.94, 6.24, 7.24]),  # log 380, x1.35, x3.7
        tokens_slope=f(1.2),
        tokens_spread=f(0.3),
        tokens_scale=f(0.45),
        logprob_loc=f([-2.0, -1.5]),
        logprob_scale=f(0.3),
    )


@partial(jax.jit, static_argnames=("n_questions", "n_wrong"))
def draw_questions(key: jax.Array, mixture: Mixture, n_questions: int, n_wrong: int = 8) -> Questions:
    """``n_questions`` questions drawn from ``mixture``."""
    k_comp, k_p, k_none, k_wrong, k_tok = jax.random.split(key, 5)
    q = n_questions
    component = jax.random.categorical(k_comp, jnp.log(mixture.weights), shape=(q,))
    p = jax.random.beta(k_p, mixture.a[component], mixture.b[component])
    hard = 1.0 - p
    p_none = jnp.minimum(mixture.none_rate * hard * jax.random.uniform(k_none, (q,)) * 2.0, 1.0 - p)
    wrong = jax.random.dirichlet(k_wrong, jnp.full((n_wrong,), mixture.wrong_concentration), (q,))
    wrong = -jnp.sort(-wrong, axis=1)  # distractor 1 the most likely
    base = mixture.tokens_slope * hard + mixture.tokens_spread * jax.random.normal(k_tok, (q,))
    tokens_loc = mixture.tokens_loc[None, :] + base[:, None]
    ones = jnp.ones((q, 1))
    # the verifier, as ttc workload draws it; "confidently wrong": one distractor holds at least
    # half the wrong mass (workload.py's dominant share is 0.5 to 0.85). Its own key: the draws
    # above are unchanged.
    k_sep, k_centre, k_conc = jax.random.split(jax.random.fold_in(key, 5), 3)
    score_a, score_b = verifier_beta(jnp, hard, (wrong[:, 0] >= 0.5).astype(jnp.float32),
                                     jax.random.normal(k_sep, (q,)), jax.random.normal(k_centre, (q,)),
                                     jax.random.uniform(k_conc, (q,)))
    # prompt lengths: their own key too
    prompt = jnp.exp(mixture.prompt_loc + mixture.prompt_slope * hard
                     + mixture.prompt_scale * jax.random.normal(jax.random.fold_in(key, 6), (q,)))
    return Questions(
        p_correct=p,
        p_none=p_none,
        wrong=wrong,
        tokens_loc=tokens_loc,
        tokens_scale=jnp.full((q,), mixture.tokens_scale),
        score_a=score_a,
        score_b=score_b,
        logprob_loc=ones * mixture.logprob_loc[None, :],
        logprob_scale=jnp.full((q,), mixture.logprob_scale),
        prompt_tokens=jnp.maximum(jnp.round(prompt), mixture.prompt_min).astype(jnp.int32),
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
    u = jax.random.uniform(k_out, (q, n_samples)) * jnp.sum(probs, axis=1, keepdims=True)
    choice = (u[:, :, None] >= cum[:, None, :]).sum(2)
    none = choice == d + 1
    answer = jnp.where(none, -1, choice).astype(jnp.int32)
    # per-class parameters by selects, not gathers (a gather per sample is the slow part on CPU)
    right = ~none & (choice < r)
    loc = jnp.where(none, questions.tokens_loc[:, NONE, None],
                    jnp.where(right, questions.tokens_loc[:, CORRECT, None], questions.tokens_loc[:, WRONG, None]))
    length = jnp.exp(loc + questions.tokens_scale[:, None] * jax.random.normal(k_len, (q, n_samples)))

    def by_class(x):  # [Q, 2] (correct, other) -> [Q, M]
        return jnp.where(right, x[:, 0, None], x[:, 1, None])

    score = jax.random.beta(k_score, by_class(questions.score_a), by_class(questions.score_b)) if scores \
        else jnp.zeros((q, n_samples))
    lp_loc = by_class(questions.logprob_loc)
    logprob = (-jnp.exp(lp_loc + questions.logprob_scale[:, None] * jax.random.normal(k_lp, (q, n_samples)))
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
    z = (jnp.log(cap) - questions.tokens_loc[:, CORRECT]) / questions.tokens_scale
    return questions.p_correct * jax.scipy.stats.norm.cdf(z)
