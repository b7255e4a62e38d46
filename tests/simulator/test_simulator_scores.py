"""Reward-model scores in the rollout against closed forms computed here, independently of the
simulator: best-of-n's accuracy as an integral over the winning score, the expected sample count
of a stop rule on the best score so far and of the offline rule ``max(correct) >= 1`` (geometric
sums), and the float32 thresholds the lowering gives (the runtime compares in float64)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from simulator.rollout import (
    BEST_OF_N, CORRECT_MAX, EQ, GE, GT, LE, LT, NE, SCORE_MAX, Config, _compare, no_rules, simple_plan,
    simulate,
)
from tests.simulator.test_simulator_closed_forms import PROBS, S, fixed_questions, keys

# Beta score distributions: correct samples (class 0) score higher than the rest (class 1).
SCORE_A, SCORE_B = (4.0, 2.0), (2.0, 3.0)


def scored_questions(probs: np.ndarray):
    q = fixed_questions(probs)
    n = probs.shape[0]
    shape = (S, n, 2)
    return q._replace(score_a=jnp.broadcast_to(jnp.asarray(SCORE_A, jnp.float32), shape),
                      score_b=jnp.broadcast_to(jnp.asarray(SCORE_B, jnp.float32), shape))


def exact_best_of_n(row: np.ndarray, n: int) -> float:
    """P(the highest-scoring answered sample of n is correct): the winner is a correct sample
    with score s, every other sample is answerless or scores below s:
    n p f0(s) (none + p F0(s) + w F1(s))^(n - 1), integrated over s."""
    p, none = row[0], row[-1]
    w = 1.0 - p - none
    good, bad = stats.beta(*[SCORE_A[0], SCORE_B[0]]), stats.beta(*[SCORE_A[1], SCORE_B[1]])
    value, _ = integrate.quad(
        lambda s: n * p * good.pdf(s) * (none + p * good.cdf(s) + w * bad.cdf(s)) ** (n - 1), 0, 1)
    return value


def test_best_of_n_matches_the_integral():
    n, reps = 6, 200
    probs = np.repeat(PROBS, reps, axis=0)
    plan = simple_plan(1, n, [n], [1.0], strategy=BEST_OF_N)
    out = simulate(keys(3), scored_questions(probs), plan, Config(n, 0, 1, stops=False, scores=True, best=True))
    correct = np.asarray(out.correct).reshape(S, len(PROBS), reps).mean(axis=(0, 2))
    trials = S * reps
    for i, row in enumerate(PROBS):
        exact = exact_best_of_n(row, n)
        se = np.sqrt(exact * (1 - exact) / trials)
        assert abs(correct[i] - exact) <= 4 * se + 1e-9, (i, correct[i], exact)
    # and it is not majority vote: on these questions best-of-n differs from the vote
    vote = simulate(keys(3), scored_questions(probs), simple_plan(1, n, [n], [1.0]), Config(n, 0, 1, stops=False))
    assert abs(np.asarray(vote.correct).mean() - np.asarray(out.correct).mean()) > 0.02


def stat_rules(src: int, op: int, t: float, n: int):
    one = lambda v, dtype: jnp.full((1, 1), v, dtype)  # noqa: E731
    return no_rules(1, n)._replace(
        any=jnp.array([True]), stat_src=one(src, jnp.int32), stat_op=one(op, jnp.int32),
        stat_t=one(t, jnp.float32), stat_after=one(0, jnp.int32), stat_on=one(True, bool))


@pytest.mark.parametrize("t", [0.6, 0.85])
def test_stop_on_the_best_score_is_geometric(t):
    """``when score(prm) >= t`` with target N, checked after every sample: the run stops at the
    first sample scoring >= t, so E[samples] = sum_{k<N} (1 - r)^k with r = P(score >= t) (an
    answerless sample scores as a wrong one)."""
    n, reps = 8, 200
    probs = np.repeat(PROBS, reps, axis=0)
    plan = simple_plan(1, n, [n], [1.0], rules=stat_rules(SCORE_MAX, GE, t, n))
    out = simulate(keys(4), scored_questions(probs), plan, Config(n, 0, 1, scores=True))
    samples = np.asarray(out.samples).reshape(S, len(PROBS), reps)
    tail = [stats.beta(SCORE_A[c], SCORE_B[c]).sf(t) for c in (0, 1)]
    for i, row in enumerate(PROBS):
        r = row[0] * tail[0] + (1 - row[0]) * tail[1]
        k = np.arange(n)
        mean = ((1 - r) ** k).sum()
        second = ((2 * k + 1) * (1 - r) ** k).sum()  # E[X^2] = sum_k (2k + 1) P(X > k)
        se = np.sqrt((second - mean**2) / (S * reps))
        assert abs(samples[:, i].mean() - mean) <= 4 * se, (i, samples[:, i].mean(), mean)


def test_offline_stop_on_a_correct_sample():
    """``when max(correct) >= 1`` (offline evaluation): stop at the first correct sample, so
    E[samples] = sum_{k<N} (1 - p)^k and coverage is 1 - (1 - p)^N; the answer is the vote."""
    n, reps = 8, 200
    probs = np.repeat(PROBS, reps, axis=0)
    plan = simple_plan(1, n, [n], [1.0], rules=stat_rules(CORRECT_MAX, GE, 1.0, n))
    out = simulate(keys(5), scored_questions(probs), plan, Config(n, 0, 1))
    samples = np.asarray(out.samples).reshape(S, len(PROBS), reps)
    covered = np.asarray(out.covered).reshape(S, len(PROBS), reps)
    for i, row in enumerate(PROBS):
        p = row[0]
        k = np.arange(n)
        mean = ((1 - p) ** k).sum()
        second = ((2 * k + 1) * (1 - p) ** k).sum()
        se = np.sqrt((second - mean**2) / (S * reps))
        assert abs(samples[:, i].mean() - mean) <= 4 * se, (i, samples[:, i].mean(), mean)
        cov = 1 - (1 - p) ** n
        assert abs(covered[:, i].mean() - cov) <= 4 * np.sqrt(cov * (1 - cov) / (S * reps)) + 1e-9


def test_float32_thresholds_compare_as_the_runtime_does():
    """For every float32 score x, ``x OP t32`` in float32 is ``x OP t`` in float64 (the table
    stores the simulator's float32 scores as float64 and the runtime compares those)."""
    from ttcdsl.simulate import _float32_threshold

    rng = np.random.default_rng(0)
    codes = {">=": GE, ">": GT, "<=": LE, "<": LT, "==": EQ, "!=": NE}
    numpy_ops = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
                 "==": np.equal, "!=": np.not_equal}
    for t in (0.7, 0.1, 1 / 3, 0.5, float(np.float32(0.7))):
        t32 = np.float32(t)
        # the float32 values around t, where the rounding matters, and random ones
        near = np.array([np.nextafter(t32, np.float32(-1)), t32, np.nextafter(t32, np.float32(2))], np.float32)
        x = np.concatenate([near, rng.random(1000).astype(np.float32)])
        for op, code in codes.items():
            t_low = _float32_threshold(op, t)
            got = np.asarray(_compare(jnp.asarray(x), jnp.int32(code), jnp.float32(t_low)))
            want = numpy_ops[op](x.astype(np.float64), t)
            assert np.array_equal(got, want), (t, op)
