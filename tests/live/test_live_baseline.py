"""A live run's uniform baseline (`ttc run --backend vllm|openai --baseline`) on the real engine:
it reuses the run's own samples and generates only the ones the run did not draw (counted where
they are generated: the backend's calls, the server's requests), the generated ones are a direct
uniform run's for the same seed, the report carries the paired verdict, and a baseline pass killed
after (or in the middle of) its append resumes without generating what it stored."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.live.conftest import QUERIES, sample_rows
from tests.live.support import FaultyProxy
from tests.live.test_live_run import ALLOCATION, openai_args, ttc
from tests.runtime.runs import ADAPTIVE, hand_plan, results, write_policy
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.runtime.report import uniform_shares
from ttcdsl.verdict import Z95

pytestmark = pytest.mark.slow

SEED = 3
IDS = tuple(q.id for q in QUERIES)


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("live-baseline-plan")
    policy = write_policy(d, ADAPTIVE.replace("max_tokens 4096", "max_tokens 10"))
    return hand_plan(policy, allocation=ALLOCATION)


class Recording:
    """A backend that records every sample it returned."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.samples: dict[tuple[str, int], object] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests):
        results = self.inner.generate(requests)
        for r in results:
            for s in r.samples:
                assert (r.query_id, s.sample_index) not in self.samples, "generated twice"
                self.samples[(r.query_id, s.sample_index)] = s
        return results


def same_sample(a, b) -> None:
    """Token for token: the same text, token counts, finish reason, answer and label (mean
    logprobs to 1e-4: fp32 sums differ in the last digits with the batch a sample shares)."""
    assert (a.text, a.completion_tokens, a.prompt_tokens, a.finish_reason, a.answer, a.correct) \
        == (b.text, b.completion_tokens, b.prompt_tokens, b.finish_reason, b.answer, b.correct)
    assert a.mean_logprob == pytest.approx(b.mean_logprob, abs=1e-4)


def test_the_baseline_generates_only_what_the_run_did_not_draw(plan, engine_options, engine,
                                                               tmp_path) -> None:
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.plan import load_plan
    from ttcdsl.runtime.executor import RunSpec
    from ttcdsl.runtime.executors import executor_for
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.live_baseline import baseline_pass, open_store
    from ttcdsl.runtime.report import uniform_baseline
    from ttcdsl.runtime.reuse import as_sample
    from ttcdsl.runtime.vllm_backend import VllmBackend
    from ttcdsl.samples import RunMeta, SampleStore

    def backend():
        return VllmBackend(engine_options, LiveQueries(QUERIES), engine=engine, need_logprobs=True)

    policy, plan_data = load_policy(load_plan(plan)["policy"]["file"]), load_plan(plan)
    meta = RunMeta(seed=SEED, backend="vllm", model=str(engine_options["model"]))
    run_store = SampleStore.create(tmp_path / "samples.jsonl", meta)
    spec = RunSpec(policy=policy, plan=plan_data, query_ids=IDS,
                   prompts={q.id: q.prompt or "" for q in QUERIES}, seed=SEED)
    executor = executor_for(spec, backend(), run_store)
    outcome = executor.run()
    spend = sum(r.samples for r in outcome.results)
    drawn = {r.query_id: r.samples for r in outcome.results}
    shares = uniform_shares(IDS, spend, SEED)
    missing = {(q, i) for q in IDS for i in range(drawn[q], shares[q])}
    assert missing, f"uniform at {spend} samples should need samples the run did not draw: {drawn}"

    live = Recording(backend())
    said: list[str] = []
    baseline = baseline_pass(live, policy, IDS, SEED, executor.rows_drawn_with(policy.sampling),
                             open_store(tmp_path, run_store.meta(), say=said.append),
                             say=said.append)(spend)
    assert set(live.samples) == missing  # only these were generated
    assert len(said) == 1 and said[0].startswith(f"uniform baseline at equal spend: {spend} ")
    assert said[0].endswith(f": {spend - len(missing)} are the run's own, 0 stored by an earlier "
                            f"baseline pass, {len(missing)} to generate")
    assert baseline["live"]["extra_samples"] == baseline["live"]["generated"] == len(missing)
    assert baseline["live"]["run_samples"] == spend - len(missing)

    # a direct uniform live run with the same seed: every sample generated
    direct_live = Recording(backend())
    direct = uniform_baseline(direct_live, policy, IDS, spend, SEED, live=True)
    assert set(direct_live.samples) == {(q, i) for q in IDS for i in range(shares[q])}
    for key in missing:
        same_sample(live.samples[key], direct_live.samples[key])
    for row in (r for rows in executor.rows_drawn_with(policy.sampling).values() for r in rows):
        if row.sample_index < shares[row.query_id]:  # a reused sample is the direct run's too
            same_sample(as_sample(row), direct_live.samples[(row.query_id, row.sample_index)])
    for field in ("accuracy", "per_query", "samples", "equal_spend", "completion_tokens"):
        assert baseline[field] == direct[field], field


class CountingProxy(FaultyProxy):
    """A proxy that passes everything and counts the generation requests (one per sample)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, always="pass")
        self.posts = 0

    def _fate(self, body: bytes) -> str:
        with self._lock:
            self.posts += 1
        return "pass"


def counted_ttc(server: str, args: list[str], env: dict | None = None):
    proxy = CountingProxy(server)
    try:
        done = ttc([*args, *openai_args(proxy.url)], env=env)
    finally:
        proxy.close()
    return done, proxy.posts


def baseline_rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "baseline" / "samples.jsonl").read_text().splitlines()[1:]
    return [json.loads(line) for line in lines]


def keys(rows) -> set[tuple[str, int]]:
    return {(r["query_id"], r["sample_index"]) for r in rows}


def content(rows) -> dict:
    return {(r["query_id"], r["sample_index"]): (r["text"], r["completion_tokens"]) for r in rows}


def test_ttc_run_baseline_report_and_resumes(plan, queries_file, server, tmp_path) -> None:
    from ttcdsl.lang.api import load_policy
    from ttcdsl.samples import load

    start = ["run", str(plan), "--queries", str(queries_file), "--seed", str(SEED), "--quiet"]

    # without the flag: no baseline, and the verdict says how to get one
    bare = tmp_path / "bare"
    done, posts = counted_ttc(server, [*start, "--out", str(bare)])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((bare / "report.json").read_text())
    assert report["baseline"] is None and "--baseline" in report["verdict"]["text"]
    own = sample_rows(bare)
    assert posts == len(own) and not (bare / "baseline").exists()

    # with it: the run's samples, then only the baseline's extra ones
    full = tmp_path / "full"
    done, posts = counted_ttc(server, [*start[:-1], "--baseline", "--out", str(full)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert content(sample_rows(full)) == content(own)  # the run's own table is the policy's
    spend = len(own)
    shares = uniform_shares(IDS, spend, SEED)
    drawn = {q: sum(1 for r in own if r["query_id"] == q) for q in IDS}
    missing = {(q, i) for q in IDS for i in range(drawn[q], shares[q])}
    extra = baseline_rows(full)
    assert keys(extra) == missing and posts == spend + len(missing)
    assert "to generate" in done.stderr and f"{len(missing)} to generate" in done.stderr
    report = json.loads((full / "report.json").read_text())
    assert report["baseline"]["live"]["extra_samples"] == len(missing)
    assert report["baseline"]["samples"] == spend and report["baseline"]["equal_spend"]
    # the paired difference, recomputed: each query's uniform answer over its first share of
    # samples (the run's, then the baseline's), against the run's answer
    policy = load_policy(full / "policy.ttc")
    rows = {(r.query_id, r.sample_index): r for path in (full / "samples.jsonl",
            full / "baseline" / "samples.jsonl") for r in load(path).rows()}
    run_correct = {r["query_id"]: r["correct"] for r in results(full)}
    diffs = []
    for q in IDS:
        mine = [rows[(q, i)] for i in range(shares[q])]
        uniform = aggregate(policy.answer, mine, scorers=policy.scorers, labelled=True).correct
        diffs.append(float(run_correct[q]) - float(uniform))
    diff = sum(diffs) / len(diffs)
    se = (sum((d - diff) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs)) ** 0.5
    verdict = report["verdict"]
    assert verdict["diff"] == pytest.approx(diff) and verdict["se"] == pytest.approx(se)
    assert verdict["queries"] == len(IDS)
    word = "better" if diff - Z95 * se > 0 else "worse" if diff + Z95 * se < 0 else "no better"
    assert verdict["text"].startswith(f"{word} than uniform at equal spend: {100 * diff:+.1f}")

    # the baseline added to the finished bare run by a resume: only the extra samples generated
    done, posts = counted_ttc(server, ["run", "--resume", str(bare), "--baseline", "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert posts == len(missing) and content(baseline_rows(bare)) == content(extra)
    assert json.loads((bare / "report.json").read_text())["verdict"] == verdict

    # killed right after the baseline's append: the resume (no flag: the run keeps it)
    # generates nothing; killed in the middle of it: only the torn-off samples again
    for event in ("baseline_appended:0", "baseline_append:0"):
        crashed = tmp_path / event.replace(":", "-")
        killed, _ = counted_ttc(server, [*start[:-1], "--baseline", "--out", str(crashed)],
                                env={"TTC_RUN_CRASH": event})
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert not (crashed / "report.json").exists()
        kept = (crashed / "baseline" / "samples.jsonl").read_text().count("\n") - 1  # complete
        done, posts = counted_ttc(server, ["run", "--resume", str(crashed), "--quiet"])
        assert done.returncode == 0, done.stderr[-3000:]
        assert posts == len(missing) - kept
        assert posts == 0 if event.endswith("appended:0") else posts > 0
        assert content(baseline_rows(crashed)) == content(extra)
        assert json.loads((crashed / "report.json").read_text())["verdict"] == verdict
