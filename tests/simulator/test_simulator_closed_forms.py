"""The rollout against closed forms: exact multinomial majority vote (with the first-seen tie rule),
pass@k, ESC's expected sample count with disjoint windows, the Beta stopping probability, and
the ledger's water-filling against a one-sample-at-a-time reference. Oracles are computed here,
independently of the simulator (scipy for the Beta tail)."""

from __future__ import annotations

import heapq
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import betainc

from simulator.model import Questions
from simulator.rollout import Config, Rules, no_rules, simple_plan, simulate, water_fill

S = 64  # seeds; each seed is a fresh draw of every question's samples


def fixed_questions(probs: np.ndarray) -> Questions:
    """Questions with known answer distributions ``[Q, A + 1]``: ids 0..A-1, last = no answer;
    tokens far below any cap."""
    probs = np.asarray(probs, dtype=np.float64)
    q = probs.shape[0]
    p, none = probs[:, 0], probs[:, -1]
    wrong_mass = probs[:, 1:-1].sum(1)
    wrong = probs[:, 1:-1] / np.where(wrong_mass > 0, wrong_mass, 1.0)[:, None]
    wrong = np.where(wrong_mass[:, None] > 0, wrong, 1.0 / wrong.shape[1])
    f = lambda x: jnp.asarray(np.broadcast_to(x, (S, *np.shape(x))), jnp.float32)  # noqa: E731
    return Questions(
        p_correct=f(p), p_none=f(none), wrong=f(wrong),
        tokens_loc=f(np.full((q, 3), 3.0)), tokens_scale=f(np.full(q, 0.1)),
        score_a=f(np.ones((q, 2))), score_b=f(np.ones((q, 2))),
        logprob_loc=f(np.zeros((q, 2))), logprob_scale=f(np.full(q, 0.1)),
    )


def exact_majority(probs: np.ndarray, n: int) -> float:
    """P(majority vote of n samples is answer 0): ties split evenly among the tied answers (by
    exchangeability, each tied answer is equally likely to have been seen first)."""
    a = len(probs)
    total = 0.0
    for counts in itertools.product(range(n + 1), repeat=a):
        if sum(counts) != n:
            continue
        weight = math.factorial(n) * math.prod(p**c / math.factorial(c) for p, c in zip(probs, counts))
        votes = counts[:-1]  # the last id is "no answer"
        top = max(votes)
        if top == 0 or votes[0] != top:
            continue
        total += weight / sum(1 for v in votes if v == top)
    return total


PROBS = np.array([
    [0.40, 0.35, 0.15, 0.10],
    [0.30, 0.30, 0.30, 0.10],
    [0.55, 0.25, 0.20, 0.00],
    [0.20, 0.50, 0.10, 0.20],
])


def keys(seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.key(seed), S)


def test_majority_vote_and_pass_at_k_match_the_multinomial():
    n = 5
    # many copies of each question: the per-question means have a small error
    reps = 200
    probs = np.repeat(PROBS, reps, axis=0)
    out = simulate(keys(1), fixed_questions(probs), simple_plan(1, n, [n], [1.0]), Config(n, 0, 1))
    correct = np.asarray(out.correct).reshape(S, len(PROBS), reps).mean(axis=(0, 2))
    covered = np.asarray(out.covered).reshape(S, len(PROBS), reps).mean(axis=(0, 2))
    trials = S * reps
    for i, row in enumerate(PROBS):
        want = exact_majority(row, n)
        se = math.sqrt(want * (1 - want) / trials)
        assert abs(correct[i] - want) <= 4 * se + 1e-9, (i, correct[i], want)
        cover = 1 - (1 - row[0]) ** n
        se = math.sqrt(cover * (1 - cover) / trials)
        assert abs(covered[i] - cover) <= 4 * se + 1e-9, (i, covered[i], cover)
    assert np.all(np.asarray(out.samples) == n)


def disjoint_rules(n_positions: int, size: int, first_check: int) -> Rules:
    base = no_rules(1, n_positions)
    return base._replace(window=jnp.array([size], jnp.int32), first_check=jnp.array([first_check], jnp.int32),
                         any=jnp.array([True]))


def test_esc_expected_samples_with_disjoint_windows():
    """ESC: probe = one window of K, stop at the end of the first unanimous window, at most W
    windows: E[N] = K * sum_{w < W} (1 - u)^w with u = sum_a p_a^K over real answers."""
    size, windows = 4, 4
    length = size * windows
    reps = 200
    probs = np.repeat(PROBS, reps, axis=0)
    plan = simple_plan(1, length, [length], [1.0], rules=disjoint_rules(length, size, size))
    out = simulate(keys(2), fixed_questions(probs), plan, Config(length, size, 1))
    spent = np.asarray(out.samples, dtype=np.float64).reshape(S, len(PROBS), reps)
    for i, row in enumerate(PROBS):
        u = float((row[:-1] ** size).sum())
        want = size * sum((1 - u) ** w for w in range(windows))
        values = spent[:, i, :].ravel()
        se = values.std() / math.sqrt(values.size)
        assert abs(values.mean() - want) <= 4 * se + 1e-6, (i, values.mean(), want)
        assert set(np.unique(values)) <= {size * (w + 1) for w in range(windows)}


def test_beta_stopping_probability():
    """Adaptive-Consistency's rule at one check: with probe m and target m + 1, a query stops at m
    exactly when P(p > 1/2) = 1 - I_0.5(v1 + 1, v2 + 1) >= t for its two leading counts."""
    m, t = 6, 0.9
    n, first, second = np.meshgrid(*[np.arange(m + 2)] * 3, indexing="ij")
    conf = np.where(first > 0, 1.0 - betainc(first + 1.0, second + 1.0, 0.5), 0.0)
    rules = no_rules(1, m + 1)._replace(votes=jnp.asarray(conf >= t)[None], first_check=jnp.array([m], jnp.int32),
                                        any=jnp.array([True]))
    two = np.array([[0.6, 0.3, 0.1], [0.5, 0.5, 0.0], [0.8, 0.1, 0.1]])
    reps = 200
    probs = np.repeat(two, reps, axis=0)
    plan = simple_plan(1, m + 1, [m + 1], [1.0], rules=rules)
    out = simulate(keys(3), fixed_questions(probs), plan, Config(m + 1, m, 1))
    stopped = (np.asarray(out.samples) == m).reshape(S, len(two), reps)
    for i, (p1, p2, p0) in enumerate(two):
        want = 0.0
        for c1 in range(m + 1):
            for c2 in range(m + 1 - c1):
                c0 = m - c1 - c2
                prob = math.factorial(m) / (math.factorial(c1) * math.factorial(c2) * math.factorial(c0))
                prob *= p1**c1 * p2**c2 * p0**c0
                v1, v2 = max(c1, c2), min(c1, c2)
                if v1 > 0 and 1.0 - betainc(v1 + 1.0, v2 + 1.0, 0.5) >= t:
                    want += prob
        got = stopped[:, i, :].mean()
        se = math.sqrt(want * (1 - want) / stopped[:, i, :].size)
        assert abs(got - want) <= 4 * se + 1e-9, (i, got, want)


def reference_fill(ask, have, room, rank):
    """The ledger's rule, one sample at a time (ttcdsl.runtime.ledger.Ledger.fit)."""
    if sum(ask) <= room:
        return list(ask)
    grant = [0] * len(ask)
    heap = [(have[i], rank[i], i) for i in range(len(ask)) if ask[i] > 0]
    heapq.heapify(heap)
    left = room
    while heap and left >= 1:
        level, r, i = heapq.heappop(heap)
        grant[i] += 1
        left -= 1
        if grant[i] < ask[i]:
            heapq.heappush(heap, (level + 1, r, i))
    return grant


@pytest.mark.parametrize("case", range(12))
def test_water_fill_matches_the_ledger_rule(case):
    rng = np.random.default_rng(case)
    q = int(rng.integers(1, 12))
    ask = rng.integers(0, 6, q)
    have = rng.integers(0, 8, q)
    room = float(rng.integers(0, int(ask.sum()) + 3))
    order = rng.permutation(q)
    rank = np.argsort(order)
    got = water_fill(jnp.asarray(ask, jnp.int32), jnp.asarray(have, jnp.int32), jnp.asarray(room),
                     jnp.asarray(order), jnp.asarray(rank))
    assert list(np.asarray(got)) == reference_fill(list(ask), list(have), room, list(rank))


def test_mean_sample_cap_is_never_exceeded():
    q, n = 300, 12
    probs = np.repeat(PROBS, q // len(PROBS), axis=0)
    plan = simple_plan(1, n, [n], [1.0], sample_cap=7.3)
    out = simulate(keys(4), fixed_questions(probs), plan, Config(n, 0, 1))
    spent = np.asarray(out.samples)
    assert np.all(spent.sum(1) <= math.floor(7.3 * len(probs)))
    assert np.all(spent.sum(1) >= math.floor(7.3 * len(probs)) - 0)  # the cut round spends it all
    assert spent.max() - spent.min() <= 1  # water-filling levels the queries


def test_same_key_same_rollout():
    probs = np.repeat(PROBS, 10, axis=0)
    plan = simple_plan(1, 5, [5], [1.0])
    a = simulate(keys(5), fixed_questions(probs), plan, Config(5, 0, 1))
    b = simulate(keys(5), fixed_questions(probs), plan, Config(5, 0, 1))
    c = simulate(keys(6), fixed_questions(probs), plan, Config(5, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.correct, c.correct)
