"""The vote weight of each scorer kind (ttcdsl.features.weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ttcdsl.errors import UserError
from ttcdsl.features.weights import check_vote_weights, vote_weights


def test_confidence_weighs_the_geometric_mean_token_probability():
    logprob = np.array([-0.2, -0.5, 0.0, -np.inf, np.nan])
    np.testing.assert_allclose(
        vote_weights("confidence", logprob), [math.exp(-0.2), math.exp(-0.5), 1.0, 0.0, 0.0]
    )
    # positive and increasing: three votes at -0.2 outweigh one at -0.5, and the surer one wins
    assert 3 * vote_weights("confidence", -0.2) > vote_weights("confidence", -0.5)
    assert vote_weights("confidence", -0.2) > vote_weights("confidence", -0.5) > 0


def test_gold_and_probability_scores_are_their_own_weight():
    np.testing.assert_array_equal(vote_weights("gold", [1.0, 0.0, np.nan]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(
        vote_weights("reward_model", [0.0, 0.7, 1.0, np.nan]), [0.0, 0.7, 1.0, 0.0]
    )


def test_reward_scores_outside_the_unit_interval_are_refused():
    """A reward model's logits can be negative: summing them has the log-probability fault."""
    with pytest.raises(UserError, match=r"2 score\(s\) lie outside, from -4.28 to 6.09"):
        vote_weights("reward_model", [0.5, -4.28, 6.09])


def test_unknown_kind_and_negative_weights_fail():
    with pytest.raises(ValueError, match="unknown scorer kind"):
        vote_weights("logits", [0.5])
    with pytest.raises(ValueError, match=">= 0"):
        check_vote_weights(np.array([0.5, -0.2]))
    np.testing.assert_array_equal(check_vote_weights(np.array([0.5, np.nan])), [0.5, 0.0])


def test_logits_are_read_as_their_sigmoid_everywhere_the_same() -> None:
    """`as_read` is the one rule: floats, arrays and masked arrays give 1 / (1 + e^-x), NaN and
    the mask survive, and a scorer without `logits` reads its values unchanged."""
    import math

    import numpy as np

    from ttcdsl.features.scorers import as_read
    from ttcdsl.lang.ir import Scorer
    from ttcdsl.lang.source import Span

    span = Span(start=0, end=0, line=1, column=1, end_line=1, end_column=1)
    logits = Scorer(name="rm", kind="reward_model", model="m", logits=True, span=span)
    plain = Scorer(name="rm", kind="reward_model", model="m", span=span)
    x = np.array([-4.28, 0.0, 3.2, np.nan, 800.0, -800.0])
    expected = [1 / (1 + math.exp(4.28)), 0.5, 1 / (1 + math.exp(-3.2))]
    got = as_read(logits, x)
    assert np.allclose(got[:3], expected) and np.isnan(got[3]) and got[4] == 1.0 and got[5] == 0.0
    assert as_read(logits, -4.28) == pytest.approx(expected[0])
    assert math.isnan(as_read(logits, math.nan))
    masked = np.ma.masked_array([0.0, 2.0], mask=[False, True])
    read = as_read(logits, masked)
    assert read[0] == 0.5 and np.ma.getmaskarray(read).tolist() == [False, True]
    assert as_read(plain, x) is x
