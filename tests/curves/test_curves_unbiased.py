"""Unbiasedness: averaged over how the m logged samples could have come out, the estimators equal
the accuracy of the strategy under fresh i.i.d. sampling (computed here by exhaustive enumeration)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ttcdsl.curves import QueryPool, exact


@pytest.mark.parametrize(("m", "p"), [(5, 0.3), (8, 0.05), (6, 0.9)])
def test_pass_at_k_is_unbiased(m: int, p: float) -> None:
    # Every possible number of correct logged samples c, one pool row each, weighted by its chance.
    pool = QueryPool.from_lists(
        [[0] * m for _ in range(m + 1)], [[j < c for j in range(m)] for c in range(m + 1)]
    )
    weights = np.array([math.comb(m, c) * p**c * (1 - p) ** (m - c) for c in range(m + 1)])
    expected = weights @ exact.coverage(pool, m)
    truth = 1 - (1 - p) ** np.arange(1, m + 1)
    np.testing.assert_allclose(expected, truth, rtol=0, atol=1e-12)


def test_majority_vote_is_unbiased() -> None:
    """Answers 0 (correct), 1, 2 and no answer (None) with fixed probabilities; m = 5 logged."""
    probs = {0: 0.4, 1: 0.3, 2: 0.2, None: 0.1}
    outcomes = list(probs)
    m = 5
    logged = list(itertools.product(outcomes, repeat=m))
    pool = QueryPool.from_lists(
        [list(seq) for seq in logged], [[a == 0 for a in seq] for seq in logged]
    )
    weights = np.array([math.prod(probs[a] for a in seq) for seq in logged])
    expected = weights @ exact.majority_vote(pool, m)

    def iid_accuracy(n: int) -> float:
        acc = 0.0
        for seq in itertools.product(outcomes, repeat=n):
            counts = {}
            for a in seq:
                if a is not None:
                    counts[a] = counts.get(a, 0) + 1
            if counts:
                top = max(counts.values())
                tied = [a for a, c in counts.items() if c == top]
                acc += math.prod(probs[a] for a in seq) * (0 in tied) / len(tied)
        return acc

    truth = [iid_accuracy(n) for n in range(1, m + 1)]
    np.testing.assert_allclose(expected, truth, rtol=0, atol=1e-12)
