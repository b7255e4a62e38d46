"""Golden plans: the example policies planned against the real shared pools.

A golden plan is the plan's stable view: no timings, paths or versions, numbers at four
significant digits. TTC_UPDATE_GOLDEN=1 rewrites them; a diff in review shows what a change to
the curves, the solvers or the rounding did to real plans.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lang.golden import assert_golden
from tests.paths import REPO
from ttcdsl.errors import UserError
from ttcdsl.importers import ImportOptions, import_cruxeval_scored, import_qwen25math_eval
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.plan import dump_plan

GOLDEN = Path(__file__).parent / "golden"

# Which policies each pool can serve: the Qwen pool has reward-model scores (column "rm") but no
# token counts or log-probabilities; the CRUXEval pool has neither scores nor tokens. The "rm"
# scores are an outcome reward model's logits (-4.3 to 6.1), not probabilities, so a weighted vote
# over them is refused (compute_optimal's weighted_vote(prm) candidates are dropped).
QWEN_POLICIES = (
    "self_consistency",
    "best_of_n",
    "adaptive_consistency",
    "early_stopping_sc",
    "oracle_coverage",
    "bandit_entropy",
)
CRUX_POLICIES = ("self_consistency", "adaptive_consistency", "early_stopping_sc", "oracle_coverage")
VOLATILE = {"timings", "seconds", "created_by", "file", "table"}


@pytest.fixture(scope="module")
def qwen(shared_data: Path):
    return import_qwen25math_eval(
        shared_data / "pools" / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7)
    )


@pytest.fixture(scope="module")
def crux(shared_data: Path):
    return import_cruxeval_scored(
        shared_data / "pools" / "cruxeval_output_codellama7b_x10.json", ImportOptions()
    )


def stable(value):
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def golden_plan(name: str, table, pool: str) -> None:
    policy = load_policy(REPO / "policies" / f"{name}.ttc")
    result = make_plan(policy, table, score_columns={"prm": "rm"} if policy.scorers else None, reps=64)
    assert_golden(f"{pool}__{name}.plan.yaml", dump_plan(stable(result.plan)), GOLDEN)


@pytest.mark.slow
@pytest.mark.parametrize("name", QWEN_POLICIES)
def test_golden_plan_qwen_math100(qwen, name):
    golden_plan(name, qwen, "qwen_math100")


@pytest.mark.parametrize("name", CRUX_POLICIES)
def test_golden_plan_cruxeval_output(crux, name):
    golden_plan(name, crux, "cruxeval_output")


def test_policies_the_qwen_pool_cannot_serve_say_what_is_missing(qwen):
    # (its hard bin's weighted_vote(conf) candidate, which needs log-probabilities, is dropped
    # with a warning; the length feature's token counts are required)
    with pytest.raises(UserError, match=r"lacks completion token counts \(read by feature length"):
        make_plan(load_policy(REPO / "policies" / "adaptive_vote.ttc"), qwen)
    with pytest.raises(UserError, match="lacks completion token counts"):
        make_plan(load_policy(REPO / "policies" / "token_budget.ttc"), qwen)



def test_compute_optimal_drops_the_weighted_votes_the_qwen_pool_cannot_serve(qwen):
    # the pool's "rm" scores are logits, no vote weights: every weighted_vote(prm) candidate is
    # dropped, naming it, and the bins choose among the others
    result = make_plan(load_policy(REPO / "policies" / "compute_optimal.ttc"), qwen,
                       score_columns={"prm": "rm"}, reps=16, cross_check=False)
    dropped = [w for w in result.plan["warnings"] if w.startswith("TTC502")]
    assert len(dropped) == 5 and all("weighted_vote(prm)" in w for w in dropped)
    assert all("reward-model scores in [0, 1]" in w for w in dropped)
    assert {b["strategy"] for b in result.plan["bins"]} <= {"majority_vote", "best_of_n", "keep_probe"}
