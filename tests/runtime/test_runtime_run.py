"""`ttc run` end to end with replay: the run directory, refused inputs (one clear message, exit 1,
no directory left), assignment of bins and targets, and aggregation as the planner simulates it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.runtime.runs import (
    ADAPTIVE,
    hand_plan,
    results,
    run_args,
    sample_keys,
    ttc,
    workload_files,
    write_policy,
)
from ttcdsl.lang import ir
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.runtime.assignment import assign_bins, assign_targets
from ttcdsl.samples import SampleRow


@pytest.fixture
def inputs(tmp_path):
    policy = write_policy(tmp_path)
    plan = hand_plan(policy)
    samples, queries = workload_files(tmp_path, n=30, m=16)
    return tmp_path, policy, plan, samples, queries


def test_a_run_writes_its_directory(inputs) -> None:
    d, policy, plan, samples, queries = inputs
    out = d / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=3)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".ttc-lock", "manifest.json", "plan.yaml", "policy.ttc", "report.json", "results.jsonl",
        "samples.jsonl",
    ]
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == []  # no leftovers
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["backend"]["name"] == "replay"
    assert manifest["backend"]["table_sha256"].startswith("ttc-samples-v1:sha256:")
    assert (out / "plan.yaml").read_bytes() == plan.read_bytes()
    keys = sample_keys(out)
    assert len(keys) == len(set(keys))
    rows = results(out)
    assert len(rows) == 30
    for r in rows:
        assert r["samples"] <= r["target"]
        assert r["samples"] >= 2  # the probe
        # a query either reached its target, or a stop rule retired it
        assert r["samples"] == r["target"] or r["stopped"]
    report = json.loads((out / "report.json").read_text())
    assert report["spend"]["samples"] == len(keys)
    assert report["baseline"]["samples"] == len(keys)
    assert report["stop_savings"]["samples_saved"] == sum(
        r["target"] - r["samples"] for r in rows if r["stopped"]
    )
    assert ttc("report", str(out)) == 0


def test_samples_carry_round_and_seed(inputs) -> None:
    from ttcdsl.runtime import sample_seed

    d, policy, plan, samples, queries = inputs
    out = d / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=3)) == 0
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()[1:]]
    assert {r["round"] for r in lines if r["sample_index"] < 2} == {0}
    assert all(r["seed"] == sample_seed(3, r["query_id"], r["sample_index"]) for r in lines)
    # after the probe, a bin with a stop rule gets one sample per round
    later = [r for r in lines if r["sample_index"] >= 2]
    per_round = {}
    for r in later:
        per_round.setdefault((r["query_id"], r["round"]), 0)
        per_round[(r["query_id"], r["round"])] += 1
    assert set(per_round.values()) == {1}


def _refused(capsys, out, *args, message: str) -> None:
    assert ttc(*args) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_refused_inputs_leave_nothing_behind(inputs, capsys) -> None:
    d, policy, plan, samples, queries = inputs
    out = d / "run"
    args = run_args(plan, queries, samples, out)
    _refused(capsys, out, *args, "--backend", "nope", message="unknown backend 'nope'")
    _refused(capsys, out, *args, "--backend", "vllm", message="--samples is a replay table")
    _refused(capsys, out, *run_args(plan, d / "none.jsonl", samples, out), message="no such dataset")
    _refused(capsys, out, *run_args(plan, queries, d / "none.jsonl", out), message="no such samples")
    _refused(capsys, out, *run_args(d / "none.yaml", queries, samples, out), message="no such plan")
    # dataset ids the replay table does not hold
    extra = d / "more.jsonl"
    extra.write_text(queries.read_text() + json.dumps(
        {"id": "ghost-1", "kind": "math", "prompt": "?", "gold": "1"}) + "\n")
    _refused(capsys, out, *run_args(plan, extra, samples, out), message="1 of 31 queries")
    # a plan that fails validation
    bad = d / "bad.yaml"
    data = yaml.safe_load(plan.read_text())
    data["bins"][0]["allocation"][0]["share"] = 0.9
    bad.write_text(yaml.safe_dump(data))
    _refused(capsys, out, *run_args(bad, queries, samples, out), message="shares sum to")
    # the policy changed since the plan was made
    policy.write_text(ADAPTIVE.replace("last 3", "last 4"))
    _refused(capsys, out, *args, message="another version of the policy")


def test_a_plan_whose_mode_is_not_the_policys_is_refused(inputs, capsys) -> None:
    d, policy, plan, samples, queries = inputs
    data = yaml.safe_load(plan.read_text())
    data["mode"] = "bandit"
    plan.write_text(yaml.safe_dump(data))
    _refused(capsys, d / "run", *run_args(plan, queries, samples, d / "run"),
             message="field 'mode': the plan says 'bandit', but the policy says 'optimal'")


def test_an_existing_run_directory_is_not_overwritten(inputs, capsys) -> None:
    d, policy, plan, samples, queries = inputs
    out = d / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    assert ttc(*run_args(plan, queries, samples, out)) == 1
    assert "already exists" in capsys.readouterr().err


# ------------------------------------------------------------------------ assignment


def test_bins_put_a_key_on_an_edge_in_the_upper_bin() -> None:
    key = np.array([0.1, 0.5, 0.75, 0.9, np.nan])
    assert assign_bins(key, [0.5, 0.75], 3).tolist() == [0, 1, 2, 2, 2]


def test_targets_follow_the_shares_and_never_cost_more_than_the_plan() -> None:
    ids = [f"q{i}" for i in range(7)]
    options = [{"samples": 4, "share": 0.5}, {"samples": 10, "share": 0.5}]
    targets = assign_targets(options, ids, seed=1)
    assert sorted(targets.values()) == [4, 4, 4, 4, 10, 10, 10]  # 3 = floor(3.5) get 10
    assert sum(targets.values()) <= 7 * 7
    assert assign_targets(options, list(reversed(ids)), seed=1) == targets
    by_seed = {tuple(sorted(q for q, t in assign_targets(options, ids, seed=s).items() if t == 10))
               for s in range(6)}
    assert len(by_seed) > 1


# ------------------------------------------------------------------------ aggregation


def _rows(answers, scores=None, correct=None):
    return [
        SampleRow(query_id="q", sample_index=i, answer=a,
                  mean_logprob=None if scores is None else scores[i],
                  correct=None if correct is None else correct[i])
        for i, a in enumerate(answers)
    ]


CONF = (ir.Scorer(name="conf", kind="confidence", model=None, span=None),)


def test_majority_vote_ties_go_to_the_first_answer_and_no_answer_never_votes() -> None:
    strategy = ir.Strategy(kind="majority_vote")
    assert aggregate(strategy, _rows(["b", "a", "a", "b", None, None, None])).answer == "b"
    assert aggregate(strategy, _rows([None, None])).answer is None
    assert aggregate(ir.Strategy(kind="keep_probe"), _rows(["a", "b", "b", "b"]), probe=2).answer == "a"
    assert aggregate(ir.Strategy(kind="single"), _rows([None, "a"])).answer is None


def test_scored_strategies() -> None:
    best = ir.Strategy(kind="best_of_n", scorer="conf")
    rows = _rows(["a", None, "b", "c"], scores=[-0.5, -0.1, -0.2, -0.2])
    assert aggregate(best, rows, scorers=CONF).answer == "b"  # no-answer never wins; ties earliest
    weighted = ir.Strategy(kind="weighted_vote", scorer="conf")
    rows = _rows(["b", "a", "a", "b"], scores=[-1.0, -1.0, -1.0, -1.0])
    assert aggregate(weighted, rows, scorers=CONF).answer == "b"  # 2/e ties 2/e: first seen
    # A vote weighs exp(mean logprob) > 0, so every extra vote adds: three '42' at -0.2 (2.46)
    # beat one '7' at -0.5 (0.61). Summing raw log-probabilities (-0.6 < -0.5) chose '7'.
    rows = _rows(["7", "42", "42", "42"], scores=[-0.5, -0.2, -0.2, -0.2])
    assert aggregate(weighted, rows, scorers=CONF).answer == "42"
    rows = _rows(["7", "42"], scores=[-0.5, -0.2])
    assert aggregate(weighted, rows, scorers=CONF).answer == "42"  # the surer sample wins


def test_aggregation_agrees_with_the_planners_simulation() -> None:
    """Random small cases against ttcdsl.curves.montecarlo.outcome (the planner's rules)."""
    import jax.numpy as jnp

    from ttcdsl.curves.montecarlo import outcome
    from ttcdsl.features.weights import vote_weights

    rng = np.random.default_rng(0)
    for _ in range(150):
        k = int(rng.integers(1, 7))
        answer = rng.integers(-1, 3, size=k)
        # mean log-probabilities: never positive (the samples schema refuses one)
        score = np.where(rng.random(k) < 0.2, np.nan, rng.integers(-5, 1, size=k).astype(float))
        answer_correct = rng.random(3) < 0.5
        correct = np.where(answer >= 0, answer_correct[np.maximum(answer, 0)], False)
        rows = [
            SampleRow(query_id="q", sample_index=i,
                      answer=None if a < 0 else str(a),
                      mean_logprob=None if np.isnan(s) else float(s), correct=bool(c))
            for i, (a, s, c) in enumerate(zip(answer, score, correct))
        ]
        for kind in ("majority_vote", "best_of_n", "weighted_vote", "single"):
            mine = aggregate(ir.Strategy(kind=kind, scorer=None if kind in ("majority_vote", "single") else "conf"),
                             rows, scorers=CONF)
            # the simulation's weighted vote adds vote weights (the shared rule), not raw scores
            value = vote_weights("confidence", score) if kind == "weighted_vote" else score
            theirs = bool(outcome(
                kind, jnp.ones(k, bool), jnp.arange(k).astype(jnp.float32), jnp.asarray(answer),
                jnp.asarray(value), jnp.asarray(correct), jnp.asarray(answer_correct),
            ))
            assert bool(mine.correct) == theirs, (kind, answer, score)


def test_force_replaces_a_run_directory_and_nothing_else(inputs, capsys) -> None:
    d, policy, plan, samples, queries = inputs
    out = d / "forced"
    assert ttc(*run_args(plan, queries, samples, out, seed=1)) == 0
    first = results(out)
    assert ttc(*run_args(plan, queries, samples, out, seed=2), "--force") == 0
    assert results(out) != first  # another seed: the old run is gone, not mixed in
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    other = d / "not_a_run"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert ttc(*run_args(plan, queries, samples, other), "--force") == 1
    assert "not a run directory" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "keep me"
    assert ttc("run", "--resume", str(out), "--force") == 1


def test_replaying_the_plans_own_calibration_table_is_said_to_be_in_sample(tmp_path, capsys) -> None:
    """A plan replayed on the table it was made on reported "+10 points, better than uniform"
    where held-out queries gave "+4, no better", without a word that it was in-sample."""
    from tests.paths import REPO

    samples, queries = workload_files(tmp_path, n=40, m=12)
    plan = tmp_path / "p.yaml"
    assert ttc("plan", str(REPO / "policies" / "adaptive_vote.ttc"), "-c", str(samples), "-o",
               str(plan), "--reps", "4") == 0
    capsys.readouterr()
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run")) == 0
    assert "is the table the plan was made on" in capsys.readouterr().err
    (tmp_path / "held_out").mkdir()
    other, other_queries = workload_files(tmp_path / "held_out", n=40, m=12, seed=3)
    assert ttc(*run_args(plan, other_queries, other, tmp_path / "run2")) == 0
    assert "is the table the plan was made on" not in capsys.readouterr().err


def test_a_queries_file_without_gold_is_said_to_leave_the_labels_to_the_table(tmp_path, capsys) -> None:
    """Replay scored queries whose gold was null (or different) in the queries file by the
    table's labels, without a word."""
    samples, queries = workload_files(tmp_path, n=12, m=8)
    rows = [json.loads(line) for line in queries.read_text().splitlines()]
    for row in rows[:5]:
        row["gold"] = None
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy = write_policy(tmp_path, ADAPTIVE)
    plan = hand_plan(policy, {b: [{"samples": 4, "share": 1.0}] for b in ("split", "agree")})
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run")) == 0
    assert "5 queries of" in capsys.readouterr().err


def test_a_table_shallower_than_the_probe_is_said_before_the_run(tmp_path, capsys) -> None:
    """A table of 1 sample per query under a probe of 2 ran with no word before it; the queries
    were binned on a 1-sample probe, which only a shortfall after the run hinted at."""
    samples, queries = workload_files(tmp_path, n=12, m=1)
    policy = write_policy(tmp_path, ADAPTIVE)
    plan = hand_plan(policy, {b: [{"samples": 4, "share": 1.0}] for b in ("split", "agree")})
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run")) == 0
    err = capsys.readouterr().err
    assert "12 of 12 queries hold fewer samples" in err and "probe of 2" in err, err
    (tmp_path / "deep").mkdir()
    deep, deep_queries = workload_files(tmp_path / "deep", n=12, m=8)
    assert ttc(*run_args(plan, deep_queries, deep, tmp_path / "run2")) == 0
    assert "fewer samples" not in capsys.readouterr().err


def test_a_resume_whose_table_moved_is_told_to_name_it(tmp_path, capsys) -> None:
    samples, queries = workload_files(tmp_path, n=8, m=8)
    policy = write_policy(tmp_path, ADAPTIVE)
    plan = hand_plan(policy, {b: [{"samples": 4, "share": 1.0}] for b in ("split", "agree")})
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    moved = samples.rename(tmp_path / "moved.jsonl")
    capsys.readouterr()
    assert ttc("run", "--resume", str(out), "--quiet") == 1
    assert "pass --samples NEW_PATH" in capsys.readouterr().err
    assert ttc("run", "--resume", str(out), "--samples", str(moved), "--quiet") == 0


def test_a_plan_for_another_batch_size_is_warned_about_when_its_limits_are_totals(tmp_path, capsys) -> None:
    """A batch-wide limit is shared by the run's queries: a plan made for 20 queries and run on
    40 ran out halfway and cut queries short, with no word of why its prediction failed."""
    policy = write_policy(tmp_path, ADAPTIVE.replace(
        "mean samples per query <= 6", "total samples <= 120"), name="totals.ttc")
    samples, queries = workload_files(tmp_path, n=40, m=16)
    for batch, warned in ((20, True), (40, False)):
        plan = tmp_path / f"plan{batch}.yaml"
        assert ttc("plan", str(policy), "--calibration", str(samples), "-o", str(plan),
                   "--queries", str(batch), "--force") == 0
        capsys.readouterr()
        assert ttc(*run_args(plan, queries, samples, tmp_path / f"run{batch}")) == 0
        err = capsys.readouterr().err
        said = "the plan was made for a batch of 20 queries" in err
        assert said == warned, err
        if warned:
            assert "total samples <= 120" in err and "plan with --queries 40" in err
