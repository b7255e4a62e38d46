"""`ttc run --backend vllm|openai` end to end on the real engine: the samples table a run writes,
a run through injected faults, SIGKILL in the middle of a round's write then `--resume` (nothing
lost, nothing generated twice, the same samples as an uninterrupted run), and the API key kept out
of every file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.live.conftest import ENGINE_OPTIONS, QUERIES, sample_rows
from tests.live.support import FaultyProxy
from tests.paths import REPO
from tests.runtime.runs import ADAPTIVE, hand_plan, results, write_policy
from ttcdsl.answers import is_correct, parse_answer

pytestmark = pytest.mark.slow

# The executor tests' adaptive policy (probe, two bins, a stop rule, a confidence-weighted vote,
# so mean token logprobs are read), with tiny generations.
ALLOCATION = {
    "split": [{"samples": 5, "share": 0.5}, {"samples": 4, "share": 0.5}],
    "agree": [{"samples": 3, "share": 1.0}],
}


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("live-plan")
    policy = write_policy(d, ADAPTIVE.replace("max_tokens 4096", "max_tokens 12"))
    return hand_plan(policy, allocation=ALLOCATION)


def ttc(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ttcdsl", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=900)


def vllm_args(model_folder) -> list[str]:
    out = ["--backend", "vllm", "--backend-option", f"model={model_folder}"]
    for option in ENGINE_OPTIONS:
        out += ["--backend-option", option]
    return out


def check_table(run_dir: Path) -> list[dict]:
    """Every sample once, numbered from 0 per query; real token counts; answers and labels are
    the dataset kind's, recomputed here; mean logprobs present (the policy reads them)."""
    rows = sample_rows(run_dir)
    keys = Counter((r["query_id"], r["sample_index"]) for r in rows)
    assert all(c == 1 for c in keys.values()), "a sample stored twice"
    gold = {q.id: q.gold for q in QUERIES}
    for qid in gold:
        indices = sorted(i for q, i in keys if q == qid)
        assert indices == list(range(len(indices))) and indices, qid
    for r in rows:
        assert r["prompt_tokens"] > 0 and 0 < r["completion_tokens"] <= 12
        assert r["finish_reason"] in ("stop", "length")
        assert r["mean_logprob"] is not None and r["mean_logprob"] <= 0
        assert r["answer"] == parse_answer(r["text"], "math")
        assert r["correct"] == (r["answer"] is not None
                                and is_correct(r["answer"], gold[r["query_id"]], "math"))
    return rows


def assert_same_samples(rows, reference) -> None:
    """The same samples: equal in every field, but mean logprobs only to 1e-4 (fp32 sums differ
    in the last digits with the batch a sample shares, and a resumed round's batch is smaller)."""
    def key(r):
        return (r["query_id"], r["sample_index"])

    rows, reference = sorted(rows, key=key), sorted(reference, key=key)
    assert [key(r) for r in rows] == [key(r) for r in reference]
    for a, b in zip(rows, reference, strict=True):
        assert {**a, "mean_logprob": None} == {**b, "mean_logprob": None}
        assert a["mean_logprob"] == pytest.approx(b["mean_logprob"], abs=1e-4)


def test_vllm_run_then_sigkill_and_resume(plan, queries_file, model_folder, tmp_path) -> None:
    reference = tmp_path / "reference"
    done = ttc(["run", str(plan), "--queries", str(queries_file), *vllm_args(model_folder),
                "--out", str(reference), "--seed", "3", "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    rows = check_table(reference)
    assert len({r["round"] for r in rows}) >= 2, "the plan should take more than one round"
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["backend"] == {"name": "vllm", "model": str(model_folder), "table": None,
                                   "table_sha256": None}

    # SIGKILL right after the first append of round 1: each request's samples are stored as
    # soon as it completes, so round 1's first query is kept and the others are not yet
    crashed = tmp_path / "crashed"
    killed = ttc(["run", str(plan), "--queries", str(queries_file), *vllm_args(model_folder),
                  "--out", str(crashed), "--seed", "3", "--quiet"],
                 env={"TTC_RUN_CRASH": "appended:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    round_one = {r["query_id"] for r in rows if r["round"] == 1}
    kept = {r["query_id"] for r in sample_rows(crashed) if r["round"] == 1}
    assert len(round_one) >= 2, "round 1 should serve several queries"
    assert len(kept) == 1 and kept < round_one, (kept, round_one)
    resumed = ttc(["run", "--resume", str(crashed), "--backend", "vllm",
                   "--backend-option", ENGINE_OPTIONS[0], "--quiet"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_samples(check_table(crashed), rows)
    assert results(crashed) == results(reference)


def openai_args(url: str, *extra: str) -> list[str]:
    args = ["--backend", "openai", "--endpoint", url, "--backend-option", "model=smollm2"]
    for option in extra:
        args += ["--backend-option", option]
    return args


def test_openai_run_through_faults_then_sigkill_and_resume(plan, queries_file, server,
                                                           tmp_path) -> None:
    reference = tmp_path / "reference"
    done = ttc(["run", str(plan), "--queries", str(queries_file), *openai_args(server),
                "--out", str(reference), "--seed", "3", "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    rows = check_table(reference)
    retry = ("timeout=20", "backoff=0.05", "retries=4")
    proxy = FaultyProxy(server)
    try:
        faulty = tmp_path / "faulty"
        run = ttc(["run", str(plan), "--queries", str(queries_file), *openai_args(proxy.url, *retry),
                   "--out", str(faulty), "--seed", "3", "--quiet"])
        assert run.returncode == 0, run.stderr[-3000:]
        assert sum(v for k, v in proxy.faults.items() if k != "pass") >= 5, proxy.faults
        assert_same_samples(check_table(faulty), rows)

        crashed = tmp_path / "crashed"
        killed = ttc(["run", str(plan), "--queries", str(queries_file),
                      *openai_args(proxy.url, *retry), "--out", str(crashed), "--seed", "3",
                      "--quiet"], env={"TTC_RUN_CRASH": "append:1"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        resumed = ttc(["run", "--resume", str(crashed), *openai_args(proxy.url, *retry),
                       "--quiet"])
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    finally:
        proxy.close()
    assert_same_samples(check_table(crashed), rows)
    assert results(crashed) == results(reference)


def test_a_failing_server_marks_queries_failed_and_the_run_goes_on(plan, queries_file, server,
                                                                   tmp_path) -> None:
    """Requests of one query keep failing: that query is a shortfall with the reason and an
    unknown outcome (left out of accuracy, not counted wrong); the others run. Every request
    failing is an error (exit 1) with the reason, not an accuracy of 0."""
    def run_behind(proxy: FaultyProxy, name: str):
        try:
            return tmp_path / name, ttc(["run", str(plan), "--queries", str(queries_file),
                                         *openai_args(proxy.url, "retries=1", "backoff=0"),
                                         "--out", str(tmp_path / name), "--quiet"])
        finally:
            proxy.close()

    out, run = run_behind(FaultyProxy(server, always="500", only=b"What is 9 + 8"), "failed")
    assert run.returncode == 0, run.stderr[-3000:]
    by_query = {r["query_id"]: r for r in results(out)}
    failed = by_query.pop("add-9-8")
    assert "HTTP 500" in failed["exhausted"] and failed["samples"] == 0
    assert failed["correct"] is None and failed["covered"] is None
    assert by_query and all(r["samples"] > 0 and r["correct"] is not None for r in by_query.values())
    assert {row["query_id"] for row in sample_rows(out)} == set(by_query)
    report = json.loads((out / "report.json").read_text())
    assert report["unserved_queries"] == 1 and report["accuracy_over"] == len(by_query)

    out, run = run_behind(FaultyProxy(server, always="500"), "all-failed")
    assert run.returncode == 1 and "no query got a sample" in run.stderr, run.stderr[-3000:]
    assert sample_rows(out) == []
    assert json.loads((out / "report.json").read_text())["accuracy"] is None


def test_a_401_mid_round_ends_the_run_and_a_resume_finishes_it(plan, queries_file, server,
                                                              tmp_path) -> None:
    """One query's requests meet a 401 (the key went bad mid-run): the run stops with the
    reason (exit 1) instead of failing request after request, keeps the samples that came back,
    and a resume with working credentials ends as an uninterrupted run does."""
    reference = tmp_path / "reference"
    done = ttc(["run", str(plan), "--queries", str(queries_file), *openai_args(server),
                "--out", str(reference), "--seed", "5", "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    proxy = FaultyProxy(server, always="401", only=b"What is 9 + 8")
    try:
        out = tmp_path / "refused"
        run = ttc(["run", str(plan), "--queries", str(queries_file), *openai_args(proxy.url),
                   "--out", str(out), "--seed", "5", "--quiet"])
    finally:
        proxy.close()
    assert run.returncode == 1, run.stderr[-3000:]
    assert "HTTP 401" in run.stderr and "nothing more was sent" in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert 1 <= proxy.faults["401"] <= 8, proxy.faults  # at most the requests already in flight
    stored = sample_rows(out)
    assert stored and all(row["query_id"] != "add-9-8" for row in stored)
    resumed = ttc(["run", "--resume", str(out), *openai_args(server), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_samples(check_table(out), check_table(reference))
    assert results(out) == results(reference)


def test_the_api_key_is_sent_and_written_nowhere(plan, queries_file, server, tmp_path) -> None:
    secret = "sk-ttc-test-4242-do-not-store"
    proxy = FaultyProxy(server, always="pass")
    try:
        out = tmp_path / "keyed"
        run = ttc(["run", str(plan), "--queries", str(queries_file),
                   *openai_args(proxy.url, "api_key_env=TTC_TEST_API_KEY"), "--out", str(out)],
                  env={"TTC_TEST_API_KEY": secret})
    finally:
        proxy.close()
    assert run.returncode == 0, run.stderr[-3000:]
    assert proxy.authorization == {f"Bearer {secret}"}
    assert secret not in run.stdout + run.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_live_run_that_charges_prompt_tokens_keeps_its_token_budget(queries_file, server,
                                                                     tmp_path) -> None:
    """`charge prompt tokens` on a live run: each query's prompt is tokenized before the first
    round, so the ledger can fit rounds; the tokens billed (prompt + completion, as the server
    counted them) stay within the declared total."""
    policy = write_policy(tmp_path, (
        'policy charged "prompt tokens count against a total"\n'
        "budget {\n  total tokens <= 700\n  samples per query in 1..8\n  charge prompt tokens\n}\n"
        "sampling { temperature 0.7  max_tokens 8 }\nanswer majority_vote\nallocate fixed 8\n"
    ))
    planned = hand_plan(policy, allocation={"all": [{"samples": 8, "share": 1.0}]}, edges=None,
                        mode="fixed")
    out = tmp_path / "charged"
    run = ttc(["run", str(planned), "--queries", str(queries_file), *openai_args(server),
               "--out", str(out), "--quiet"])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = sample_rows(out)
    billed = sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    assert rows and billed <= 700
    assert len(rows) < 8 * len(QUERIES)  # the budget, not the allocation, ended the run
    report = json.loads((out / "report.json").read_text())
    assert report["spend"]["billed_tokens"] == report["spend"]["tokens"] == billed


def test_a_live_run_bins_by_the_prompt_nll_it_measures(queries_file, server, tmp_path) -> None:
    """A policy whose binning key is prompt_nll runs live: the first sample of each query
    carries the prompt's NLL, the key of each query is that value (not NaN, not 0), and the
    run's samples table is a calibration table that carries it (ttc plan reads it)."""
    policy = write_policy(tmp_path, ADAPTIVE.replace("max_tokens 4096", "max_tokens 8").replace(
        "feature agreement = top_share(answers)", "feature agreement = prompt_nll").replace(
        "thresholds [0.75]", "thresholds [2.0]"))
    planned = hand_plan(policy, allocation=ALLOCATION, edges=[2.0])
    out = tmp_path / "nll"
    run = ttc(["run", str(planned), "--queries", str(queries_file), *openai_args(server),
               "--out", str(out), "--quiet"])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = sample_rows(out)
    measured = {r["query_id"]: r["prompt_nll"] for r in rows
                if r["sample_index"] == 0}
    assert set(measured) == {q.id for q in QUERIES} and all(v > 0 for v in measured.values())
    for result in results(out):
        assert result["key"] == pytest.approx(measured[result["query_id"]])
        assert result["bin"] == ("split" if measured[result["query_id"]] < 2.0 else "agree")
    plan = ttc(["plan", str(policy), "-c", str(out / "samples.jsonl"), "-o",
                str(tmp_path / "replanned.yaml"), "--reps", "8", "--no-cross-check"])
    assert plan.returncode == 0, plan.stderr[-3000:]
