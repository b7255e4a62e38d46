"""The run report says what ran: a plan that runs uniform (`uniform_choice`) shows uniform's
strategy in every bin, not the policy's per-bin strategies.

Before, a plan whose `hard` bin keeps its probe (`keep_probe`) but which runs uniform because
that allocation loses clearly out of fold reported `keep_probe` for the bin, while every query
of it was answered by majority vote over the uniform count."""

from __future__ import annotations

import io
import json

import pytest

from tests.planner.test_planner_uniform_choice import LOSE as PLANNER_LOSE
from tests.runtime.runs import results, run_args, ttc, workload_files, write_policy
from ttcdsl.planner.plan import load_plan
from ttcdsl.runtime.report import render_report
from ttcdsl.workloads import builtin_workload, write_workload

# LOSE runs uniform: on the calibration table below it loses beyond noise (about -10 points, SE 2)
LOSE = PLANNER_LOSE.replace("1..32", "1..16")


@pytest.fixture(scope="module")
def uniform_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("uniform_report")
    policy = write_policy(d, LOSE)
    table, dataset = builtin_workload(400, 16, seed=1, mix={"medium": 0.7, "easy": 0.3})
    calibration = d / "calibration.jsonl"
    write_workload(table, dataset, calibration, d / "calibration_queries.jsonl")
    plan = d / "plan.yaml"
    assert ttc("plan", str(policy), "-c", str(calibration), "-o", str(plan), "--reps", "16") == 0
    samples, queries = workload_files(d, n=60, m=16, seed=2)
    out = d / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=0)) == 0
    return load_plan(plan), json.loads((out / "report.json").read_text()), out


def test_a_uniform_run_reports_uniforms_strategy_in_every_bin(uniform_run) -> None:
    plan, report, out = uniform_run
    uniform = plan["uniform_choice"]
    assert uniform["strategy"] == "majority_vote"
    assert [b["strategy"] for b in plan["bins"]] == ["keep_probe", "majority_vote"]
    assert [(b["name"], b["strategy"]) for b in report["bins"]] == [
        ("hard", "majority_vote"), ("easy", "majority_vote")
    ]
    assert all(b["uniform"] for b in report["bins"])
    # and that is what ran: every query of the hard bin got the uniform counts, not its probe
    counts = {o["samples"] for o in uniform["allocation"]}
    assert {r["samples"] for r in results(out) if r["bin"] == "hard"} <= counts
    buffer = io.StringIO()
    render_report(report, file=buffer)
    text = buffer.getvalue()
    assert "uniform: majority_vote" in text and "keep_probe" not in text


def test_a_policy_run_reports_each_bins_own_strategy(tmp_path) -> None:
    # the other side: a plan that runs the policy shows its bins' strategies
    from tests.runtime.runs import ADAPTIVE, hand_plan

    policy = write_policy(tmp_path, ADAPTIVE)
    plan = hand_plan(policy)
    samples, queries = workload_files(tmp_path, n=20, m=12)
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run")) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [(b["strategy"], b["uniform"]) for b in report["bins"]] == [
        ("weighted_vote", False), ("majority_vote", False)  # the hand-written plan names no scorer
    ]
