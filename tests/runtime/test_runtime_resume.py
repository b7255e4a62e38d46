"""Resuming killed runs: SIGKILL at chosen rounds (mid-append, leaving a torn line, and right
after an append) and at random times, then `ttc run --resume`; the results must equal an
uninterrupted run's and the samples file must never hold a sample twice."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from tests.runtime.runs import (
    reference_run,
    results,
    run_args,
    sample_keys,
    ttc,
    ttc_subprocess,
    workload_files,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return reference_run(tmp_path_factory.mktemp("resume"))


def _check_same(run_dir, reference) -> None:
    assert results(run_dir) == results(reference)
    keys = sample_keys(run_dir)
    assert len(keys) == len(set(keys)), "a sample was stored twice"
    assert sorted(keys) == sorted(sample_keys(reference))


@pytest.mark.parametrize(
    "crash", ["append:0", "appended:0", "append:1", "appended:2", "append:3", "appended:5"]
)
def test_resume_after_sigkill_at_a_round(setup, tmp_path, crash) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    killed = ttc_subprocess(
        run_args(plan, queries, samples, out, seed=5), env={"TTC_RUN_CRASH": crash}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "results.jsonl").exists()
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    if crash.startswith("append:"):
        assert "torn last line" in resumed.stderr
    _check_same(out, reference)


def test_resume_twice_in_a_row_generates_nothing_new(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=5)) == 0
    before = (out / "samples.jsonl").read_bytes()
    assert ttc("run", "--resume", str(out), "--quiet") == 0
    assert (out / "samples.jsonl").read_bytes() == before
    _check_same(out, reference)


@pytest.mark.slow
def test_resume_after_sigkill_at_random_times(setup, tmp_path) -> None:
    """Kills from outside at random moments (import, validation, any round, the final writes)."""
    d, plan, queries, samples, reference = setup
    rng = random.Random(20260101)
    for trial in range(6):
        out = tmp_path / f"run{trial}"
        args = [sys.executable, "-m", "ttcdsl", *run_args(plan, queries, samples, out, seed=5)]
        from tests.runtime.runs import REPO
        import os

        proc = subprocess.Popen(
            args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not (out / "manifest.json").exists():
            assert not out.exists() or not any(out.iterdir()) or not (out / "samples.jsonl").exists()
            continue
        if not (out / "samples.jsonl").exists():
            continue  # killed between the manifest and the store: nothing was sampled
        resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
        assert resumed.returncode == 0, resumed.stderr
        _check_same(out, reference)


def test_resume_refuses_another_dataset(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    other_samples, other_queries = workload_files(tmp_path, n=24, m=16, seed=1)
    out = tmp_path / "run"
    killed = ttc_subprocess(
        run_args(plan, queries, samples, out, seed=5), env={"TTC_RUN_CRASH": "appended:1"}
    )
    assert killed.returncode == -signal.SIGKILL
    refused = ttc_subprocess(
        ["run", "--resume", str(out), "--queries", str(other_queries), "--quiet"]
    )
    assert refused.returncode == 1
    assert "dataset differs" in refused.stderr
    refused = ttc_subprocess(
        ["run", "--resume", str(out), "--samples", str(other_samples), "--quiet"]
    )
    assert refused.returncode == 1
    assert "replay samples table differs" in refused.stderr
    # another policy was taken silently and dropped
    before = (out / "samples.jsonl").read_bytes()
    refused = ttc_subprocess(["run", "--resume", str(out), "--policy", str(plan), "--quiet"])
    assert refused.returncode == 1 and "leave out --policy" in refused.stderr
    assert (out / "samples.jsonl").read_bytes() == before


@pytest.mark.parametrize("crash, provisional", [("append:0", True), ("appended:2", False)])
def test_an_unfinished_run_gets_a_partial_report_and_is_left_untouched(
    setup, tmp_path, crash, provisional
) -> None:
    import hashlib
    import json

    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    killed = ttc_subprocess(run_args(plan, queries, samples, out, seed=5), env={"TTC_RUN_CRASH": crash})
    assert killed.returncode == -signal.SIGKILL
    before = hashlib.sha256((out / "samples.jsonl").read_bytes()).hexdigest()
    shown = ttc_subprocess(["report", str(out), "--json"])
    assert shown.returncode == 0, shown.stderr
    assert "PARTIAL" in shown.stderr
    report = json.loads(shown.stdout)
    assert report["end"] == "interrupted"
    assert report["partial"]["provisional_bins"] is provisional
    assert report["partial"]["torn_last_line_skipped"] is crash.startswith("append:")
    complete = [line for line in (out / "samples.jsonl").read_bytes().split(b"\n")[1:]
                if line.endswith(b"}")]
    assert report["spend"]["samples"] == report["partial"]["stored_samples"] == len(complete)
    assert report["budget_cut_queries"] == 0  # still running, not cut
    assert report["predicted"]["z"] is None and report["predicted"]["samples_z"] is None
    assert report["baseline"] is None
    # queries the run had not reached are unknown, not wrong (a run killed before its first
    # stored sample read "accuracy 0 over 1500 of 1500 queries")
    by_query = {}
    for line in complete:
        row = json.loads(line)
        by_query[row["query_id"]] = by_query.get(row["query_id"], 0) + 1
    assert report["unreached_queries"] == report["queries"] - len(by_query)
    if by_query:
        assert report["accuracy_over"] == len(by_query)
    else:
        assert report["accuracy"] is None
        text = ttc_subprocess(["report", str(out)])
        assert "no query has a sample yet" in text.stdout, text.stdout
    assert hashlib.sha256((out / "samples.jsonl").read_bytes()).hexdigest() == before
    assert not (out / "report.json").exists()
    assert ttc_subprocess(["run", "--resume", str(out), "--quiet"]).returncode == 0
    _check_same(out, reference)
    final = ttc_subprocess(["report", str(out), "--json"])
    assert "partial" not in json.loads(final.stdout) and "PARTIAL" not in final.stderr


def test_progress_shows_retired_queries_spend_and_an_eta(setup, tmp_path) -> None:
    d, plan, queries, samples, reference = setup
    args = [a for a in run_args(plan, queries, samples, tmp_path / "run", seed=5) if a != "--quiet"]
    done = ttc_subprocess(args)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ttc run: round")]
    assert lines and all("retired" in line and "samples" in line for line in lines)
    assert "retired 0/24" in lines[0] and "ETA ?" in lines[0]  # no targets before the probe
    assert any("ETA ~" in line or line.endswith("done") for line in lines[1:])
    assert "[####################] retired 24/24" in lines[-1]


@pytest.mark.parametrize("edit", ["every label true", "a middle sample deleted"])
def test_resume_refuses_stored_samples_edited_after_the_run(setup, tmp_path, edit) -> None:
    """A resume took an edited samples.jsonl as the run's and wrote a clean report of it: every
    label set to true resumed into accuracy 1 and +30 points over uniform; a deleted middle line
    into samples 'generated past a stop' of a policy without stop rules."""
    import json

    d, plan, queries, samples, reference = setup
    out = tmp_path / "run"
    killed = ttc_subprocess(
        run_args(plan, queries, samples, out, seed=5), env={"TTC_RUN_CRASH": "appended:2"}
    )
    assert killed.returncode == -signal.SIGKILL
    path = out / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    if edit == "every label true":
        lines = lines[:1] + [json.dumps(dict(json.loads(line), correct=True)) + "\n"
                             for line in lines[1:]]
    else:
        rows = [json.loads(line) for line in lines[1:]]
        # a sample of a query that has later ones stored
        victim = next(i for i, r in enumerate(rows)
                      if any(o["query_id"] == r["query_id"] and o["sample_index"] > r["sample_index"]
                             for o in rows))
        del lines[1 + victim]
    path.write_text("".join(lines))
    before = path.read_bytes()
    refused = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert refused.returncode == 1, refused.stderr
    assert "not what the replay served" in refused.stderr
    assert ("labelled True" if edit == "every label true" else "is missing") in refused.stderr
    assert path.read_bytes() == before and not (out / "report.json").exists()
