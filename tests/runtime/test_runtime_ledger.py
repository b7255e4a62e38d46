"""The budget ledger: a round's worst case always fits, water-filling keeps the queries furthest
behind, and whole runs (a random-token fake backend, and replay) never exceed any limit."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ttcdsl.lang import ir
from ttcdsl.lang.api import parse_policy
from ttcdsl.runtime.backend import BackendCapabilities, GeneratedSample, GenerationResult
from ttcdsl.runtime.executor import Executor, RunSpec
from ttcdsl.runtime.ledger import Ask, Ledger, Limit
from ttcdsl.samples import RunMeta, SampleStore
from tests.runtime.runs import hand_plan, results, run_args, ttc, workload_files, write_policy


def _limits(draw_caps) -> list[Limit]:
    s_mean, t_total, s_q, t_q = draw_caps
    return [
        Limit(label="s", kind="batch", unit="samples", cap=s_mean),
        Limit(label="t", kind="batch", unit="tokens", cap=t_total),
        Limit(label="sq", kind="per_query", unit="samples", cap=s_q),
        Limit(label="tq", kind="per_query", unit="tokens", cap=t_q),
    ]


@settings(max_examples=150, deadline=None)
@given(
    caps=st.tuples(
        st.integers(0, 200), st.integers(0, 40_000), st.integers(0, 20), st.integers(0, 8_000)
    ),
    targets=st.lists(st.integers(0, 20), min_size=1, max_size=12),
    max_tokens=st.lists(st.integers(1, 1500), min_size=12, max_size=12),
    seed=st.integers(0, 2**32),
)
def test_rounds_never_exceed_any_limit(caps, targets, max_tokens, seed) -> None:
    """Random plans (targets, steps) and random actual token counts, round after round."""
    rng = random.Random(seed)
    qids = [f"q{i}" for i in range(len(targets))]
    ledger = Ledger(_limits(caps), qids)
    have = {q: 0 for q in qids}
    for _ in range(30):
        asks = [
            Ask(query_id=q, n=min(rng.randint(1, 4), t - have[q]), max_tokens=max_tokens[i],
                have=have[q], rank=i)
            for i, (q, t) in enumerate(zip(qids, targets))
            if t > have[q]
        ]
        if not asks:
            break
        granted = ledger.fit(asks)
        assert all(0 <= g <= a.n for a, g in zip(asks, granted))
        if not any(granted):
            break
        for a, g in zip(asks, granted):
            for _ in range(g):
                ledger.charge(a.query_id, 1, rng.randint(0, a.max_tokens))
            have[a.query_id] += g
        for limit in ledger.summary():
            held = limit["spent"] if limit["kind"] == "batch" else limit["largest"]
            assert held <= limit["cap"] and limit["within"], limit
            assert limit["largest"] <= held, limit  # one query never spends more than all


def test_a_round_that_fits_runs_whole() -> None:
    ledger = Ledger([Limit(label="s", kind="batch", unit="samples", cap=10)], ["a", "b"])
    asks = [Ask(query_id="a", n=4, max_tokens=10), Ask(query_id="b", n=6, max_tokens=10)]
    assert ledger.fit(asks) == [4, 6]


def test_a_cut_round_feeds_the_queries_furthest_behind() -> None:
    ledger = Ledger([Limit(label="s", kind="batch", unit="samples", cap=6)], ["a", "b", "c"])
    asks = [
        Ask(query_id="a", n=5, max_tokens=1, have=6, rank=0),
        Ask(query_id="b", n=5, max_tokens=1, have=2, rank=1),
        Ask(query_id="c", n=5, max_tokens=1, have=3, rank=2),
    ]
    # grants by (level, rank): b@2, b@3 (ties c, lower rank), c@3, b@4, c@4, b@5; a@6 never
    assert ledger.fit(asks) == [0, 4, 2]


def test_a_too_expensive_query_leaves_room_for_cheaper_ones() -> None:
    ledger = Ledger([Limit(label="t", kind="batch", unit="tokens", cap=1000)], ["a", "b"])
    asks = [Ask(query_id="a", n=1, max_tokens=2000), Ask(query_id="b", n=3, max_tokens=300, rank=1)]
    assert ledger.fit(asks) == [0, 3]


class RandomTokens:
    """A fake backend (test double for the ledger only): fresh random token counts up to
    max_tokens, answers from a few labels, never short."""

    name = "fake"
    model = None
    capabilities = BackendCapabilities(logprobs=True, prompt_tokens=True, deterministic=True)

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def generate(self, requests):
        out = []
        for r in requests:
            samples = tuple(
                GeneratedSample(
                    sample_index=i, answer=self.rng.choice(["1", "2", "3", None]),
                    correct=self.rng.random() < 0.5,
                    completion_tokens=self.rng.randint(1, r.max_tokens),
                    prompt_tokens=self.rng.randint(5, 50), mean_logprob=-self.rng.random(),
                )
                for i in r.sample_indices
            )
            out.append(GenerationResult(query_id=r.query_id, samples=samples))
        return out

    def close(self) -> None:
        pass


POLICY = """\
policy tight "a token budget that binds"
budget {{
  total tokens <= {total}
  charge prompt tokens
  samples per query in 1..{cap}
  tokens per query <= {per_query}
}}
sampling {{ max_tokens 300 }}
probe 2 samples
feature agreement = top_share(answers)
bins by agreement thresholds [0.75] as split, agree
strategy split = majority_vote
strategy agree = majority_vote
stop {{ when unanimous last 2 }}
allocate optimal maximize accuracy
"""


@settings(max_examples=25, deadline=None)
@given(
    total=st.integers(500, 40_000),
    per_query=st.integers(400, 5_000),
    cap=st.integers(2, 12),
    big=st.integers(2, 12),
    small=st.integers(2, 12),
    seed=st.integers(0, 1000),
)
def test_whole_runs_never_exceed_the_budget(tmp_path_factory, total, per_query, cap, big, small, seed):
    d = tmp_path_factory.mktemp("tight")
    text = POLICY.format(total=total, per_query=per_query, cap=cap)
    policy_path = write_policy(d, text)
    plan_path = hand_plan(
        policy_path,
        {"split": [{"samples": max(big, small), "share": 0.5}, {"samples": min(big, small), "share": 0.5}],
         "agree": [{"samples": small, "share": 1.0}]},
    )
    from ttcdsl.planner.plan import load_plan

    policy = parse_policy(text)
    qids = tuple(f"q{i}" for i in range(15))
    spec = RunSpec(policy=policy, plan=load_plan(plan_path), query_ids=qids,
                   prompts={}, seed=seed, prompt_bounds={q: 50 for q in qids})
    store = SampleStore.create(d / "samples.jsonl", RunMeta())
    outcome = Executor(spec, RandomTokens(seed), store).run()
    rows = list(store.load().rows())
    spent = sum(r.completion_tokens + r.prompt_tokens for r in rows)
    assert spent <= total
    for q in qids:
        mine = [r for r in rows if r.query_id == q]
        assert len(mine) <= cap
        assert sum(r.completion_tokens + r.prompt_tokens for r in mine) <= per_query
    assert sum(r.samples for r in outcome.results) == len(rows)


def test_replay_run_under_a_binding_token_budget(tmp_path) -> None:
    """The same guarantee end to end through `ttc run` with the replay backend."""
    text = POLICY.format(total=60_000, per_query=6_000, cap=10).replace("max_tokens 300", "max_tokens 4096")
    policy = write_policy(tmp_path, text)
    plan = hand_plan(
        policy,
        {"split": [{"samples": 10, "share": 1.0}], "agree": [{"samples": 6, "share": 1.0}]},
    )
    samples, queries = workload_files(tmp_path, n=30, m=16)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()[1:]]
    assert sum(r["completion_tokens"] + r["prompt_tokens"] for r in rows) <= 60_000
    report = json.loads((out / "report.json").read_text())
    assert report["end"] == "budget" and report["budget_cut_queries"] > 0
    assert all(limit["within"] for limit in report["budget"])
    assert sum(r["samples"] for r in results(out)) == len(rows)
