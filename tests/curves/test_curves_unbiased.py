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


def test_majority_vote_beyond_m_equals_enumerating_the_polya_urn() -> None:
    """Beyond m the model's value is exact: enumerate every sequence of new draws from the urn
    (seen answers weighted K + a, the non-voting mass K_0 + u; each draw adds a ball)."""
    from ttcdsl.curves.extrapolate import Extrapolation, majority_vote_beyond

    model = Extrapolation(answer_prior=0.5, unseen_mass=0.25)
    cases = [
        (["a", "b", "b", None], {"a"}),
        (["a", "b", "c"], {"c"}),
        (["a", "a", "b", "b", "c"], {"b", "c"}),
        ([None, None], set()),
    ]
    pool = QueryPool.from_lists([c[0] for c in cases], [[a in c[1] for a in c[0]] for c in cases])
    extension = 4
    levels = max(len(c[0]) for c in cases) + extension
    got = majority_vote_beyond(pool, levels, model)
    for i, (answers, right) in enumerate(cases):
        seen = list(dict.fromkeys(a for a in answers if a is not None))
        base = {a: answers.count(a) for a in seen}
        weights0 = [base[a] + model.answer_prior for a in seen] + [
            answers.count(None) + model.unseen_mass
        ]
        m = len(answers)
        for e in range(1, extension + 1):
            acc = 0.0
            for seq in itertools.product(range(len(weights0)), repeat=e):
                w = list(weights0)
                prob = 1.0
                for k in seq:
                    prob *= w[k] / sum(w)
                    w[k] += 1
                final = dict(base)
                for k in seq:
                    if k < len(seen):
                        final[seen[k]] += 1
                if final:
                    top = max(final.values())
                    tied = [a for a, c in final.items() if c == top]
                    acc += prob * sum(a in right for a in tied) / len(tied)
            assert got[i, m + e - 1] == pytest.approx(acc, abs=1e-12), (i, e)
        assert np.isnan(got[i, :m]).all()
