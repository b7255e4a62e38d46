"""Values worked out by hand, beta_confidence against scipy, and the batch's own operations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from tests.features.strategies import SPAN, apply, const, obs
from ttcdsl.features import NEVER, SampleBatch, evaluate, first_stop, holds
from ttcdsl.features.binomial import TABLE_LIMIT, beta_half_sf, binomial_half_cdf
from ttcdsl.features.votes import first_appearance_ids
from ttcdsl.lang import ir

ANSWERS = obs("answers")
TOKENS = obs("tokens")


def threshold(
    left: ir.Expr, op: str, right: float, after: int | None = None
) -> ir.Threshold:
    return ir.Threshold(left=left, op=op, right=const(right), after=after, span=SPAN)


def unanimous(k: int, disjoint: bool = False) -> ir.UnanimousWindow:
    return ir.UnanimousWindow(last=k, disjoint=disjoint, span=SPAN)


# ---- answers ------------------------------------------------------------------------------


def test_answer_functions_by_hand():
    batch = SampleBatch.from_lists([["a", "a", "b", None], [], [None, None], ["x"]])
    np.testing.assert_array_equal(
        evaluate(apply("top_share", ANSWERS), batch), [0.5, 0.0, 0.0, 1.0]
    )
    np.testing.assert_array_equal(
        evaluate(obs("top_share"), batch), [0.5, 0.0, 0.0, 1.0]
    )
    np.testing.assert_array_equal(
        evaluate(apply("distinct", ANSWERS), batch), [2, 0, 0, 1]
    )
    np.testing.assert_array_equal(
        evaluate(apply("count", ANSWERS), batch), [4, 0, 2, 1]
    )
    np.testing.assert_array_equal(evaluate(obs("samples"), batch), [4, 0, 2, 1])
    entropy = evaluate(apply("answer_entropy", ANSWERS), batch)
    np.testing.assert_allclose(
        entropy, [-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3), 0, 0, 0]
    )
    assert (
        entropy[3] == 0.0
    )  # unanimous: exactly zero, so `answer_entropy(answers) > 0` is "disagree"


def test_beta_confidence_by_hand():
    # [a, a, b]: Beta(3, 2), P(p > 1/2) = 11/16; [a]: Beta(2, 1) -> 3/4; a tie -> 1/2; nothing -> 0.
    batch = SampleBatch.from_lists(
        [["a", "a", "b"], ["a"], ["a", "b", None], [None], []]
    )
    np.testing.assert_array_equal(
        evaluate(obs("beta_confidence"), batch), [11 / 16, 3 / 4, 1 / 2, 0, 0]
    )


def test_beta_confidence_matches_scipy_beta_tail():
    v1, v2 = np.meshgrid(np.arange(0, 120), np.arange(0, 120), indexing="ij")
    v1, v2 = v1.ravel(), v2.ravel()
    keep = v1 >= v2
    v1, v2 = v1[keep], v2[keep]
    expected = scipy.stats.beta.sf(0.5, v1 + 1, v2 + 1)
    np.testing.assert_allclose(beta_half_sf(v1, v2), expected, rtol=1e-10, atol=1e-14)


def test_binomial_cdf_beyond_the_table_matches_scipy():
    n = np.array([TABLE_LIMIT + 1, TABLE_LIMIT + 1, 5000, 5000, 5000])
    k = np.array([TABLE_LIMIT // 2, TABLE_LIMIT // 2 + 40, 2400, 2500, 2600])
    np.testing.assert_allclose(
        binomial_half_cdf(n, k), scipy.stats.binom.cdf(k, n, 0.5), rtol=1e-9
    )


def test_adaptive_consistency_stops_where_the_paper_does():
    """All-agreeing samples: 0.9375 after 3 (keep going), 0.96875 after 4 (stop at 0.95)."""
    batch = SampleBatch.from_lists(
        [["a"] * 8, ["a", "b"] * 4, ["a", "a", "b", "a", "a", "a", "a"]]
    )
    rule = threshold(obs("beta_confidence"), ">=", 0.95)
    np.testing.assert_array_equal(first_stop([rule], batch, range(1, 9)), [4, NEVER, 7])


def test_unanimous_window():
    batch = SampleBatch.from_lists(
        [["a", "b", "b", "b"], ["b", "b", None], [None, None], ["a", "a"], ["c"]]
    )
    np.testing.assert_array_equal(
        holds(unanimous(3), batch), [True, False, False, False, False]
    )
    np.testing.assert_array_equal(
        holds(unanimous(2), batch), [True, False, False, True, False]
    )
    np.testing.assert_array_equal(holds(unanimous(9), batch), [False] * 5)
    with pytest.raises(ValueError, match="at least one sample"):
        holds(unanimous(0), batch)


def test_unanimous_disjoint_window_reads_only_completed_windows():
    """`unanimous window 3`: windows 1-3, 4-6, ... of the query; samples 2-4 agreeing (a sliding
    window) is not enough, and a window counts only once all its samples are in."""
    batch = SampleBatch.from_lists(
        [
            ["a", "b", "b", "b"],  # 2-4 agree, but window 1-3 does not: no
            ["a", "b", "c", "d", "d", "d"],  # window 4-6 agrees
            ["c", "c", "c", "x"],  # window 1-3 agrees; still holds after sample 4
            ["a", "a", None, "a", "a", "a"],  # a no-answer breaks 1-3; 4-6 agrees
            [None, None, None],  # no real answer
            ["b", "b"],  # no completed window
        ]
    )
    np.testing.assert_array_equal(
        holds(unanimous(3, disjoint=True), batch), [False, True, True, True, False, False]
    )
    np.testing.assert_array_equal(
        holds(unanimous(3), batch), [True, True, False, True, False, False]
    )
    # Checked after every sample, the rule first holds at the end of the first unanimous window
    # (a multiple of 3), never in between, as ESC checks.
    np.testing.assert_array_equal(
        first_stop([unanimous(3, disjoint=True)], batch, range(1, 7)),
        [NEVER, 6, 3, 6, NEVER, NEVER],
    )
    np.testing.assert_array_equal(
        first_stop([unanimous(3)], batch, range(1, 7)), [4, 6, 3, 6, NEVER, NEVER]
    )
    with pytest.raises(ValueError, match="at least one sample"):
        holds(unanimous(0, disjoint=True), batch)


# ---- numbers ------------------------------------------------------------------------------


def test_number_lists_skip_unknowns():
    batch = SampleBatch.from_lists(
        [["a", "b", "c"], ["a", "b"], []],
        tokens=[[100, None, 300], [None, None], []],
        scores={"prm": [[0.25, 0.75, None], [None, 0.5], []]},
    )
    assert_row_values = lambda expr, expected: np.testing.assert_array_equal(
        evaluate(expr, batch), expected
    )
    assert_row_values(apply("mean", TOKENS), [200, np.nan, np.nan])
    assert_row_values(apply("min", TOKENS), [100, np.nan, np.nan])
    assert_row_values(apply("max", TOKENS), [300, np.nan, np.nan])
    assert_row_values(
        apply("std", TOKENS), [100, np.nan, np.nan]
    )  # population std of {100, 300}
    assert_row_values(apply("count", TOKENS), [3, 2, 0])  # every sample, known or not
    prm = ir.ScorerRef(name="prm", span=SPAN)
    assert_row_values(apply("score", prm), [0.75, 0.5, np.nan])
    assert_row_values(apply("mean", apply("scores", prm)), [0.5, 0.5, np.nan])


def test_arithmetic_divides_by_zero_into_nan_without_warnings():
    batch = SampleBatch.from_lists([["a"], [], [None]])
    ratio = ir.Arith(
        op="/", left=const(1.0), right=apply("distinct", ANSWERS), span=SPAN
    )
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(evaluate(ratio, batch), [1.0, np.nan, np.nan])
    zero_over_zero = ir.Arith(
        op="/", left=obs("samples"), right=obs("samples"), span=SPAN
    )
    np.testing.assert_array_equal(evaluate(zero_over_zero, batch), [1.0, np.nan, 1.0])
    clipped = apply(
        "clip", ir.Neg(operand=obs("samples"), span=SPAN), const(-0.5), const(0.5)
    )
    np.testing.assert_array_equal(evaluate(clipped, batch), [-0.5, 0.0, -0.5])


def test_normalize_is_min_max_over_the_batch():
    batch = SampleBatch.from_lists(
        [["a"], ["a", "b", "c"], [], ["a", "b"]], tokens=[[1], [2, 2, 2], [], [3, 5]]
    )
    np.testing.assert_allclose(
        evaluate(apply("normalize", obs("samples")), batch), [1 / 3, 1, 0, 2 / 3]
    )
    np.testing.assert_array_equal(
        evaluate(apply("normalize", apply("mean", TOKENS)), batch),
        [0, 1 / 3, np.nan, 1],
    )
    np.testing.assert_array_equal(
        evaluate(apply("normalize", const(7)), batch), [0, 0, 0, 0]
    )


def test_comparisons_with_nan_are_false_and_after_waits():
    batch = SampleBatch.from_lists([["a"], ["a", "a"]], tokens=[[None], [10, 20]])
    mean_tokens = apply("mean", TOKENS)
    for op in (">=", "<=", ">", "<", "==", "!="):
        assert not holds(threshold(mean_tokens, op, 15), batch)[0], op
    np.testing.assert_array_equal(
        holds(threshold(obs("top_share"), ">=", 1, after=2), batch), [False, True]
    )
    np.testing.assert_array_equal(
        holds(threshold(obs("top_share"), ">=", 1), batch), [True, True]
    )


# ---- features -----------------------------------------------------------------------------


def test_features_resolve_from_arrays_and_expressions():
    batch = SampleBatch.from_lists([["a", "a"], ["a", "b"]])
    feature = ir.FeatureRef(name="agreement", span=SPAN)
    from_expr = evaluate(feature, batch, {"agreement": apply("top_share", ANSWERS)})
    np.testing.assert_array_equal(from_expr, [1.0, 0.5])
    np.testing.assert_array_equal(
        evaluate(feature, batch, {"agreement": np.array([3.0, 4.0])}), [3, 4]
    )
    with pytest.raises(KeyError, match="agreement"):
        evaluate(feature, batch)
    with pytest.raises(ValueError, match="shape"):
        evaluate(feature, batch, {"agreement": np.zeros(3)})
    with pytest.raises(ValueError, match="itself"):
        evaluate(feature, batch, {"agreement": feature})


def test_first_stop_reads_array_features_per_row_and_rejects_normalize():
    batch = SampleBatch.from_lists([["a"] * 6, ["a"] * 6, ["a"] * 6])
    rule = ir.Threshold(
        left=obs("samples"),
        op=">=",
        right=ir.FeatureRef(name="want", span=SPAN),
        after=None,
        span=SPAN,
    )
    got = first_stop([rule], batch, [2, 4, 6], {"want": np.array([3.0, 1.0, 9.0])})
    np.testing.assert_array_equal(got, [4, 2, NEVER])
    normalized = threshold(apply("normalize", obs("samples")), ">=", 0.5)
    with pytest.raises(ValueError, match="batch-relative"):
        first_stop([normalized], batch, [2])
    via_feature = threshold(ir.FeatureRef(name="n", span=SPAN), ">=", 0.5)
    with pytest.raises(ValueError, match="batch-relative"):
        first_stop([via_feature], batch, [2], {"n": apply("normalize", obs("samples"))})
    np.testing.assert_array_equal(
        first_stop([via_feature], batch, [2], {"n": np.ones(3)}), [2, 2, 2]
    )


def test_first_stop_skips_checkpoints_past_a_row_and_accepts_unsorted_points():
    batch = SampleBatch.from_lists([["a", "b"], ["a", "b", "c", "d"]])
    rule = threshold(obs("samples"), ">=", 3)
    np.testing.assert_array_equal(first_stop([rule], batch, [6, 4, 3, 3]), [NEVER, 3])
    np.testing.assert_array_equal(first_stop([], batch, [1, 2]), [NEVER, NEVER])
    np.testing.assert_array_equal(
        first_stop([threshold(obs("samples"), "<", 1)], batch, [0, 1]), [0, 0]
    )
    with pytest.raises(ValueError, match="negative"):
        first_stop([rule], batch, [-1, 2])


# ---- the batch ----------------------------------------------------------------------------


def test_from_lists_numbers_answers_by_first_appearance_per_row():
    batch = SampleBatch.from_lists([["b", None, "a", "b"], [2, 1]], width=5)
    np.testing.assert_array_equal(batch.answer, [[0, -1, 1, 0, -1], [0, 1, -1, -1, -1]])
    np.testing.assert_array_equal(batch.lengths, [4, 2])
    assert batch.width == 5
    with pytest.raises(ValueError, match="entries"):
        SampleBatch.from_lists([["a"]], tokens=[[1, 2]])
    with pytest.raises(ValueError, match="shorter"):
        SampleBatch.from_lists([["a", "b"]], width=1)


def test_prefix_and_take():
    batch = SampleBatch.from_lists(
        [["a", "b", "c"], ["d"], []], tokens=[[1, 2, 3], [4], []]
    )
    two = batch.prefix(2)
    np.testing.assert_array_equal(two.lengths, [2, 1, 0])
    assert np.shares_memory(two.tokens, batch.tokens)  # a scalar prefix is a view
    per_row = batch.prefix(np.array([1, 5, 0]))
    np.testing.assert_array_equal(per_row.lengths, [1, 1, 0])
    np.testing.assert_array_equal(per_row.answer, [[0], [0], [-1]])
    np.testing.assert_array_equal(batch.prefix(0).lengths, [0, 0, 0])
    np.testing.assert_array_equal(batch.take([2, 0]).lengths, [0, 3])
    np.testing.assert_array_equal(
        batch.take(np.array([False, True, True])).tokens[:, 0], [4, np.nan]
    )


def test_check_rejects_gaps_and_mismatched_shapes():
    batch = SampleBatch.from_lists([["a", "b"]])
    with pytest.raises(ValueError, match="prefix"):
        batch._replace(valid=np.array([[False, True]])).check()
    with pytest.raises(ValueError, match="tokens"):
        batch._replace(tokens=np.zeros((1, 3))).check()
    with pytest.raises(ValueError, match="prompt_nll"):
        evaluate(obs("samples"), batch._replace(prompt_nll=np.zeros(2)))


def test_first_appearance_ids():
    answer = np.array([[9, -1, 4, 9, 4, 7], [5, 5, 5, -1, 3, 3]], dtype=np.int32)
    valid = np.array([[True] * 6, [True] * 5 + [False]])
    np.testing.assert_array_equal(
        first_appearance_ids(answer, valid), [[0, -1, 1, 0, 1, 2], [0, 0, 0, -1, 1, -1]]
    )
