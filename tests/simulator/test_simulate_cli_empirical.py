"""`ttc simulate POLICY --fit SAMPLES --empirical`: the table's own logged samples, the fitted
model only past the logged depth, whose share of the simulated samples is reported."""

from __future__ import annotations

import json

import pytest

from tests.paths import REPO
from ttcdsl.cli import main


def _table(tmp_path, depth: int):
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    path = tmp_path / f"logged{depth}.jsonl"
    save(draw_table(Workload(name="builtin"), 40, depth, seed=2), path)
    return path


def test_empirical_reports_the_share_past_the_logged_depth(tmp_path, capsys):
    """self_consistency, planned on a 12-deep table, takes 8 samples of every question; simulated
    on a 6-deep table, 2 of every 8 come from the fitted model: a share of exactly 2/8."""
    from ttcdsl.cli.simulate import _print

    plan = tmp_path / "sc.plan.yaml"
    assert main(["plan", str(REPO / "policies" / "self_consistency.ttc"), "-c", str(_table(tmp_path, 12)),
                 "-o", str(plan), "--reps", "8", "--no-cross-check"]) == 0
    capsys.readouterr()
    code = main(["simulate", str(plan), "--fit", str(_table(tmp_path, 6)), "--empirical",
                 "--queries", "40", "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["workload"] == "empirical:logged6.jsonl"
    assert report["simulated"]["samples"]["mean"] == 8.0
    assert report["simulated"]["extrapolated"] == 2 / 8
    _print(report)
    assert "extrapolated: 25.0% of the policy's simulated samples came from the fitted model" in \
        capsys.readouterr().out


def test_empirical_needs_a_table(capsys):
    with pytest.raises(SystemExit) as e:
        main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--empirical"])
    assert e.value.code == 2
    assert "--empirical resamples a table's logged samples: give the table with --fit SAMPLES" in \
        capsys.readouterr().err
