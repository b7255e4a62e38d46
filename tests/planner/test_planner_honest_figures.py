"""Figures and warnings a plan states that were not what they seemed: a bin's accuracy error where
every calibration query agrees (Wald's 0: "1.000 ± 0.000"; now Wilson's, as run reports use), a
prediction near 0 because the logged samples are longer than max_tokens (now said), and counts
said to stop at the table's depth where the allocation stopped them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tests.planner.test_planner_build import HEADER, agreement_bins, table_of
from ttcdsl.lang.api import parse_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.explain import explain
from ttcdsl.rates import rate_se, wilson_se
from ttcdsl.runtime.report import known_rate


def test_wilson_error_is_the_run_reports_and_is_never_zero() -> None:
    assert known_rate([True] * 12)[1] == wilson_se(1.0, 12) > 0
    assert wilson_se(0.0, 12) == wilson_se(1.0, 12)
    assert rate_se(0.03, 1.0, 12) == 0.03  # a measured spread is kept
    assert rate_se(0.0, 1.0, 12) == wilson_se(1.0, 12)
    assert rate_se(0.0, 0.5, 12) == 0.0  # not at a bound: what was measured


@pytest.mark.parametrize("right", [True, False])
def test_a_bin_whose_queries_all_agree_predicts_wilsons_error(right: bool) -> None:
    policy = agreement_bins(probe=2, cut=0.75)
    queries = {f"easy{i}": [("7", right)] * 6 for i in range(10)}  # all agree: 'agreed'
    queries.update({f"mixed{i}": [("1", True)] + [(str(a), False) for a in range(2, 7)]
                    for i in range(10)})  # every probe disagrees: 'split'
    plan = make_plan(policy, table_of(queries), cross_check=False, reps=8).plan
    agreed = next(b for b in plan["bins"] if b["name"] == "agreed")
    assert agreed["queries"] == 10
    assert agreed["predicted"]["accuracy"] == (1.0 if right else 0.0)
    assert agreed["predicted"]["accuracy_se"] == pytest.approx(wilson_se(1.0, 10))
    out = io.StringIO()
    explain(plan, Console(file=out, width=200))
    row = next(line for line in out.getvalue().splitlines() if line.startswith("│ agreed"))
    assert f"{wilson_se(1.0, 10):.3f}" in row and "0.000 │" not in row.split("│")[7], row


def test_samples_longer_than_the_max_tokens_served_are_said_to_count_as_cut() -> None:
    """A reasoning model's log generated at a large limit, planned under the policy's 1024:
    every sample counted cut off and the plan predicted accuracy 0, with no word of why."""
    policy = parse_policy(HEADER + "answer majority_vote\nallocate fixed 3 maximize accuracy\n")
    queries = {f"q{i}": [("7", True)] * 4 for i in range(12)}
    plan = make_plan(policy, table_of(queries, tokens=3000), cross_check=False, reps=8).plan
    assert plan["predicted"]["accuracy"] == 0.0
    (warning,) = [w for w in plan["warnings"] if "longer than the max_tokens" in w]
    assert "48 of 48 calibration samples (100%)" in warning and "(512)" in warning
    short = make_plan(policy, table_of(queries, tokens=300), cross_check=False, reps=8).plan
    assert not [w for w in short["warnings"] if "longer than the max_tokens" in w]


@pytest.mark.parametrize("depth, said", [(16, False), (8, True)])
def test_counts_are_said_to_stop_at_the_tables_depth_only_where_it_stops_them(depth, said) -> None:
    """`allocate fixed { easy 4 hard 10 }` on a table of 16 per query was told its counts stop
    at 10, "the samples every calibration query holds": its own largest count stops them."""
    from ttcdsl.workloads import builtin_workload

    policy = parse_policy(HEADER + """
budget {
  mean samples per query <= 8
  samples per query in 1..16
}
probe 4 samples
feature agreement = top_share(answers)
difficulty = 1 - agreement
bins by difficulty quantiles [0.5] as easy, hard
strategy easy = majority_vote
strategy hard = majority_vote
allocate fixed { easy 4 hard 10 }
""")
    table, _ = builtin_workload(120, depth, seed=2)
    plan = make_plan(policy, table, cross_check=False, reps=8).plan
    stops = [w for w in plan["warnings"] if w.startswith("counts stop at")]
    assert bool(stops) is said, plan["warnings"]
