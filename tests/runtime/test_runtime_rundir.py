"""Run directories: one writer at a time (a lock naming its holder), atomic creation and
replacement that survive a SIGKILL at every step and a CTRL-C in the first round, a samples file that must belong to its
manifest, a report that must agree with its samples, paths that work from any directory, and
clear user errors for unwritable output."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.paths import REPO
from tests.runtime.runs import (
    reference_run,
    results,
    run_args,
    sample_keys,
    ttc,
    ttc_subprocess,
)
from ttcdsl.runtime.lock import lock_run_dir, writer_pid


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return reference_run(tmp_path_factory.mktemp("rundir"))


def _killed_run(setup, out, crash="append:0", seed=5, extra=()):
    d, plan, queries, samples, reference = setup
    killed = ttc_subprocess([*run_args(plan, queries, samples, out, seed=seed), *extra],
                            env={"TTC_RUN_CRASH": crash})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return killed


def _popen(args, cwd=REPO):
    return subprocess.Popen(
        [sys.executable, "-m", "ttcdsl", *args], cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _no_duplicates_and_same_results(out, reference) -> None:
    keys = sample_keys(out)
    assert len(keys) == len(set(keys)), "a sample was stored twice"
    assert results(out) == results(reference)


def _hidden(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --- one writer at a time ---------------------------------------------------------------------


def test_a_second_resume_is_refused_naming_the_first_ones_pid(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    _killed_run(setup, out)
    first = _popen(["run", "--resume", str(out), "--quiet"])
    try:
        deadline = time.monotonic() + 60
        while writer_pid(out) != first.pid:  # it holds the lock: freeze it there
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.002)
        os.kill(first.pid, signal.SIGSTOP)
        second = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
        assert second.returncode == 1, second.stderr
        assert f"being written by another ttc process (pid {first.pid})" in second.stderr
        forced = ttc_subprocess([*run_args(plan, queries, samples, out, seed=5), "--force"])
        assert forced.returncode == 1 and f"pid {first.pid}" in forced.stderr
        shown = ttc_subprocess(["report", str(out), "--json"])
        assert shown.returncode == 0 and f"being written by pid {first.pid}" in shown.stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    _no_duplicates_and_same_results(out, reference)
    assert writer_pid(out) is None


def test_two_resumes_at_once_one_proceeds(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    _killed_run(setup, out)
    procs = [_popen(["run", "--resume", str(out), "--quiet"]) for _ in range(2)]
    done = [(p.pid, p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for _, code, _ in done)
    # Either they overlapped (one refused, naming the other) or one ran after the other ended.
    assert codes in ([0, 0], [0, 1]), done
    for pid, code, err in done:
        if code == 1:
            (other,) = [p for p, _, _ in done if p != pid]
            assert f"(pid {other})" in err
    _no_duplicates_and_same_results(out, reference)


def test_report_refuses_a_report_its_samples_contradict(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    assert ttc_subprocess(["report", str(out), "--json"]).returncode == 0
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    claimed = json.loads((out / "report.json").read_text())["spend"]["samples"]
    assert claimed == len(lines) - 1
    (out / "samples.jsonl").write_text("".join(lines + lines[1:4]))  # three stored twice
    shown = ttc_subprocess(["report", str(out)])
    assert shown.returncode == 1
    assert (f"holds {claimed + 3} samples, 3 of them a (query_id, sample_index) stored twice; "
            f"the report counts {claimed}") in shown.stderr
    (out / "samples.jsonl").write_text("".join(lines[:-1]))
    shown = ttc_subprocess(["report", str(out)])
    assert shown.returncode == 1 and f"holds {claimed - 1} samples; the report counts" in shown.stderr


def test_report_refuses_a_run_whose_plan_policy_or_samples_were_swapped(setup, tmp_path) -> None:
    """`ttc report` of a finished run reads its plan, policy and samples as the run left them: a
    plan or policy copy replaced afterwards, or another run's samples file, is refused by name,
    not shown as this run's report."""
    d, plan, queries, samples, reference = setup
    for name, change in (
        ("plan.yaml", lambda text: text.replace("samples:", "samples:  ", 1)),
        ("policy.ttc", lambda text: text + "\n# edited after the run\n"),
    ):
        out = tmp_path / name
        shutil.copytree(reference, out)
        path = out / name
        path.write_text(change(path.read_text()))
        shown = ttc_subprocess(["report", str(out)])
        assert shown.returncode == 1, shown.stderr
        assert f"{path} is not the {name.split('.')[0]} {out} ran with" in shown.stderr
    out = tmp_path / "header"
    shutil.copytree(reference, out)
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["meta"]["seed"] += 1
    (out / "samples.jsonl").write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    shown = ttc_subprocess(["report", str(out)])
    assert shown.returncode == 1 and "the samples file belongs to another run" in shown.stderr


def test_a_run_policy_copy_that_no_longer_checks_is_named_not_the_report(setup, tmp_path,
                                                                         capsys) -> None:
    """A policy.ttc replaced by text that does not check was blamed on report.json: "a damaged
    run report (DiagnosticError: ...)"."""
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "policy.ttc").write_text("garbage\n")
    assert ttc("report", str(out)) == 1
    err = capsys.readouterr().err
    assert f"{out / 'policy.ttc'} is not the policy {out} ran with: it does not check" in err, err
    assert "report.json" not in err and "unexpected 'garbage'" in err


def test_report_refuses_a_report_its_samples_labels_contradict(setup, tmp_path) -> None:
    """Labels flipped in the stored samples (or a report edited) after the run: the report's
    accuracy is not what the run's own rules make of its samples, and `ttc report` says so."""
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    rows = [json.loads(line) for line in lines[1:]]
    for row in rows:
        if row.get("correct") is not None:
            row["correct"] = not row["correct"]
    (out / "samples.jsonl").write_text(lines[0] + "".join(json.dumps(r) + "\n" for r in rows))
    stated = json.loads((out / "report.json").read_text())["accuracy"]
    shown = ttc_subprocess(["report", str(out)])
    assert shown.returncode == 1, shown.stderr
    assert f"accuracy {stated!r} in the report" in shown.stderr
    assert "changed after the run" in shown.stderr


@pytest.mark.parametrize("edit, named", [
    ("tokens", "tokens"),
    ("budget", "budget 'mean samples per query"),
    ("verdict", "verdict"),
    ("verdict text", "verdict"),
    ("baseline", "verdict difference"),
])
def test_report_refuses_spend_budget_and_verdict_figures_it_cannot_stand_behind(
        setup, tmp_path, capsys, edit, named) -> None:
    """Only accuracy, coverage and the counts were held to the stored samples: tokens, the
    budget's "spent" and "within", the baseline and the verdict's words could say anything."""
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    report = json.loads((out / "report.json").read_text())
    if edit == "tokens":
        report["spend"]["tokens"] = (report["spend"]["tokens"] or 0) // 10
    elif edit == "budget":
        report["budget"][0]["spent"] = 1
    elif edit == "verdict":
        report["verdict"]["text"] = "better than uniform at equal spend: +64.0 points"
    elif edit == "verdict text":  # shown as "verdict: 7"
        report["verdict"] = {**report["verdict"], "diff": None, "text": 7}
    else:
        assert report["verdict"]["diff"] is not None
        report["baseline"]["accuracy"] = 0.01
    (out / "report.json").write_text(json.dumps(report))
    assert ttc("report", str(out)) == 1
    err = capsys.readouterr().err
    assert "does not match the run's stored samples" in err and named in err
    assert ttc("report", str(reference)) == 0


def test_report_messages_name_what_is_wrong(setup, tmp_path, capsys) -> None:
    """A missing path and a file were both "not a run directory (no manifest.json)"; a torn
    last line was blamed on two processes, with advice to throw the run away, where a resume
    repairs it; a plan that is a directory was "no such plan file"."""
    d, plan, queries, samples, reference = setup
    assert ttc("report", str(tmp_path / "nowhere")) == 1
    assert "nowhere: no such run directory" in capsys.readouterr().err
    assert ttc("report", str(samples)) == 1
    assert "a file, not a run directory" in capsys.readouterr().err
    assert ttc(*run_args(tmp_path, queries, samples, tmp_path / "r")) == 1
    assert f"{tmp_path}: a directory, not a plan file" in capsys.readouterr().err
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    data = (out / "samples.jsonl").read_bytes()
    (out / "samples.jsonl").write_bytes(data[:-20])
    assert ttc("report", str(out)) == 1
    err = capsys.readouterr().err
    assert f"ttc run --resume {out} repairs it" in err and "two processes" not in err
    assert ttc("run", "--resume", str(out), "--quiet") == 0
    capsys.readouterr()
    assert ttc("report", str(out)) == 0


@pytest.mark.parametrize("field, value", [
    ("bins", None), ("predicted", None), ("histogram", None), ("stop_savings", None),
    ("budget", None), ("bins", [{"name": 7}]), ("verdict", "x"), ("verdict", 5),
])
def test_a_damaged_report_is_named_not_a_crash(setup, tmp_path, capsys, field, value) -> None:
    """A report.json with a field of the wrong shape crashed `ttc report` with exit 3, and then
    was named by Python's error text ("'int' object is not subscriptable"), not by its field."""
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    report = json.loads((out / "report.json").read_text())
    report[field] = value
    (out / "report.json").write_text(json.dumps(report))
    assert ttc("report", str(out)) == 1
    captured = capsys.readouterr()
    assert f"{out / 'report.json'}" in captured.err and "internal error" not in captured.err
    if field in ("bins", "verdict", "stop_savings"):  # the ones the report alone can tell
        assert f"its field {field!r}" in captured.err
    assert captured.out == ""  # nothing half-printed


@pytest.mark.parametrize("damage, said", [
    (lambda m: [m], "not a ttc run manifest (a JSON list, not an object)"),
    (lambda m: {**m, "seed": "x"}, "not a ttc run manifest (field 'seed')"),
    (lambda m: {**m, "dataset": 5}, "not a ttc run manifest (field 'dataset.sha256')"),
])
def test_a_damaged_manifest_is_named_by_its_field(setup, tmp_path, capsys, damage, said) -> None:
    """A manifest.json holding a JSON array crashed `ttc report` (exit 3, AttributeError), and a
    seed that is not a number was "(field invalid literal for int() with base 10: 'x')"."""
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(damage(manifest)))
    for command in (("report", str(out)), ("run", "--resume", str(out), "--quiet")):
        assert ttc(*command) == 1
        err = capsys.readouterr().err
        assert f"{out / 'manifest.json'}: {said}" in err and "internal error" not in err, err


@pytest.mark.parametrize("damage", ["another run's", "truncated", "answers edited"])
def test_report_refuses_results_that_do_not_add_up_to_it(setup, tmp_path, damage) -> None:
    """results.jsonl replaced by another run's, cut short, or with its answers edited: the
    report's figures no longer follow from it, and `ttc report` says so by file (it showed the
    report as if nothing had happened)."""
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    if damage == "another run's":
        other = tmp_path / "other"
        assert ttc(*run_args(plan, queries, samples, other, seed=11)) == 0
        shutil.copy(other / "results.jsonl", out / "results.jsonl")
    elif damage == "truncated":
        (out / "results.jsonl").write_text("".join(lines[: len(lines) // 2]))
    else:
        rows = [json.loads(line) for line in lines]
        for row in rows:
            if row.get("correct") is False:
                row["correct"] = True
        (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert results(out) != results(reference)  # the damage is real: the check has work to do
    shown = ttc_subprocess(["report", str(out)])
    assert shown.returncode == 1, shown.stderr
    assert f"{out / 'results.jsonl'} does not add up to the run's report" in shown.stderr
    assert ttc_subprocess(["report", str(reference)]).returncode == 0


# --- atomic creation and replacement ---------------------------------------------------------


@pytest.mark.parametrize("step", ["begun", "built"])
def test_a_kill_while_creating_leaves_no_run_directory_and_a_rerun_cleans_up(
    setup, tmp_path, step
) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    _killed_run(setup, out, crash=f"create:{step}")
    assert not out.exists()
    (leftover,) = _hidden(tmp_path)
    assert leftover.startswith(".run.ttc-new-")
    again = ttc_subprocess(run_args(plan, queries, samples, out, seed=5))
    assert again.returncode == 0, again.stderr
    assert "removed the half-built run directory" in again.stderr
    assert _hidden(tmp_path) == []
    _no_duplicates_and_same_results(out, reference)


def test_a_kill_after_moving_the_old_run_aside_loses_nothing(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    _killed_run(setup, out, crash="create:aside", seed=6, extra=["--force"])
    assert not out.exists()
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert "put back" in resumed.stderr
    assert _hidden(tmp_path) == []
    assert json.loads((out / "manifest.json").read_text())["seed"] == 5  # the old run, whole
    _no_duplicates_and_same_results(out, reference)


def test_a_kill_after_the_swap_keeps_the_new_run_and_removes_the_old(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    _killed_run(setup, out, crash="create:swapped", seed=6, extra=["--force"])
    assert json.loads((out / "manifest.json").read_text())["seed"] == 6
    (aside,) = _hidden(tmp_path)
    assert aside.startswith(".run.ttc-old-")
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert _hidden(tmp_path) == []
    assert json.loads((out / "report.json").read_text())["queries"] == 24


def test_force_clears_a_half_created_directory_but_nothing_else(setup, tmp_path, capsys) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    out.mkdir()  # what older versions left when killed while creating: no manifest yet
    (out / "plan.yaml").write_bytes(plan.read_bytes())
    (out / ".manifest.json.0123456789ab.tmp").write_text("{")
    assert ttc(*run_args(plan, queries, samples, out, seed=5)) == 1
    assert "already exists" in capsys.readouterr().err
    assert ttc(*run_args(plan, queries, samples, out, seed=5), "--force") == 0
    _no_duplicates_and_same_results(out, reference)
    other = tmp_path / "other"
    other.mkdir()
    (other / "plan.yaml").write_text("x")
    (other / "notes.txt").write_text("mine")
    assert ttc(*run_args(plan, queries, samples, other, seed=5), "--force") == 1
    assert "not a run directory" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


# --- a run's files belong together -----------------------------------------------------------


def test_resume_refuses_another_runs_samples_file(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    mine = tmp_path / "mine"
    _killed_run(setup, mine, crash="appended:1", seed=0)
    shutil.copyfile(reference / "samples.jsonl", mine / "samples.jsonl")  # seed 5's
    before = (mine / "samples.jsonl").read_bytes()
    refused = ttc_subprocess(["run", "--resume", str(mine), "--quiet"])
    assert refused.returncode == 1
    assert "its header says seed 5" in refused.stderr and "says 0" in refused.stderr
    assert (mine / "samples.jsonl").read_bytes() == before
    shown = ttc_subprocess(["report", str(mine)])
    assert shown.returncode == 1 and "its header says seed 5" in shown.stderr


def test_a_run_with_relative_paths_resumes_and_reports_from_elsewhere(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    work = tmp_path / "work"
    work.mkdir()
    for path in (plan, queries, samples, d / "policy.ttc"):
        shutil.copyfile(path, work / path.name)
    # the copied plan names its policy by a relative path
    text = (work / plan.name).read_text().replace(str(d / "policy.ttc"), "policy.ttc")
    (work / plan.name).write_text(text)
    started = _popen([*run_args(plan.name, queries.name, samples.name, "run", seed=5)], cwd=work)
    started.wait(timeout=120)
    assert started.returncode == 0, started.stderr.read()
    (work / "run" / "report.json").unlink()
    (work / "run" / "results.jsonl").unlink()
    shown = ttc_subprocess(["report", str(work / "run"), "--json"])  # from the repository root
    assert shown.returncode == 0, shown.stderr
    resumed = ttc_subprocess(["run", "--resume", str(work / "run"), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    _no_duplicates_and_same_results(work / "run", reference)


# --- exit codes -----------------------------------------------------------------------------


def test_a_negative_seed_is_a_command_line_error(setup, tmp_path, capsys) -> None:
    d, plan, queries, samples, reference = setup
    with pytest.raises(SystemExit) as exit_:
        ttc(*run_args(plan, queries, samples, tmp_path / "run", seed=-1))
    assert exit_.value.code == 2
    assert "--seed: must be an integer from 0 to 9223372036854775807, got -1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_an_unwritable_output_directory_is_a_user_error(
    setup, tmp_path, monkeypatch, capsys, code
) -> None:
    d, plan, queries, samples, reference = setup

    def refuse(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(os, "mkdir", refuse)
    assert ttc(*run_args(plan, queries, samples, tmp_path / "deep" / "run", seed=5)) == 1
    err = capsys.readouterr().err
    assert "cannot write the run directory" in err and os.strerror(code) in err


def test_a_full_disk_during_the_run_is_a_user_error(setup, tmp_path, monkeypatch, capsys) -> None:
    d, plan, queries, samples, reference = setup
    from ttcdsl.samples.store import SampleStore

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(SampleStore, "append", full)
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run", seed=5)) == 1
    assert "No space left on device" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_parent_is_a_user_error(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        refused = ttc_subprocess(run_args(plan, queries, samples, parent / "run", seed=5))
    finally:
        parent.chmod(0o755)
    assert refused.returncode == 1 and "cannot write the run directory" in refused.stderr


def test_the_lock_is_released_when_its_holder_is_gone(tmp_path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with lock_run_dir(run_dir):
        assert writer_pid(run_dir) == os.getpid()
    assert writer_pid(run_dir) is None
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from ttcdsl.runtime.lock import lock_run_dir; l = lock_run_dir(Path(sys.argv[1])); "
         "print('held', flush=True); time.sleep(60)", str(run_dir)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline() == "held\n"
    assert writer_pid(run_dir) == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert writer_pid(run_dir) is None
    lock_run_dir(run_dir).release()


# --- paths that cannot be written or read: the user's to fix (exit 1), never an internal error

def test_an_out_whose_parent_cannot_be_made_is_a_user_error(setup, tmp_path, capsys) -> None:
    d, plan, queries, samples, reference = setup
    assert ttc(*run_args(plan, queries, samples, "/proc/no-such-dir/run", seed=5)) == 1
    err = capsys.readouterr().err
    assert "/proc/no-such-dir" in err and "cannot write the run directory" in err
    assert "internal error" not in err


def test_split_over_a_directory_is_a_user_error(setup, tmp_path, capsys) -> None:
    d, plan, queries, samples, reference = setup
    taken = tmp_path / "a.jsonl"
    taken.mkdir()
    assert ttc("split", str(samples), "-o", str(taken), str(tmp_path / "b.jsonl"), "--force") == 1
    err = capsys.readouterr().err
    assert f"{taken}: is a directory, not a samples table" in err and "internal error" not in err
    assert taken.is_dir() and not any(taken.iterdir()), "the directory was changed"


def test_a_report_of_a_run_whose_samples_file_is_a_directory_is_a_user_error(
    setup, tmp_path, capsys
) -> None:
    d, plan, queries, samples, reference = setup
    broken = tmp_path / "run"
    shutil.copytree(reference, broken)
    (broken / "samples.jsonl").unlink()
    (broken / "samples.jsonl").mkdir()
    assert ttc("report", str(broken)) == 1
    err = capsys.readouterr().err
    assert "samples.jsonl" in err and "internal error" not in err



# --- CTRL-C during a run -----------------------------------------------------------------------


class _GatedServer:
    """An OpenAI-compatible double whose POSTs past the first ``open_posts`` wait (for the
    test's CTRL-C) until it is closed: a round that cannot finish, as against a slow server."""

    def __init__(self) -> None:
        import threading

        from tests.runtime.http_double import OpenAIDouble, completion

        self.open_posts: int | None = None  # None: every POST answers at once
        self.posts = 0
        self._count = threading.Lock()
        self._release = threading.Event()
        logprobs = {"content": [{"token": "2", "logprob": -0.25}]}  # the policy's scorer reads them

        def post(body):
            with self._count:
                self.posts += 1
                held = self.open_posts is not None and self.posts > self.open_posts
            if held:
                self._release.wait(60)
            return 200, completion(logprobs=logprobs), {}

        self.double = OpenAIDouble(post)

    def args(self, plan, queries, out) -> list[str]:
        return ["run", str(plan), "--queries", str(queries), "--out", str(out), "--backend",
                "openai", "--endpoint", self.double.url, "--backend-option", "model=m"]

    def close(self) -> None:
        self._release.set()
        self.double.close()


@pytest.fixture
def gated(tmp_path):
    pytest.importorskip("httpx")
    from tests.runtime.runs import ADAPTIVE, hand_plan, workload_files, write_policy

    plan = hand_plan(write_policy(tmp_path, ADAPTIVE.replace("max_tokens 4096", "max_tokens 12")))
    _, queries = workload_files(tmp_path, n=6, m=4)
    server = _GatedServer()
    yield server, plan, queries
    server.close()


def _interrupted(server, args, *, after_posts: int):
    """Start ``ttc`` with ``args``, press CTRL-C (SIGINT) once the server holds a POST past the
    first ``after_posts``, and return the finished process and its standard error."""
    server.open_posts, server.posts = after_posts, 0
    process = _popen([*args, "--quiet"])
    deadline = time.monotonic() + 60
    while server.posts <= after_posts and process.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the held request"
        time.sleep(0.05)
    time.sleep(0.3)  # let the run settle into waiting for its requests
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_ctrl_c_in_the_first_round_of_a_force_keeps_the_old_run(gated, tmp_path) -> None:
    """CTRL-C during round 0 of `ttc run --force` over a finished run deleted the old run, and
    the new one, having stored nothing, was removed too: the directory was gone."""
    server, plan, queries = gated
    out = tmp_path / "run"
    assert ttc(*server.args(plan, queries, out), "--quiet") == 0
    before = {name: (out / name).read_bytes() for name in ("manifest.json", "samples.jsonl",
                                                           "report.json", "results.jsonl")}
    code, err = _interrupted(server, [*server.args(plan, queries, out), "--force", "--seed", "7"],
                             after_posts=0)
    assert code == 130, err
    assert "Traceback" not in err
    assert f"interrupted before the run stored any sample: {out} holds the old run" in err
    assert {name: (out / name).read_bytes() for name in before} == before
    assert _hidden(tmp_path) == []


def test_ctrl_c_in_the_first_round_of_a_new_run_says_nothing_was_kept(gated, tmp_path) -> None:
    server, plan, queries = gated
    out = tmp_path / "run"
    code, err = _interrupted(server, server.args(plan, queries, out), after_posts=0)
    assert code == 130, err
    assert f"interrupted before the run stored any sample: {out} was not created" in err
    assert not out.exists() and _hidden(tmp_path) == []


def test_ctrl_c_after_the_new_run_stored_keeps_it_resumable(gated, tmp_path) -> None:
    """Once the new run holds samples, a CTRL-C keeps it (the old run is gone) and says how to
    go on; the resume finishes it."""
    server, plan, queries = gated
    out = tmp_path / "run"
    assert ttc(*server.args(plan, queries, out), "--quiet") == 0
    # round 0 probes 6 queries with 2 samples, one POST each: round 1 is held
    code, err = _interrupted(server, [*server.args(plan, queries, out), "--force", "--seed", "7"],
                             after_posts=12)
    assert code == 130, err
    assert f"{out} keeps the 12 samples stored so far; ttc run --resume {out}" in err
    assert json.loads((out / "manifest.json").read_text())["seed"] == 7
    assert not (out / "report.json").exists()
    assert _hidden(tmp_path) == []  # the old run was deleted once the new one stored samples
    server.open_posts = None
    assert ttc("run", "--resume", str(out), *server.args(plan, queries, out)[6:], "--quiet") == 0
    assert json.loads((out / "report.json").read_text())["queries"] == 6


def test_a_kill_mid_round_keeps_the_samples_the_round_got_back(gated, tmp_path) -> None:
    """Samples were stored once per round, so a kill late in a round lost every sample the round
    had got back, and the resume asked (and a paid API billed) them all again. Each request's
    samples are stored as it completes: the resume asks only for the rest, and ends where an
    uninterrupted run does."""
    from tests.runtime.runs import results, sample_keys

    server, plan, queries = gated
    reference = tmp_path / "reference"
    assert ttc(*server.args(plan, queries, reference), "--quiet") == 0
    out = tmp_path / "run"
    live = [*server.args(plan, queries, out), "--backend-option", "concurrency=1", "--quiet"]
    # round 0 probes 6 queries with 2 samples, one POST each, one at a time: the 5th is held
    server.open_posts, server.posts = 4, 0
    process = _popen(live)
    deadline = time.monotonic() + 60
    while server.posts <= 4:
        assert process.poll() is None and time.monotonic() < deadline, "the round never got far"
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    stored = len(sample_keys(out))
    assert stored == 4  # the two queries whose requests came back, not 0
    server.open_posts, server.posts = None, 0
    assert ttc("run", "--resume", str(out), *live[6:]) == 0
    keys = sample_keys(out)
    assert len(keys) == len(set(keys)) == len(sample_keys(reference))
    assert server.posts == len(keys) - stored  # nothing generated twice
    assert results(out) == results(reference)
