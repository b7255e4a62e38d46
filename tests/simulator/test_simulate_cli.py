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


@pytest.mark.parametrize("name, reason", [
    ("bandit_entropy", "the online bandit"),
    ("best_of_n", "reward_model scorer 'prm'"),
    ("compute_optimal", "reward_model scorer 'prm'"),
    ("oracle_coverage", "reads correct"),
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
