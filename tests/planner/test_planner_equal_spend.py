"""A plan is judged against uniform at equal spend in its budget's unit (`ttcdsl.equal_spend`).

`policies/token_budget.ttc` limits tokens, charges prompts, and spends its samples on the bins
whose answers are long (one with twice the max_tokens). Its plan used to be compared with uniform
at its mean SAMPLES: uniform then billed about three quarters of the plan's tokens, and the verdict
read "+0.7 points" for a plan that, at equal tokens, is 0.3 points behind. The baseline, the
cross-fitted verdict and the sweep now give uniform the plan's billed tokens per query.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.sweep import sweep_budget
from ttcdsl.workloads import builtin_workload


@pytest.fixture(scope="module")
def table():
    table, _ = builtin_workload(400, 24, seed=5)
    return table


def _billed_per_sample(table, max_tokens: int, probe: int) -> float:
    """Uniform's billed tokens per sample, from the table's columns: each query's mean over the
    samples after its probe of min(completion, max_tokens) plus its prompt, averaged over queries."""
    ids = np.asarray(table.query_id)
    order = np.lexsort((np.asarray(table.sample_index), ids))
    completion = np.minimum(np.asarray(table.completion_tokens, np.float64), max_tokens)[order]
    prompt = np.asarray(table.prompt_tokens, np.float64)[order]
    ids = ids[order]
    per_query = []
    for q in np.unique(ids):
        rows = np.flatnonzero(ids == q)[probe:]
        per_query.append((completion[rows] + prompt[rows]).mean())
    return float(np.mean(per_query))


def test_a_token_budget_plan_is_compared_with_uniform_at_equal_tokens(table) -> None:
    policy = load_policy(REPO / "policies" / "token_budget.ttc")
    plan = make_plan(policy, table).plan
    predicted, baseline = plan["predicted"], plan["baseline"]
    per_sample = _billed_per_sample(table, policy.sampling.max_tokens, policy.probe)
    assert baseline["samples"] * per_sample == pytest.approx(predicted["tokens"], rel=0.005)
    # the plan moves samples to long answers: at equal tokens uniform gets more samples
    assert baseline["samples"] > predicted["samples"] + 1
    assert "the budget is in tokens, so matched to the allocation's" in baseline["how"]
    assert baseline["cross_fitted"]["uniform"] is not None


def test_a_sample_budget_plan_is_compared_at_equal_samples(table) -> None:
    plan = make_plan(load_policy(REPO / "policies" / "adaptive_vote.ttc"), table, reps=8).plan
    assert plan["baseline"]["samples"] == pytest.approx(plan["predicted"]["samples"])
    assert "tokens" not in plan["baseline"]["how"]


def test_a_token_budget_sweep_compares_each_point_at_equal_tokens(table) -> None:
    from ttcdsl.planner.uniform import uniform_at

    policy = load_policy(REPO / "policies" / "token_budget.ttc")
    result = make_plan(policy, table)
    sweep = sweep_budget(result, [2e6, 4e6])
    per_sample = _billed_per_sample(table, policy.sampling.max_tokens, policy.probe)
    for point in sweep["points"]:
        tokens_per_query = point["spent"] / result.plan["batch_size"]
        (uniform,) = uniform_at(result.calibration, np.array([tokens_per_query / per_sample]))
        assert point["uniform"] == pytest.approx(uniform["objective"], abs=0.003)


@pytest.mark.parametrize(("limits", "unit"), [
    ("mean samples per query <= 8", "samples"),
    ("total tokens <= 4M", "tokens"),
    ("mean tokens per query <= 8k", "tokens"),
    ("mean samples per query <= 8\n  total tokens <= 4M", "tokens"),
    # a cap per query guards a query; the batch still spends samples
    ("mean samples per query <= 8\n  tokens per query <= 64k", "samples"),
])
def test_the_budget_unit_is_the_batch_budgets(limits, unit) -> None:
    from ttcdsl.equal_spend import budget_unit
    from ttcdsl.lang.api import parse_policy

    policy = parse_policy(f"""policy p "unit"
budget {{
  {limits}
  samples per query in 1..16
}}
sampling {{ max_tokens 1024 }}
answer majority_vote
allocate optimal maximize accuracy
""")
    assert budget_unit(policy) == unit


def test_partly_unknown_token_counts_make_the_plans_tokens_a_bill_and_say_so(tmp_path):
    """Half the samples without a token count: the plan's tokens bill them at max_tokens (as
    the run's ledger does), and the plan says so in a warning and beside the figure."""
    import dataclasses

    table, _ = builtin_workload(n_queries=120, n_samples=8, seed=4)
    tokens = np.ma.MaskedArray(table.completion_tokens)
    half = np.ma.getmaskarray(tokens).copy()
    half[::2] = True
    table = dataclasses.replace(table, completion_tokens=np.ma.MaskedArray(tokens.data, mask=half))
    plan = make_plan(load_policy(REPO / "policies" / "self_consistency.ttc"), table).plan
    assert plan["predicted"]["tokens"] is not None
    assert plan["predicted"]["tokens_unknown_share"] == 0.5
    assert any("50% of the calibration samples have no completion token count" in w
               for w in plan["warnings"])
    full = make_plan(load_policy(REPO / "policies" / "self_consistency.ttc"),
                     dataclasses.replace(table, completion_tokens=tokens)).plan
    assert full["predicted"]["tokens_unknown_share"] == 0.0
    assert not any("token count" in w for w in full["warnings"])
