from __future__ import annotations

import numpy as np
import pytest

from ttcdsl.curves import Method, QueryPool, exact, response_curve
from ttcdsl.curves.extrapolate import Extrapolation, coverage_beyond


@pytest.fixture(scope="module")
def pool() -> QueryPool:
    return QueryPool.from_lists(
        [["a", "b", "a", None], ["x", "y", "z"], ["k", "k"]],
        [[True, False, True, False], [False, False, False], [True, True]],
        scores={"rm": [[0.9, 0.8, 0.1, 0.0], [0.3, 0.2, 0.1], [0.5, 0.5]]},
        tokens=[[100, 200, 300, 400], [10, 20, 30], [None, 50]],
    )


def test_exact_levels_and_flags(pool: QueryPool) -> None:
    curve = response_curve(pool, "majority_vote", [1, 2, 3, 4])
    np.testing.assert_allclose(curve.accuracy[:, :2], exact.majority_vote(pool, 2))
    assert curve.method.tolist() == [[0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 2, 2]]
    assert (curve.accuracy_stderr[curve.method == Method.EXACT] == 0).all()
    assert curve.samples.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(curve.tokens[:, 1], [500.0, 40.0, 100.0])  # 2 x mean known tokens
    np.testing.assert_allclose(curve.coverage[0], exact.coverage(pool, 4)[0])
    assert curve.level_method.tolist() == [0, 0, 2, 2]


def test_queries_select_a_bin(pool: QueryPool) -> None:
    curve = response_curve(pool, "coverage", 3, queries=[2, 0])
    assert curve.strategy == "pass_at_k"
    assert curve.query_index.tolist() == [2, 0]
    np.testing.assert_allclose(curve.accuracy[1], exact.coverage(pool, 3)[0])
    assert curve.accuracy[0].tolist() == [1.0, 1.0, 1.0]  # covered at n = 1, stays covered
    np.testing.assert_allclose(curve.mean_accuracy, curve.accuracy.mean(0))


def test_coverage_beyond_m_uses_the_beta_model(pool: QueryPool) -> None:
    model = Extrapolation(correct_prior=1.0, wrong_prior=1.0)
    curve = response_curve(pool, "pass_at_k", 6, model=model)
    # Query 1: 0 of 3 correct; Beta(1, 4) posterior; P(miss e more) = prod (3+1+i)/(3+2+i).
    for e in (1, 2, 3):
        miss = np.prod([(4 + i) / (5 + i) for i in range(e)])
        assert curve.accuracy[1, 2 + e] == pytest.approx(1 - miss)
    assert (curve.method[1, 3:] == Method.EXTRAPOLATED).all()
    np.testing.assert_allclose(coverage_beyond(pool, 6, model)[1, 3:], curve.accuracy[1, 3:])


def test_weighted_vote_falls_back_to_monte_carlo(pool: QueryPool, monkeypatch) -> None:
    monkeypatch.setattr(exact, "ENUMERATION_LIMIT", 4)
    curve = response_curve(
        pool, "weighted_vote", 4, score="rm", scorer_kind="reward_model", reps=64, key=1
    )
    # Only C(4, 2) = 6 exceeds the limit (query 0 at n = 2); beyond m the model takes over.
    assert curve.method.tolist() == [[0, 1, 0, 0], [0, 0, 0, 2], [0, 0, 2, 2]]
    assert curve.accuracy_stderr[0, 1] > 0
    assert (curve.accuracy_stderr[curve.method == Method.EXACT] == 0).all()
    assert np.isfinite(curve.accuracy).all()
    assert curve.mean_accuracy_stderr.shape == (4,)


def test_single_ignores_extra_samples(pool: QueryPool) -> None:
    curve = response_curve(pool, "single", 3)
    np.testing.assert_allclose(curve.accuracy, [[0.5] * 3, [0.0] * 3, [1.0] * 3])


def test_errors(pool: QueryPool) -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        response_curve(pool, "self_consistency", 2)
    with pytest.raises(ValueError, match="needs a score"):
        response_curve(pool, "best_of_n", 2)
    with pytest.raises(ValueError, match="needs scorer_kind"):
        response_curve(pool, "weighted_vote", 2, score="rm")
    with pytest.raises(ValueError, match="positive"):
        response_curve(pool, "majority_vote", [0, 1])


def test_a_pool_without_any_answer_scores_zero() -> None:
    """Nothing extracted anywhere: no sample votes, every strategy's answer is None (wrong),
    including beyond m, where only the Beta model's coverage can grow."""
    empty = QueryPool.from_lists(
        [[None, None], [None]], [[False, False], [False]], scores={"s": [[1.0, 2.0], [3.0]]}
    )
    for strategy in ("majority_vote", "best_of_n", "weighted_vote", "single"):
        curve = response_curve(empty, strategy, 3, score="s", scorer_kind="gold", reps=8)
        assert (curve.accuracy == 0).all(), strategy
    assert (response_curve(empty, "pass_at_k", 3).accuracy[1, 1:] > 0).all()
