"""One semantics, three implementations: the same plan through (a) the runtime with the replay
backend on a samples table drawn from a simulator workload, (b) the planner's prediction and
(c) the simulator on that workload agree, within sampling error, on accuracy, coverage and
samples spent per query; and on the very sequences the replay served, the simulator's decisions
are the runtime's, query by query. The run's figures are recomputed here from its per-query
results. The table carries the workload's reward-model scores as scorer ``prm`` (best_of_n,
compute_optimal: best-of-n, score-weighted votes, a difficulty over mean scores) and its labels
(oracle_coverage: an offline stop rule on max(correct))."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from tests.paths import REPO
from tests.planner.test_plan_predicts_run import plan_and_run, split
from ttcdsl.lang.api import load_policy
from ttcdsl.simulate import Workload, draw_table, lower

QUERIES, DEPTH, SEEDS = 500, 40, 16


@pytest.fixture(scope="module")
def table():
    return draw_table(Workload(name="builtin"), QUERIES, DEPTH, seed=11)


def simulated(policy, plan, n_queries: int) -> dict[str, tuple[float, float]]:
    from simulator.rollout import simulate

    lowered = lower(policy, plan, n_queries)
    workload = Workload(name="builtin")
    keys = jax.random.split(jax.random.key(5), SEEDS)
    questions = workload.draw(keys, n_queries)
    out = simulate(keys, questions, lowered.arrays, lowered.config)
    figures = {}
    for name, values in (("accuracy", out.correct), ("coverage", out.covered), ("samples", out.samples)):
        per_seed = np.asarray(values, np.float64).mean(1)
        figures[name] = (per_seed.mean(), per_seed.std(ddof=1) / math.sqrt(SEEDS))
    return figures


@pytest.mark.parametrize("name", ["adaptive_consistency", "early_stopping_sc", "self_consistency",
                                  "best_of_n", "compute_optimal", "oracle_coverage"])
def test_runtime_planner_and_simulator_agree(table, name, tmp_path):
    files = split(table, tmp_path)
    policy_path = REPO / "policies" / f"{name}.ttc"
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert not any(r["exhausted"] for r in results), "the replay ran short"
    n = len(results)
    run = {
        "accuracy": np.array([bool(r["correct"]) for r in results], float),
        "coverage": np.array([bool(r["covered"]) for r in results], float),
        "samples": np.array([r["samples"] for r in results], float),
    }
    sim = simulated(load_policy(policy_path), plan, n)
    lines = []
    for metric, se_name in (("accuracy", "accuracy_se"), ("coverage", None), ("samples", "samples_se")):
        a, a_se = run[metric].mean(), run[metric].std(ddof=1) / math.sqrt(n)
        # the plan reports no coverage error: its calibration half is the run's size, so the
        # run's standard error stands in for it
        b, b_se = plan["predicted"][metric], plan["predicted"][se_name] if se_name else a_se
        c, c_se = sim[metric]
        line = (f"{name} {metric}: run {a:.3f} ± {a_se:.3f}, plan {b:.3f} ± {b_se:.3f}, "
                f"simulator {c:.3f} ± {c_se:.4f}")
        lines.append(line)
        for x, x_se, who in ((a, a_se, "run"), (b, b_se, "plan")):
            combined = math.hypot(x_se, c_se)
            assert abs(x - c) <= 3 * combined + 1e-9, f"{who} vs simulator: {line}"
    print("\n".join(lines))
    same_sequences(name, files[1], plan, results)


def replayed_sequences(table, query_ids, length: int, seed: int = 0):
    """Each query's logged samples in the order the replay backend serves them (run seed
    ``seed``), as the simulator's latent sequences: answer ids (``"0"`` is the correct answer),
    lengths (a sample logged as cut is longer than any cap), mean log-probabilities and the
    ``prm`` scores."""
    from simulator.model import Latent
    from ttcdsl.runtime.replay import replay_order

    by_query: dict[str, list[int]] = {}
    for row, qid in enumerate(table.query_id):
        by_query.setdefault(qid, []).append(row)
    answer = np.full((len(query_ids), length), -1, np.int32)
    tokens = np.full((len(query_ids), length), 1e9, np.float32)
    logprob = np.zeros((len(query_ids), length), np.float32)
    score = np.zeros((len(query_ids), length), np.float32)
    indices = np.asarray(table.sample_index)
    lp_column = np.ma.filled(table.mean_logprob.astype(float), np.nan)
    score_column = np.ma.filled(table.scores["prm"].astype(float), np.nan)
    for i, qid in enumerate(query_ids):
        rows = sorted(by_query[qid], key=lambda r: indices[r])
        order = [rows[p] for p in replay_order(seed, qid, [int(indices[r]) for r in rows])][:length]
        for j, r in enumerate(order):
            a = table.answer[r]
            answer[i, j] = -1 if a is None else int(a)
            if table.finish_reason[r] != "length":
                tokens[i, j] = float(table.completion_tokens[r])
            logprob[i, j], score[i, j] = lp_column[r], score_column[r]
    return Latent(answer=answer, length=tokens, score=score, logprob=logprob)


def same_sequences(name: str, evaluation_path, plan: dict, results: list[dict]) -> None:
    """On the very sample sequences the replay served, given the runtime's targets (its
    hash-ranked allocation) and ledger order, the simulator bins, spends and answers exactly as
    the runtime did on every query."""
    from simulator.rollout import run_sequences
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.samples import load

    policy_path = REPO / "policies" / f"{name}.ttc"
    policy = load_policy(policy_path)
    evaluation = load(evaluation_path)
    ids = [r["query_id"] for r in results]
    lowered = lower(policy, plan, len(ids))
    latent = replayed_sequences(evaluation, ids, lowered.config.n_positions)
    n_ids = int(latent.answer.max()) + 1
    targets = np.array([r["target"] for r in results], np.int32)
    order = np.argsort([rank_key(0, q) for q in ids])
    out = run_sequences(jax.random.key(0), latent, n_ids, lowered.arrays, lowered.config, targets, order)
    names = [b.name for b in policy.bins]
    run_bins = np.array([names.index(r["bin"]) for r in results])
    assert np.array_equal(np.asarray(out.bin), run_bins), (
        f"{name}: bins differ on {int((np.asarray(out.bin) != run_bins).sum())} queries")
    run_samples = np.array([r["samples"] for r in results])
    run_correct = np.array([bool(r["correct"]) for r in results])
    assert np.array_equal(np.asarray(out.samples), run_samples), (
        f"{name}: spend differs on {int((np.asarray(out.samples) != run_samples).sum())} queries")
    assert np.array_equal(np.asarray(out.correct), run_correct), (
        f"{name}: correctness differs on {int((np.asarray(out.correct) != run_correct).sum())} queries")


def test_simulator_matches_the_runtime_on_a_binned_policy(table, tmp_path):
    """adaptive_vote: probe, bins by a difficulty key over top_share and mean tokens, a
    confidence-weighted bin, a keep_probe bin, two stop rules and a mean-samples cap the ledger
    enforces. Given the runtime's targets (its hash-ranked allocation) and its ledger order,
    the simulator bins, stops, spends and answers exactly as the runtime did, query by query."""
    from simulator.rollout import run_sequences
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.samples import load

    files = split(table, tmp_path)
    policy_path = REPO / "policies" / "adaptive_vote.ttc"
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    policy = load_policy(policy_path)
    evaluation = load(files[1])
    ids = [r["query_id"] for r in results]
    lowered = lower(policy, plan, len(ids))
    latent = replayed_sequences(evaluation, ids, lowered.config.n_positions)
    names = [b.name for b in policy.bins]
    targets = np.array([r["target"] for r in results], np.int32)
    order = np.argsort([rank_key(0, q) for q in ids])
    out = run_sequences(jax.random.key(0), latent, int(latent.answer.max()) + 1, lowered.arrays,
                        lowered.config, targets, order)
    run_bins = np.array([names.index(r["bin"]) for r in results])
    assert np.array_equal(np.asarray(out.bin), run_bins), f"bins differ on {(np.asarray(out.bin) != run_bins).sum()}"
    run_samples = np.array([r["samples"] for r in results])
    assert any(r["budget_cut"] for r in results), "the mean-samples cap should bind (the ledger's cut)"
    assert np.array_equal(np.asarray(out.samples), run_samples), (
        f"spend differs on {int((np.asarray(out.samples) != run_samples).sum())} queries")
    run_correct = np.array([bool(r["correct"]) for r in results])
    assert np.array_equal(np.asarray(out.correct), run_correct), (
        f"correctness differs on {int((np.asarray(out.correct) != run_correct).sum())} queries")
    print(f"adaptive_vote: {len(ids)} queries, bins {np.bincount(run_bins).tolist()}, "
          f"{int(np.asarray(out.samples).sum())} samples, {sum(r['stopped'] for r in results)} stopped, "
          f"{sum(r['budget_cut'] for r in results)} budget-cut, accuracy {run_correct.mean():.3f}")


def test_simulator_matches_the_runtime_under_a_rounds_cap(table, tmp_path):
    """adaptive_vote with `rounds <= 4`: after the probe, three rounds ask several samples of a
    query at once; the stop rules are still checked at every count (the run cancels the rest of
    a round at its stop point), so on the sequences the replay served the simulator's spend and
    answers are the runtime's, query by query, and some round was cut by a stop."""
    from simulator.rollout import run_sequences
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.samples import load

    files = split(table, tmp_path)
    text = (REPO / "policies" / "adaptive_vote.ttc").read_text()
    capped = text.replace("samples per query in 1..32\n", "samples per query in 1..32\n  rounds <= 4\n")
    assert capped != text
    policy_path = tmp_path / "adaptive_vote_capped.ttc"
    policy_path.write_text(capped)
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert sum(r["cancelled"] for r in results) > 0, "no round was cut at a stop"
    policy = load_policy(policy_path)
    ids = [r["query_id"] for r in results]
    lowered = lower(policy, plan, len(ids))
    latent = replayed_sequences(load(files[1]), ids, lowered.config.n_positions)
    targets = np.array([r["target"] for r in results], np.int32)
    order = np.argsort([rank_key(0, q) for q in ids])
    out = run_sequences(jax.random.key(0), latent, int(latent.answer.max()) + 1, lowered.arrays,
                        lowered.config, targets, order)
    run_samples = np.array([r["samples"] for r in results])
    assert np.array_equal(np.asarray(out.samples), run_samples), (
        f"spend differs on {int((np.asarray(out.samples) != run_samples).sum())} queries")
    run_correct = np.array([bool(r["correct"]) for r in results])
    assert np.array_equal(np.asarray(out.correct), run_correct), (
        f"correctness differs on {int((np.asarray(out.correct) != run_correct).sum())} queries")
