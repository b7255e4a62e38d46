"""One semantics, three implementations, on the shared pools: every example policy the pool can
serve is planned on one half of the pool's queries and run with the replay backend on the other
half; (a) the run, (b) the plan's prediction and (c) the simulator in empirical mode on the
evaluation half's logged samples agree within sampling error on accuracy, coverage and spend
(samples and tokens per query).

* run vs simulator: the same questions and logged samples, so a paired z-test over the
  questions (each question's run outcome against its mean over simulated draws);
* plan vs simulator: the plan is calibrated on the other half, so its standard error and the
  simulator's over the evaluation questions combine (the plan reports no coverage error: the
  simulator's stands in for it, the halves being the same size);
* tokens: the pools log no token counts; then all three must say unknown (no number), none a 0;
* and on the very orders the replay served, the simulator decides as the run did, query by query.

Every example policy is modelled (per-query allocation included); a policy reading what the
pool does not log (reward-model scores, token counts: the planner's refusal) and a plan the pool's logged depth cannot
serve (the replay ran short) are skipped with the reason. The
run's figures are recomputed here from its per-query results."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from tests.paths import REPO
from tests.planner.test_plan_predicts_run import plan_and_run, split
from tests.simulator.test_simulator_three_way import ENTROPY_VOTE

POOLS = {
    "qwen-math100": "qwen25math_math100_x8.jsonl",
    "cruxeval-input": "cruxeval_input_codellama7b_x10.json",
    "cruxeval-output": "cruxeval_output_codellama7b_x10.json",
}
POLICIES = sorted(p.stem for p in (REPO / "policies").glob("*.ttc"))
SEEDS = 32
# About 100 comparisons in this module (pools x policies x 3 metrics x 2): at 3 standard errors
# one fails by chance in about one run of four (seen: cruxeval-input self_consistency, the run's
# replay order at seed 0 is 3.4 sd below those of seeds 1-5, on which the simulator agrees); 4
# keeps the family's false alarms near 1%. The exact check on the replay's own orders
# (same_sequences) is the sharp test of run against simulator.
Z = 4.0
# a plan, a replay run and a simulation per (pool, policy): minutes in all
pytestmark = pytest.mark.slow


def load_pool(shared_data, pool: str):
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored, import_qwen25math_eval
    from ttcdsl.samples.schema import ROW_FIELDS, SamplesTable

    path = shared_data / "pools" / POOLS[pool]
    if not path.exists():
        pytest.skip(f"{POOLS[pool]} is not in the shared pools")
    if pool.startswith("cruxeval"):
        return import_cruxeval_scored(path, ImportOptions())
    table = import_qwen25math_eval(path, ImportOptions(temperature=0.7))
    # the example policies' reward model is `prm`; the pool logs its scores as `rm`
    fields = {name: getattr(table, name) for name in ROW_FIELDS}
    return SamplesTable(meta=table.meta, **(fields | {"scores": {"prm": table.scores["rm"]}}))


_TABLES: dict = {}


@pytest.fixture
def pool_table(shared_data, request):
    name = request.param
    if name not in _TABLES:
        _TABLES[name] = load_pool(shared_data, name)
    return name, _TABLES[name]


def empirical(policy, plan, evaluation, ids: list[str]) -> dict[str, np.ndarray]:
    """``[S, Q]`` simulated outcomes on the evaluation table's logged samples, questions in the
    order of ``ids``."""
    from simulator.empirical import draw_rows, simulate
    from ttcdsl.curves.pool import QueryPool
    from ttcdsl.simulate import fit_table, lower

    fitted, logged = fit_table(evaluation, policy, empirical=True)
    order = QueryPool.from_table(evaluation).query_ids
    lowered = lower(policy, plan, len(ids))
    keys = jax.random.split(jax.random.key(17), SEEDS)
    rows = np.asarray(draw_rows(keys, len(order), len(order)))[:, [order.index(q) for q in ids]]
    out = simulate(keys, rows, logged, fitted, lowered.arrays, lowered.config)
    return {name: np.asarray(getattr(out, name), np.float64)
            for name in ("correct", "covered", "samples", "tokens", "extrapolated")}


@pytest.mark.parametrize("pool_table", list(POOLS), indirect=True)
@pytest.mark.parametrize("name", POLICIES)
def test_run_plan_and_empirical_simulator_agree(pool_table, name, tmp_path):
    from ttcdsl.lang import ir
    from ttcdsl.observables import known_share, policy_needs
    from ttcdsl.lang.api import load_policy
    from ttcdsl.samples import load
    from ttcdsl.simulate import check_supported

    pool, table = pool_table
    policy_path = REPO / "policies" / f"{name}.ttc"
    policy = load_policy(policy_path)
    check_supported(policy, {"mode": "bandit"} if isinstance(policy.allocation, ir.Bandit) else {})
    # what the planner would refuse: an observable the pool does not log (scores, tokens)
    missing = [need.what for need in policy_needs(policy, None) if known_share(need, table) == 0.0]
    if missing:
        pytest.skip(f"{pool} does not log {'; '.join(missing)}, which {name} reads")
    files = split(table, tmp_path)
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    if any(r["exhausted"] for r in results):
        pytest.skip(f"{pool}'s logged samples per query cannot serve {name}'s plan (the replay ran short)")
    check_supported(policy, plan)
    ids = [r["query_id"] for r in results]
    n = len(ids)
    sim = empirical(policy, plan, load(files[1]), ids)
    # the replay served every sample from the log, so the simulator needed no model sample
    assert sim["extrapolated"].sum() == 0, "the simulator extrapolated where the replay served logged samples"
    run = {
        "accuracy": np.array([bool(r["correct"]) for r in results], float),
        "coverage": np.array([bool(r["covered"]) for r in results], float),
        "samples": np.array([r["samples"] for r in results], float),
    }
    per_question = {"accuracy": sim["correct"].mean(0), "coverage": sim["covered"].mean(0),
                    "samples": sim["samples"].mean(0)}
    predicted = plan["predicted"]
    lines = []
    for metric, se_name in (("accuracy", "accuracy_se"), ("coverage", None), ("samples", "samples_se")):
        c = per_question[metric]
        c_se = c.std(ddof=1) / math.sqrt(n)
        diff = run[metric] - c
        d_se = diff.std(ddof=1) / math.sqrt(n)
        b = predicted[metric]
        b_se = predicted[se_name] if se_name else c_se
        line = (f"{pool} {name} {metric}: run {run[metric].mean():.3f} (paired diff {diff.mean():+.4f} ± {d_se:.4f}), "
                f"plan {b:.3f} ± {b_se:.3f}, simulator {c.mean():.3f} ± {c_se:.3f}")
        lines.append(line)
        assert abs(diff.mean()) <= Z * d_se + 1e-9, f"run vs simulator: {line}"
        assert abs(b - c.mean()) <= Z * math.hypot(b_se, c_se) + 1e-9, f"plan vs simulator: {line}"
    # tokens: the pools log none, so no one may report a number
    run_tokens = [r.get("tokens") for r in results]
    assert np.isnan(sim["tokens"]).all(), "the simulator reported tokens the pool never logged"
    assert predicted.get("tokens") is None, "the plan predicted tokens the pool never logged"
    assert all(t is None or (isinstance(t, float) and math.isnan(t)) for t in run_tokens), run_tokens[:5]
    print("\n".join(lines))
    same_sequences(policy, plan, load(files[1]), results)


def same_sequences(policy, plan, evaluation, results: list[dict]) -> None:
    """On the very orders the replay served (run seed 0), given the runtime's targets (a
    per-query plan: the simulator's own, from the probes) and ledger order, the simulator on the relabelled logged samples bins, spends, answers and covers
    exactly as the run did, query by query (several correct answers per question included)."""
    from simulator.model import Latent
    from simulator.rollout import run_sequences
    from ttcdsl.curves.pool import QueryPool
    from ttcdsl.runtime.assignment import rank_key
    from ttcdsl.runtime.replay import replay_order
    from ttcdsl.simulate import fit_table, lower

    fitted, logged = fit_table(evaluation, policy, empirical=True)
    ids = list(QueryPool.from_table(evaluation).query_ids)  # the logged arrays' row order
    by_id = {r["query_id"]: r for r in results}
    lowered = lower(policy, plan, len(ids))
    length = lowered.config.n_positions
    indices: dict[str, list[int]] = {}
    for qid, index in zip(evaluation.query_id.tolist(), np.asarray(evaluation.sample_index).tolist()):
        indices.setdefault(qid, []).append(index)
    columns = {name: np.asarray(getattr(logged, name)) for name in ("answer", "length", "score", "logprob")}
    served = {name: np.full((len(ids), length), -1 if name == "answer" else np.nan, column.dtype)
              for name, column in columns.items()}
    for i, qid in enumerate(ids):  # the pool's columns are in sample_index order
        served_order = replay_order(0, qid, sorted(indices[qid]))[:length]
        for name, column in columns.items():
            served[name][i, : len(served_order)] = column[i, served_order]
    r = int(fitted.right_alpha.shape[1])
    # a per-query plan's targets come from the simulator's own rule (the whole batch's probes)
    targets = None if lowered.config.target_fn is not None else \
        np.array([by_id[q]["target"] for q in ids], np.int32)
    out = run_sequences(jax.random.key(0), Latent(**served), r + int(fitted.wrong_alpha.shape[1]),
                        lowered.arrays, lowered.config, targets,
                        np.argsort([rank_key(0, q) for q in ids]), n_right=r)
    names = [b.name for b in policy.bins]
    for what, sim, run in (
        ("bins", out.bin, [names.index(by_id[q]["bin"]) for q in ids]),
        ("spend", out.samples, [by_id[q]["samples"] for q in ids]),
        ("correctness", out.correct, [bool(by_id[q]["correct"]) for q in ids]),
        ("coverage", out.covered, [bool(by_id[q]["covered"]) for q in ids]),
    ):
        differ = int((np.asarray(sim) != np.asarray(run)).sum())
        assert differ == 0, f"{policy.name}: {what} differs from the run's on {differ} of {len(ids)} queries"


# the shared pools' entropy bandit, capped at 8 samples: within both pools' logged depth
ENTROPY_BANDIT = ENTROPY_VOTE.replace("samples per query in 2..10", "samples per query in 2..8")
assert ENTROPY_BANDIT != ENTROPY_VOTE


@pytest.mark.parametrize("pool_table", ["qwen-math100", "cruxeval-input"], indirect=True)
def test_the_bandit_runs_as_the_empirical_simulator_predicts(pool_table, tmp_path):
    """The online bandit (entropy rule, a learned skip, a global budget that binds) planned on
    one half and replayed on the other; the empirical simulator on the evaluation half's logged
    samples, in random orders, agrees with the run within sampling error on accuracy, coverage and
    samples, takes every sample from the log (the cap, 8, is within the logged depth) and, as the
    run, reports the tokens the pools never logged as unknown. The plan's own prediction (the
    same simulator on the calibration half) agrees with the run too, and predicts no tokens."""
    from simulator.empirical import draw_rows, simulate_bandit
    from ttcdsl.curves.pool import QueryPool
    from ttcdsl.lang.api import load_policy
    from ttcdsl.samples import load
    from ttcdsl.simulate import fit_table, lower_bandit

    pool, table = pool_table
    policy_path = tmp_path / "entropy_vote.ttc"
    policy_path.write_text(ENTROPY_BANDIT)
    policy = load_policy(policy_path)
    files = split(table, tmp_path)
    plan, results = plan_and_run(policy_path, *files, tmp_path, simulate_bandit=True)
    assert not any(r["exhausted"] for r in results), "8 samples per query fit the logged depth"
    predicted = plan["predicted"]
    assert predicted["tokens"] is None and predicted["tokens_se"] is None
    evaluation = load(files[1])
    ids = [r["query_id"] for r in results]
    n = len(ids)
    fitted, logged = fit_table(evaluation, policy, empirical=True)
    order = QueryPool.from_table(evaluation).query_ids
    lowered = lower_bandit(policy, plan, n)
    keys = jax.random.split(jax.random.key(23), SEEDS)
    rows = np.asarray(draw_rows(keys, len(order), len(order)))[:, [order.index(q) for q in ids]]
    out = simulate_bandit(keys, rows, logged, fitted, lowered.arrays, lowered.config)
    assert int(np.asarray(out.extrapolated).sum()) == 0, "the simulator extrapolated within the logged depth"
    assert np.isnan(np.asarray(out.tokens)).all(), "the simulator reported tokens the pool never logged"
    samples = np.asarray(out.samples, np.float64)
    assert (samples.mean(1) <= 4.0 + 1e-6).all(), "a simulated run spent past the mean budget"
    lines = []
    for metric, field, run in (
        ("accuracy", "correct", [bool(r["correct"]) for r in results]),
        ("coverage", "covered", [bool(r["covered"]) for r in results]),
        ("samples", "samples", [r["samples"] for r in results]),
    ):
        sim = np.asarray(getattr(out, field), np.float64).mean(0)
        diff = np.asarray(run, np.float64) - sim
        se = diff.std(ddof=1) / math.sqrt(n)
        # the plan predicts on other queries (the calibration half): unpaired
        run_se = np.std(run, ddof=1) / math.sqrt(n)
        planned, planned_se = predicted[metric], predicted[f"{metric}_se"]
        lines.append(f"{pool} bandit {metric}: run {np.mean(run):.3f} ± {run_se:.3f}, simulator "
                     f"{sim.mean():.3f} (paired diff {diff.mean():+.4f} ± {se:.4f}), plan "
                     f"{planned:.3f} ± {planned_se:.3f}")
        assert abs(diff.mean()) <= Z * se + 1e-9, lines[-1]
        assert abs(np.mean(run) - planned) <= Z * math.hypot(run_se, planned_se) + 1e-9, lines[-1]
    print("\n".join(lines))
