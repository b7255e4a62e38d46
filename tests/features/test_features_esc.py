"""ESC's expected spend (Li et al., ICLR 2024) in closed form against the shared stop evaluator.

With i.i.d. samples whose real answers have probabilities p_a (a no-answer sample has the rest), a
window of w samples is unanimous with probability q = sum_a p_a^w, independently of every other
window. ESC stops after the first unanimous window, and at the latest after L windows, so it spends
N = w * min(K, L) samples with K ~ Geometric(q), and

    E[N] = w * sum_{k=0}^{L-1} P(K > k) = w * sum_{k=0}^{L-1} (1 - q)^k.

The test draws i.i.d. sequences, finds the stop of the example policy's rules with
``first_stop`` checked after every sample from the probe on (as the planner simulates and the
runtime checks), and compares the mean spend with E[N] within a few standard errors.
"""

from __future__ import annotations

import numpy as np

from tests.paths import REPO
from ttcdsl.features import SampleBatch, first_stop
from ttcdsl.lang.api import load_policy

# real answers 0, 1, 2 and no answer (-1)
PROBS = {0: 0.6, 1: 0.25, 2: 0.1, -1: 0.05}


def esc_expected_spend(probs: dict[int, float], window: int, windows: int) -> float:
    q = sum(p**window for a, p in probs.items() if a >= 0)
    return window * sum((1 - q) ** k for k in range(windows))


def _iid_batch(rows: int, length: int, seed: int) -> SampleBatch:
    rng = np.random.default_rng(seed)
    answers = np.array(list(PROBS), dtype=np.int32)
    drawn = rng.choice(answers, size=(rows, length), p=list(PROBS.values()))
    shape = drawn.shape
    return SampleBatch(
        answer=drawn,
        valid=np.ones(shape, dtype=bool),
        tokens=np.full(shape, np.nan),
        logprob=np.full(shape, np.nan),
        correct=np.full(shape, np.nan),
        scores={},
        prompt_nll=np.full(rows, np.nan),
    )


def test_the_closed_form_by_hand():
    # q = 0.6^4 + 0.25^4 + 0.1^4 = 0.1336; two windows: 4 * (1 + 0.8664)
    assert np.isclose(esc_expected_spend(PROBS, 4, 2), 4 * (1 + (1 - 0.1336)))
    assert esc_expected_spend(PROBS, 4, 1) == 4


def test_the_esc_example_spends_what_esc_does():
    policy = load_policy(REPO / "policies" / "early_stopping_sc.ttc")
    (spec,) = policy.bins
    cap = spec.fixed_samples
    (rule,) = spec.stop
    window = rule.condition.last
    assert cap % window == 0 and policy.probe % window == 0
    batch = _iid_batch(40_000, cap, seed=7)
    stop = first_stop([rule.condition], batch, np.arange(max(1, policy.probe), cap + 1))
    spent = np.minimum(stop, cap)
    # ESC only ever stops at the end of a window
    assert np.all(spent % window == 0)
    expected = esc_expected_spend(PROBS, window, cap // window)
    se = spent.std(ddof=1) / np.sqrt(spent.size)
    assert abs(spent.mean() - expected) < 4 * se, (spent.mean(), expected, se)
    # and the share stopping at each window k is q (1 - q)^(k - 1)
    q = sum(p**window for a, p in PROBS.items() if a >= 0)
    for k in (1, 2, 3):
        share = np.mean(spent == k * window)
        p_k = q * (1 - q) ** (k - 1)
        assert abs(share - p_k) < 4 * np.sqrt(p_k * (1 - p_k) / spent.size), (k, share, p_k)
