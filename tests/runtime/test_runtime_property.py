"""THE property: over varied policies and tables, replayed end to end through `ttc run`, every
number the run reports and every declared limit is recomputed from the stored ``samples.jsonl``
(and the table and dataset it replayed), independently of the runtime's code, and they agree;
no declared limit is ever exceeded.

Varied: the probe (0..3), a stop rule, two bins by mean tokens or one, batch and per-query
limits on samples and tokens, bin-scoped per-query and mean token caps, prompt tokens charged,
``max_tokens`` cuts, budgets below one sample per query, tables with varied prompt lengths,
missing token counts and fewer logged samples for some queries. A run the runtime refuses must be
one whose probe could break a bin's limit (recomputed here), and it leaves nothing behind."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.runtime.runs import hand_plan, results, run_args, ttc, workload_files, write_policy
from tests.runtime.tables import keep_first, rewrite_rows, stored_samples, vary_prompts
from ttcdsl.lang.diagnostics import DiagnosticError


@st.composite
def scenarios(draw) -> dict:
    probe = draw(st.integers(0, 3))
    return {
        "n": draw(st.integers(4, 14)),
        "m": draw(st.integers(3, 10)),
        "probe": probe,
        "binned": probe > 0 and draw(st.booleans()),
        "stop": draw(st.booleans()),
        "mean_samples": draw(st.sampled_from([0.5, 1, 2.5, 4, 8])),
        "per_query_max": draw(st.integers(1, 12)),
        "per_query_min": draw(st.integers(0, 4)),
        "total_tokens": draw(st.none() | st.integers(2_000, 60_000)),
        "tokens_per_query": draw(st.none() | st.integers(1_000, 12_000)),
        "long_cap": draw(st.none() | st.integers(1_500, 12_000)),
        "long_mean": draw(st.none() | st.integers(1_000, 8_000)),
        "charge_prompt": draw(st.booleans()),
        "max_tokens": draw(st.sampled_from([150, 400, 1000, 4096])),
        "targets": (draw(st.integers(0, 12)), draw(st.integers(0, 12))),
        "vary_prompts": draw(st.booleans()),
        "unknown_share": draw(st.sampled_from([0.0, 0.0, 0.3, 1.0])),
        "short_logs": draw(st.booleans()),
        "seed": draw(st.integers(0, 10_000)),
    }


def _policy(s: dict) -> str:
    lines = ["policy varied \"a generated policy\"", "budget {",
             f"  mean samples per query <= {s['mean_samples']:g}",
             f"  samples per query in {min(s['per_query_min'], s['per_query_max'])}..{s['per_query_max']}"]
    if s["total_tokens"] is not None:
        lines.append(f"  total tokens <= {s['total_tokens']}")
    if s["tokens_per_query"] is not None:
        lines.append(f"  tokens per query <= {s['tokens_per_query']}")
    if s["binned"] and s["long_cap"] is not None:
        lines.append(f"  tokens per query <= {s['long_cap']} for long")
    if s["binned"] and s["long_mean"] is not None:
        lines.append(f"  mean tokens per query <= {s['long_mean']} for long")
    if s["charge_prompt"]:
        lines.append("  charge prompt tokens")
    lines += ["}", f"sampling {{ max_tokens {s['max_tokens']} }}"]
    if s["probe"]:
        lines.append(f"probe {s['probe']} samples")
    if s["binned"]:
        lines += ["feature length = mean(tokens)",
                  "bins by length thresholds [300] as short, long",
                  "strategy short = majority_vote", "strategy long = majority_vote"]
    if s["stop"]:
        lines.append("stop { when unanimous last 2 }")
    lines.append("allocate optimal maximize accuracy")
    return "\n".join(lines) + "\n"


def _table(samples: Path, s: dict) -> None:
    rng = random.Random(s["seed"])
    if s["vary_prompts"]:
        vary_prompts(samples, s["seed"], low=10, high=800)
    if s["unknown_share"]:
        def forget(row: dict) -> dict:
            if rng.random() < s["unknown_share"]:
                row["completion_tokens"] = None
            return row
        rewrite_rows(samples, forget)
    if s["short_logs"]:
        held = {}
        keep_first(samples, lambda q: held.setdefault(q, rng.randint(1, s["m"])))


def _majority(rows: list[dict]) -> tuple[bool, bool]:
    """(correct, covered) by majority vote, recomputed: no answer is wrong."""
    answers = [r["answer"] for r in rows if r["answer"] is not None]
    covered = any(r["correct"] for r in rows)
    if not answers:
        return False, covered
    votes = Counter(answers)
    best = max(votes.values())
    winner = next(a for a in answers if votes[a] == best)  # ties: the first to appear
    label = next(r["correct"] for r in rows if r["answer"] == winner)
    return bool(label), covered


@settings(max_examples=int(os.environ.get("TTC_PROPERTY_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.filter_too_much])
@given(s=scenarios())
def test_every_reported_number_and_limit_recomputed_from_the_samples(tmp_path_factory, s) -> None:
    d = tmp_path_factory.mktemp("varied")
    # targets the planner could choose: a run refuses a plan whose counts its policy forbids
    lo = max(1, s["probe"], min(s["per_query_min"], s["per_query_max"]))
    assume(lo <= s["per_query_max"])
    short, long = (min(max(t, lo), s["per_query_max"]) for t in s["targets"])
    allocation = {"short": [{"samples": short, "share": 1.0}],
                  "long": [{"samples": long, "share": 1.0}],
                  "all": [{"samples": long, "share": 1.0}]}
    try:
        plan = hand_plan(write_policy(d, _policy(s)), allocation,
                         edges=[300] if s["binned"] else None)
    except DiagnosticError:
        assume(False)  # the checker refuses it (an infeasible budget): not the runtime's case
    samples, queries = workload_files(d, n=s["n"], m=s["m"], seed=s["seed"] % 50)
    _table(samples, s)
    table_rows = [json.loads(line) for line in samples.read_text().splitlines()[1:]]
    logged = Counter(r["query_id"] for r in table_rows)
    prompt_max: dict[str, int] = {}
    for r in table_rows:
        prompt_max[r["query_id"]] = max(prompt_max.get(r["query_id"], 0), r["prompt_tokens"])
    out = d / "run"
    code = ttc(*run_args(plan, queries, samples, out, seed=s["seed"]))
    mt, probe, n = s["max_tokens"], s["probe"], s["n"]

    event(f"exit {code}")
    if code == 1 and s["binned"] and s["unknown_share"] == 1.0:
        # refused: the bins' key reads token counts the table does not have (ttcdsl.observables)
        assert not out.exists()
        return
    if code == 1:  # refused: otherwise only for a probe that could break a bin-scoped limit
        worst = probe * (mt + (max(prompt_max.values()) if s["charge_prompt"] else 0))
        caps = [c for c in (s["long_cap"], s["long_mean"]) if c is not None and s["binned"]]
        assert any(worst > c for c in caps), s
        assert not out.exists()
        return
    assert code == 0

    rows = stored_samples(out)
    event("run ended: " + json.loads((out / "report.json").read_text())["end"])
    done = {r["query_id"]: r for r in results(out)}
    report = json.loads((out / "report.json").read_text())
    by_q: dict[str, list[dict]] = {q: [] for q in done}
    for r in rows:
        by_q[r["query_id"]].append(r)

    def billed(r: dict) -> int:  # the worst case of an unknown count, the count where known
        tokens = mt if r["completion_tokens"] is None else r["completion_tokens"]
        if s["charge_prompt"]:
            tokens += prompt_max[r["query_id"]] if r["prompt_tokens"] is None else r["prompt_tokens"]
        return tokens

    q_samples = {q: len(v) for q, v in by_q.items()}
    q_billed = {q: sum(billed(r) for r in v) for q, v in by_q.items()}
    long = [q for q, r in done.items() if r["bin"] == "long"]

    # ---- no declared limit is exceeded
    assert sum(q_samples.values()) <= s["mean_samples"] * n + 1e-9
    assert max(q_samples.values()) <= s["per_query_max"]
    if s["total_tokens"] is not None:
        assert sum(q_billed.values()) <= s["total_tokens"]
    if s["tokens_per_query"] is not None:
        assert max(q_billed.values()) <= s["tokens_per_query"]
    if s["binned"] and s["long_cap"] is not None and long:
        assert max(q_billed[q] for q in long) <= s["long_cap"]
    if s["binned"] and s["long_mean"] is not None and long:
        assert sum(q_billed[q] for q in long) <= s["long_mean"] * len(long)
    assert all(limit["within"] for limit in report["budget"])
    # never more samples than the table holds, never a sample twice
    for q, v in by_q.items():
        assert len(v) <= logged[q]
        assert sorted(r["sample_index"] for r in v) == list(range(len(v)))
    # a stop rule never retires a query below the probe or the per-query minimum
    first = max(1, probe, min(s["per_query_min"], s["per_query_max"]))
    assert all(q_samples[q] >= first for q, r in done.items() if r["stopped"])

    # ---- the report's numbers
    outcomes = {q: _majority(v) for q, v in by_q.items()}
    assert report["accuracy_over"] == n
    assert abs(report["accuracy"] - sum(c for c, _ in outcomes.values()) / n) < 1e-12
    assert abs(report["coverage"] - sum(c for _, c in outcomes.values()) / n) < 1e-12
    spend = report["spend"]
    assert spend["samples"] == len(rows)
    assert spend["billed_tokens"] == sum(q_billed.values())
    unknown = [r for r in rows
               if r["completion_tokens"] is None or (s["charge_prompt"] and r["prompt_tokens"] is None)]
    assert spend["tokens_unknown_samples"] == len(unknown)
    if unknown:
        assert spend["tokens"] is None and spend["tokens_note"]
    else:
        assert spend["tokens"] == spend["billed_tokens"]
    for limit in report["budget"]:
        if limit["unit"] == "tokens":
            covered = long if " in long" in limit["label"] else list(done)
            assert (limit["basis"] == "measured") == (not any(
                r in unknown for q in covered for r in by_q[q])), limit
    # stop savings: only samples the table holds
    assert report["stop_savings"]["samples_saved"] == sum(
        max(0, min(r["target"] or 0, logged[q]) - q_samples[q])
        for q, r in done.items() if r["stopped"]
    )
    # the baseline: at equal spend in the budget's unit (ttcdsl.equal_spend)
    base = report["baseline"]
    token_limits = s["total_tokens"] is not None  # a batch budget of tokens (a cap per query or bin is not)
    assert base["budget_unit"] == ("tokens" if token_limits else "samples")
    if base["matched"] == "samples":
        # the run's samples, exactly (the table always holds them); under a token budget only
        # when some token count is unknown, and then it says so
        assert base["samples"] == len(rows) and base["equal_spend"]
        assert not token_limits or (
            (spend["tokens"] is None or base["tokens"] in (None, 0)) and "NOT its tokens" in base["how"])
    else:
        # the samples that bill the run's measured tokens, drawn as far as the table holds them
        assert token_limits and spend["tokens"] is not None
        assert base["samples"] <= base["target_samples"]
        assert base["equal_spend"] == (base["samples"] == base["target_samples"])
        assert f"bill the run's {spend['tokens']} tokens" in base["how"]
    assert report["verdict"]["text"].startswith(("better", "no better", "worse"))
