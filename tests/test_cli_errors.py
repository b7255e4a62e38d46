"""The command line's last line of defence: what is the machine's (memory) or the user's is said
so (exit 1), and only a bug reads "internal error" (exit 3)."""

from __future__ import annotations

import pytest


def test_running_out_of_memory_is_said_as_such_not_as_a_bug(monkeypatch, capsys) -> None:
    import ttcdsl.cli.queries as queries_cli

    def exhausted(args):
        raise MemoryError()

    monkeypatch.setattr(queries_cli, "run", exhausted)
    from ttcdsl.cli import main

    assert main(["queries", "math500", "-o", "x.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "out of memory" in err and "internal error" not in err


@pytest.mark.parametrize("argv, message", [
    (["plan", "policies/self_consistency.ttc", "-c", "x.jsonl", "--seed", "-1"], "--seed must be from 0"),
    (["plan", "policies/self_consistency.ttc", "-c", "x.jsonl", "--reps", "100000000"], "--reps must be at most"),
    # compare took any --reps: each row ran out of memory, reported as a bug (exit 3)
    (["compare", "policies/self_consistency.ttc", "--samples", "x.jsonl", "--reps", str(10**11)],
     "--reps must be at most 1000000"),
    # compare took any --repeats: 10^8 sample orders ran on without end
    (["compare", "policies/self_consistency.ttc", "--samples", "x.jsonl", "--repeats", str(10**8)],
     "--repeats must be at most 1000"),
    (["simulate", "policies/self_consistency.ttc", "--seed", str(10**29)], "--seed must be from 0"),
    (["simulate", "policies/self_consistency.ttc", "--seeds", str(10**11)], "--seeds must be at most"),
    (["simulate", "policies/self_consistency.ttc", "--queries", str(10**11)], "--queries must be at most"),
    (["queries", "arithmetic", "-o", "q.jsonl", "--count", "100000000"], "--count must be from 1"),
    (["run", "p.yaml", "--seed", str(2**63)], "must be an integer from 0 to 9223372036854775807"),
    # a run without what it must name is a command-line error too (it exited 1)
    (["run", "p.yaml", "--queries", "q.jsonl"], "ttc run needs --out"),
    (["run"], "ttc run needs PLAN, --queries, --out"),
    (["report", "runs/r1", "--plots", ""], "--plots needs a directory name"),
])
def test_out_of_range_numbers_are_command_line_errors(argv, message, capsys) -> None:
    from ttcdsl.cli import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("sizes, said", [
    (["--samples", str(10**11)],
     "--queries 500 x --samples 100000000000 is 50,000,000,000,000 samples; a workload holds at most "
     "100,000,000"),
    (["--queries", str(10**7), "--samples", "11"], "--queries 10000000 x --samples 11 is 110,000,000"),
])
def test_a_workload_too_large_to_write_is_refused_before_it_is_drawn(sizes, said, tmp_path,
                                                                     monkeypatch, capsys) -> None:
    """ttc workload --samples 10^11 drew the table in memory and ran on without end."""
    import ttcdsl.workloads as workloads

    def drawn(*args, **kwargs):
        raise AssertionError("the workload was drawn")

    monkeypatch.setattr(workloads, "builtin_workload", drawn)
    from ttcdsl.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["workload", "-o", str(tmp_path / "w.jsonl"), *sizes])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and said in err and "fewer --queries or --samples" in err, err
    assert not (tmp_path / "w.jsonl").exists()


def test_compare_checks_its_output_directory_before_the_comparison(tmp_path, capsys) -> None:
    """--out naming a file failed only after the whole comparison ran, and its table was lost."""
    from tests.paths import REPO
    from ttcdsl.cli import main

    taken = tmp_path / "afile"
    taken.write_text("")
    assert main(["compare", str(REPO / "policies" / "self_consistency.ttc"), "--samples",
                 str(tmp_path / "absent.jsonl"), "--out", str(taken)]) == 1
    err = capsys.readouterr().err
    assert f"--out {taken}: cannot hold the comparison: exists and is not a directory" in err


@pytest.mark.slow
@pytest.mark.parametrize("command", ["simulate", "plan"])
def test_ctrl_c_in_a_jax_command_exits_130_at_once(command, tmp_path) -> None:
    """CTRL-C during `ttc simulate` was swallowed by JAX's gc callback (the command ran on, exit
    0) or unwound under XLA's threads into a crash at exit (signal 11)."""
    import signal
    import subprocess
    import sys
    import time

    from tests.paths import REPO

    argv = [sys.executable, "-m", "ttcdsl", "simulate", "policies/self_consistency.ttc",
            "--queries", "400", "--seeds", "64"]
    if command == "plan":
        table = tmp_path / "w.jsonl"
        subprocess.run([sys.executable, "-m", "ttcdsl", "workload", "-o", str(table),
                        "--queries", "300"], cwd=REPO, check=True, capture_output=True)
        argv = [sys.executable, "-m", "ttcdsl", "plan", "policies/adaptive_vote.ttc", "-c",
                str(table), "--reps", "100000", "-o", str(tmp_path / "p.yaml")]
    process = subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    lines = []
    for line in process.stderr:  # interrupt once the work is under way
        lines.append(line)
        if "simulating" in line or "estimating curves" in line:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=30) == 130, lines + [rest]
    assert "interrupted" in rest and "Traceback" not in rest
    assert time.monotonic() - started < 120
    assert not (tmp_path / "p.yaml").exists()


@pytest.fixture(scope="module")
def tool_files(tmp_path_factory):
    """A samples table, its dataset of queries and a plan, each as ttc writes them."""
    from tests.paths import REPO
    from ttcdsl.cli import main

    d = tmp_path_factory.mktemp("kinds")
    table, queries, plan = d / "table.jsonl", d / "queries.jsonl", d / "plan.yaml"
    assert main(["workload", "-o", str(table), "--dataset", str(queries), "--queries", "40",
                 "--samples", "4"]) == 0
    assert main(["plan", str(REPO / "policies" / "self_consistency.ttc"), "--calibration",
                 str(table), "-o", str(plan)]) == 0
    return table, queries, plan


def test_running_out_of_memory_in_a_comparison_row_is_not_a_bug(tool_files, monkeypatch,
                                                                  capsys) -> None:
    """A row that ran out of memory (ttc compare --reps 10^11) was "internal error (a bug in
    ttcdsl ...): MemoryError" and the command exited 3; ttc says the machine's limit is one."""
    import ttcdsl.compare.runs as runs
    from tests.paths import REPO
    from ttcdsl.cli import main

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 93.1 GiB")

    monkeypatch.setattr(runs, "plan_for", exhausted)
    table, queries, plan = tool_files
    capsys.readouterr()
    code = main(["compare", str(REPO / "policies" / "self_consistency.ttc"), "--samples",
                 str(table), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "out of memory: MemoryError: Unable to allocate 93.1 GiB" in captured.out
    assert "internal error" not in captured.out + captured.err


@pytest.mark.parametrize("given, where, said", [
    ("table", "plan", "a samples table, not a plan"),
    ("queries", "plan", "a dataset of queries, not a plan"),
    ("queries", "samples", "a dataset of queries, not a samples table"),
    ("table", "queries", "a samples table, not a dataset of queries"),
    # "cannot tell the table format from the extension '.yaml'"
    ("plan", "samples", "a plan, not a samples table"),
])
def test_a_file_of_another_kind_is_named_as_what_it_is(tool_files, tmp_path, capsys, given,
                                                       where, said) -> None:
    """A samples table given as the plan was "not valid YAML: expected '<document start>'", a
    dataset given as the samples "the first line is not a samples header", and a table given as
    the queries "unknown field 'ttc_samples'"."""
    from ttcdsl.cli import main

    table, queries, plan = tool_files
    files = {"table": table, "queries": queries, "plan": plan}
    args = {"plan": plan, "samples": table, "queries": queries, where: files[given]}
    capsys.readouterr()
    assert main(["run", str(args["plan"]), "--samples", str(args["samples"]), "--queries",
                 str(args["queries"]), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{files[given]}: {said}" in err and "is read" in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["plan.yaml", "plan.jsonl"])
def test_a_plan_given_to_split_as_the_table_is_named_as_one(tool_files, tmp_path, capsys,
                                                           name) -> None:
    """ttc split PLAN said "cannot tell the table format from the extension '.yaml'", and of a
    plan named .jsonl "the header: not valid JSON"."""
    import shutil

    from ttcdsl.cli import main

    table, queries, plan = tool_files
    given = tmp_path / name
    shutil.copy(plan, given)
    capsys.readouterr()
    assert main(["split", str(given), "-o", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"{given}: a plan, not a samples table" in err and "ttc run PLAN" in err, err
    assert not (tmp_path / "a.jsonl").exists()


@pytest.mark.parametrize("command", [
    ["workload", "-o", "{dir}", "--force"],
    ["workload", "-o", "{dir}.jsonl"],
    ["import", "-f", "samples", "{table}", "-o", "{dir}", "--force"],
    ["split", "{table}", "-o", "{dir}", "{other}", "--force"],
])
def test_a_directory_given_as_the_table_to_write_is_named_as_one(tool_files, tmp_path, capsys,
                                                                 command) -> None:
    """An existing directory as the table to write was "cannot tell the table format from the
    extension '(none)'" (ttc workload, ttc import, ttc split)."""
    from ttcdsl.cli import main

    table, queries, plan = tool_files
    (tmp_path / "out").mkdir()
    (tmp_path / "out.jsonl").mkdir()
    names = {"dir": tmp_path / "out", "table": table, "other": tmp_path / "b.jsonl"}
    argv = [a.format(**names) for a in command]
    capsys.readouterr()
    assert main(argv) == 1  # what is on disk: not a bad command line (exit 2)
    err = capsys.readouterr().err
    assert f"{argv[argv.index('-o') + 1]}: is a directory, not a samples table" in err, err
    assert "extension" not in err and not (tmp_path / "b.jsonl").exists()


@pytest.mark.parametrize("command, said", [
    (["compare", "policies/self_consistency.ttc", "--samples", "{table}", "--out"],
     "--out {taken}: cannot hold the comparison: exists and is not a directory"),
    (["plan", "policies/self_consistency.ttc", "policies/adaptive_consistency.ttc",
      "--calibration", "{table}", "-o"],
     "-o {taken}: cannot hold one plan per policy: exists and is not a directory"),
    (["report", "{run}", "--plots"],
     "{taken}: cannot hold the plots: exists and is not a directory"),
])
def test_an_output_directory_that_is_a_file_is_said_one_way(tool_files, tmp_path, capsys,
                                                            command, said) -> None:
    """The three commands that write into a directory refuse a file in its place before any
    work, in the same words, and leave the file as it was."""
    from tests.paths import REPO
    from ttcdsl.cli import main

    table, queries, plan = tool_files
    run = tmp_path / "run"
    assert main(["run", str(plan), "--samples", str(table), "--queries", str(queries),
                 "--out", str(run), "--quiet"]) == 0
    taken = tmp_path / "taken"
    taken.write_text("x")
    argv = [str(REPO / a) if a.startswith("policies/") else a.format(table=table, run=run)
            for a in command] + [str(taken)]
    capsys.readouterr()
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert said.format(taken=taken) in captured.err, captured.err
    assert taken.read_text() == "x" and "Traceback" not in captured.err


@pytest.mark.parametrize("command, said", [
    (["run", "{plan}", "--queries", "{queries}", "--samples", "{dir}", "--out", "{run}"],
     "{dir}: is a directory, not a samples table"),
    (["compare", "policies/self_consistency.ttc", "--samples", "{dir}"],
     "{dir}: is a directory, not a samples table"),
    (["simulate", "policies/self_consistency.ttc", "--fit", "{dir}"],
     "{dir}: is a directory, not a samples table"),
    (["simulate", "{dir}"], "{dir}: is a directory, not a policy or plan file"),
    # ttc plan: "cannot tell the table format from the extension '(none)'"
    (["plan", "policies/self_consistency.ttc", "--calibration", "{dir}", "-o", "{run}"],
     "{dir}: is a directory, not a calibration table"),
    # "cannot tell the table format from the extension '(none)'"
    (["split", "{dir}", "-o", "{run}.jsonl", "{plan}.jsonl"], "{dir}: is a directory, not a samples table"),
])
def test_a_directory_given_as_an_input_file_is_named_as_one(tool_files, tmp_path, capsys, command,
                                                            said) -> None:
    """A directory given as the samples table was "no such samples table", and as the policy of
    ttc simulate "no such file", though it is there."""
    from tests.paths import REPO
    from ttcdsl.cli import main

    table, queries, plan = tool_files
    names = {"plan": plan, "queries": queries, "dir": tmp_path, "run": tmp_path / "run"}
    argv = [str(REPO / a) if a.startswith("policies/") else a.format(**names) for a in command]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert said.format(**names) in err and "no such" not in err, err


@pytest.mark.parametrize("command, made", [
    # "{taken}: cannot write the run directory: File exists"
    (["run", "{plan}", "--queries", "{queries}", "--samples", "{table}", "--out", "{taken}/sub",
      "--quiet"], "the run directory"),
    (["run", "{plan}", "--queries", "{queries}", "--samples", "{table}", "--out", "{taken}/a/b",
      "--quiet"], "the run directory"),
    # "--out {taken}/sub: cannot hold the comparison: Not a directory"
    (["compare", "policies/self_consistency.ttc", "--samples", "{table}", "--out", "{taken}/sub"],
     "the directory for the comparison (--out {taken}/sub)"),
    # "the directory {taken} does not exist", though it is there
    (["plan", "policies/self_consistency.ttc", "-c", "{table}", "-o", "{taken}/p.yaml"], "p.yaml"),
    (["split", "{table}", "-o", "{taken}/a.jsonl", "{other}"], "a.jsonl"),
    # "{taken}: cannot write (File exists)"
    (["workload", "-o", "{taken}/w.jsonl"], "w.jsonl"),
])
def test_a_path_under_a_file_is_said_to_be_one(tool_files, tmp_path, capsys, command, made) -> None:
    """An output path under a regular file names the file as what stands in the way."""
    from tests.paths import REPO
    from ttcdsl.cli import main

    table, queries, plan = tool_files
    taken = tmp_path / "taken"
    taken.write_text("x")
    names = {"plan": plan, "queries": queries, "table": table, "taken": taken,
             "other": tmp_path / "b.jsonl"}
    argv = [str(REPO / a) if a.startswith("policies/") else a.format(**names) for a in command]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    said = f"{taken}: is a file, not a directory, so {made.format(**names)} cannot be made under it"
    assert said in err, err
    assert taken.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_long_query_id_is_shortened_in_messages(tool_files, tmp_path, capsys) -> None:
    """A query id of 100,000 characters missing from the table was echoed whole (100 KB)."""
    import json

    from ttcdsl.cli import main

    table, queries, plan = tool_files
    records = [json.loads(line) for line in queries.read_text().splitlines()]
    long_id = "q" * 100_000
    records[0]["id"] = long_id
    edited = tmp_path / "queries.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert main(["run", str(plan), "--queries", str(edited), "--samples", str(table), "--out",
                 str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"1 of {len(records)} queries of {edited} have no samples in {table}" in err, err[:500]
    assert "(100002 characters)" in err and len(err) < 1000, err[:500]


@pytest.mark.parametrize("taken", ["file", "directory"])
def test_a_run_out_that_is_not_a_run_is_not_offered_for_resuming(tool_files, tmp_path, capsys,
                                                                 taken) -> None:
    """ttc run --out FILE said "FILE: already exists" and offered "ttc run --resume FILE"; a
    resume of it fails, and --force replaces only runs."""
    from ttcdsl.cli import main

    table, queries, plan = tool_files
    out = tmp_path / "out"
    if taken == "file":
        out.write_text("x")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("x")
    capsys.readouterr()
    assert main(["run", str(plan), "--queries", str(queries), "--samples", str(table), "--out",
                 str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{out}: exists and is not a run directory" in err and "--resume" not in err, err
    assert (out if taken == "file" else out / "notes.txt").read_text() == "x"
