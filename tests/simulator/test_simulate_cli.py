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
    ("token_budget", "charge prompt tokens"),
])
def test_unsupported_policies_are_refused_by_name(name, reason, capsys):
    code = main(["simulate", str(REPO / "policies" / f"{name}.ttc"), "--queries", "20", "--seeds", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"does not support policy '{name}' yet" in err and reason in err


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


def test_the_bandit_runs_on_a_fresh_install(capsys):
    """`ttc simulate policies/bandit_entropy.ttc` (refused before the simulator modelled the
    bandit): planned on a drawn table (with the learned skip), simulated, printed with a verdict;
    the spend keeps the budget (mean 8, at most 32 per query) and rounds are the bandit's."""
    code = main(["simulate", str(REPO / "policies" / "bandit_entropy.ttc"), "--queries", "60",
                 "--seeds", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "bandit_entropy on builtin" in out
    assert out.splitlines()[-1].startswith("verdict: ")
    code = main(["simulate", str(REPO / "policies" / "bandit_entropy.ttc"), "--queries", "60",
                 "--seeds", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    sim = report["simulated"]
    assert 2.0 <= sim["samples"]["mean"] <= 8.0 + 1e-9
    assert sim["max_samples"]["mean"] <= 32
    assert sim["rounds"]["mean"] > 2  # a first round of 2, then rounds of 2 samples
    assert 0.0 < sim["accuracy"]["mean"] <= sim["coverage"]["mean"] <= 1.0


def test_a_bandit_without_a_per_query_cap_is_refused_by_name(tmp_path, capsys):
    policy = tmp_path / "uncapped.ttc"
    policy.write_text((REPO / "policies" / "bandit_entropy.ttc").read_text().replace(
        "  samples per query in 2..32\n", ""))
    code = main(["simulate", str(policy), "--queries", "20", "--seeds", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "does not support policy 'bandit_entropy' yet" in err and "samples per query <= N" in err
