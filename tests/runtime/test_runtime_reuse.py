"""The live baseline's backend wrapper on replay (no engine): served through the run's own
samples, the uniform baseline is exactly the one replay computes directly, only the samples the
run did not draw (or drew with other sampling parameters) are asked of the inner backend, and a
second pass over the stored extra samples asks for nothing. (On the real engine: tests/live.)"""

from __future__ import annotations

import pytest

from tests.runtime.runs import ADAPTIVE, hand_plan, workload_files, write_policy
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.plan import load_plan
from ttcdsl.runtime.backend import BackendError, sample_seed
from ttcdsl.runtime.executor import RunSpec
from ttcdsl.runtime.executors import executor_for
from ttcdsl.runtime.replay import ReplayBackend
from ttcdsl.runtime.report import uniform_baseline, uniform_shares
from ttcdsl.runtime.reuse import ReuseBackend, missing_runs
from ttcdsl.samples import RunMeta, SampleStore, load

SEED = 7

# The executor tests' adaptive policy, its `split` bin sampling hotter than the global
# parameters: the split queries' samples after the probe are NOT the uniform baseline's.
HOT_SPLIT = ADAPTIVE.replace(
    "probe 2 samples", "probe 2 samples\nsampling split { temperature 1.0 }"
)


class Counting:
    """A backend that counts the samples it returned, by (query, index)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.served: list[tuple[str, int]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests):
        results = self.inner.generate(requests)
        self.served += [(r.query_id, s.sample_index) for r in results for s in r.samples]
        return results


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory):
    """The policy's run on a 24 x 16 built-in workload, its executor (finished), the table."""
    d = tmp_path_factory.mktemp("reuse")
    policy_path = write_policy(d, HOT_SPLIT)
    plan_path = hand_plan(policy_path)
    samples, queries = workload_files(d, n=24, m=16)
    from ttcdsl.datasets import read_queries

    dataset = read_queries(queries)
    policy, plan, table = load_policy(policy_path), load_plan(plan_path), load(samples)
    spec = RunSpec(policy=policy, plan=plan, query_ids=dataset.ids(),
                   prompts={q.id: "" for q in dataset}, seed=SEED)
    store = SampleStore.create(d / "run.jsonl", RunMeta(seed=SEED))
    executor = executor_for(spec, ReplayBackend(table, seed=SEED), store)
    outcome = executor.run()
    return d, policy, executor, outcome, table, dataset.ids()


def test_missing_runs() -> None:
    held = {0: None, 1: None, 4: None, 6: None}
    assert missing_runs(range(0, 8), held) == [(2, 4), (5, 6), (7, 8)]
    assert missing_runs(range(2, 4), held) == [(2, 4)]
    assert missing_runs(range(0, 2), held) == []


def test_the_wrapped_baseline_is_replays_own_and_asks_only_for_the_missing(replay_run) -> None:
    d, policy, executor, outcome, table, ids = replay_run
    spend = sum(r.samples for r in outcome.results)
    direct = uniform_baseline(ReplayBackend(table, seed=SEED), policy, ids, spend, SEED)

    held = executor.rows_drawn_with(policy.sampling)
    # the filter: every agree query's samples, only the probe of a split query
    bins = {r.query_id: r.bin for r in outcome.results}
    assert {r.bin for r in outcome.results} == {"split", "agree"}
    for r in outcome.results:
        kept = [row.sample_index for row in held[r.query_id]]
        assert kept == list(range(r.samples if r.bin == "agree" else min(2, r.samples)))

    inner = Counting(ReplayBackend(table, seed=SEED))
    store = SampleStore.create(d / "baseline.jsonl", RunMeta(seed=SEED))
    wrapper = ReuseBackend(inner, [row for rows in held.values() for row in rows], store=store)
    shares = uniform_shares(ids, spend, SEED)
    # recomputed here: a query's wanted indices the run did not draw with the global parameters
    expected = sorted(
        (q, i) for q in ids for i in range(shares[q])
        if not (bins[q] == "agree" and i < len(held[q])) and not (bins[q] == "split" and i < 2)
    )
    assert wrapper.missing(shares) == len(expected) > 0
    wrapped = uniform_baseline(wrapper, policy, ids, spend, SEED)
    assert wrapped == direct
    assert sorted(inner.served) == expected
    assert wrapper.generated == len(expected)
    assert wrapper.reused == spend - len(expected)
    stored = list(store.load().rows())
    assert sorted((r.query_id, r.sample_index) for r in stored) == expected
    assert all(r.seed == sample_seed(SEED, r.query_id, r.sample_index) for r in stored)

    # a second pass over the run's rows and the stored ones (a resumed baseline) asks for nothing
    again = Counting(ReplayBackend(table, seed=SEED))
    resumed = ReuseBackend(again, [*(row for rows in held.values() for row in rows), *stored])
    assert resumed.missing(shares) == 0
    assert uniform_baseline(resumed, policy, ids, spend, SEED) == direct
    assert again.served == [] and resumed.generated == 0


def test_a_held_sample_of_another_seed_is_refused(replay_run) -> None:
    d, policy, executor, outcome, table, ids = replay_run
    held = executor.rows_drawn_with(policy.sampling)
    wrapper = ReuseBackend(ReplayBackend(table, seed=SEED + 1),
                           [row for rows in held.values() for row in rows])
    with pytest.raises(BackendError, match="another run's sample"):
        uniform_baseline(wrapper, policy, ids, 48, SEED + 1)
