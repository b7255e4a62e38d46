"""`allocate per query` as a user meets it: plan, explain, run, a damaged plan, simulate."""

from __future__ import annotations

import pytest
import yaml

from tests.paths import REPO
from tests.runtime.runs import results, run_args, workload_files
from ttcdsl.cli import main
from ttcdsl.planner.plan import load_plan

POLICY = REPO / "policies" / "per_query_vote.ttc"


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    d = tmp_path_factory.mktemp("per_query")
    samples, queries = workload_files(d, n=80, m=12, seed=3)
    plan = d / "plan.yaml"
    assert main(["plan", str(POLICY), "-c", str(samples), "-o", str(plan), "--reps", "8"]) == 0
    return d, plan, queries, samples


def test_the_plan_holds_the_predictor_and_explains_it(planned, capsys):
    _, plan, _, samples = planned
    loaded = load_plan(plan)
    assert loaded["mode"] == "per_query"
    predictor = loaded["per_query"]["predictor"]
    assert predictor["features"] == ["agreement", "answers_seen"]
    assert sum(predictor["count"]) == loaded["calibration"]["queries"]
    (only,) = loaded["bins"]
    assert sum(o["queries"] for o in only["allocation"]) == loaded["calibration"]["queries"]
    assert loaded["predicted"]["accuracy_se"] > 0
    assert main(["plan", str(POLICY), "-c", str(samples), "--reps", "8", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "per query: counts from a nearest_neighbours predictor" in text


def test_a_run_gives_each_query_its_own_target_within_the_budget(planned):
    d, plan, queries, samples = planned
    out = d / "run"
    assert main(run_args(plan, queries, samples, out)) == 0
    rows = results(out)
    spent = [r["samples"] for r in rows]
    assert sum(spent) <= 8 * len(rows)
    assert all(r["target"] >= 2 and r["samples"] <= r["target"] for r in rows)
    assert all(r["key"] is not None for r in rows)  # the predicted gain over the probe


def test_a_damaged_predictor_names_its_field(planned, tmp_path, capsys):
    _, plan, queries, samples = planned
    data = yaml.safe_load(plan.read_text())
    data["per_query"]["predictor"]["scale"] = [1.0]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    assert main(run_args(broken, queries, samples, tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert "per_query.predictor.scale" in err and "Traceback" not in err


def test_simulate_runs_the_plan_and_names_a_damaged_predictors_field(planned, tmp_path, capsys):
    """`ttc simulate PLAN --fit` (refused before the simulator modelled the mode): each simulated
    batch allocated by the plan's predictor after its probe, the spend within the budget; a
    damaged predictor is named by its field, as `ttc run` names it."""
    import json

    _, plan, _, samples = planned
    assert main(["simulate", str(plan), "--fit", str(samples), "--queries", "80", "--seeds", "2",
                 "--json"]) == 0
    sim = json.loads(capsys.readouterr().out)["simulated"]
    assert 2.0 <= sim["samples"]["mean"] <= 8.0 + 1e-9
    assert sim["max_samples"]["mean"] > 2.0
    data = yaml.safe_load(plan.read_text())
    data["per_query"]["predictor"]["scale"] = [1.0]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    assert main(["simulate", str(broken), "--fit", str(samples), "--seeds", "2"]) == 1
    err = capsys.readouterr().err
    assert "per_query.predictor.scale" in err and "Traceback" not in err


def test_ttc_plan_refuses_a_batch_relative_feature(planned, tmp_path, capsys):
    # normalize() would mean one thing on the calibration table the predictor learned from and
    # another on each run batch (TTC616): refused before anything is fitted
    _, _, _, samples = planned
    text = POLICY.read_text()
    assert "feature answers_seen = distinct(answers)" in text
    policy = tmp_path / "normalized.ttc"
    policy.write_text(text.replace(
        "feature answers_seen = distinct(answers)", "feature answers_seen = normalize(distinct(answers))"
    ))
    assert main(["plan", str(policy), "-c", str(samples), "--reps", "8"]) == 1
    err = capsys.readouterr().err
    assert "TTC616" in err and "normalize(distinct(answers))" in err
