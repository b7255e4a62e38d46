"""Every feature, difficulty, stop rule and bandit `solved` rule of every example policy evaluates
on a random batch, with the shapes and ranges the planner relies on."""

from __future__ import annotations

import numpy as np
import pytest

from tests.paths import POLICIES
from ttcdsl.features import (
    NEVER,
    SampleBatch,
    evaluate_features,
    first_stop,
    holds,
    resolve_scorers,
)
from ttcdsl.lang import ir
from ttcdsl.lang.api import load_policy


def random_batch(seed: int, n_rows: int = 200, width: int = 24) -> SampleBatch:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, width + 1, size=n_rows)
    valid = np.arange(width) < lengths[:, None]
    answer = np.where(valid, rng.integers(-1, 4, size=(n_rows, width)), -1).astype(
        np.int32
    )

    def column(values: np.ndarray, unknown: float = 0.1) -> np.ndarray:
        """Some samples' numbers unknown, never the first: every row with a sample knows one."""
        known = rng.random((n_rows, width)) > unknown
        known[:, 0] = True
        return np.where(valid & known, values, np.nan)

    return SampleBatch(
        answer=answer,
        valid=valid,
        tokens=column(rng.integers(1, 2048, size=(n_rows, width)).astype(float)),
        logprob=column(-rng.exponential(0.5, size=(n_rows, width))),
        correct=column((answer == 0).astype(float)),
        scores={},
        prompt_nll=rng.exponential(1.0, size=n_rows),
    ).check()


def per_query_conditions(policy: ir.Policy) -> list[ir.Condition]:
    rules = [rule.condition for b in policy.bins for rule in b.stop]
    if isinstance(policy.allocation, ir.Bandit):
        rules.extend(policy.allocation.solved)
    return rules


@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_every_policy_evaluates_on_a_random_batch(path):
    policy = load_policy(path)
    base = random_batch(seed=len(path.stem))
    reward = {
        s.name: np.where(
            base.valid, np.random.default_rng(1).random(base.answer.shape), np.nan
        )
        for s in policy.scorers
        if s.kind == "reward_model"
    }
    batch = resolve_scorers(base, policy.scorers, reward)

    values = evaluate_features(policy, batch)
    assert set(values) == {f.name for f in policy.features} | (
        {"difficulty"} if policy.difficulty else set()
    )
    for name, column in values.items():
        assert column.shape == (batch.n_rows,) and column.dtype == np.float64, name
        # Every row with at least one sample has a value (rows without samples may be NaN).
        assert not np.isnan(column[batch.lengths > 0]).any(), name

    rules = per_query_conditions(policy)
    for rule in rules:
        assert holds(rule, batch).shape == (batch.n_rows,)
    stops = first_stop(rules, batch, range(1, batch.width + 1))
    stopped = stops != NEVER
    assert (stops[stopped] <= batch.lengths[stopped]).all()
    if rules:
        # Some row stops and some row that could have stopped does not: the rules discriminate.
        assert stopped.any() and not stopped.all()
