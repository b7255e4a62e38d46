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
