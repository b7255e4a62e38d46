"""The weighted-vote rule is the same everywhere: a vote weighs exp(mean logprob) for a
confidence scorer, so every extra vote adds to its answer, in the runtime's aggregation, the exact
and Monte Carlo curves and the planner's stop simulation alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ttcdsl.curves import QueryPool, exact, response_curve
from ttcdsl.lang import ir
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.samples.schema import SampleRow

# One '7' at mean logprob -0.5, then three '42' at -0.2; '42' is right. Summed raw log-probabilities
# (-0.6 against -0.5) made the fourth sample hand the vote to '7'.
ANSWERS = ["7", "42", "42", "42"]
LOGPROB = [-0.5, -0.2, -0.2, -0.2]
CORRECT = [False, True, True, True]


def _expected_curve() -> list[float]:
    """Weighted-vote accuracy at n = 1..4 over every n-subset, weights exp(logprob) by hand."""
    from itertools import combinations

    out = []
    for n in range(1, 5):
        wins = 0
        subsets = list(combinations(range(4), n))
        for subset in subsets:
            totals: dict[str, float] = {}
            for j in subset:
                totals[ANSWERS[j]] = totals.get(ANSWERS[j], 0.0) + math.exp(LOGPROB[j])
            wins += max(totals, key=totals.__getitem__) == "42"
        out.append(wins / len(subsets))
    return out


def test_the_hand_computed_curve_rises():
    assert _expected_curve() == [0.75, 1.0, 1.0, 1.0]


def test_runtime_three_confident_votes_beat_one():
    rows = [
        SampleRow(query_id="q", sample_index=i, answer=a, mean_logprob=lp, correct=c)
        for i, (a, lp, c) in enumerate(zip(ANSWERS, LOGPROB, CORRECT))
    ]
    conf = (ir.Scorer(name="conf", kind="confidence", model=None, span=None),)
    outcome = aggregate(ir.Strategy(kind="weighted_vote", scorer="conf"), rows, scorers=conf)
    assert outcome.answer == "42" and outcome.correct


@pytest.fixture
def pool() -> QueryPool:
    return QueryPool.from_lists([ANSWERS], [CORRECT], scores={"conf": [LOGPROB]})


def test_exact_curve_three_confident_votes_beat_one(pool):
    curve = response_curve(pool, "weighted_vote", 4, score="conf", scorer_kind="confidence")
    np.testing.assert_allclose(curve.accuracy[0], _expected_curve(), atol=1e-12)


def test_monte_carlo_curve_three_confident_votes_beat_one(pool, monkeypatch):
    monkeypatch.setattr(exact, "ENUMERATION_LIMIT", 0)  # every level simulated
    curve = response_curve(
        pool, "weighted_vote", 4, score="conf", scorer_kind="confidence", reps=512, key=3
    )
    assert (curve.method[0] == 1).all()
    # n = 4 takes every sample: no randomness left; n = 1 is a Bernoulli(3/4) mean
    assert curve.accuracy[0, 3] == 1.0 and curve.accuracy[0, 1] == 1.0
    assert abs(curve.accuracy[0, 0] - 0.75) < 5 * math.sqrt(0.75 * 0.25 / 512)


def test_stop_simulation_three_confident_votes_beat_one():
    from ttcdsl.planner.stopping import _prefix_outcomes, _Sequences

    seq = _Sequences(
        answer=np.array([[0, 1, 1, 1]], dtype=np.int32),
        correct=np.array([CORRECT]),
        tokens=np.full((1, 4), np.nan),
        logprob=np.array([LOGPROB]),
        scores={"conf": np.array([LOGPROB])},
        answer_correct=np.array([[False, True]]),
    )
    hit, _ = _prefix_outcomes("weighted_vote", "conf", seq, "confidence")
    # prefixes 7 | 7,42 | 7,42,42 | 7,42,42,42: only the first picks '7'
    assert hit[0].tolist() == [False, True, True, True]


def test_hard_bin_of_the_builtin_workload_gains_from_more_samples():
    """On the built-in workload (adaptive_vote's bins), the hard bin's weighted-vote curve falls
    from 0.38 at one sample to 0.12 at twelve when raw log-probabilities are summed, while
    majority vote rises to 0.52. With positive weights it rises, and stays at or above majority
    vote (confidence carries information on this workload); the planner's stop simulation, which
    votes the same way, rises too."""
    from tests.paths import REPO
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.calibration import calibrate
    from ttcdsl.planner.stopping import simulate_bin
    from ttcdsl.workloads import builtin_workload

    table, _ = builtin_workload()
    from ttcdsl.planner.candidates import Choice, pin_policy

    policy = load_policy(REPO / "policies" / "adaptive_vote.ttc")
    b = [spec.name for spec in policy.bins].index("hard")
    weighted_conf = ir.Strategy(kind="weighted_vote", scorer="conf")
    assert weighted_conf in policy.bins[b].candidates
    # the hard bin with its weighted vote, Adaptive-Consistency at 0.95 everywhere
    policy = pin_policy(policy, [
        Choice(strategy=weighted_conf if i == b else spec.strategy, thresholds=(0.95,))
        for i, spec in enumerate(policy.bins)
    ])
    calibration = calibrate(policy, table)
    rows = calibration.bin_rows(b)
    heldout = calibration.heldout
    majority = response_curve(heldout, "majority_vote", 12, queries=rows).mean_accuracy
    weighted = response_curve(
        heldout, "weighted_vote", 12, queries=rows, score="conf", scorer_kind="confidence",
        reps=64,
    ).mean_accuracy
    assert weighted[-1] > weighted[0] + 0.1, weighted
    assert np.all(np.diff(weighted) > -0.02), weighted  # no fall beyond Monte Carlo noise
    assert np.all(weighted >= majority - 0.02), (weighted, majority)
    stops = simulate_bin(calibration, b, np.array([4, 8, 16]), reps=16)
    assert stops.accuracy[-1] > stops.accuracy[0] - 0.02, stops.accuracy
    assert stops.accuracy[-1] >= majority[-1] - 0.03, (stops.accuracy, majority)
