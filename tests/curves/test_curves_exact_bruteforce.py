"""Every exact estimator against brute force over all ordered draws, applying the runtime's rules."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcdsl.curves import QueryPool, exact

SCORES = [-1.0, 0.0, 0.5, 1.0, 2.0, math.nan]
# weighted_vote adds vote weights, which are >= 0 (ttcdsl.features.weights); NaN weighs 0
WEIGHTS = [0.0, 0.5, 1.0, 2.0, math.nan]


@st.composite
def queries(draw, max_m: int = 6, values=tuple(SCORES)):
    """One query: answers (None = no answer), per-answer correctness, scores with ties and NaN."""
    m = draw(st.integers(1, max_m))
    answers = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=m, max_size=m))
    right = draw(st.sets(st.integers(0, 3)))
    scores = draw(st.lists(st.sampled_from(values), min_size=m, max_size=m))
    return answers, [a is not None and a in right for a in answers], scores


def pool_of(qs) -> QueryPool:
    return QueryPool.from_lists(
        [q[0] for q in qs], [q[1] for q in qs], scores={"s": [q[2] for q in qs]}
    )


def runtime_answer(order, answers, scores, strategy):
    """The runtime's pick from samples taken in ``order``: an answer (votes) or a sample index."""
    if strategy == "best_of_n":
        best = None
        for j in order:
            if answers[j] is None or math.isnan(scores[j]):
                continue
            if best is None or scores[j] > scores[best]:  # strict: ties stay with the earliest
                best = j
        return best
    totals: dict = {}
    for j in order:
        a = answers[j]
        if a is None:
            continue
        weight = (
            1.0 if strategy == "majority_vote" else (0.0 if math.isnan(scores[j]) else scores[j])
        )
        totals[a] = totals.get(a, 0.0) + weight  # dict order = order of first occurrence
    if not totals:
        return None
    top = max(totals.values())
    return next(a for a, t in totals.items() if t == top)


def brute(answers, correct, scores, strategy, n):
    """Mean over every ordered draw of n samples of the runtime's verdict."""
    verdicts = [
        brute_one(order, answers, correct, scores, strategy)
        for order in itertools.permutations(range(len(answers)), n)
    ]
    return sum(verdicts) / len(verdicts)


def check(qs, strategy, estimate):
    pool = pool_of(qs)
    levels = max(len(q[0]) for q in qs)
    got = estimate(pool, levels)
    for i, (answers, correct, scores) in enumerate(qs):
        m = len(answers)
        want = [brute(answers, correct, scores, strategy, n) for n in range(1, m + 1)]
        np.testing.assert_allclose(got[i, :m], want, rtol=0, atol=1e-12)
        assert np.isnan(got[i, m:]).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(queries(), min_size=1, max_size=3))
def test_majority_vote_dp_equals_enumeration(qs) -> None:
    check(qs, "majority_vote", exact.majority_vote)


@settings(max_examples=60, deadline=None)
@given(st.lists(queries(), min_size=1, max_size=3))
def test_best_of_n_equals_enumeration(qs) -> None:
    check(qs, "best_of_n", lambda p, n: exact.best_of_n(p, n, p.score("s")))


@settings(max_examples=60, deadline=None)
@given(st.lists(queries(values=tuple(WEIGHTS)), min_size=1, max_size=3))
def test_weighted_vote_equals_enumeration(qs) -> None:
    def estimate(p, n):
        values, done = exact.weighted_vote(p, n, p.score("s"))
        assert (done == ~np.isnan(values)).all()
        chunked, _ = exact.weighted_vote(
            p, n, p.score("s"), chunk_elements=5
        )  # a few subsets at a time
        np.testing.assert_allclose(chunked, values, rtol=0, atol=1e-12)
        return values

    check(qs, "weighted_vote", estimate)


@settings(max_examples=60, deadline=None)
@given(st.lists(queries(), min_size=1, max_size=3))
def test_coverage_and_single_equal_enumeration(qs) -> None:
    check(qs, "pass_at_k", exact.coverage)
    check(qs, "single", exact.single)


def test_majority_vote_with_many_answers_and_deep_ties() -> None:
    """m = 9 with four answers of equal count and several correct answers: exercises the tie
    dimension beyond the hypothesis sizes (9! / 3! orders per level would be slow; use subsets)."""
    answers = [0, 1, 2, 3, 0, 1, 2, 3, None]
    correct = [a in (1, 3) for a in answers]
    pool = QueryPool.from_lists([answers], [correct])
    got = exact.majority_vote(pool, 9)[0]
    for n in range(1, 10):
        acc = 0.0
        subsets = list(itertools.combinations(range(9), n))
        for sub in subsets:
            counts = {}
            for j in sub:
                if answers[j] is not None:
                    counts[answers[j]] = counts.get(answers[j], 0) + 1
            if counts:
                top = max(counts.values())
                tied = [a for a, c in counts.items() if c == top]
                acc += sum(a in (1, 3) for a in tied) / len(tied)
        assert abs(got[n - 1] - acc / len(subsets)) < 1e-12


def test_weighted_vote_beyond_enumeration_limit_is_left_to_monte_carlo(monkeypatch) -> None:
    monkeypatch.setattr(exact, "ENUMERATION_LIMIT", 10)
    pool = QueryPool.from_lists(
        [[0, 1, 0, 1, 2, 0]],
        [[True, False, True, False, False, True]],
        scores={"s": [[1, 2, 3, 4, 5, 6]]},
    )
    values, done = exact.weighted_vote(pool, 6, pool.score("s"))
    # C(6, n) for n = 1..6 is 6, 15, 20, 15, 6, 1: levels 2..4 exceed the limit of 10.
    assert done[0].tolist() == [True, False, False, False, True, True]
    assert np.isnan(values[0, 1:4]).all()


def test_negative_weights_are_refused() -> None:
    """A raw log-probability passed as a weight would make extra votes count against an answer."""
    pool = QueryPool.from_lists([[0, 0, 1]], [[True, True, False]], scores={"s": [[-0.2, -0.2, -0.5]]})
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        exact.weighted_vote(pool, 3, pool.score("s"))
    from ttcdsl.curves import evaluate_order, simulate

    with pytest.raises(ValueError, match="must be finite and >= 0"):
        simulate(pool, "weighted_vote", 3, reps=4, score=pool.score("s"))
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        evaluate_order(pool, "weighted_vote", score=pool.score("s"))


def test_pool_larger_than_the_binomial_table_is_refused() -> None:
    pool = QueryPool.from_lists([[0] * 1001], [[True] * 1001])
    with pytest.raises(ValueError, match="at most 1000"):
        exact.coverage(pool, 2)


@pytest.mark.parametrize(
    "strategy", ["majority_vote", "weighted_vote", "best_of_n", "pass_at_k", "single"]
)
def test_runtime_rules_in_jax_match_the_reference(strategy: str) -> None:
    """``evaluate_order`` (the JAX rules the Monte Carlo uses beyond m) against the reference
    rules above, on random pools in random orders."""
    from ttcdsl.curves import evaluate_order

    rng = np.random.default_rng(3)
    qs = []
    for _ in range(200):
        m = int(rng.integers(1, 7))
        answers = [None if x == 4 else int(x) for x in rng.integers(0, 5, m)]
        right = set(rng.choice(4, size=int(rng.integers(0, 3)), replace=False).tolist())
        values = WEIGHTS if strategy == "weighted_vote" else SCORES
        scores = [values[int(i)] for i in rng.integers(0, len(values), m)]
        qs.append((answers, [a is not None and a in right for a in answers], scores))
    pool = pool_of(qs)
    order = rng.random(pool.answer.shape)
    got = evaluate_order(pool, strategy, score=pool.score("s"), order=order)
    for i, (answers, correct, scores) in enumerate(qs):
        seq = sorted(range(len(answers)), key=lambda j: order[i, j])
        want = brute_one(seq, answers, correct, scores, strategy)
        assert got[i] == want, (i, strategy)


def brute_one(order, answers, correct, scores, strategy) -> bool:
    if strategy == "pass_at_k":
        return any(correct[j] for j in order)
    if strategy == "single":
        return bool(correct[order[0]])
    pick = runtime_answer(order, answers, scores, strategy)
    if strategy == "best_of_n":
        return pick is not None and bool(correct[pick])
    return pick is not None and any(c for a, c in zip(answers, correct, strict=True) if a == pick)


def test_chunked_estimators_match_one_pass() -> None:
    rng = np.random.default_rng(1)
    qs = [
        (
            [None if x == 3 else int(x) for x in rng.integers(0, 4, 7)],
            list(rng.random(7) < 0.4),
            [SCORES[int(i)] for i in rng.integers(0, len(SCORES), 7)],
        )
        for _ in range(20)
    ]
    pool = pool_of(qs)
    np.testing.assert_array_equal(
        exact.best_of_n(pool, 7, pool.score("s"), chunk_elements=1),
        exact.best_of_n(pool, 7, pool.score("s")),
    )
    np.testing.assert_array_equal(
        exact.majority_vote(pool, 7, chunk_elements=1), exact.majority_vote(pool, 7)
    )
