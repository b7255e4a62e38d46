"""ESC's expected spend (Li et al., ICLR 2024) in closed form against the shared stop evaluator.

With i.i.d. samples whose real answers have probabilities p_a (a no-answer sample has the rest), a
window of w samples is unanimous with probability q = sum_a p_a^w, independently of every other
window. ESC stops after the first unanimous window, and at the latest after L windows, so it spends
N = w * min(K, L) samples with K ~ Geometric(q), and

    E[N] = w * sum_{k=0}^{L-1} P(K > k) = w * sum_{k=0}^{L-1} (1 - q)^k.

The tests draw i.i.d. sequences, find the stop of the example policy's rules with
``first_stop`` checked after every sample from the probe on (as the planner simulates and the
runtime checks), and compare the mean spend with E[N] within a few standard errors; and plan the
example on an i.i.d. samples table, whose predicted spend must match E[N] as well.
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


def esc_spend_sd(probs: dict[int, float], window: int, windows: int) -> float:
    """Standard deviation of N = window * min(K, windows), K ~ Geometric(q)."""
    q = sum(p**window for a, p in probs.items() if a >= 0)
    ks = np.arange(1, windows + 1)
    pk = q * (1 - q) ** (ks - 1)
    pk[-1] += (1 - q) ** windows  # no unanimous window: stops at the cap
    n = window * ks
    return float(np.sqrt((pk * n**2).sum() - (pk * n).sum() ** 2))


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


def test_the_planner_predicts_esc_spend():
    """The example planned on a table of i.i.d. samples (many per query, so drawing 32 of them
    without replacement is close to i.i.d.): the predicted samples per query is E[N].

    The prediction is a mean over Q queries of each query's mean over ``reps`` simulated orders.
    Each query's simulation starts with its own probe (the run's first window, as a replay serves
    it), fixed across the orders, so a query's mean varies with its probe by up to Var(N): the
    bound used is Var(N) / Q for the probes and orders plus, for the queries, the variance of the
    closed form at each query's own answer shares (a finite draw from p) over Q."""
    from ttcdsl.planner.build import make_plan
    from ttcdsl.samples.schema import RunMeta, SamplesTable

    rng = np.random.default_rng(1)
    queries, per_query, reps = 200, 160, 32
    labels = np.array(["a", "b", "c", None], dtype=object)
    drawn = rng.choice(4, size=(queries, per_query), p=[0.6, 0.25, 0.1, 0.05])
    answers = labels[drawn.ravel()]
    table = SamplesTable.from_columns(
        meta=RunMeta(model="iid", backend="synthetic"),
        query_id=np.repeat(np.array([f"q{i}" for i in range(queries)], dtype=object), per_query),
        sample_index=np.tile(np.arange(per_query), queries),
        answer=answers,
        correct=[a == "a" for a in answers],
        finish_reason=np.full(answers.size, "stop", dtype=object),
    )
    policy = load_policy(REPO / "policies" / "early_stopping_sc.ttc")
    predicted = make_plan(policy, table, reps=reps).plan["predicted"]["samples"]

    expected = esc_expected_spend(PROBS, 4, 8)
    # the closed form at each query's held-out shares (the planner's probe is its first 4)
    own = [
        esc_expected_spend({a: float(np.mean(row[4:] == a)) for a in range(3)}, 4, 8)
        for row in drawn
    ]
    se = np.sqrt(esc_spend_sd(PROBS, 4, 8) ** 2 / queries + np.var(own, ddof=1) / queries)
    assert abs(predicted - expected) < 4 * se, (predicted, expected, se)
