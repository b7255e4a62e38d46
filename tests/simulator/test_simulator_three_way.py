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
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.paths import REPO
from tests.policy_texts import entropy_bandit
from tests.planner.test_plan_predicts_run import plan_and_run, split
from ttcdsl.lang.api import load_policy
from ttcdsl.simulate import Workload, draw_table, lower, lower_bandit

QUERIES, DEPTH, SEEDS = 500, 40, 16


@pytest.fixture(scope="module")
def table():
    # A plan spends up to its budget in expectation, so whether the evaluation half's run exceeds
    # it (and the ledger has to cut) is a coin flip per table: this seed's does for every
    # policy that must exercise the cut (the tests assert it, so a change that stops it fails)
    return draw_table(Workload(name="builtin"), QUERIES, DEPTH, seed=12)


def simulated(policy, plan, n_queries: int) -> dict[str, tuple[float, float]]:
    from simulator.rollout import simulate

    lowered = lower(policy, plan, n_queries)
    workload = Workload(name="builtin")
    keys = jax.random.split(jax.random.key(5), SEEDS)
    questions = workload.draw(keys, n_queries)
    out = simulate(keys, questions, lowered.arrays, lowered.config)
    figures = {}
    for name, values in (("accuracy", out.correct), ("coverage", out.covered), ("samples", out.samples),
                         ("tokens", out.tokens)):
        per_seed = np.asarray(values, np.float64).mean(1)
        figures[name] = (per_seed.mean(), per_seed.std(ddof=1) / math.sqrt(SEEDS))
    return figures


@pytest.mark.parametrize("name", ["adaptive_consistency", "early_stopping_sc", "self_consistency",
                                  "best_of_n", "compute_optimal", "oracle_coverage", "per_query_vote"])
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
    same_sequences(policy_path, files[1], plan, results)


def replayed_sequences(table, query_ids, length: int, seed: int = 0, *, by_label: bool = False):
    """Each query's logged samples in the order the replay backend serves them (run seed
    ``seed``), as the simulator's latent sequences: answer ids (``"0"`` is the correct answer;
    ``by_label``: a logged pool's answers, id 0 for the answer labelled correct and 1, 2, ... for
    the others as first served), lengths (a sample logged as cut is longer than any cap), mean
    log-probabilities and the ``prm`` scores (NaN where the table has none)."""
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
    score_column = (np.ma.filled(table.scores["prm"].astype(float), np.nan) if "prm" in table.scores
                    else np.full(len(table.query_id), np.nan))
    labels = np.ma.filled(np.ma.MaskedArray(table.correct).astype(float), np.nan)
    for i, qid in enumerate(query_ids):
        rows = sorted(by_query[qid], key=lambda r: indices[r])
        order = [rows[p] for p in replay_order(seed, qid, [int(indices[r]) for r in rows])][:length]
        names: dict[str, int] = {}
        for j, r in enumerate(order):
            a = table.answer[r]
            if a is None:
                answer[i, j] = -1
            elif by_label:
                answer[i, j] = 0 if labels[r] == 1 else names.setdefault(a, len(names) + 1)
            else:
                answer[i, j] = int(a)
            if table.finish_reason[r] != "length":
                tokens[i, j] = float(table.completion_tokens[r])
            logprob[i, j], score[i, j] = lp_column[r], score_column[r]
    return Latent(answer=answer, length=tokens, score=score, logprob=logprob)


def prompt_bounds(table, query_ids) -> np.ndarray:
    """Each query's largest logged prompt token count (the bound ttc run gives the replay)."""
    counts = np.ma.filled(np.ma.MaskedArray(table.prompt_tokens).astype(float), np.nan)
    ids = np.asarray(table.query_id, dtype=object)
    return np.array([int(np.nanmax(counts[ids == q])) for q in query_ids], np.int32)


def same_sequences(policy_path, evaluation_path, plan: dict, results: list[dict], *, by_label: bool = False):
    """On the very sample sequences the replay served, given the runtime's targets (its
    hash-ranked allocation) and ledger order, the simulator bins, spends (samples and billed
    tokens) and answers exactly as the runtime did on every query. Returns the simulator's
    outcome."""
    from simulator.rollout import run_sequences
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.samples import load

    name = policy_path.stem
    policy = load_policy(policy_path)
    evaluation = load(evaluation_path)
    ids = [r["query_id"] for r in results]
    lowered = lower(policy, plan, len(ids))
    latent = replayed_sequences(evaluation, ids, lowered.config.n_positions, by_label=by_label)
    n_ids = int(latent.answer.max()) + 1
    targets = np.array([r["target"] for r in results], np.int32)
    order = np.argsort([rank_key(0, q) for q in ids])
    prompt = prompt_bounds(evaluation, ids) if policy.budget.charge_prompt_tokens else None
    out = run_sequences(jax.random.key(0), latent, n_ids, lowered.arrays, lowered.config, targets, order,
                        prompt)
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
    run_tokens = np.array([r["billed_tokens"] for r in results])
    assert np.array_equal(np.asarray(out.tokens), run_tokens), (
        f"{name}: billed tokens differ on {int((np.asarray(out.tokens) != run_tokens).sum())} queries")
    return out


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


def test_simulator_allocates_per_query_as_the_runtime_does(table, tmp_path):
    """per_query_vote: after the whole batch's probe, the plan's predictor and per-query
    Lagrangian give each query its target. On the sequences the replay served and under its
    ledger order, the simulator's own rule (no targets given) decides every query's target as
    the run did, and then spends and answers as the run did, query by query; the targets are
    not all alike (the rule allocates, it does not give everyone the budget)."""
    from simulator.model import serve
    from simulator.rollout import probe_stats, run_sequences
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.samples import load

    files = split(table, tmp_path)
    policy_path = REPO / "policies" / "per_query_vote.ttc"
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert plan["mode"] == "per_query"
    policy = load_policy(policy_path)
    ids = [r["query_id"] for r in results]
    lowered = lower(policy, plan, len(ids))
    config, arrays = lowered.config, lowered.arrays
    latent = replayed_sequences(load(files[1]), ids, config.n_positions)
    order = np.argsort([rank_key(0, q) for q in ids])
    rank = np.argsort(order).astype(np.int32)
    probe = serve(jax.tree.map(lambda x: x[:, : config.probe], latent), arrays.probe_cap)
    targets = np.asarray(config.target_fn(probe_stats(probe), rank))
    run_targets = np.array([r["target"] for r in results])
    assert np.array_equal(targets, run_targets), (
        f"targets differ on {int((targets != run_targets).sum())} of {len(ids)} queries")
    assert len(set(run_targets.tolist())) >= 3, f"the rule gave few distinct targets: {sorted(set(run_targets))}"
    out = run_sequences(jax.random.key(0), latent, int(latent.answer.max()) + 1, arrays, config,
                        order=order)
    for what, sim, run in (("spend", out.samples, [r["samples"] for r in results]),
                           ("correctness", out.correct, [bool(r["correct"]) for r in results])):
        differ = int((np.asarray(sim) != np.asarray(run)).sum())
        assert differ == 0, f"{what} differs from the run's on {differ} of {len(ids)} queries"
    print(f"per_query_vote: targets {np.bincount(run_targets).nonzero()[0].tolist()}, "
          f"{int(np.asarray(out.samples).sum())} samples for {len(ids)} queries")


# --------------------------------------------------------------------------- the bandit

POOLS = REPO.parent / "shared" / "data" / "pools"
BENCH_POLICIES = REPO / "bench" / "policies"


def bandit_variant(rule: str | None, d) -> Path:
    """policies/bandit_entropy.ttc, or the same policy with another exploration rule
    (``tokens``: the entropy rule ranking by value per token, ``bill tokens``)."""
    source = REPO / "policies" / "bandit_entropy.ttc"
    if rule is None:
        return source
    text = source.read_text()
    explore = "explore entropy\n  bill tokens" if rule == "tokens" else f"explore {rule}"
    variant = text.replace("explore entropy", explore).replace(
        "policy bandit_entropy", f"policy bandit_{rule}")
    assert variant != text
    path = d / f"bandit_{rule}.ttc"
    path.write_text(variant)
    return path


def logged_sequences(table, query_ids, length: int, scorer: str | None, seed: int = 0):
    """Each query's logged samples in the order the replay backend serves them (run seed
    ``seed``), as latent sequences: answer id 0 for the answer labelled correct, the others
    numbered by first appearance, -1 none; a sample logged as cut is longer than any cap, one
    without a token count is 1 token long; the ``scorer`` column's scores. Also each query's
    logged depth (the replay runs short there)."""
    from simulator.model import Latent
    from ttcdsl.runtime.replay import replay_order

    by_query: dict[str, list[int]] = {}
    for row, qid in enumerate(table.query_id):
        by_query.setdefault(qid, []).append(row)
    q = len(query_ids)
    answer = np.full((q, length), -1, np.int32)
    tokens = np.full((q, length), 1e9, np.float32)
    logprob = np.zeros((q, length), np.float32)
    score = np.zeros((q, length), np.float32)
    depth = np.zeros(q, np.int32)
    indices = np.asarray(table.sample_index)
    lp_column = np.ma.filled(table.mean_logprob.astype(float), np.nan)
    score_column = None if scorer is None else np.ma.filled(table.scores[scorer].astype(float), np.nan)
    correct = np.ma.filled(table.correct.astype(float), 0.0)
    for i, qid in enumerate(query_ids):
        rows = sorted(by_query[qid], key=lambda r: indices[r])
        order = [rows[p] for p in replay_order(seed, qid, [int(indices[r]) for r in rows])][:length]
        depth[i] = len(order)
        ids: dict[str, int] = {}
        for j, r in enumerate(order):
            a = table.answer[r]
            if a is not None:
                answer[i, j] = 0 if correct[r] else ids.setdefault(a, len(ids) + 1)
            if table.finish_reason[r] != "length":
                count = table.completion_tokens[r]
                tokens[i, j] = 1.0 if count is np.ma.masked or count is None else float(count)
            logprob[i, j] = lp_column[r]
            score[i, j] = 0.0 if score_column is None else score_column[r]
    return Latent(answer=answer, length=tokens, score=score, logprob=logprob), depth


def bandit_same_sequences(policy_path, evaluation_path, plan: dict, results: list[dict],
                          scorer: str | None, out: dict | None = None, length: int | None = None) -> dict:
    """On the very sample sequences the replay served and the runtime's seeded rank, the
    simulator's bandit spends (samples and, where it has token limits, billed tokens), covers
    and answers exactly as the runtime did, query by query. ``out``: receives the simulator's
    outcome under "outcome"; ``length``: the sample positions to draw (a policy without a
    per-query cap: its stand-in)."""
    from simulator.bandit import run_bandit_sequences
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.samples import load
    from ttcdsl.simulate import lower_bandit

    policy = load_policy(policy_path)
    ids = [r["query_id"] for r in results]
    lowered = lower_bandit(policy, plan, len(ids), length=length)
    evaluation = load(evaluation_path)
    latent, depth = logged_sequences(evaluation, ids, lowered.config.n_positions, scorer)
    order = np.argsort([rank_key(0, q) for q in ids])
    prompt = prompt_bounds(evaluation, ids) if policy.budget.charge_prompt_tokens else None
    sim = run_bandit_sequences(latent, int(latent.answer.max()) + 1, lowered.arrays, lowered.config,
                               order, depth, prompt)
    if out is not None:
        out["outcome"] = sim
    name = policy.name
    fields = [("samples", "samples"), ("correct", "correct"), ("covered", "covered")]
    if lowered.arrays.limits is not None:
        fields.append(("tokens", "billed_tokens"))
    for field, key in fields:
        run = np.array([r[key] for r in results])
        got = np.asarray(getattr(sim, field))
        assert np.array_equal(got.astype(run.dtype), run), (
            f"{name}: {field} differs on {int((got != run).sum())} of {len(ids)} queries")
    return {"stopped": sum(bool(r["stopped"]) for r in results),
            "cut": sum(bool(r["budget_cut"]) for r in results),
            "exhausted": sum(bool(r["exhausted"]) for r in results),
            "samples": float(np.mean([r["samples"] for r in results]))}


@pytest.mark.parametrize("rule", [None, "all", "ucb", "gap", "tokens"])
def test_the_bandit_runtime_and_simulator_agree(table, rule, tmp_path):
    """policies/bandit_entropy.ttc and its elimination (explore all), ucb, gap and bill-tokens
    variants,
    planned on a calibration half (so the learned skip is on) and replayed on the other:
    exactly the runtime's spend, coverage and correctness on the replayed sequences, and within
    sampling error of the simulator's figures on fresh draws of the workload. The plan of
    bandit_entropy predicts its run by the simulator's empirical mode on the calibration half
    (ttcdsl.planner.bandit_forecast): within sampling error of the run too; the variants are
    planned without it (--no-simulate), and their plans predict nothing."""
    from simulator.bandit import simulate_bandit
    from ttcdsl.simulate import lower_bandit

    files = split(table, tmp_path)
    policy_path = bandit_variant(rule, tmp_path)
    plan, results = plan_and_run(policy_path, *files, tmp_path, simulate_bandit=rule is None)
    assert plan["mode"] == "bandit" and plan["bandit"].get("gain"), "the plan should learn the skip"
    predicted = plan.get("predicted")
    assert (predicted is None) == (rule is not None)
    counts = bandit_same_sequences(policy_path, files[1], plan, results, "prm")
    assert counts["cut"] > 0, "the mean-samples budget should cut a round"
    assert counts["exhausted"] == 0

    n = len(results)
    policy = load_policy(policy_path)
    lowered = lower_bandit(policy, plan, n)
    keys = jax.random.split(jax.random.key(5), SEEDS)
    out = simulate_bandit(keys, Workload(name="builtin").draw(keys, n), lowered.arrays, lowered.config)
    lines = []
    for metric, field in (("accuracy", "correct"), ("coverage", "covered"), ("samples", "samples")):
        values = np.array([float(r[field]) for r in results])
        a, a_se = values.mean(), values.std(ddof=1) / math.sqrt(n)
        per_seed = np.asarray(getattr(out, field), np.float64).mean(1)
        c, c_se = per_seed.mean(), per_seed.std(ddof=1) / math.sqrt(SEEDS)
        lines.append(f"{policy.name} {metric}: run {a:.3f} ± {a_se:.3f}, simulator {c:.3f} ± {c_se:.4f}")
        # the run's spend is the budget exactly, the simulator's too: both errors may be 0
        assert abs(a - c) <= 3 * math.hypot(a_se, c_se) + 1e-6, lines[-1]
        if predicted is not None:  # the plan's prediction, on the calibration half's queries
            b, b_se = predicted[metric], predicted[f"{metric}_se"]
            lines.append(f"  plan {b:.3f} ± {b_se:.3f}")
            assert abs(a - b) <= 3 * math.hypot(a_se, b_se) + 1e-6, lines[-2] + lines[-1]
    print("\n".join(lines), counts)


def test_a_bandit_without_a_per_query_cap_runs_as_the_runtime_does(table, tmp_path):
    """bandit_entropy without `samples per query in 2..32` (and a mean budget of 12): the simulator draws the sequences to
    a stand-in length and runs uncapped (the learned skip's room is the budget's alone, as in the
    runtime, not every active query's room to a cap). On the sequences the replay served (40
    per query, a query past them runs short, as in the run) it spends, covers and answers
    exactly as the runtime did, and some query took more than the 32 the capped policy allows."""
    from ttcdsl.simulate import near_stand_in_cap

    files = split(table, tmp_path)
    text = (REPO / "policies" / "bandit_entropy.ttc").read_text()
    policy_path = tmp_path / "bandit_uncapped.ttc"
    policy_path.write_text(text.replace("  samples per query in 2..32\n", "").replace(
        "mean samples per query <= 8", "mean samples per query <= 12"))
    assert policy_path.read_text() != text
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert plan["mode"] == "bandit" and plan["bandit"].get("gain"), "the plan should learn the skip"
    out: dict = {}
    counts = bandit_same_sequences(policy_path, files[1], plan, results, "prm", out, length=DEPTH + 8)
    lowered = lower_bandit(load_policy(policy_path), plan, len(results), length=DEPTH + 8)
    assert not lowered.config.capped
    assert not near_stand_in_cap(out["outcome"], lowered.config)
    most = max(r["samples"] for r in results)
    assert most > 32, f"no query took more than the capped policy's 32 samples (most: {most})"
    print(counts, "most", most)


def pool_table():
    """CRUXEval-input (CodeLlama-7B, 10 samples per query, gold labels) without the queries
    where two different answer strings are labelled correct (the simulator's answer model has
    one correct answer per question; the runtime would count them as two answers)."""
    path = POOLS / "cruxeval_input_codellama7b_x10.json"
    if not path.is_file():
        pytest.skip(f"the shared pools are not here ({POOLS})")
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored

    table = import_cruxeval_scored(path, ImportOptions())
    right: dict[str, set] = {}
    for qid, answer, correct in zip(table.query_id, table.answer, table.correct):
        if correct:
            right.setdefault(qid, set()).add(answer)
    keep = [q for q in table.query_ids() if len(right.get(q, ())) <= 1]
    return table.where(query_ids=keep)


@pytest.fixture(scope="module")
def cruxeval():
    return pool_table()


def pool_variant(name: str, d) -> Path:
    """The bench's gold-scored bandits (elimination: explore all; ucb), and an entropy bandit
    without gold (solved when the vote is settled; majority vote), all on 10 logged samples."""
    if name == "elimination_gold_8":  # a budget the 10 logged samples cannot serve: the replay runs short
        text = (BENCH_POLICIES / "elimination_gold.ttc").read_text()
        path = d / f"{name}.ttc"
        path.write_text(text.replace("mean samples per query <= 4", "mean samples per query <= 8"))
        assert path.read_text() != text
        return path
    if name != "entropy_vote":
        return BENCH_POLICIES / f"{name}.ttc"
    path = d / "entropy_vote.ttc"
    path.write_text(ENTROPY_VOTE)
    return path


ENTROPY_VOTE = entropy_bandit("entropy_vote", "entropy bandit without gold", budget="""
    mean samples per query <= 4
    samples per query in 2..10""", max_tokens=1024)


@pytest.mark.parametrize("name", ["elimination_gold", "bandit_ucb_gold", "entropy_vote", "elimination_gold_8"])
def test_the_bandit_matches_the_runtime_on_a_shared_pool(cruxeval, name, tmp_path):
    """On CRUXEval's logged samples (a gold scorer: solved at the first correct sample; at a
    budget of 8 the replay runs short at 10 samples under a cap of 16), planned on one half and replayed on the
    other: the simulator spends, covers and answers exactly as the runtime on every query."""
    files = split(cruxeval, tmp_path)
    policy_path = pool_variant(name, tmp_path)
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert plan["bandit"].get("gain"), "the plan should learn the skip"
    counts = bandit_same_sequences(policy_path, files[1], plan, results, None)
    print(name, len(results), counts)
    if name == "elimination_gold_8":
        assert counts["exhausted"] > 0, "the replay should run short"


# token-limited bandits: policies/bandit_entropy.ttc with token limits added to its budget
BANDIT_TOKENS = {
    # a total that binds on the evaluation half, prompts charged
    "bandit_total_tokens": "  total tokens <= 1000k\n  charge prompt tokens\n",
    # a per-query cap that binds, prompts not charged
    "bandit_tokens_per_query": "  tokens per query <= 5k\n",
}


@pytest.mark.parametrize("name", list(BANDIT_TOKENS))
def test_token_limited_bandits_agree(table, name, tmp_path):
    """The bandit under token limits (the runtime's ledger: worst cases of max_tokens plus the
    prompt where charged, rounds cut in the rule's order): on the sequences the replay served,
    the simulator's samples, billed tokens and answers are the runtime's, query by query, and
    neither breaks a limit; the limit binds."""
    text = (REPO / "policies" / "bandit_entropy.ttc").read_text()
    anchor = "  samples per query in 2..32\n"
    assert anchor in text
    path = tmp_path / f"{name}.ttc"
    path.write_text(text.replace(anchor, anchor + BANDIT_TOKENS[name]).replace(
        "policy bandit_entropy ", f"policy {name} "))
    files = split(table, tmp_path)
    plan, results = plan_and_run(path, *files, tmp_path)
    assert not any(r["exhausted"] for r in results), "the replay ran short"
    policy = load_policy(path)
    got: dict = {}
    bandit_same_sequences(path, files[1], plan, results, "prm", got)
    out = got["outcome"]
    run_tokens = np.array([r["billed_tokens"] for r in results])
    run_samples = np.array([r["samples"] for r in results])
    spend_within_limits(policy, results, run_tokens, run_samples)
    spend_within_limits(policy, results, np.asarray(out.tokens), np.asarray(out.samples))
    assert any(r["budget_cut"] for r in results), f"{name}: the token limit should bind"
    print(name, "samples", run_samples.mean(), "tokens", run_tokens.mean(), "max", run_tokens.max())


# token-limited policies: policies/token_budget.ttc and variants of it (its budget block edited)
TOKEN_POLICIES = {
    "token_budget": {},
    "token_budget_uncharged": {"  charge prompt tokens\n": ""},
    # a total that binds on the evaluation half (about 250 queries)
    "total_tokens_binding": {"total tokens <= 4M": "total tokens <= 1500k"},
    # a per-query cap that binds (the planner needs the total for `allocate optimal`)
    "tokens_per_query": {"tokens per query <= 64k": "tokens per query <= 12k"},
    "tokens_per_query_uncharged": {"  charge prompt tokens\n": "",
                                   "tokens per query <= 64k": "tokens per query <= 12k"},
    "bin_tokens": {"tokens per query <= 64k": "mean tokens per query <= 6k for open"},
}


def token_policy(name: str, directory) -> object:
    text = (REPO / "policies" / "token_budget.ttc").read_text()
    for old, new in TOKEN_POLICIES[name].items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("policy token_budget ", f"policy {name} ")
    path = directory / f"{name}.ttc"
    path.write_text(text)
    return path


def spend_within_limits(policy, results, tokens: np.ndarray, samples: np.ndarray) -> None:
    """An independent check of the ledger's promise: every limit of the policy recomputed from
    the per-query spend (billed tokens include the prompt where it is charged)."""
    bins = np.array([r["bin"] for r in results])
    for limit in policy.budget.limits:
        spend = tokens if limit.unit == "tokens" else samples
        members = np.ones(len(results), bool) if limit.bin is None else bins == limit.bin
        if limit.kind == "per_query_max":
            assert spend[members].max(initial=0) <= limit.value, limit
        elif limit.kind == "total":
            assert spend[members].sum() <= limit.value, limit
        elif limit.kind == "mean":
            assert spend[members].sum() <= limit.value * members.sum() + 1e-9, limit


@pytest.mark.parametrize("name", list(TOKEN_POLICIES))
def test_token_limited_policies_agree(table, name, tmp_path):
    """Token limits (total, per query, per bin; prompts charged or not): on the sequences the
    replay served, the simulator's samples, billed tokens and answers are the runtime's, query
    by query; neither breaks a limit; and the simulated workload agrees with the run within
    sampling error on accuracy, samples and tokens."""
    files = split(table, tmp_path)
    policy_path = token_policy(name, tmp_path)
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert not any(r["exhausted"] for r in results), "the replay ran short"
    policy = load_policy(policy_path)
    out = same_sequences(policy_path, files[1], plan, results)
    run_tokens = np.array([r["billed_tokens"] for r in results])
    run_samples = np.array([r["samples"] for r in results])
    # the simulator knows every count: billed = measured, as the replay's table does
    assert run_tokens.tolist() == [r["tokens"] for r in results]
    spend_within_limits(policy, results, run_tokens, run_samples)
    spend_within_limits(policy, results, np.asarray(out.tokens), np.asarray(out.samples))
    if name in ("total_tokens_binding", "tokens_per_query", "tokens_per_query_uncharged", "bin_tokens"):
        assert any(r["budget_cut"] for r in results), f"{name}: the token limit should bind"

    n = len(results)
    sim = simulated(policy, plan, n)
    run = {"accuracy": np.array([bool(r["correct"]) for r in results], float),
           "samples": run_samples.astype(float), "tokens": run_tokens.astype(float)}
    for metric in ("accuracy", "samples", "tokens"):
        a, a_se = run[metric].mean(), run[metric].std(ddof=1) / math.sqrt(n)
        c, c_se = sim[metric]
        line = f"{name} {metric}: run {a:.3f} ± {a_se:.3f}, simulator {c:.3f} ± {c_se:.4f}"
        print(line)
        assert abs(a - c) <= 3 * math.hypot(a_se, c_se) + 1e-9, line


QWEN = "qwen25math_math100_x8.jsonl"
# token_budget.ttc sized to the pool: 8 logged samples per query, word-level token counts, no
# prompt counts (the pool logs no prompt, so `charge prompt tokens` cannot run on it: ttc run
# refuses a query without a prompt bound). Most of MATH-100 is settled for Qwen, so the settled
# bin votes too (keep_probe would spend nothing there).
SETTLED_VOTES = {"strategy settled = keep_probe": "strategy settled = majority_vote"}
POOL_POLICIES = {
    # the probe (about 35k tokens spent) fits; the rounds after it outgrow the room left at
    # their worst case (2048 tokens a sample, 4096 in the open bin)
    "pool_total_tokens": {**SETTLED_VOTES, "  charge prompt tokens\n": "", "total tokens <= 4M": "total tokens <= 45k",
                          "samples per query in 2..32": "samples per query in 2..8",
                          "tokens per query <= 64k": "tokens per query <= 16k"},
    # a query may take a sample while its spend is below 3000 - 2048 tokens
    "pool_tokens_per_query": {**SETTLED_VOTES, "  charge prompt tokens\n": "",
                              "total tokens <= 4M": "total tokens <= 400k",
                              "samples per query in 2..32": "samples per query in 2..8",
                              "tokens per query <= 64k": "tokens per query <= 3000"},
}


@pytest.mark.parametrize("name", list(POOL_POLICIES))
def test_token_limited_policies_on_the_qwen_pool(shared_data, name, tmp_path):
    """The same sample for sample agreement on a real logged pool (Qwen2.5-Math on MATH-100,
    completion tokens counted by a word-level tokenizer trained on the pool's texts, so the
    counts are real token counts of the logged samples): samples, billed tokens and answers are
    the runtime's on every query, and no limit is broken."""
    pytest.importorskip("tokenizers", reason="the optional 'tokenizers' package is not installed")
    from tests.importers.test_importers_pools import _word_tokenizer
    from ttcdsl.importers import ImportOptions, import_qwen25math_eval, load_tokenizer

    path = shared_data / "pools" / QWEN
    if not path.exists():
        pytest.skip(f"{QWEN} is not in the shared pools")
    texts = import_qwen25math_eval(path, ImportOptions()).text.tolist()
    counter = load_tokenizer(_word_tokenizer(tmp_path, [t for t in texts if t]))
    pool = import_qwen25math_eval(path, ImportOptions(tokenizer=counter, keep_text=False))
    assert np.ma.count(pool.completion_tokens) == len(pool.query_id)
    files = split(pool, tmp_path)
    TOKEN_POLICIES[name] = POOL_POLICIES[name]
    try:
        policy_path = token_policy(name, tmp_path)
    finally:
        del TOKEN_POLICIES[name]
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert not any(r["exhausted"] for r in results), "the replay ran short"
    out = same_sequences(policy_path, files[1], plan, results, by_label=True)
    run_tokens = np.array([r["billed_tokens"] for r in results])
    run_samples = np.array([r["samples"] for r in results])
    policy = load_policy(policy_path)
    spend_within_limits(policy, results, run_tokens, run_samples)
    spend_within_limits(policy, results, np.asarray(out.tokens), np.asarray(out.samples))
    if name == "pool_total_tokens":
        # the probe's rounds are cut to their worst case again and again: more rounds than an
        # uncut run can take (a probe round, then one sample a round up to 8)
        assert int(out.rounds) > 8 + 1, int(out.rounds)
    else:
        assert any(r["budget_cut"] for r in results), f"{name}: the token limit should bind"
    print(f"{name}: {len(results)} queries, {int(out.rounds)} rounds, {int(run_samples.sum())} samples, {int(run_tokens.sum())} "
          f"tokens, {sum(r['budget_cut'] for r in results)} budget-cut")
