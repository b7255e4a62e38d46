"""make_plan end to end: calibration split, bins, budgets, infeasibility, and the plan file."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ttcdsl.errors import UserError
from ttcdsl.lang.api import parse_policy
from ttcdsl.lang.diagnostics import DiagnosticError
from ttcdsl.planner.build import make_plan
from ttcdsl.planner.calibration import calibrate
from ttcdsl.planner.plan import dump_plan, load_plan, save_plan, validate_plan
from ttcdsl.samples.errors import FileFormatError
from ttcdsl.samples.schema import RunMeta, SampleRow, SamplesTable
from ttcdsl.workloads import builtin_workload

HEADER = """
policy t "test"
sampling { temperature 0.7 max_tokens 512 }
"""


@pytest.fixture(scope="module")
def workload():
    table, _ = builtin_workload(160, 12, seed=3)
    return table


def table_of(rows_per_query: dict[str, list[tuple[str | None, bool]]], tokens: int | None = 100):
    rows = [
        SampleRow(
            query_id=q,
            sample_index=j,
            answer=a,
            correct=c,
            completion_tokens=tokens,
        )
        for q, samples in rows_per_query.items()
        for j, (a, c) in enumerate(samples)
    ]
    return SamplesTable.from_rows(rows, meta=RunMeta())


def test_curves_simulate_the_run_probe_first_then_held_out_samples():
    # A run's count n is the query's probe (the samples that binned it) plus n - probe more, and
    # its answer votes over all of them. The probe (first 2 samples) is "7", right; every
    # held-out sample is "3", wrong. So the run answers 7 at n = 2 (probe), 3 (7,7,3) and
    # 4 (7,7,3,3: the tie goes to the answer seen first), and 3 from n = 5 on. The logged order
    # puts the probe anywhere: the planner draws it as a replay does.
    policy = parse_policy(
        HEADER
        + """
budget { mean samples per query <= 4 }
probe 2 samples
feature agreement = top_share(answers)
bins by agreement thresholds [0.5] as split, agreed
strategy split = majority_vote
strategy agreed = majority_vote
allocate optimal maximize accuracy
"""
    )
    from ttcdsl.runtime.replay import replay_order

    queries = {}
    for i in range(6):
        # the probe is what a replay with the plan's seed (0) serves first, as at run time
        first_two = replay_order(0, f"q{i}", list(range(6)))[:2]
        queries[f"q{i}"] = [("7", True) if j in first_two else ("3", False) for j in range(6)]
    result = make_plan(policy, table_of(queries), cross_check=False, reps=8)
    agreed = result.plan["bins"][1]
    assert agreed["queries"] == 6
    assert list(agreed["curve"]["levels"]) == [2, 3, 4, 5, 6]  # the table holds 6 per query
    assert list(agreed["curve"]["value"]) == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert agreed["predicted"]["accuracy"] == 1.0
    assert "probe" in result.plan["calibration"]["probe_split"]


def test_bin_edges_are_absolute_and_an_edge_goes_up():
    policy = parse_policy(
        HEADER
        + """
budget { mean samples per query <= 3 }
probe 2 samples
feature agreement = top_share(answers)
bins by agreement thresholds [1] as low, high
strategy low = majority_vote
strategy high = keep_probe
allocate optimal maximize accuracy
"""
    )
    queries = {
        "unanimous": [("1", True), ("1", True), ("1", True)],
        "split": [("1", True), ("2", False), ("1", True)],
    }
    calibration = calibrate(policy, table_of(queries))
    assert calibration.edges == (1.0,)
    by_query = dict(zip(calibration.query_ids, calibration.bin_index.tolist(), strict=True))
    assert by_query == {"unanimous": 1, "split": 0}


def test_quantile_edges_are_recorded_in_key_units(workload):
    policy = parse_policy(
        HEADER
        + """
budget { mean samples per query <= 6 }
probe 3 samples
feature agreement = top_share(answers)
difficulty = 1 - agreement
bins by difficulty quantiles [0.5] as easy, hard
strategy easy = majority_vote
strategy hard = majority_vote
allocate optimal maximize accuracy
"""
    )
    result = make_plan(policy, workload, cross_check=False, reps=8)
    edge = result.plan["binning"]["edges"][0]
    key = result.calibration.key
    assert edge == pytest.approx(float(np.quantile(key, 0.5)), rel=1e-5)
    assert result.plan["bins"][0]["key_range"][1] == result.plan["bins"][1]["key_range"][0]


@pytest.mark.parametrize("budget", [3.0, 4.5, 6.0, 9.25])
def test_plan_meets_the_mean_budget_and_reports_the_gap(workload, budget):
    policy = parse_policy(
        HEADER
        + f"""
budget {{ mean samples per query <= {budget}  samples per query in 2..16 }}
probe 2 samples
feature agreement = top_share(answers)
bins by agreement quantiles [0.3, 0.7] as hard, mid, easy
strategy hard = majority_vote
strategy mid = majority_vote
strategy easy = majority_vote
allocate optimal maximize accuracy
"""
    )
    result = make_plan(policy, workload, reps=8)
    plan = result.plan
    spent = plan["budget"][0]["spent"]
    assert spent <= budget + 1e-9
    # whole queries: the allocation's query counts add up to the bin's queries
    for spec in plan["bins"]:
        assert sum(o["queries"] for o in spec["allocation"]) == spec["queries"]
        for option in spec["allocation"]:
            assert 2 <= option["samples"] <= 16
    solver = plan["solver"]
    assert solver["dual_bound"] >= solver["relaxation"] - 1e-9
    assert solver["objective"] <= solver["relaxation"] + 1e-12
    for check in solver["cross_checks"]:
        if not check["integral"]:
            assert check["objective"] == pytest.approx(solver["relaxation"], rel=1e-6, abs=1e-9)


def test_an_infeasible_budget_points_at_its_line_and_says_what_would_do(workload):
    source = (
        HEADER
        + """
budget {
  mean tokens per query <= 500
}
probe 3 samples
feature agreement = top_share(answers)
bins by agreement quantiles [0.5] as a, b
strategy a = majority_vote
strategy b = majority_vote
allocate optimal maximize accuracy
"""
    )
    policy = parse_policy(source)
    with pytest.raises(DiagnosticError) as caught:
        make_plan(policy, workload, reps=8)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "TTC400"
    assert source[diagnostic.span.start : diagnostic.span.end].startswith("mean tokens per query <= 500")
    # the probe alone costs what its 3 samples bill, each cut at max_tokens 512 (as replay
    # serves them), averaged over the queries
    needed = float(diagnostic.help.split("at least ")[1].split(";")[0].replace(",", ""))
    first3 = np.asarray(workload.sample_index) < 3
    tokens = np.asarray(workload.completion_tokens.filled(0), dtype=float)[first3]
    probe_cost = np.minimum(tokens, 512).sum() / len(set(workload.query_id))
    assert tokens.max() > 512  # the cut matters here
    assert needed == pytest.approx(probe_cost, rel=2e-3)
    assert "tokens per query" in diagnostic.message


def test_fixed_counts_over_a_total_are_refused(workload):
    policy = parse_policy(
        HEADER
        + """
budget { total samples <= 500 }
allocate fixed 8 maximize accuracy
"""
    )
    with pytest.raises(DiagnosticError) as caught:
        make_plan(policy, workload, reps=8)
    assert "1280" in caught.value.diagnostics[0].message  # 160 queries x 8


def test_total_budgets_scale_with_the_batch_size(workload):
    policy = parse_policy(
        HEADER
        + """
budget { total samples <= 4000  samples per query in 1..32 }
answer majority_vote
allocate optimal maximize accuracy
"""
    )
    small = make_plan(policy, workload, batch_size=1000, reps=8, cross_check=False).plan
    large = make_plan(policy, workload, batch_size=200, reps=8, cross_check=False).plan
    assert small["predicted"]["samples"] <= 4.0 + 1e-9
    assert large["predicted"]["samples"] <= 20.0 + 1e-9
    assert large["predicted"]["samples"] > small["predicted"]["samples"]


def test_a_probe_that_could_break_a_bins_limit_is_refused_by_the_plan_as_by_the_run(workload):
    # 2 probe samples x 160 calibration queries may all fall in `medium` before its bin is known:
    # the run refuses that (ttcdsl.runtime.ledger.probe_violations), so the plan must too
    policy = parse_policy(
        HEADER
        + """
budget { mean samples per query <= 8  total samples <= 300 for medium  samples per query in 2..16 }
probe 2 samples
feature agreement = top_share(answers)
difficulty = 1 - agreement
bins by difficulty quantiles [0.4, 0.8] as easy, medium, hard
strategy easy = majority_vote
strategy medium = majority_vote
strategy hard = majority_vote
allocate optimal maximize accuracy
"""
    )
    for batch in (None, 200):
        with pytest.raises(DiagnosticError) as caught:
            make_plan(policy, workload, batch_size=batch, reps=8, cross_check=False)
        (problem,) = caught.value.diagnostics
        assert problem.code == "TTC400" and f"x {batch or 160} queries, over 300" in problem.message
    make_plan(policy, workload, batch_size=150, reps=8, cross_check=False)  # 300: fits


def test_a_key_that_divides_by_zero_is_named_so_not_blamed_on_missing_data(workload):
    # top_share / (1 - top_share) has no value where the probe agrees; the message blamed token
    # counts, scores and logprobs missing from the table
    agreement = """
budget { mean samples per query <= 6 }
probe 2 samples
feature agree = top_share(answers)
feature odds = agree / (1 - agree)
bins by odds quantiles [0.5] as lo, hi
strategy lo = majority_vote
strategy hi = majority_vote
allocate optimal maximize accuracy
"""
    with pytest.raises(UserError) as caught:
        make_plan(parse_policy(HEADER + agreement), workload, reps=8, cross_check=False)
    assert re.search(r"key 'odds' is undefined for \d+ of 160 calibration queries: it divides by zero",
                     caught.value.message)
    assert "divisor" in caught.value.hint and "tokenizer" not in caught.value.hint
    # kept away from 0, the same key plans
    safe = agreement.replace("agree / (1 - agree)", "agree / (1.01 - agree)")
    make_plan(parse_policy(HEADER + safe), workload, reps=8, cross_check=False)


def test_missing_scorer_column_is_a_clear_error(workload):
    policy = parse_policy(
        HEADER
        + """
scorer rm = reward_model "some/rm"
answer best_of_n(rm)
allocate fixed 4 maximize accuracy
"""
    )
    with pytest.raises(UserError, match="lacks the score column 'rm'"):
        make_plan(policy, workload)
    plan = make_plan(policy, workload, score_columns={"rm": "prm"}, reps=8).plan
    assert plan["bins"][0]["allocation"] == [{"samples": 4, "share": 1.0, "queries": 160}]


def test_a_token_budget_needs_token_counts():
    policy = parse_policy(
        HEADER
        + """
budget { mean tokens per query <= 1000 }
answer majority_vote
allocate optimal maximize accuracy
"""
    )
    queries = {f"q{i}": [("1", True), ("2", False), ("1", True)] for i in range(4)}
    with pytest.raises(UserError, match="no completion token counts"):
        make_plan(policy, table_of(queries, tokens=None))


def test_a_charged_prompt_without_prompt_token_counts_is_named():
    """The table counted completion tokens; the refusal said it had none, when what it lacks
    is the prompt tokens the policy charges."""
    policy = parse_policy(
        HEADER
        + """
budget {
  mean tokens per query <= 1000
  charge prompt tokens
}
answer majority_vote
allocate optimal maximize accuracy
"""
    )
    queries = {f"q{i}": [("1", True), ("2", False), ("1", True)] for i in range(4)}
    with pytest.raises(UserError, match="lacks prompt token counts") as refused:
        make_plan(policy, table_of(queries, tokens=100))
    assert "no completion token counts" not in str(refused.value)
    assert "--prompt-tokens-field" in refused.value.hint


def test_no_gold_labels_is_a_clear_error():
    policy = parse_policy(HEADER + "allocate fixed 2 maximize accuracy\n")
    rows = [SampleRow(query_id="q", sample_index=j, answer="1") for j in range(3)]
    with pytest.raises(UserError, match="correctness label"):
        make_plan(policy, SamplesTable.from_rows(rows, meta=RunMeta()))


def agreement_bins(probe: int, cut: float, names: tuple[str, str] = ("split", "agreed")):
    """A fixed policy of 4 samples per query, majority vote in two bins split by the probe's
    agreement at ``cut`` (the shape several planner tests calibrate)."""
    low, high = names
    return parse_policy(HEADER + f"""
probe {probe} samples
feature agreement = top_share(answers)
bins by agreement thresholds [{cut}] as {low}, {high}
strategy {low} = majority_vote
strategy {high} = majority_vote
allocate fixed 4 maximize accuracy
""")


def test_too_few_samples_beyond_the_probe_is_a_clear_error():
    policy = agreement_bins(probe=4, cut=0.5)
    queries = {"q": [("1", True)] * 4}
    with pytest.raises(UserError, match="none is left to estimate the curves"):
        make_plan(policy, table_of(queries))


def test_stop_rules_lower_the_expected_spend(workload):
    base = HEADER + "answer majority_vote\nallocate fixed 12 maximize accuracy\n"
    plain = make_plan(parse_policy(base), workload, reps=16).plan
    stopping = make_plan(
        parse_policy(base + "stop { when unanimous last 3 }\n"), workload, reps=16
    ).plan
    assert plain["predicted"]["samples"] == 12
    assert stopping["predicted"]["samples"] < 12
    assert stopping["bins"][0]["curve"]["stop_rules_simulated"] is True
    # stopping early can only lose accuracy relative to always spending 12
    assert stopping["predicted"]["accuracy"] <= plain["predicted"]["accuracy"] + 0.02


def test_bandit_plans_hold_settings_not_allocations(workload):
    policy = parse_policy(
        HEADER
        + """
budget { mean samples per query <= 6  samples per query in 2..16 }
scorer prm = reward_model "x"
allocate bandit { round 2 samples  explore ucb  solved when top_share >= 0.75 after 4 } maximize accuracy
answer best_of_n(prm)
"""
    )
    plan = make_plan(policy, workload).plan
    assert plan["mode"] == "bandit"
    assert plan["bandit"]["explore"] == "ucb"
    assert plan["bandit"]["solved"] == ["top_share >= 0.75 after 4"]
    assert "allocation" not in plan["bins"][0]
    validate_plan(plan)


# ---- the plan file ------------------------------------------------------------------------


def test_plan_file_round_trips(workload, tmp_path):
    policy = parse_policy(HEADER + "budget { mean samples per query <= 4 }\nallocate optimal maximize accuracy\n")
    plan = make_plan(policy, workload, reps=8).plan
    path = tmp_path / "p.plan.yaml"
    save_plan(plan, path)
    loaded = load_plan(path)
    assert loaded["policy"]["source_sha256"] == policy.source_hash
    digest = loaded.pop("plan_sha256")  # the one field saving adds: the content's sha256
    assert len(digest) == 64 and "plan_sha256" not in plan
    assert dump_plan(loaded) == dump_plan(plan)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda p: p.pop("ttcdsl_plan"), None),
        (lambda p: p.update(ttcdsl_plan=99), "ttcdsl_plan"),
        (lambda p: p.update(mode="greedy"), "mode"),
        (lambda p: p["bins"][0]["allocation"][0].update(samples=2.5), "bins[0].allocation[0].samples"),
        (lambda p: p["bins"][0]["allocation"][0].update(share=0.5), "bins[0].allocation"),
        (lambda p: p["bins"][0]["sampling"].pop("max_tokens"), "bins[0].sampling.max_tokens"),
        (lambda p: p["bins"].append(dict(p["bins"][0])), "bins"),
        (lambda p: p["policy"].update(name=""), "policy.name"),
    ],
)
def test_a_damaged_plan_names_the_field(workload, tmp_path, edit, field):
    policy = parse_policy(HEADER + "allocate fixed 3 maximize accuracy\n")
    plan = make_plan(policy, workload, reps=8).plan
    edit(plan)
    path = tmp_path / "bad.plan.yaml"
    path.write_text(dump_plan(plan))
    with pytest.raises(FileFormatError) as caught:
        load_plan(path)
    assert caught.value.field == field
    assert str(path) in caught.value.message


def test_plan_that_is_not_yaml(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("policy: [unclosed\n")
    with pytest.raises(FileFormatError, match="not valid YAML"):
        load_plan(path)
    with pytest.raises(FileFormatError, match="no such plan file"):
        load_plan(tmp_path / "missing.yaml")
    # a bad byte by its line and column (it was "'utf-8' codec can't decode byte 0xff in position 31")
    path.write_bytes(b"mode: fixed\npolicy:\n  name: ab\xffc\n")
    with pytest.raises(FileFormatError) as caught:
        load_plan(path)
    assert caught.value.line == 3 and "not valid UTF-8 text (byte 0xff at column 11)" in caught.value.message


def test_every_solver_gives_the_same_plan_value(workload):
    policy = parse_policy(
        HEADER
        + """
budget { mean samples per query <= 5.5  samples per query in 2..12 }
probe 2 samples
feature agreement = top_share(answers)
bins by agreement quantiles [0.5] as hard, easy
strategy hard = majority_vote
strategy easy = majority_vote
allocate optimal maximize accuracy
"""
    )
    plans = {
        solver: make_plan(policy, workload, solver=solver, reps=8, cross_check=False).plan
        for solver in ("frontier", "lagrangian", "lp", "dp")
    }
    relaxation = plans["frontier"]["solver"]["relaxation"]
    for solver in ("lagrangian", "lp"):
        assert plans[solver]["solver"]["relaxation"] == pytest.approx(relaxation, rel=1e-7)
    # the DP's integer optimum (one count per bin) is below the relaxation
    assert plans["dp"]["solver"]["relaxation"] <= relaxation + 1e-12
    for plan in plans.values():
        assert plan["budget"][0]["spent"] <= 5.5 + 1e-12


def test_several_limits_go_to_the_lp(workload):
    policy = parse_policy(
        HEADER
        + """
budget {
  mean samples per query <= 6
  mean tokens per query <= 5000
  samples per query in 2..12
}
probe 2 samples
feature agreement = top_share(answers)
bins by agreement quantiles [0.5] as hard, easy
strategy hard = majority_vote
strategy easy = majority_vote
allocate optimal maximize accuracy
"""
    )
    plan = make_plan(policy, workload, reps=8).plan
    assert plan["solver"]["name"].startswith("cvxpy/")
    spent = {limit["unit"]: limit["spent"] for limit in plan["budget"] if "spent" in limit}
    assert spent["samples"] <= 6 + 1e-12 and spent["tokens"] <= 5000 + 1e-9
    with pytest.raises(UserError, match="--solver lagrangian handles one batch budget"):
        make_plan(policy, workload, solver="lagrangian", reps=8)



@pytest.mark.parametrize(("edit", "field", "message"), [
    (lambda p: p["predicted"].__setitem__("accuracy", "high"), "predicted.accuracy", "finite number"),
    (lambda p: p["predicted"].__setitem__("accuracy", float("nan")), "predicted.accuracy", "finite number"),
    (lambda p: p["predicted"].__setitem__("accuracy", 1.5), "predicted.accuracy", "[0, 1]"),
    (lambda p: p["predicted"].__setitem__("samples_se", -1), "predicted.samples_se", "at least 0"),
    (lambda p: p["bins"][0].__setitem__("predicted", "x"), "bins[0].predicted", "mapping"),
    (lambda p: p.__setitem__("calibration", "x"), "calibration", "mapping"),
    (lambda p: p["calibration"].__setitem__("samples_per_query", "x"), "calibration.samples_per_query", "list"),
    (lambda p: p["calibration"].__setitem__("samples_per_query", [4]), "calibration.samples_per_query", "[fewest, most]"),
    (lambda p: p.__setitem__("uniform_choice", {"strategy": "majority_vote"}), "uniform_choice.allocation", "list"),
])
def test_a_plans_figures_are_checked_before_a_run_reads_them(workload, edit, field, message):
    """A run reads the plan's predictions back into its report and its calibration depth into
    its checks: a hand-edited value crashed the run (exit 3) after it had spent its budget."""
    import copy

    policy = parse_policy(HEADER + "budget { mean samples per query <= 4 }\nallocate optimal maximize accuracy\n")
    plan = make_plan(policy, workload, reps=8).plan
    validate_plan(plan)
    edited = copy.deepcopy(plan)
    edit(edited)
    with pytest.raises(FileFormatError, match=re.escape(message)) as caught:
        validate_plan(edited)
    assert caught.value.field == field


def test_a_plan_records_its_digest_and_an_edit_is_seen(workload, tmp_path):
    """`ttc plan` writes the sha256 of the plan's content; re-formatting the YAML keeps it, a
    changed value does not (a hand-edited allocation ran against the old predictions unsaid)."""
    import yaml

    from ttcdsl.planner.plan import edited_after_planning

    policy = parse_policy(HEADER + "budget { mean samples per query <= 4 }\nallocate optimal maximize accuracy\n")
    path = tmp_path / "p.plan.yaml"
    save_plan(make_plan(policy, workload, reps=8).plan, path)
    plan = load_plan(path)
    assert len(plan["plan_sha256"]) == 64 and not edited_after_planning(plan)
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()), sort_keys=True, width=40))
    assert not edited_after_planning(load_plan(path))
    plan["bins"][0]["allocation"][0]["samples"] += 1
    assert edited_after_planning(plan)
    del plan["plan_sha256"]  # a digest removed (an edit that would hide the others): unknown
    assert edited_after_planning(plan) is None
