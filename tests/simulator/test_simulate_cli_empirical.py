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


@pytest.mark.parametrize("depth, extrapolates", [(12, True), (32, False)])
def test_the_bandit_runs_in_the_empirical_mode(tmp_path, capsys, depth, extrapolates):
    """policies/bandit_entropy.ttc (per-query cap 32, mean budget 8): on a 12-deep table the
    questions the bandit pushes past 12 samples continue with the fitted model, and the report says
    what share; on a 32-deep table every sample is a logged one."""
    code = main(["simulate", str(REPO / "policies" / "bandit_entropy.ttc"), "--fit", str(_table(tmp_path, depth)),
                 "--empirical", "--queries", "40", "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["workload"] == f"empirical:logged{depth}.jsonl"
    sim = report["simulated"]
    assert 2 <= sim["samples"]["mean"] <= 8.0 + 1e-9
    if extrapolates:
        assert sim["max_samples"]["mean"] > 12, "some question should pass the logged depth"
        assert 0 < sim["extrapolated"] < 1
    else:
        assert sim["extrapolated"] == 0
    assert report["verdict"]


def test_a_plan_reading_tokens_the_table_never_logged_is_refused(tmp_path, capsys):
    """A token-budget plan simulated on a table whose samples carry no token counts: refused
    before anything runs, naming the table and what it lacks (a fit would stand in numbers for
    tokens never measured)."""
    plan = tmp_path / "tb.plan.yaml"
    assert main(["plan", str(REPO / "policies" / "token_budget.ttc"), "-c", str(_table(tmp_path, 12)),
                 "-o", str(plan), "--reps", "8", "--no-cross-check"]) == 0
    logged = _table(tmp_path, 6)
    header, *rows = logged.read_text().splitlines()
    untimed = tmp_path / "untimed.jsonl"
    untimed.write_text("\n".join([header, *(json.dumps(json.loads(r) | {"completion_tokens": None})
                                            for r in rows)]) + "\n")
    capsys.readouterr()
    for mode in ([], ["--empirical"]):
        assert main(["simulate", str(plan), "--fit", str(untimed), *mode, "--queries", "40", "--seeds", "2"]) == 1
        err = capsys.readouterr().err
        assert f"--fit {untimed} cannot serve policy 'token_budget': it lacks completion token counts" in err, err


@pytest.mark.parametrize("edit, code, says", [
    # no answers: nothing to fit (with its labels kept, the fit simulated 79% accuracy)
    ({"answer": None, "correct": False}, 1, "no sample of the table carries an answer"),
    ({"answer": None}, 1, "no sample of the table carries an answer"),
    ({"correct": False}, 0,
     "warning: {broken}: no sample is labelled correct: accuracy and coverage are 0 by construction"),
])
def test_a_table_that_makes_every_figure_zero_is_flagged(tmp_path, capsys, edit, code, says):
    """A --fit table with no sample labelled correct gives 0% everywhere: a warning says why, so
    the zeros are not read as a measured result. One with no answers at all is refused."""
    logged = _table(tmp_path, 6)
    header, *rows = logged.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([header, *(json.dumps(json.loads(r) | edit) for r in rows)]) + "\n")
    assert main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--fit", str(broken),
                 "--queries", "20", "--seeds", "2"]) == code
    assert says.format(broken=broken) in capsys.readouterr().err


def test_the_table_keeps_wide_interval_cells_apart(capsys):
    # an interval cut at 100% is wide: `76.0 ± 19.1` then `84.5 (59.1..100.0)` printed as
    # `76.0 ± 19.184.5 (59.1..100.0)` with fixed 16-character columns
    from ttcdsl.cli.simulate import _print

    def interval(mean, lo, hi):
        return {"mean": mean, "lo": lo, "hi": hi}

    wide = {"accuracy": interval(0.76, 0.569, 0.951), "coverage": interval(0.845, 0.591, 1.0),
            "samples": interval(6.0, 5.9, 6.1), "max_samples": interval(10, 10, 10),
            "rounds": interval(3, 3, 3)}
    _print({"policy": "p", "workload": "w", "queries": 200, "seeds": 2, "objective": "coverage",
            "verdict": "no better", "simulated": wide, "uniform": wide,
            "oracle": {"objective": interval(0.845, 0.591, 1.0), "samples": 6.0, "max_samples": 12.0}})
    lines = capsys.readouterr().out.splitlines()
    coverage = next(line for line in lines if line.startswith("coverage %"))
    assert coverage.split("  ")[0] == "coverage %"
    assert [c.strip() for c in coverage.split("  ") if c.strip()][1:] == ["84.5 (59.1..100.0)"] * 3
    accuracy = next(line for line in lines if line.startswith("accuracy %"))
    assert [c.strip() for c in accuracy.split("  ") if c.strip()][1:] == ["76.0 ± 19.1"] * 2


def test_the_empirical_oracle_stays_within_the_logged_samples(tmp_path, capsys):
    """Two questions of the built-in workload, 8 logged samples each: one right 0 of 8 times
    (within max_tokens), the other 8 of 8. No allocation of those samples answers more than the
    share of the second, which uniform at one sample reaches; the oracle drew fresh samples
    from the fitted posterior (which gives the first a chance) and printed 58% for 50%,
    spending 3 samples on a question; it now draws the logged samples first, as the policy."""
    full, table = tmp_path / "wl.jsonl", tmp_path / "two.jsonl"
    assert main(["workload", "-o", str(full), "--queries", "60", "--samples", "8"]) == 0
    header, *lines = full.read_text().splitlines()
    keep = [line for line in lines if json.loads(line)["query_id"] in ("synth-0000", "synth-0001")]
    table.write_text("\n".join([header, *keep]) + "\n")
    right = {}
    for line in keep:
        row = json.loads(line)
        right.setdefault(row["query_id"], []).append(bool(row["correct"]) and row["completion_tokens"] <= 1024)
    assert sorted(map(sum, right.values())) == [0, 8]  # the table this test is about
    policy = tmp_path / "unif.ttc"
    policy.write_text('policy unif "uniform vote"\nbudget {\n  mean samples per query <= 4\n'
                      '  samples per query in 1..8\n}\nsampling { temperature 0.7  max_tokens 1024 }\n'
                      'answer majority_vote\nallocate optimal maximize accuracy\n')
    capsys.readouterr()
    assert main(["simulate", str(policy), "--fit", str(table), "--empirical", "--queries", "40",
                 "--seeds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["extrapolated"] == 0.0
    assert report["oracle"]["objective"]["mean"] == pytest.approx(report["uniform"]["accuracy"]["mean"])
    assert report["oracle"]["max_samples"] <= 8
