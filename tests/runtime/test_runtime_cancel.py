"""Fire-and-cancel: under a `rounds <= R` cap a round asks several samples of a query in a stop
bin; the stop rule is still checked at every sample count, the samples past the stop point are
cancelled (replay: exactly; a slower backend: stored and billed, never used), and a resumed run
is exact."""

from __future__ import annotations

import json
import math
import signal
import pytest

from tests.runtime.runs import (
    ADAPTIVE,
    hand_plan,
    results,
    run_args,
    sample_keys,
    ttc,
    ttc_subprocess,
    workload_files,
    write_policy,
)
from ttcdsl.lang.api import parse_policy
from ttcdsl.planner.plan import load_plan
from ttcdsl.runtime.backend import GenerationResult
from ttcdsl.runtime.executor import Executor, RunSpec
from ttcdsl.runtime.replay import ReplayBackend
from ttcdsl.samples import RunMeta, SampleStore

# runs.ADAPTIVE with three rounds and a budget that never binds (the ledger cuts no round)
CAPPED = ADAPTIVE.replace(
    'policy small_adaptive "probe 2, two bins by agreement, a stop rule, a mean budget"',
    'policy capped "probe 2, a stop rule, three rounds"',
).replace("  mean samples per query <= 6\n", "  mean samples per query <= 12\n").replace(
    "  samples per query in 1..12\n", "  samples per query in 1..12\n  rounds <= 3\n")
UNCAPPED = CAPPED.replace("  rounds <= 3\n", "")
ALLOCATION = {
    "split": [{"samples": 12, "share": 0.5}, {"samples": 9, "share": 0.5}],
    "agree": [{"samples": 8, "share": 1.0}],
}
SEED = 5
SAME = ("samples", "tokens", "billed_tokens", "stopped", "answer", "correct", "bin", "target")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The capped run and the uncapped one (one sample per round: a check after every sample)
    of the same plan, on a built-in workload."""
    d = tmp_path_factory.mktemp("cancel")
    samples, queries = workload_files(d, n=40, m=16)
    plans = {}
    for name, text in (("capped", CAPPED), ("uncapped", UNCAPPED)):
        plans[name] = hand_plan(write_policy(d, text, f"{name}.ttc"), ALLOCATION)
        assert ttc(*run_args(plans[name], queries, samples, d / name, seed=SEED)) == 0
    return d, plans, samples, queries


def _stored(run_dir) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines()[1:]:
        row = json.loads(line)
        rows.setdefault(row["query_id"], []).append(row)
    return {q: sorted(rs, key=lambda r: r["sample_index"]) for q, rs in rows.items()}


def _stop_point(answers: list, target: int) -> int | None:
    """`unanimous last 3`, checked at every count from the probe (2) up to the target."""
    for c in range(2, target):
        window = answers[c - 3 : c] if c >= 3 else []
        if len(window) == 3 and window[0] is not None and len(set(window)) == 1:
            return c
    return None


def test_the_stop_point_is_the_per_sample_one_and_the_rest_is_cancelled(runs) -> None:
    d, _, _, _ = runs
    stored = _stored(d / "capped")
    cancelled_somewhere = False
    for r in results(d / "capped"):
        rows = stored[r["query_id"]]
        point = _stop_point([row["answer"] for row in rows], r["target"])
        expected = r["target"] if point is None else point
        # replay cancels exactly: nothing generated past the stop point
        assert len(rows) == r["samples"] == expected, r["query_id"]
        assert r["stopped"] == (point is not None) and r["past_stop"] == 0
        # rounds 1 and 2 split what the probe leaves: ceil(half), then the rest
        step = math.ceil((r["target"] - 2) / 2)
        asked = {0: 2, 1: step, 2: r["target"] - 2 - step}
        last = rows[-1]["round"]
        got = sum(1 for row in rows if row["round"] == last)
        assert r["cancelled"] == (asked[last] - got if point is not None else 0)
        cancelled_somewhere |= r["cancelled"] > 0
    assert cancelled_somewhere, "no round was cut by a stop: the test exercises nothing"
    report = json.loads((d / "capped" / "report.json").read_text())
    spent = sum(len(rows) for rows in stored.values())
    assert report["spend"]["samples"] == spent
    assert report["stop_savings"]["cancelled_requests"] == sum(
        r["cancelled"] for r in results(d / "capped"))
    assert report["stop_savings"]["past_stop_samples"] == 0


def test_a_capped_run_equals_a_run_checked_after_every_sample(runs) -> None:
    d, _, _, _ = runs
    capped, uncapped = results(d / "capped"), results(d / "uncapped")
    assert [{k: r[k] for k in SAME} for r in capped] == [{k: r[k] for k in SAME} for r in uncapped]
    assert sorted(sample_keys(d / "capped")) == sorted(sample_keys(d / "uncapped"))


@pytest.mark.parametrize("crash", ["append:1", "appended:1", "append:2"])
def test_a_killed_capped_run_resumes_exactly(runs, tmp_path, crash) -> None:
    d, plans, samples, queries = runs
    out = tmp_path / "run"
    killed = ttc_subprocess(
        run_args(plans["capped"], queries, samples, out, seed=SEED), env={"TTC_RUN_CRASH": crash}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert results(out) == results(d / "capped")
    keys = sample_keys(out)
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(sample_keys(d / "capped"))


class SlowCancel:
    """Replay whose cancel takes effect late: when the stop test holds at the k-th sample of a
    request, the sample after the next one had already come back (the next one is cancelled),
    so the result holds a gap past the stop point; with one sample left, it came back too."""

    def __init__(self, inner: ReplayBackend) -> None:
        self.inner = inner
        self.name, self.model, self.capabilities = inner.name, inner.model, inner.capabilities
        self.logged = inner.logged
        self.late = 0

    def generate(self, requests, stops=None):
        full = self.inner.generate(requests)
        out = []
        for result, test in zip(full, stops or [None] * len(requests)):
            samples = result.samples
            k = next((k for k in range(1, len(samples) + 1) if test and test(samples[:k])), None)
            if k is None or k + 2 > len(samples):  # all came back before the cancel
                self.late += 0 if k is None else len(samples) - k
                out.append(result)
                continue
            late = samples[k + 1 : k + 2]
            self.late += len(late)
            out.append(GenerationResult(query_id=result.query_id, samples=samples[:k] + late,
                                        cancelled=len(samples) - k - 1))
        return out

    def close(self) -> None:
        self.inner.close()


def _executor(d, plans, samples, store, backend) -> Executor:
    plan = load_plan(plans["capped"])
    qids = tuple(json.loads(line)["id"]
                 for line in (d / "queries.jsonl").read_text().splitlines())
    spec = RunSpec(policy=parse_policy(CAPPED), plan=plan, query_ids=qids, prompts={}, seed=SEED)
    return Executor(spec, backend, store)


def test_samples_back_before_the_cancel_are_billed_and_never_used(runs, tmp_path) -> None:
    d, plans, samples, _ = runs
    exact_store = SampleStore.create(tmp_path / "exact.jsonl", RunMeta())
    exact = _executor(d, plans, samples, exact_store,
                      ReplayBackend.from_file(samples, seed=SEED)).run()
    slow = SlowCancel(ReplayBackend.from_file(samples, seed=SEED))
    store = SampleStore.create(tmp_path / "slow.jsonl", RunMeta())
    executor = _executor(d, plans, samples, store, slow)
    outcome = executor.run()
    assert slow.late > 0
    rows = list(store.load().rows())
    # stored once each, billed: the spend counts them, the answers do not
    assert len({(r.query_id, r.sample_index) for r in rows}) == len(rows)
    assert sum(r.samples for r in outcome.results) == len(rows)
    assert sum(r.past_stop for r in outcome.results) == slow.late
    assert executor.ledger.spent("samples") == len(rows)
    assert executor.ledger.spent("tokens") == sum(r.completion_tokens for r in rows)
    for mine, ref in zip(outcome.results, exact.results):
        assert (mine.answer, mine.correct, mine.stopped) == (ref.answer, ref.correct, ref.stopped)
        assert mine.samples == ref.samples + mine.past_stop
        assert mine.cancelled == ref.cancelled - mine.past_stop
    # a resume reads the rows past the stop as what they are, and asks nothing more
    again = _executor(d, plans, samples, SampleStore.open(tmp_path / "slow.jsonl"), slow).run()
    assert again.generated == 0
    assert again.results == outcome.results
    # killed after round 1's append: the resume asks round 2 only, and ends where the run did
    cut = SampleStore.create(tmp_path / "cut.jsonl", RunMeta())
    kept = [r for r in rows if r.round <= 1]
    cut.append(kept)
    resumed = _executor(d, plans, samples, SampleStore.open(tmp_path / "cut.jsonl"), slow).run()
    assert resumed.reused == len(kept) and resumed.generated == len(rows) - len(kept) > 0
    assert resumed.results == outcome.results
    stored = list(SampleStore.open(tmp_path / "cut.jsonl").load().rows())
    assert sorted((r.query_id, r.sample_index) for r in stored) == sorted(
        (r.query_id, r.sample_index) for r in rows)
