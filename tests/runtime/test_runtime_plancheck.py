"""A plan edited by hand is refused by `ttc run`, naming the file and the field, for every plan
field the run reads; the plans the planner writes pass."""

from __future__ import annotations

import pytest
import yaml

from tests.policy_texts import entropy_bandit
from tests.runtime.runs import hand_plan, run_args, ttc, workload_files, write_policy
from ttcdsl.errors import UserError
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.online import online_plan
from ttcdsl.runtime.plancheck import check_plan_against_policy

THRESHOLDS = "bins by agreement thresholds [0.75] as split, agree"
QUANTILES = "bins by agreement quantiles [0.5] as split, agree"


def _set(data: dict, field: str, value) -> None:
    *path, last = field.replace("[", ".").replace("]", "").split(".")
    for part in path:
        data = data[int(part)] if part.isdigit() else data[part]
    data[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("probe", 40, "the plan says 40, but the policy says 2"),
        ("policy.name", "other", "the plan says 'other'"),
        ("mode", "bandit", "the plan says 'bandit', but the policy says 'optimal'"),
        ("objective", "coverage", "the policy says 'accuracy'"),
        ("binning.key", "length", "the plan says 'length', but the policy says 'agreement'"),
        ("binning.method", "quantiles", "the policy says 'thresholds'"),
        ("binning.cuts", [0.5], "the plan says [0.5], but the policy says [0.75]"),
        ("binning.edges", [0.5], "the plan says [0.5], but the policy says [0.75]"),
        ("bins[1].name", "easy", "the plan says 'easy', but the policy says 'agree'"),
        ("bins[0].strategy", "majority_vote", "the policy says 'weighted_vote'"),
        ("bins[0].sampling.max_tokens", 99, "the plan says 99, but the policy says 4096"),
        # a key only the plan has: the policy says nothing of it (it read 'None', Python's word)
        ("bins[0].sampling.bogus", 1, "the plan says 1, but the policy says nothing"),
        ("bins[1].allocation[0].samples", 40, "40 samples per query, but the policy allows 2..12"),
        ("bins[0].allocation[1].samples", 1, "1 samples per query, but the policy allows 2..12"),
        # a field of the wrong kind is refused by name when the plan is read (it crashed the run
        # or the simulator where it was used)
        ("probe", "x", "must be a whole number from 0"),
        ("batch_size", -5, "must be a whole number from 1"),
        ("bins[0].allocation[0].samples", 10**30, "must be a whole number from 0"),
        ("policy.file", 123, "must be a path"),
        ("predicted", [1, 2], "must be a mapping"),
        ("uniform_choice", "x", "must be a mapping"),
        ("bandit", "x", "must be a mapping"),
    ],
)
def test_a_hand_edited_plan_field_is_refused(tmp_path, capsys, field, value, message) -> None:
    policy = write_policy(tmp_path)
    plan = hand_plan(policy)
    data = yaml.safe_load(plan.read_text())
    _set(data, field, value)
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    samples, queries = workload_files(tmp_path, n=6, m=16)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 1
    err = capsys.readouterr().err
    assert f"{plan}: field {field!r}: " in err and message in err, err
    assert not out.exists()


def test_quantile_edges_are_the_planners_to_choose(tmp_path) -> None:
    from tests.runtime.runs import ADAPTIVE

    policy = write_policy(tmp_path, ADAPTIVE.replace(THRESHOLDS, QUANTILES))
    plan = yaml.safe_load(hand_plan(policy, edges=[0.61]).read_text())
    check_plan_against_policy(plan, load_policy(policy), "p.yaml")  # absolute edges: any value
    plan["binning"]["cuts"] = [0.9]
    with pytest.raises(UserError, match=r"field 'binning.cuts'"):
        check_plan_against_policy(plan, load_policy(policy), "p.yaml")


BANDIT = entropy_bandit("b", "a bandit", budget="""
    mean samples per query <= 8
    samples per query in 2..16""", max_tokens=2000)


@pytest.mark.parametrize(
    "field, value",
    [("bandit.round_samples", 8), ("bandit.explore", "all"), ("bandit.solved", []),
     ("probe", 3), ("bins[0].strategy", "best_of_n")],
)
def test_a_hand_edited_bandit_plan_is_refused(tmp_path, field, value) -> None:
    path = write_policy(tmp_path, BANDIT, name="b.ttc")
    policy = load_policy(path)
    plan = online_plan(policy, policy_file=str(path))
    check_plan_against_policy(plan, policy, "b.plan.yaml")
    _set(plan, field, value)
    with pytest.raises(UserError, match=f"b.plan.yaml: field '{field.replace('[', '.').split('.')[0]}"):
        check_plan_against_policy(plan, policy, "b.plan.yaml")


@pytest.mark.parametrize("edit, message", [
    (lambda budget: budget[0].update(value=2), "field 'budget[0].value': the plan says 2, but the policy says 6"),
    (lambda budget: budget[0].update(value="eight"), "the plan says 'eight'"),
    (lambda budget: budget.clear(), "field 'budget': the plan says []"),
    (lambda budget: budget[1].update(label="samples per query in 1..99"), "budget[1].label"),
])
def test_a_hand_edited_budget_is_refused(tmp_path, capsys, edit, message) -> None:
    """The run keeps the policy's limits, so an edited budget ran as the policy's while the run
    directory's plan showed the edited one (`mean samples per query <= 2`, a cap of 800 spent)."""
    from ttcdsl.planner.report import budget_entries

    policy = write_policy(tmp_path)
    plan = hand_plan(policy)
    data = yaml.safe_load(plan.read_text())
    data["budget"] = [entry for _, entry in budget_entries(load_policy(policy))]
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    samples, queries = workload_files(tmp_path, n=6, m=16)
    assert ttc(*run_args(plan, queries, samples, tmp_path / "ok")) == 0  # as the planner wrote it
    edit(data["budget"])
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    capsys.readouterr()
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "run").exists()
