"""`ttc simulate` on the example policies: the ones it models run on a fresh install (no data),
the others are refused by name with exit 1, never guessed."""

from __future__ import annotations

import json

import pytest

from tests.paths import REPO
from ttcdsl.cli import main


def test_self_consistency_equals_uniform_at_its_own_spend(capsys):
    """Self-consistency IS uniform allocation: on the same draws the difference is exactly 0."""
    code = main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--queries", "60",
                 "--seeds", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["samples"]["mean"] == 8.0
    assert report["simulated"]["max_samples"]["mean"] == 8.0
    assert report["difference"]["mean"] == 0.0
    assert report["simulated"]["accuracy"] == report["uniform"]["accuracy"]
    assert report["verdict"].startswith("no better than uniform")
    assert 0.0 < report["oracle"]["objective"]["mean"] <= 1.0


def test_best_of_n_equals_uniform_best_of_n_at_its_own_spend(capsys):
    """best_of_n IS uniform allocation answered by the reward model: uniform answers as the
    policy does, so on the same draws the difference is exactly 0."""
    code = main(["simulate", str(REPO / "policies" / "best_of_n.ttc"), "--queries", "60",
                 "--seeds", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["samples"]["mean"] == 8.0
    assert report["difference"]["mean"] == 0.0
    assert report["simulated"]["accuracy"] == report["uniform"]["accuracy"]


@pytest.mark.parametrize("name", ["compute_optimal", "oracle_coverage"])
def test_scored_and_offline_policies_run_on_a_fresh_install(name, capsys):
    """A reward-model difficulty with best-of-n and score-weighted bins; an offline stop rule on
    max(correct): simulated, with a verdict."""
    code = main(["simulate", str(REPO / "policies" / f"{name}.ttc"), "--queries", "60",
                 "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["samples"]["mean"] > 1.0
    assert 0.0 < report["simulated"]["coverage"]["mean"] <= 1.0
    assert report["verdict"]


@pytest.mark.parametrize("name, reason", [
    ("bandit_entropy", "the online bandit"),
])
def test_unsupported_policies_are_refused_by_name(name, reason, capsys):
    code = main(["simulate", str(REPO / "policies" / f"{name}.ttc"), "--queries", "20", "--seeds", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"does not support policy '{name}' yet" in err and reason in err


def test_token_budget_runs_on_a_fresh_install(capsys):
    """policies/token_budget.ttc (total and per-query token limits, prompt tokens charged): no
    data, simulated; the billed tokens (prompts included) keep both limits in every seed."""
    code = main(["simulate", str(REPO / "policies" / "token_budget.ttc"), "--queries", "60",
                 "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    simulated = report["simulated"]
    assert simulated["samples"]["mean"] >= 2.0
    assert 0.0 < simulated["max_tokens"]["mean"] <= 64_000
    assert 60 * simulated["tokens"]["mean"] <= 4_000_000
    # every sample bills its prompt (at least 16 tokens) on top of its completion tokens
    assert simulated["tokens"]["mean"] > 16 * simulated["samples"]["mean"]
    assert report["verdict"]


def test_bad_counts_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--seeds", "1"])
    assert exit_info.value.code == 2
    assert "--seeds must be at least 2" in capsys.readouterr().err


def test_a_plan_simulated_on_a_workload_fitted_to_its_table(tmp_path, capsys):
    """PLAN + --fit: the plan's own calibration table, fitted; the simulated spend and accuracy
    agree with the plan's predictions within their combined errors."""
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "calibration.jsonl"
    save(draw_table(Workload(name="builtin"), 240, 32, seed=4), table)
    plan = tmp_path / "esc.plan.yaml"
    assert main(["plan", str(REPO / "policies" / "early_stopping_sc.ttc"), "-c", str(table), "-o",
                 str(plan), "--reps", "32", "--no-cross-check"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(plan), "--fit", str(table), "--queries", "240", "--seeds", "8",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    import yaml

    predicted = yaml.safe_load(plan.read_text())["predicted"]
    for name in ("samples", "accuracy"):
        sim = report["simulated"][name]
        combined = (sim["se"] ** 2 + predicted[f"{name}_se"] ** 2) ** 0.5
        assert abs(sim["mean"] - predicted[name]) <= 3 * combined, (name, sim, predicted)
    assert report["workload"] == "fit:calibration.jsonl"


def test_a_fitted_workload_reads_the_policys_scorer_column(tmp_path, capsys):
    """--fit fits the scores of the policy's reward scorer: a table whose only score column is
    another scorer's is refused by name (it used to be fitted as if it were the policy's)."""
    from types import SimpleNamespace

    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "other.jsonl"
    save(draw_table(Workload(name="builtin"), 40, 8, seed=2, scorer=SimpleNamespace(name="orm", logits=False)),
         table)
    code = main(["simulate", str(REPO / "policies" / "best_of_n.ttc"), "--fit", str(table),
                 "--queries", "40", "--seeds", "2"])
    assert code == 1
    assert "no scores of reward-model scorer 'prm'" in capsys.readouterr().err
