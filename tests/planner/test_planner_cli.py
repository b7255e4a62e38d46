"""`ttc plan` as a user runs it: files, tables, sweeps and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.paths import POLICIES, REPO
from ttcdsl.cli import main
from ttcdsl.planner.plan import load_plan

POLICY = REPO / "policies" / "adaptive_vote.ttc"


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "calib.jsonl"
    assert main(["workload", "-o", str(path), "--queries", "120", "--samples", "12", "--seed", "1"]) == 0
    return path


def plan(*args: str) -> int:
    return main(["plan", *args, "--reps", "8"])


def test_plan_to_a_file_then_explain(calibration, tmp_path, capsys):
    out = tmp_path / "p.yaml"
    assert plan(str(POLICY), "--calibration", str(calibration), "-o", str(out)) == 0
    loaded = load_plan(out)
    assert loaded["policy"]["name"] == "adaptive_vote"
    assert [b["name"] for b in loaded["bins"]] == ["easy", "medium", "hard", "hopeless"]
    assert plan(str(POLICY), "-c", str(calibration), "--explain") == 0
    text = capsys.readouterr().out
    for word in ("easy", "hopeless", "mean samples per query <= 8", "uniform majority_vote",
                 "calibration: 120 queries (none left out)"):
        assert word in text


def test_the_header_counts_the_queries_left_out_by_why(calibration, tmp_path, capsys):
    """It said "(0 dropped)" beside a warning that half the queries were left out (those with
    an unlabelled sample)."""
    import json as json_module

    lines = calibration.read_text().splitlines()
    unlabelled = {json_module.loads(line)["query_id"] for line in lines[1:][:40]}
    edited = [lines[0]]
    for line in lines[1:]:
        row = json_module.loads(line)
        if row["query_id"] in unlabelled and row["sample_index"] == 5:
            row["correct"] = None
        edited.append(json_module.dumps(row))
    table = tmp_path / "partly_labelled.jsonl"
    table.write_text("\n".join(edited) + "\n")
    assert plan(str(POLICY), "-c", str(table), "--explain") == 0
    captured = capsys.readouterr()
    n = len(unlabelled)
    assert f"calibration: {120 - n} queries (left out: {n} with an unlabelled sample)" in captured.out
    assert f"{n} calibration queries have samples without a correctness label" in captured.err


def test_billed_bin_tokens_are_headed_as_a_bound(calibration, tmp_path, capsys):
    """With some token counts unknown, each is billed at max_tokens: the bins' token column is
    that bound, and its heading says so (it read "exp. tokens", an expectation, while only the
    `predicted` line below said the figure was billed)."""
    policy = str(REPO / "policies" / "self_consistency.ttc")
    assert plan(policy, "-c", str(calibration), "--explain") == 0
    assert "exp. tokens" in capsys.readouterr().out
    header, *lines = calibration.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows[::3]:
        row["completion_tokens"] = None
    table = tmp_path / "some_counts.jsonl"
    table.write_text("\n".join([header, *map(json.dumps, rows)]) + "\n")
    assert plan(policy, "-c", str(table), "--explain") == 0
    out = capsys.readouterr().out
    assert "billed tokens (bound)" in out and "exp. tokens" not in out
    assert "(billed: 33% of the counts unknown, each at max_tokens)" in " ".join(out.split())


def test_plan_to_stdout_is_yaml(calibration, capsys):
    policy = REPO / "policies" / "self_consistency.ttc"
    assert plan(str(policy), "-c", str(calibration)) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["bins"][0]["allocation"] == [{"samples": 8, "share": 1.0, "queries": 120}]


def test_sweep_prints_and_writes_the_frontier(calibration, tmp_path, capsys):
    out = tmp_path / "front.json"
    assert plan(str(POLICY), "-c", str(calibration), "--sweep", "4..12:2", "--sweep-out", str(out)) == 0
    front = json.loads(out.read_text())
    budgets = [p["budget"] for p in front["points"]]
    assert budgets == [4, 6, 8, 10, 12]
    # the policy's relaxation optimum: more budget never hurts it (a point whose plan runs
    # uniform gives uniform's figures instead, which a vote's curve need not keep increasing)
    values = [p["policy_objective"] for p in front["points"]]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    for p in front["points"]:
        assert p["runs"] in ("policy", "uniform")
        assert p["objective"] == (p["policy_objective"] if p["runs"] == "policy" else p["uniform"])
    assert all(p["spent"] <= p["budget"] + 1e-9 for p in front["points"])
    assert "frontier" in capsys.readouterr().out
    assert all("why" not in p for p in front["points"])


def test_a_sweep_point_below_the_least_spend_says_why(calibration, tmp_path, capsys):
    """adaptive_vote probes 4 samples: at 2 per query no allocation fits. The row was a bare
    "-" everywhere (table, JSON, plot) with no reason."""
    out = tmp_path / "front.json"
    assert plan(str(POLICY), "-c", str(calibration), "--sweep", "2..4:2", "--sweep-out", str(out)) == 0
    low, high = json.loads(out.read_text())["points"]
    assert low["objective"] is None and "the least the policy can spend is 4" in low["why"]
    assert high["objective"] is not None and "why" not in high
    assert "budget(s) 2: no allocation fits" in capsys.readouterr().out


def test_several_policies_write_one_plan_each(calibration, tmp_path):
    chosen = [REPO / "policies" / n for n in ("self_consistency.ttc", "oracle_coverage.ttc")]
    out = tmp_path / "plans"
    assert plan(*map(str, chosen), "-c", str(calibration), "-o", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "oracle_coverage.plan.yaml",
        "self_consistency.plan.yaml",
    ]
    # an existing plan is not replaced without --force
    assert plan(*map(str, chosen), "-c", str(calibration), "-o", str(out)) == 1
    assert plan(*map(str, chosen), "-c", str(calibration), "-o", str(out), "--force") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calibration", "missing.jsonl"], "no such calibration table"),
        (["--score", "nope=prm"], "which no policy declares"),
    ],
)
def test_bad_arguments_are_user_errors(calibration, capsys, args, message):
    base = ["--calibration", str(calibration)] if "--calibration" not in args else []
    assert plan(str(POLICY), *base, *args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep", "8..4"], "--sweep '8..4'"),
        (["--sweep", "x"], "expected LO..HI"),
        (["--sweep-out", "f.json"], "--sweep-out needs --sweep"),
        (["--score", "prm"], "expected SCORER=COLUMN"),
        (["--queries", "0"], "--queries must be at least 1"),
        (["--reps", "1"], "--reps must be at least 2"),
    ],
)
def test_command_line_value_errors_exit_2_with_the_usage(calibration, capsys, args, message):
    """The README's exit codes: 2 is a bad command line (they exited 1, as for bad input)."""
    with pytest.raises(SystemExit) as caught:
        main(["plan", str(POLICY), "--calibration", str(calibration), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: ttc plan" in err and "Traceback" not in err


def test_an_output_nobody_can_write_is_refused_before_planning(calibration, tmp_path, capsys):
    missing = tmp_path / "missing" / "p.yaml"
    assert plan(str(POLICY), "-c", str(calibration), "-o", str(missing)) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "calibrating" not in err  # before any work
    assert not missing.parent.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("flag", ["-o", "--sweep-out", "--sweep-plot"])
def test_an_output_in_a_directory_that_takes_no_files_is_refused_before_planning(
        calibration, capsys, flag):
    """/proc's permission bits say writable (to root, always), yet no file can be made there:
    the refusal comes from trying, before the planning, not from the permission bits after it."""
    target = "/proc/ttc-plan-output" + (".png" if flag == "--sweep-plot" else ".json")
    sweep = [] if flag == "-o" else ["--sweep", "1..2"]
    assert plan(str(POLICY), "-c", str(calibration), *sweep, flag, target) == 1
    err = capsys.readouterr().err
    assert f"{target}: cannot write in /proc" in err and "calibrating" not in err


def test_an_output_ending_in_a_slash_is_a_directory(calibration, tmp_path):
    out = tmp_path / "plans"
    assert plan(str(POLICY), "-c", str(calibration), "-o", f"{out}/") == 0
    assert (out / f"{POLICY.stem}.plan.yaml").is_file()


def test_bad_policy_is_reported_with_its_location(calibration, tmp_path, capsys):
    bad = tmp_path / "bad.ttc"
    bad.write_text('policy p "x"\nsampling { max_tokens 10 }\nallocate optimal maximize accuracy\n')
    assert plan(str(bad), "-c", str(calibration)) == 1
    assert "bad.ttc:3" in capsys.readouterr().err


def test_a_policy_the_table_cannot_serve_says_why(calibration, tmp_path, capsys):
    policy = tmp_path / "rm.ttc"
    policy.write_text(
        'policy p "x"\nsampling { max_tokens 10 }\nscorer rm = reward_model "m"\n'
        "answer best_of_n(rm)\nallocate fixed 4 maximize accuracy\n"
    )
    assert plan(str(policy), "-c", str(calibration)) == 1
    assert "lacks the score column 'rm' (read by the answer strategy" in capsys.readouterr().err
    assert plan(str(policy), "-c", str(calibration), "--score", "rm=prm") == 0


def test_a_damaged_calibration_table_is_a_user_error(tmp_path, capsys):
    table = tmp_path / "t.jsonl"
    table.write_text('{"not": "a samples table"}\n')
    assert plan(str(POLICY), "-c", str(table)) == 1
    err = capsys.readouterr().err
    assert str(table) in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.stem)
def test_every_example_policy_plans_on_the_builtin_workload(calibration, tmp_path, policy):
    out = tmp_path / f"{policy.stem}.yaml"
    assert plan(str(policy), "-c", str(calibration), "-o", str(out)) == 0
    loaded = load_plan(out)
    if loaded["mode"] != "bandit":
        for limit in loaded["budget"]:
            if "spent" in limit:
                assert limit["spent"] <= limit["value"] * (1 + 1e-12)


def test_plan_on_stdout_is_only_the_plan_even_with_the_lp_solver(calibration, capfd):
    """HiGHS prints a copyright banner from native code at every solve; on standard output it
    made the plan YAML that `ttc plan` writes there unreadable."""
    policy = REPO / "policies" / "adaptive_vote.ttc"
    assert plan(str(policy), "-c", str(calibration), "--solver", "lp", "--reps", "16") == 0
    out = capfd.readouterr().out
    assert "HiGHS" not in out
    assert yaml.safe_load(out)["solver"]["name"].startswith("cvxpy/HIGHS")


def test_extrapolation_is_a_flag_the_plan_records(calibration, tmp_path, capsys):
    # adaptive_vote allows up to 32 samples per query; the table holds 12
    capped, extrapolated = tmp_path / "capped.yaml", tmp_path / "extrapolated.yaml"
    assert plan(str(POLICY), "-c", str(calibration), "-o", str(capped)) == 0
    assert "counts stop at 12 samples per query" in capsys.readouterr().err
    document = load_plan(capped)
    assert document["calibration"]["extrapolated_beyond"] is None
    assert max(level for b in document["bins"] for level in b["curve"]["levels"]) == 12
    assert plan(str(POLICY), "-c", str(calibration), "-o", str(extrapolated), "--extrapolate") == 0
    assert "extrapolated by the Dirichlet model" in capsys.readouterr().err
    document = load_plan(extrapolated)
    assert document["calibration"]["extrapolated_beyond"] == 12
    assert max(level for b in document["bins"] for level in b["curve"]["levels"]) == 32


def test_planning_a_fixed_policy_imports_no_jax_and_no_cvxpy(calibration, tmp_path):
    """A fixed policy needs no solver and, for its vote, no Monte Carlo: `ttc plan` of it took
    5-15 s, mostly importing cvxpy and jax it did not use."""
    import subprocess
    import sys

    code = (
        "import sys; from ttcdsl.cli import main; "
        f"rc = main(['plan', {str(REPO / 'policies' / 'self_consistency.ttc')!r}, '-c', "
        f"{str(calibration)!r}, '-o', {str(tmp_path / 'p.yaml')!r}, '--reps', '8']); "
        "print(rc, sorted(m for m in ('jax', 'cvxpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.stdout.split("\n")[0] == "0 []", done.stdout + done.stderr


@pytest.mark.parametrize("text, budgets", [
    ("2..4", [2.0, 3.0, 4.0]),
    ("1M..3M:1M", [1e6, 2e6, 3e6]),  # a token budget, written as a policy writes it
    ("1.5k..2k:250", [1500.0, 1750.0, 2000.0]),
    ("4..6:3", [4.0]),  # a step that does not divide the range stops short of HI, never past it
    ("1..2:0.6", [1.0, 1.6]),
    ("0.5..1.5:0.1", [0.5 + i / 10 for i in range(11)]),  # HI reached by float steps is kept
])
def test_sweep_ranges_read_numbers_as_a_policy_writes_them(text, budgets):
    from ttcdsl.cli.plan import _parse_sweep

    assert _parse_sweep(text) == pytest.approx(budgets)


@pytest.mark.parametrize("text", ["8..2", "2-8", "0..4", "1x..2", "2..4:0", "..4", "nan..4", "2..4:"])
def test_bad_sweep_ranges_are_usage_errors(text):
    from ttcdsl.cli.plan import _parse_sweep
    from ttcdsl.errors import UserError

    with pytest.raises(UserError, match="expected LO..HI"):
        _parse_sweep(text)


@pytest.mark.parametrize("text", ["1..2:1e-320", "1..1e308:1e-10", "1..1000000:1"])
def test_a_sweep_of_too_many_budgets_is_refused(text):
    from ttcdsl.cli.plan import _parse_sweep
    from ttcdsl.errors import UserError

    with pytest.raises(UserError, match="more than 10000 budgets"):
        _parse_sweep(text)


def test_a_score_column_only_some_samples_carry_is_a_plan_warning(tmp_path, capsys) -> None:
    """As `ttc run` warns about it, so does the plan (and so `ttc compare`'s rows): the samples
    without a score count as unknown to best_of_n."""
    import json

    import yaml

    table = tmp_path / "w.jsonl"
    assert main(["workload", "-o", str(table), "--queries", "40", "--samples", "8"]) == 0
    header, *rows = table.read_text().splitlines()
    rows = [json.loads(r) for r in rows]
    for i, row in enumerate(rows):
        if i % 5 == 0:
            row["scores"] = {}
    table.write_text("\n".join([header, *map(json.dumps, rows)]) + "\n")
    out = tmp_path / "plan.yaml"
    assert main(["plan", str(REPO / "policies" / "best_of_n.ttc"), "-c", str(table), "-o", str(out),
                 "--reps", "8"]) == 0
    (warning,) = [w for w in yaml.safe_load(out.read_text())["warnings"] if "only 80%" in w]
    assert "score column 'prm'" in warning and "count as unknown" in warning
    assert warning in capsys.readouterr().err


def test_a_bandits_sweep_is_refused_before_planning(tmp_path, capsys) -> None:
    """A bandit has no planned frontier: its sweep read accuracy 0.000 at every budget."""
    table = tmp_path / "w.jsonl"
    assert main(["workload", "-o", str(table), "--queries", "30", "--samples", "8"]) == 0
    capsys.readouterr()
    assert main(["plan", str(REPO / "policies" / "bandit_entropy.ttc"), "-c", str(table),
                 "--sweep", "4..5"]) == 1
    err = capsys.readouterr().err
    assert "a bandit allocates online" in err and "ttc simulate POLICY --sweep" in err
    assert "predicting the run" not in err  # refused before the plan (and its simulation)


def test_a_table_where_every_figure_is_zero_by_construction_is_a_plan_warning(tmp_path, capsys) -> None:
    """No sample labelled correct (a mislabelled import): the plan predicts accuracy 0, and says
    why, as ttc simulate --fit does."""
    table = tmp_path / "w.jsonl"
    assert main(["workload", "-o", str(table), "--queries", "30", "--samples", "8"]) == 0
    header, *rows = table.read_text().splitlines()
    table.write_text("\n".join([header, *(json.dumps({**json.loads(r), "correct": False})
                                          for r in rows)]) + "\n")
    out = tmp_path / "plan.yaml"
    capsys.readouterr()
    assert main(["plan", str(POLICY), "-c", str(table), "-o", str(out), "--reps", "8"]) == 0
    (warning,) = [w for w in yaml.safe_load(out.read_text())["warnings"] if "by construction" in w]
    assert "no sample is labelled correct" in warning and warning in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["-o", "--sweep-out", "--sweep-plot"])
@pytest.mark.parametrize("victim", ["calibration", "policy"])
def test_an_output_that_is_an_input_is_refused_even_with_force(calibration, tmp_path, capsys,
                                                               flag, victim):
    """`ttc plan p.ttc -c t.jsonl -o t.jsonl --force` replaced the calibration table with the
    plan (and -o p.ttc the policy); the sweep's outputs replaced any file, --force or not."""
    policy = tmp_path / "p.ttc"
    policy.write_bytes(POLICY.read_bytes())
    table = tmp_path / "t.jsonl"
    table.write_bytes(calibration.read_bytes())
    target = {"calibration": table, "policy": policy}[victim]
    if flag == "--sweep-plot":  # a PNG's name that is an input: the link leads to it
        (tmp_path / "in.png").symlink_to(target)
        target = tmp_path / "in.png"
    before = {p: p.read_bytes() for p in (policy, table)}
    sweep = ["--sweep", "2..3"] if flag != "-o" else []
    assert plan(str(policy), "-c", str(table), *sweep, flag, str(target), "--force") == 1
    err = capsys.readouterr().err
    assert "is an input of this command" in err and "calibrating" not in err
    assert {p: p.read_bytes() for p in (policy, table)} == before


@pytest.mark.parametrize("flag, name", [("--sweep-out", "f.json"), ("--sweep-plot", "f.png")])
def test_an_existing_sweep_output_is_replaced_only_with_force(calibration, tmp_path, capsys,
                                                              flag, name):
    existing = tmp_path / name
    existing.write_bytes(b"keep me")
    args = [str(POLICY), "-c", str(calibration), "--sweep", "6..8", flag, str(existing)]
    assert plan(*args) == 1
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"keep me"
    assert plan(*args, "--force") == 0
    assert existing.read_bytes() != b"keep me"


def test_one_file_for_two_outputs_is_refused(calibration, tmp_path, capsys):
    out = tmp_path / "both.json"
    assert plan(str(POLICY), "-c", str(calibration), "-o", str(out), "--sweep", "2..3",
                "--sweep-out", str(out)) == 1
    assert "is also the file of -o" in capsys.readouterr().err and not out.exists()


EMPTY_BIN = """policy empty_bin "a bin no query falls in"
budget {
  mean samples per query <= 4
  samples per query in 1..12
}
sampling { temperature 0.7  max_tokens 1024 }
probe 2 samples
feature agreement = top_share(answers)
difficulty = 1 - agreement
# a 2-sample probe's agreement is 0, 0.5 or 1: no calibration query falls in [0.2, 0.3) (a bin
# no query at all can reach, as `[-1, 0.3]` once was, is refused by ttc check: TTC311)
bins by difficulty thresholds [0.2, 0.3] as easy, none, hard
strategy none = majority_vote
strategy easy = majority_vote
strategy hard = majority_vote
allocate optimal maximize accuracy
"""


def test_a_bin_no_calibration_query_falls_in_predicts_nothing(calibration, tmp_path, capsys):
    """A bin empty on the calibration table was recorded as accuracy 0.0 ± 0.0 and coverage 0
    (the empty means of its curves): a made-up certainty about queries never measured."""
    policy = tmp_path / "empty_bin.ttc"
    policy.write_text(EMPTY_BIN)
    out = tmp_path / "p.yaml"
    assert plan(str(policy), "-c", str(calibration), "-o", str(out), "--explain") == 0
    captured = capsys.readouterr()
    assert "bin 'none' has no calibration query" in captured.err
    row = next(line for line in captured.out.splitlines() if "│ none" in line)
    assert "0.000" not in row and "│     - │" in row
    bins = {b["name"]: b for b in load_plan(out)["bins"]}
    assert bins["none"]["queries"] == 0
    predicted = bins["none"]["predicted"]
    assert predicted["accuracy"] is None and predicted["accuracy_se"] is None
    assert predicted["coverage"] is None and predicted["samples"] > 0
    assert bins["hard"]["predicted"]["accuracy"] > 0


def test_an_empty_answer_in_a_table_is_no_answer(tmp_path) -> None:
    """A table written by hand (or before the canonical rule) may say "" for "nothing
    extracted": five such samples and three right answers per query. Read as an answer, "" won
    every vote and the plan predicted accuracy 0; it is no answer, and the three right ones win."""
    table = tmp_path / "w.jsonl"
    assert main(["workload", "-o", str(table), "--queries", "20", "--samples", "8"]) == 0
    header, *rows = table.read_text().splitlines()
    edited = []
    for line in rows:
        row = json.loads(line)
        empty = row["sample_index"] < 5
        edited.append(json.dumps({**row, "answer": "" if empty else "right", "correct": not empty,
                                  "completion_tokens": 100, "finish_reason": "stop"}))  # none cut
    table.write_text("\n".join([header, *edited]) + "\n")
    out = tmp_path / "plan.yaml"
    assert main(["plan", str(REPO / "policies" / "self_consistency.ttc"), "-c", str(table), "-o", str(out),
                 "--reps", "8"]) == 0
    assert yaml.safe_load(out.read_text())["predicted"]["accuracy"] == 1.0
