"""`ttc compare` end to end on a real pool (CRUXEval input, CodeLlama-7B x10), and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.compare.baselines import exact_curves
from ttcdsl.curves.pool import QueryPool
from ttcdsl.datasets.split import split_ids
from ttcdsl.importers import ImportOptions, import_cruxeval_scored
from ttcdsl.samples import load, save
from ttcdsl.verdict import verdict

POLICIES = REPO / "policies"


@pytest.fixture(scope="module")
def crux(shared_data: Path, tmp_path_factory) -> Path:
    table = import_cruxeval_scored(
        shared_data / "pools" / "cruxeval_input_codellama7b_x10.json", ImportOptions()
    )
    path = tmp_path_factory.mktemp("crux") / "crux_input.jsonl"
    save(table, path)
    return path


@pytest.fixture(scope="module")
def compared(crux, tmp_path_factory):
    """oracle_coverage at two budgets, best_of_n (no reward-model scores in this pool) and a
    policy that does not check, in one comparison: every output is written, the invalid file's
    diagnostics name its lines on stderr, and the exit code (1) says the command line had one."""
    broken = tmp_path_factory.mktemp("policies") / "broken.ttc"
    broken.write_text('policy broken "no allocation"\n')
    out = tmp_path_factory.mktemp("out") / "cmp"
    argv = ["compare", str(POLICIES / "oracle_coverage.ttc"), str(POLICIES / "best_of_n.ttc"),
            str(broken), "--samples", str(crux), "--budgets", "2,4", "--repeats", "2",
            "--out", str(out), "--format", "md"]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 1
    assert f"{broken}:1:" in err.getvalue() and "not valid policies" in err.getvalue()
    return json.loads((out / "compare.json").read_text()), out


def test_outputs_written(compared):
    doc, out = compared
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "compare.md").read_text()
    assert "| oracle_coverage | 2 |" in text and "cannot run" in text
    # the reference table says it is the samples as logged, not cut at any policy's max_tokens
    assert "Uniform and the oracles (exact curves of the samples as logged, no max_tokens cut;" in text


def test_rows_for_policies_that_cannot_run(compared):
    doc, _ = compared
    errors = {row["policy"]: row["error"] for row in doc["rows"] if "error" in row}
    assert "prm" in errors["best_of_n"]
    (broken,) = [reason for name, reason in errors.items() if name.endswith("broken.ttc")]
    assert broken
    ran = [row for row in doc["rows"] if "error" not in row]
    assert [(row["policy"], row["budget"]) for row in ran] == [
        ("oracle_coverage", 2.0), ("oracle_coverage", 4.0)]


def test_row_numbers_recomputed(compared, crux):
    """Uniform at the policy's own spend, on the evaluation half, from pass@n computed here; the
    difference, the verdict's sentence and the share of the oracle's gain follow from them."""
    doc, _ = compared
    table = load(crux)
    cal, ev = split_ids(table.query_ids(), fraction=0.5, seed=0)
    assert doc["evaluation_queries"] == len(ev) and doc["calibration_queries"] == len(cal)
    pool = QueryPool.from_table(table.where(query_ids=ev))
    m, c = pool.n_samples, pool.n_correct
    for row in (r for r in doc["rows"] if "error" not in r):
        s = row["samples_per_query"]
        lo = int(np.floor(s))

        def pass_at(n):
            return 1 - np.prod([(m - c - i) / (m - i) for i in range(n)], axis=0)

        uniform = ((1 - (s - lo)) * pass_at(lo) + (s - lo) * pass_at(lo + 1)).mean()
        assert row["uniform"] == pytest.approx(uniform, abs=1e-12)
        # regression-adjusted on the same orders: the run minus exact uniform, less c times
        # uniform's luck on those orders (exact uniform at each order's spend: close to the
        # row's uniform at the mean spend)
        shared = row["uniform_adjustment"]
        assert row["diff"] == pytest.approx(
            row["coverage"] - uniform - shared * (row["uniform_same_orders"] - uniform), abs=2e-3)
        assert abs(row["uniform_same_orders"] - uniform) < 0.02
        assert row["verdict"] == verdict(row["diff"], row["se"])
        # the share reads the adjusted estimate (uniform plus the verdict's difference)
        assert row["adjusted_value"] == pytest.approx(uniform + row["diff"], abs=1e-12)
        assert row["oracle_share"] == pytest.approx(row["diff"] / (row["static_oracle"] - uniform))
        assert row["samples_per_query"] <= row["budget"] + 1e-9
        # oracle_coverage stops at the first correct sample: it is the dynamic oracle's rule
        assert row["coverage"] <= row["static_oracle"] + 1e-9


def test_verdict_wording(compared):
    """Elimination at 4 samples per query beats uniform coverage on CRUXEval-input by about two
    points, well outside its CI; the sentence says so, with the difference and the CI."""
    doc, _ = compared
    (row,) = [r for r in doc["rows"] if r.get("budget") == 4.0]
    assert re.fullmatch(
        r"better than uniform at equal spend: \+\d\.\d points \(95% CI \+\d\.\d\.\.\+\d\.\d\)",
        row["verdict"],
    ), row["verdict"]
    assert 0.01 < row["diff"] < 0.04


def test_reference_rows(compared, crux):
    doc, _ = compared
    table = load(crux)
    _, ev = split_ids(table.query_ids(), fraction=0.5, seed=0)
    curves = exact_curves(QueryPool.from_table(table.where(query_ids=ev)), "pass_at_k")
    ref = {(r["strategy"], r["budget"]): r for r in doc["reference"]}
    for budget in (2.0, 4.0):
        assert ref[("pass_at_k", budget)]["uniform"] == pytest.approx(curves.mean_at(budget))
        assert ref[("dynamic_oracle", budget)]["samples_per_query"] <= budget


def test_never_planned_on_evaluation_queries(crux, monkeypatch, tmp_path):
    import ttcdsl.compare.runs as runs

    seen = []
    real = runs.plan_for

    def spy(policy, calibration, *args, **kwargs):
        seen.append(set(calibration.query_ids()))
        return real(policy, calibration, *args, **kwargs)

    monkeypatch.setattr(runs, "plan_for", spy)
    out = tmp_path / "cmp"
    assert main(["compare", str(POLICIES / "oracle_coverage.ttc"), "--samples", str(crux),
                 "--budgets", "3", "--repeats", "1", "--split", "0.3", "--out", str(out),
                 "--format", "json"]) == 0
    doc = json.loads((out / "compare.json").read_text())
    table = load(crux)
    cal, ev = split_ids(table.query_ids(), fraction=0.3, seed=0)
    assert seen == [set(cal)] and doc["evaluation_queries"] == len(ev)


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("flags, message", [
    (["--budgets", "2,x"], "'x' is not a number"),
    (["--budgets", "0,2"], "not a positive number"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--split", "1.5"], "--split must be strictly between 0 and 1"),
    (["--split", "0.5", "--calibration", "x.jsonl"], "exclude each other"),
])
def test_bad_command_lines_exit_2(crux, flags, message, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["compare", str(POLICIES / "oracle_coverage.ttc"), "--samples", str(crux), *flags])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_overlapping_calibration_refused(crux, capsys):
    code = main(["compare", str(POLICIES / "oracle_coverage.ttc"), "--samples", str(crux),
                 "--calibration", str(crux)])
    err = capsys.readouterr().err
    assert code == 1 and "never planned and evaluated on the same queries" in err


def test_missing_inputs_exit_1(crux, tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope.ttc"), "--samples", str(crux)]) == 1
    assert "no such policy file" in capsys.readouterr().err
    (tmp_path / "policies.ttc").mkdir()
    assert main(["compare", str(tmp_path / "policies.ttc"), "--samples", str(crux)]) == 1
    assert "policies.ttc: is a directory, not a policy file" in capsys.readouterr().err
    assert main(["compare", str(POLICIES / "oracle_coverage.ttc"),
                 "--samples", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such samples table" in capsys.readouterr().err


def test_uniform_is_served_like_the_policy(tmp_path):
    """self_consistency (8 samples, majority vote) IS uniform at 8: on the built-in workload,
    whose wrong samples tend to be long, the replay cuts samples over the policy's max_tokens, so
    the exact uniform must be computed on the cut samples too (on the samples as logged it read
    3-4 points lower, and the policy was 'better than uniform' against itself); and paired on the
    same orders the difference is exactly 0 (paired with the exact curve alone, unlucky orders
    made it 'better than uniform' by +1.5 points)."""
    from ttcdsl.workloads import builtin_workload

    table, _ = builtin_workload(n_queries=400, n_samples=16, seed=3)
    path = tmp_path / "workload.jsonl"
    save(table, path)
    out = tmp_path / "cmp"
    assert main(["compare", str(POLICIES / "self_consistency.ttc"), "--samples", str(path),
                 "--repeats", "2", "--out", str(out), "--format", "json"]) == 0
    (row,) = json.loads((out / "compare.json").read_text())["rows"]
    assert row["samples_per_query"] == 8
    assert abs(row["uniform"] - row["accuracy"]) < 0.02
    # it is uniform: paired on the same orders, the difference is exactly 0
    assert row["diff"] == 0 and row["se"] == 0
    assert row["verdict"].startswith("no better than uniform")
    # and so its share of the oracle's gain is 0 and its efficiency 1 (the raw replay's luck
    # on the orders read 0.83x)
    assert row["oracle_share"] == 0 and row["efficiency"] == pytest.approx(1.0, abs=1e-9)
    assert row["max_tokens"] == 1024


def test_a_table_without_gold_labels_is_refused(tmp_path, capsys):
    import dataclasses

    from ttcdsl.samples import SamplesTable
    from ttcdsl.workloads import builtin_workload

    table, _ = builtin_workload(n_queries=20, n_samples=4, seed=0)
    blind = SamplesTable.from_rows(
        [dataclasses.replace(row, correct=None) for row in table.rows()], meta=table.meta)
    path = tmp_path / "blind.jsonl"
    save(blind, path)
    assert main(["compare", str(POLICIES / "self_consistency.ttc"), "--samples", str(path)]) == 1
    assert "needs gold labels" in capsys.readouterr().err


def test_an_internal_error_is_its_rows_reason_and_exit_3(crux, tmp_path, monkeypatch, capsys):
    """A bug hit by one policy does not throw away the others' rows; its row names the error
    and the command exits 3 (an internal error), after writing every output."""
    import ttcdsl.compare.runs as runs

    real_replay = runs.replay

    def replay_failing_for_best_of_n(policy, *args, **kwargs):
        if policy.name == "oracle_coverage":
            raise ZeroDivisionError("injected fault")
        return real_replay(policy, *args, **kwargs)

    monkeypatch.setattr(runs, "replay", replay_failing_for_best_of_n)
    out = tmp_path / "cmp"
    argv = ["compare", str(POLICIES / "oracle_coverage.ttc"), str(POLICIES / "self_consistency.ttc"),
            "--samples", str(crux), "--budgets", "2", "--repeats", "1", "--out", str(out),
            "--format", "md"]
    assert main(argv) == 3
    doc = json.loads((out / "compare.json").read_text())
    by_policy = {row["policy"]: row for row in doc["rows"]}
    assert by_policy["oracle_coverage"]["internal"] is True
    assert "ZeroDivisionError: injected fault" in by_policy["oracle_coverage"]["error"]
    assert by_policy["self_consistency"]["value"] > 0  # the other policy still ran
    captured = capsys.readouterr()
    assert "internal error (a bug in ttcdsl" in captured.out
    assert "1 row(s) hit an internal error" in captured.err
    # progress names which policy of how many is running
    assert "[1/2] oracle_coverage" in captured.err and "[2/2] self_consistency" in captured.err


def test_a_confidence_weighted_answer_is_compared_with_its_own_uniform(tmp_path):
    """A policy answering weighted_vote(conf) for a confidence scorer: uniform's exact curve
    weighs by the samples' mean logprobs (exp, the one rule), which the table has as a column
    of its own, not as a score column. A fixed-4 policy IS uniform at 4: the paired difference
    is exactly 0 and its value is the exact curve's within sampling error."""
    from tests.runtime.runs import workload_files

    samples, _ = workload_files(tmp_path, n=400, m=8)
    policy = tmp_path / "conf.ttc"
    policy.write_text(
        'policy conf "weighted by confidence"\nsampling { max_tokens 4096 }\n'
        "scorer conf = confidence\nanswer weighted_vote(conf)\nallocate fixed 4\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(policy), "--samples", str(samples), "--repeats", "3",
                 "--out", str(out), "--format", "json"]) == 0
    (row,) = json.loads((out / "compare.json").read_text())["rows"]
    assert "error" not in row, row.get("error")
    assert row["baseline"] == "weighted_vote" and row["samples_per_query"] == 4
    assert row["diff"] == 0.0
    table = load(samples)
    evaluation = set(split_ids(table.query_ids(), fraction=0.5, seed=0)[1])
    pool = QueryPool.from_table(table.where(query_ids=sorted(evaluation)),
                                extra={"c": table.where(query_ids=sorted(evaluation)).mean_logprob})
    exact = exact_curves(pool, "weighted_vote", score="c", scorer_kind="confidence").mean_at(4)
    assert row["uniform"] == pytest.approx(exact)
    assert abs(row["value"] - exact) < 4 * row["repeat_sd"] + 0.03


def test_the_planners_warnings_reach_the_rows_and_stderr(tmp_path, capsys):
    """A table where half the queries hold 1 sample: counts stop at 1 for every query, and the
    warning says it is the fewest any query holds (naming one), in the row and on stderr."""
    full = tmp_path / "w.jsonl"
    assert main(["workload", "-o", str(full), "--queries", "60", "--samples", "8", "--seed", "2"]) == 0
    header, *rows = full.read_text().splitlines()
    shallow = tmp_path / "shallow.jsonl"
    shallow.write_text("\n".join([header, *(r for r in rows if json.loads(r)["sample_index"] == 0
                                           or int(json.loads(r)["query_id"][-1]) % 2 == 0)]) + "\n")
    capsys.readouterr()
    assert main(["compare", str(POLICIES / "self_consistency.ttc"), "--samples", str(shallow),
                 "--budgets", "2", "--repeats", "1", "--format", "json"]) == 0
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)["rows"]
    (warning,) = [w for w in row["warnings"] if "cut to 1" in w]
    assert "the fewest any calibration query holds" in warning and "e.g. 'synth-" in warning
    assert "warning: " + warning in captured.err


def test_a_comparison_where_nothing_runs_is_exit_1_and_a_policy_given_twice_runs_once(
        crux, capsys):
    """best_of_n on a pool without reward-model scores cannot run: its rows say so, and a
    comparison of nothing exited 0. The same file given twice was compared twice."""
    policy = str(POLICIES / "best_of_n.ttc")
    assert main(["compare", policy, policy, "--samples", str(crux), "--budgets", "2",
                 "--repeats", "1", "--format", "json"]) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["rows"]
    assert rows and all(row["error"] for row in rows)
    assert len({row["policy"] for row in rows}) == 1 and len(rows) == 1
    assert "given more than once; compared once" in captured.err
    assert "no policy could run on this table" in captured.err


def test_two_files_that_declare_one_policy_name_get_rows_told_apart_by_file(crux, tmp_path, capsys):
    """An edited copy keeps its original's `policy NAME`: the two files' rows (and the plot's
    lines) came out under one name, and no reader could tell which was which."""
    copy = tmp_path / "edited" / "oracle_coverage.ttc"
    copy.parent.mkdir()
    copy.write_text((POLICIES / "oracle_coverage.ttc").read_text())
    original = str(POLICIES / "oracle_coverage.ttc")
    assert main(["compare", original, str(copy), "--samples", str(crux), "--budgets", "2",
                 "--repeats", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["policy"] for row in rows} == {
        f"oracle_coverage ({original})", f"oracle_coverage ({copy})"}
    assert {row["file"] for row in rows} == {original, str(copy)}
