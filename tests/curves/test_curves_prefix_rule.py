"""The planner states the answer rule twice, for a reason, and both are the runtime's: its stop-rule
simulation (``planner.stopping._prefix_outcomes``, NumPy, so that planning a fixed policy never
loads JAX) and its Monte Carlo curves (``curves.montecarlo._sequence_hits``, JAX). For every
prefix of random sample sequences, with ties, samples without an answer and unscored samples,
each says "right" exactly when ``ttcdsl.runtime.aggregate`` picks a correct sample from that
prefix."""

from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from ttcdsl.curves.montecarlo import _sequence_hits
from ttcdsl.features.weights import vote_weights
from ttcdsl.lang import ir
from ttcdsl.planner.stopping import _prefix_outcomes, _Sequences
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.samples.schema import SampleRow

SCORERS = (
    ir.Scorer(name="rm", kind="reward_model", model="m", span=None),
    ir.Scorer(name="conf", kind="confidence", model=None, span=None),
)


def _sequences(seed: int, rows: int = 60, length: int = 7, answers: int = 3):
    rng = np.random.default_rng(seed)
    answer = rng.integers(-1, answers, size=(rows, length))
    right = rng.random((rows, answers)) < 0.4
    correct = (answer >= 0) & np.take_along_axis(right, np.maximum(answer, 0), axis=1)
    # coarse values so that scores and vote sums tie often; some unknown
    rm = np.round(rng.random((rows, length)) * 2) / 2
    rm[rng.random((rows, length)) < 0.15] = np.nan
    conf = np.log(np.round(rng.random((rows, length)) * 2 + 1) / 4)
    conf[rng.random((rows, length)) < 0.15] = np.nan
    return answer, right, correct, rm, conf


def _runtime_right(strategy: ir.Strategy, answer, correct, rm, conf, n: int) -> bool:
    rows = [
        SampleRow(
            query_id="q",
            sample_index=j,
            answer=None if answer[j] < 0 else f"a{answer[j]}",
            correct=bool(correct[j]),
            mean_logprob=None if np.isnan(conf[j]) else float(conf[j]),
            scores={} if np.isnan(rm[j]) else {"rm": float(rm[j])},
        )
        for j in range(n)
    ]
    return bool(aggregate(strategy, rows, scorers=SCORERS, labelled=True).correct)


def _planner_stop_simulation(kind, scorer, answer, right, correct, rm, conf):
    seq = _Sequences(
        answer=answer.astype(np.int32), correct=correct, tokens=np.full(answer.shape, np.nan),
        logprob=conf, scores={"rm": rm, "conf": conf}, answer_correct=right,
    )
    scorer_kind = {"rm": "reward_model", "conf": "confidence"}.get(scorer)
    return _prefix_outcomes(kind, scorer, seq, scorer_kind)[0]


def _monte_carlo_curves(kind, scorer, answer, right, correct, rm, conf):
    score = np.zeros(answer.shape)
    if kind == "best_of_n":
        score = rm
    elif scorer == "rm":
        score = vote_weights("reward_model", rm)
    elif scorer == "conf":
        score = vote_weights("confidence", conf)
    length = answer.shape[1]
    with jax.enable_x64(True):
        prio = jnp.arange(length, dtype=jnp.float64)  # the sequence is in serving order
        member = jnp.ones(length, dtype=bool)
        hits = jax.vmap(lambda a, s, c, ac: _sequence_hits(kind, a, s, c, member, prio, ac))(
            jnp.asarray(answer), jnp.asarray(score, dtype=jnp.float64), jnp.asarray(correct),
            jnp.asarray(right),
        )
        return np.asarray(hits)


@pytest.mark.parametrize("implementation", [_planner_stop_simulation, _monte_carlo_curves])
@pytest.mark.parametrize(
    ("kind", "scorer"),
    [
        ("single", None),
        ("majority_vote", None),
        ("best_of_n", "rm"),
        ("weighted_vote", "rm"),
        ("weighted_vote", "conf"),
    ],
)
def test_every_prefix_answers_as_the_runtime_does(implementation, kind, scorer) -> None:
    answer, right, correct, rm, conf = _sequences(seed=len(kind) + len(scorer or ""))
    hits = implementation(kind, scorer, answer, right, correct, rm, conf)
    strategy = ir.Strategy(kind=kind, scorer=scorer)
    expected = np.array(
        [
            [_runtime_right(strategy, answer[i], correct[i], rm[i], conf[i], n + 1)
             for n in range(answer.shape[1])]
            for i in range(answer.shape[0])
        ]
    )
    assert hits.shape == expected.shape
    mismatch = np.argwhere(hits != expected)
    assert mismatch.size == 0, f"first mismatch (row, prefix - 1): {mismatch[0].tolist()}"


def test_a_bin_without_any_answer_is_never_right() -> None:
    answer = np.full((3, 4), -1)
    none = np.zeros((3, 4), bool)
    hits = _planner_stop_simulation("majority_vote", None, answer, np.zeros((3, 0), bool), none,
                                    np.full((3, 4), np.nan), np.full((3, 4), np.nan))
    assert hits.shape == (3, 4) and not hits.any()
