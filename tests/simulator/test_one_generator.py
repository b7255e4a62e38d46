"""One generator: ``ttc workload``'s NumPy tables and the simulator's built-in JAX workload are the
same model (simulator.population), drawn with two sources of random numbers. They must agree in
distribution: every question parameter, every observable of the samples, and what a vote makes of
them, within sampling error; and a serving cap below the generation cap must cut the same share
of samples in both, as the oracle's closed form says."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from simulator.model import default_mixture, draw_latent, draw_questions, observed_p_correct, serve
from simulator.population import MAX_TOKENS
from simulator.workload import draw_samples, synthetic_workload

Q = 20_000
M = 8


@pytest.fixture(scope="module")
def numpy_side():
    workload = synthetic_workload(Q, seed=11)
    return workload, draw_samples(workload, M, seed=12)


@pytest.fixture(scope="module")
def jax_side():
    questions = draw_questions(jax.random.key(11), default_mixture(), Q)
    latent = draw_latent(jax.random.key(12), questions, M)
    return questions, latent


def _agree(name: str, a: np.ndarray, b: np.ndarray, z: float = 4.5) -> None:
    """Means of two independent samples of per-question values agree within ``z`` SE."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    se = math.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) <= z * se + 1e-12, (
        f"{name}: numpy {a.mean():.4f} vs jax {b.mean():.4f} (se {se:.4f})")


def test_the_question_parameters_agree(numpy_side, jax_side):
    w, _ = numpy_side
    q, _ = jax_side
    p_np, p_jx = w.p_correct, np.asarray(q.p_correct)
    # the tiers: their p_correct ranges are disjoint, so the shares show in p_correct
    for lo, hi in ((0.85, 1.01), (0.3, 0.7), (0.05, 0.3)):
        _agree(f"share with p_correct in [{lo}, {hi})", (p_np >= lo) & (p_np < hi), (p_jx >= lo) & (p_jx < hi))
    _agree("share with p_correct = 0", p_np == 0, p_jx == 0)
    _agree("p_correct", p_np, p_jx)
    _agree("p_none", w.p_none, q.p_none)
    _agree("top distractor's share", w.distractors[:, 0], np.asarray(q.wrong)[:, 0])
    for k in range(3):
        _agree(f"tokens_loc[{k}]", w.tokens_loc[:, k], np.asarray(q.tokens_loc)[:, k])
        _agree(f"logprob_loc[{k}]", w.logprob_loc[:, k], np.asarray(q.logprob_loc)[:, k])
    _agree("tokens_scale", w.tokens_scale, q.tokens_scale)
    for c in range(2):
        _agree(f"score_a[{c}]", w.score_a[:, c], np.asarray(q.score_a)[:, c])
        _agree(f"score_b[{c}]", w.score_b[:, c], np.asarray(q.score_b)[:, c])
    _agree("prompt tokens", w.prompt_tokens, np.asarray(q.prompt_tokens))
    assert np.all(np.asarray(q.max_tokens) == MAX_TOKENS) and np.all(w.max_tokens == MAX_TOKENS)


def test_the_samples_and_their_votes_agree(numpy_side, jax_side):
    _, d = numpy_side
    q, latent = jax_side
    obs = serve(latent, float(MAX_TOKENS))
    answer = np.asarray(obs.answer)
    tokens = np.asarray(obs.tokens)
    cut_jx = tokens >= MAX_TOKENS
    _agree("P(correct)", d.answer == 0, answer == 0)
    _agree("P(no answer)", d.answer == -1, answer == -1)
    _agree("P(cut at the cap)", d.finish_reason_length, cut_jx)
    assert not np.any(cut_jx & (np.asarray(latent.answer) >= 0)), "an answered sample reached the cap"
    _agree("completion tokens", d.completion_tokens, tokens)
    score = np.asarray(obs.score)
    for label, np_rows, jx_rows in (("correct", d.answer == 0, answer == 0), ("wrong", d.answer > 0, answer > 0)):
        _agree(f"score of {label} samples", d.score[np_rows], score[jx_rows])
        _agree(f"mean logprob of {label} samples", d.mean_logprob[np_rows], np.asarray(obs.logprob)[jx_rows])
    _agree("mean logprob of answerless, uncut samples", d.mean_logprob[(d.answer == -1) & ~d.finish_reason_length],
           np.asarray(obs.logprob)[(answer == -1) & ~cut_jx])
    _agree("maj@8 accuracy", _majority_correct(d.answer), _majority_correct(answer))
    _agree("coverage@8", (d.answer == 0).any(1), (answer == 0).any(1))


def test_a_lower_serving_cap_cuts_the_same_share(numpy_side, jax_side):
    """Served under 1024 tokens, a logged sample longer than that is cut and loses its answer (the
    samples table's truncation rule); the JAX model serves its latent samples the same way, and the
    oracle's closed form gives the share that survives."""
    cap = 1024
    _, d = numpy_side
    q, latent = jax_side
    correct_np = (d.answer == 0) & (d.completion_tokens <= cap)
    correct_jx = np.asarray(serve(latent, float(cap)).answer) == 0
    _agree("P(correct) under a 1024 cap", correct_np, correct_jx)
    closed = np.asarray(observed_p_correct(q, float(cap)))
    _agree("the oracle's P(correct) under a 1024 cap", closed, correct_jx.mean(1), z=4.5)
    assert correct_jx.mean() < (np.asarray(latent.answer) == 0).mean() - 0.01  # the cap binds


def _majority_correct(answer: np.ndarray) -> np.ndarray:
    """Per question: whether the most frequent answer (ties to the smallest id; none never wins
    over an answer) is the correct one (id 0)."""
    ids = np.where(answer < 0, answer.max() + 1, answer)
    counts = np.stack([(ids == k).sum(1) for k in range(int(ids.max()) + 1)], axis=1)
    counts[:, -1] = np.where(counts[:, :-1].sum(1) > 0, -1, counts[:, -1])
    return counts.argmax(1) == 0
