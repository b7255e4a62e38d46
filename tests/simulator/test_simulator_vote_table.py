"""The stop/solved-rule vote table (`ttcdsl.simulate._vote_table`): the same states as the
features' own evaluation of explicit sample lists, in bounded memory, and a clear refusal past
its size. Built from lists it took over 20 GB at 258 samples per question: an uncapped bandit's
plan was killed for memory after minutes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.paths import REPO
from tests.policy_texts import entropy_bandit
from ttcdsl.features import SampleBatch, holds
from ttcdsl.lang import ir
from ttcdsl.lang.api import load_policy, parse_policy
from ttcdsl.simulate import VOTE_TABLE_MAX, Unsupported, _stat_condition, _vote_table


def _answer_conditions(policy: ir.Policy) -> list[ir.Threshold]:
    conditions = list(policy.allocation.solved) if isinstance(policy.allocation, ir.Bandit) else []
    for spec in policy.bins:
        conditions += [rule.condition for rule in spec.stop]
    return [c for c in conditions if isinstance(c, ir.Threshold) and _stat_condition(c, policy) is None]


def _reference(conditions, policy, length: int) -> np.ndarray:
    """Every state as an explicit list of answers, evaluated by the features."""
    side = length + 1
    table = np.zeros((side, side, side), dtype=bool)
    features = {f.name: f.expr for f in policy.features}
    for n in range(1, side):
        for first in range(n + 1):
            for second in range(min(first, n - first) + 1):
                row = ["a"] * first + ["b"] * second + [None] * (n - first - second)
                batch = SampleBatch.from_lists([row])
                table[n, first, second] = any(holds(c, batch, features)[0] for c in conditions)
    return table


@pytest.mark.parametrize("name", ["adaptive_vote", "adaptive_consistency", "bandit_entropy"])
def test_the_vote_table_is_the_features_evaluation_of_every_state(name: str) -> None:
    policy = load_policy(REPO / "policies" / f"{name}.ttc")
    conditions = _answer_conditions(policy)
    assert conditions, "the policy must have stop or solved rules on its answers"
    table = _vote_table(conditions, policy, 18)
    assert table.any() and not table.all()
    assert np.array_equal(table, _reference(conditions, policy, 18))


def test_a_table_past_its_size_is_refused_by_name_before_any_memory_is_spent() -> None:
    policy = parse_policy("""
policy long "stop rules on the answers for questions of up to 500 samples"
budget { mean samples per query <= 50  samples per query in 1..500 }
sampling { max_tokens 512 }
stop { when top_share >= 0.9 after 5 }
answer majority_vote
allocate optimal
""")
    conditions = _answer_conditions(policy)
    with pytest.raises(Unsupported) as refused:
        _vote_table(conditions, policy, 500)
    assert f"at most {VOTE_TABLE_MAX} samples per question" in refused.value.message
    assert "lets a question take 500" in refused.value.message
    assert "samples per query <=" in (refused.value.hint or "")


@pytest.mark.slow
def test_an_uncapped_bandit_with_solved_rules_on_its_answers_plans_without_a_prediction() -> None:
    """mean 100000 samples per query and no cap: the stand-in length went straight to the
    simulator's longest, whose vote table ran the machine out of memory."""
    from ttcdsl.planner.build import make_plan
    from ttcdsl.workloads import builtin_workload

    policy = parse_policy(entropy_bandit("uncapped", "a bandit without a per-query cap, solved by agreement",
                                         budget="mean samples per query <= 100000", max_tokens=4096))
    table, _ = builtin_workload(8, 16, seed=1)
    plan = make_plan(policy, table, cross_check=False, reps=8, predict_bandit=True).plan
    assert plan["predicted"] is None
    (why,) = [w for w in plan["warnings"] if w.startswith("no prediction")]
    assert f"at most {VOTE_TABLE_MAX} samples per question" in why
