"""`allocate per query`: the predictor, the allocation rule, and the plan against a replayed run.

The rule's integer choice is checked against a brute-force search over every assignment of
counts; the predictor's left-out predictions against refitting without the query; a replay on a
real pool for what the lever promises (a query whose predicted curve is flat keeps only its
probe, recomputed here from the run's own stored probe samples) and for the plan's prediction.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.planner.test_plan_predicts_run import check_agreement, plan_and_run, split
from ttcdsl.planner.per_query import allocate_counts
from ttcdsl.planner.plan import dump_plan
from ttcdsl.planner.predictor import CurvePredictor

# ---- the allocation rule ----------------------------------------------------------------------


def _instance(seed: int, q: int = 5, k: int = 4):
    """Concave increasing per-query curves with distinct values (no ties in the argmax), and
    expected samples that grow with the count but differ per query (stop rules)."""
    rng = np.random.default_rng(seed)
    gains = rng.random((q, k - 1)) * rng.random((q, 1))
    value = np.concatenate([rng.random((q, 1)) * 0.3, np.sort(gains, 1)[:, ::-1]], 1).cumsum(1)
    levels = np.arange(2, 2 + k)
    samples = levels[None, :] - rng.random((q, k)) * np.linspace(0, 1, k)[None, :]
    samples[:, 0] = 2.0
    return value, samples, levels


def _brute_force(value, samples, budget):
    """The best sum of values over every assignment of one count per query within the budget."""
    q, k = value.shape
    best = -np.inf
    for choice in itertools.product(range(k), repeat=q):
        rows = np.arange(q)
        if samples[rows, choice].sum() <= budget * q + 1e-9:
            best = max(best, value[rows, choice].sum())
    return best


@pytest.mark.parametrize("seed", range(4))
def test_at_a_budget_the_multiplier_prices_exactly_the_rule_finds_the_brute_force_optimum(seed):
    value, samples, levels = _instance(seed)
    q = len(value)
    probe = np.full(q, 2.0)
    # budgets a multiplier spends exactly: each query's best value - lam * cost (computed here)
    budgets = set()
    for lam in np.linspace(0.0, 0.5, 26):
        choice = np.argmax(value - lam * (samples - 2.0), axis=1)
        budgets.add(round(float(samples[np.arange(q), choice].mean()), 12))
    assert len(budgets) >= 3
    for budget in sorted(budgets):
        choice, solution = allocate_counts(value, samples, levels, budget, probe)
        got = value[np.arange(q), choice].sum()
        assert samples[np.arange(q), choice].mean() <= budget + 1e-9
        assert got == pytest.approx(_brute_force(value, samples, budget), abs=1e-9), budget


@pytest.mark.parametrize("seed", range(4))
def test_at_any_budget_the_rule_keeps_it_and_loses_at_most_one_query_s_gain(seed):
    value, samples, levels = _instance(seed + 10)
    q = len(value)
    probe = np.full(q, 2.0)
    for budget in (2.0, 2.7, 3.3, 4.1, 5.0):
        choice, solution = allocate_counts(value, samples, levels, budget, probe)
        rows = np.arange(q)
        best = _brute_force(value, samples, budget)
        got = value[rows, choice].sum()
        assert samples[rows, choice].mean() <= budget + 1e-9
        # the relaxation bounds the integer optimum; rounding one split query down loses at most
        # that query's gain between its two counts
        assert solution.objective * q >= best - 1e-9
        assert got >= best - (value[:, -1] - value[:, 0]).max() - 1e-9


def test_queries_with_equal_curves_share_the_budget_instead_of_all_rounding_down():
    # equal features give equal predicted curves: at the multiplier's kink the relaxation splits
    # every one of them, and rounding each down alone left most of the budget unspent
    levels = np.array([2, 3, 4, 5, 6])
    value = np.tile([0.2, 0.5, 0.7, 0.8, 0.85], (6, 1))
    samples = np.tile(levels.astype(float), (6, 1))
    for budget in (2.5, 3.2, 4.5, 5.5):
        choice, _ = allocate_counts(value, samples, levels, budget, np.full(6, 2.0))
        spend = levels[choice].mean()
        assert budget - 1 / 6 < spend <= budget + 1e-9, (budget, levels[choice])
        got = value[np.arange(6), choice].sum()
        assert got == pytest.approx(_brute_force(value, samples, budget), abs=1e-9)


def test_a_flat_curve_gets_only_the_probe_and_a_short_query_keeps_what_it_has():
    levels = np.array([2, 3, 4, 5])
    value = np.array([[0.2, 0.2, 0.2, 0.2], [0.3, 0.5, 0.6, 0.65], [0.9, 0.9, 0.9, 0.9]])
    samples = np.tile(levels.astype(float), (3, 1))
    choice, _ = allocate_counts(value, samples, levels, 3.5, np.full(3, 2.0))
    # the budget pays 1.5 extra samples per query: all of it goes to the one curve that rises
    assert levels[choice].tolist() == [2, 5, 2]
    allowed = np.ones((3, 4), dtype=bool)
    allowed[1] = [True, False, False, False]  # its backend ran short: it can get nothing more
    choice, _ = allocate_counts(value, samples, levels, 3.5, np.full(3, 2.0), allowed=allowed)
    assert levels[choice].tolist() == [2, 2, 2]


# ---- the predictor -----------------------------------------------------------------------------


def _calibration(seed: int, q: int = 40, k: int = 5):
    rng = np.random.default_rng(seed)
    x = np.stack([rng.integers(1, 5, q) / 4, rng.integers(1, 4, q).astype(float)], axis=1)
    x[3, 1] = np.nan  # an undefined feature (a cut probe)
    value = np.sort(rng.random((q, k)), 1)
    samples = np.tile(np.arange(2, 2 + k, dtype=float), (q, 1)) - rng.random((q, k)) * 0.5
    return x, value, samples, np.arange(2, 2 + k)


def _knn_by_hand(z_train, value, z_query, k):
    """The mean curve of the training rows within the smallest radius holding k of them."""
    d = np.sqrt(((z_train - z_query) ** 2).sum(1))
    radius = np.sort(d)[min(k, len(d)) - 1]
    return value[d <= radius + 1e-12].mean(0)


def test_left_out_predictions_are_those_of_the_model_refitted_without_the_query():
    x, value, samples, levels = _calibration(0)
    model = CurvePredictor.fit(("a", "b"), x, value, samples, levels, neighbours=6)
    pv, ps = model.predict_left_out(x, value, samples)
    z = model.standardize(x)  # the standardization is the full fit's, as the run's is
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        assert pv[i] == pytest.approx(_knn_by_hand(z[others], value[others], z[i], 6), abs=1e-12)
        assert ps[i] == pytest.approx(_knn_by_hand(z[others], samples[others], z[i], 6), abs=1e-12)


def test_predictions_are_the_neighbours_mean_curves_and_survive_the_plan_file():
    x, value, samples, levels = _calibration(1)
    model = CurvePredictor.fit(("a", "b"), x, value, samples, levels, neighbours=7)
    new = np.array([[0.5, 2.0], [1.0, np.nan], [0.25, 9.0]])
    pv, ps = model.predict(new)
    z = model.standardize(x)
    for i, row in enumerate(model.standardize(new)):
        assert pv[i] == pytest.approx(_knn_by_hand(z, value, row, 7), abs=1e-12)
    loaded = CurvePredictor.from_plan(yaml.safe_load(dump_plan({"p": model.to_plan()}))["p"])
    again, again_samples = loaded.predict(new)
    assert again == pytest.approx(pv, abs=1e-5)  # the plan keeps six significant digits
    assert again_samples == pytest.approx(ps, abs=1e-5)


def test_a_broken_predictor_in_a_plan_names_its_field():
    x, value, samples, levels = _calibration(2)
    data = CurvePredictor.fit(("a", "b"), x, value, samples, levels).to_plan()
    data["value"] = data["value"][:-1]
    with pytest.raises(ValueError) as caught:
        CurvePredictor.from_plan(data)
    assert caught.value.args[0] == "value"


# ---- replays on a real pool --------------------------------------------------------------------

# The pool's outcome reward model scores each sample ("rm"): their mean over the probe separates
# queries finely, so a query's nearest calibration queries can all be solved by every sample (or
# by none), and its predicted curve is then exactly flat.
QWEN_POLICY = """\
policy per_query_qwen "majority vote, counts from the probe's predicted curve"
budget {
  mean samples per query <= 4
  samples per query in 1..8
}
sampling { temperature 0.7  max_tokens 1024 }
probe 2 samples
scorer prm = reward_model "outcome-rm"
feature agreement = top_share(answers)
feature reward = mean(scores(prm))
answer majority_vote
allocate per query maximize accuracy
"""


@pytest.fixture(scope="module")
def qwen_run(shared_data: Path, tmp_path_factory):
    from ttcdsl.importers import ImportOptions, import_qwen25math_eval

    table = import_qwen25math_eval(
        shared_data / "pools" / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7)
    )
    d = tmp_path_factory.mktemp("per_query_qwen")
    policy = d / "per_query_qwen.ttc"
    policy.write_text(QWEN_POLICY)
    plan, results = plan_and_run(policy, *split(table, d), d, "--score", "prm=rm")
    return plan, results, d / "per_query_qwen-run"


def _probe_features(run_dir: Path, probe: int) -> dict[str, tuple[float, float]]:
    """Each query's (top_share of its answers, mean reward score) over its stored probe
    samples, by hand."""
    rows: dict[str, list] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "query_id" in row and row.get("sample_index", probe) < probe:
            rows.setdefault(row["query_id"], []).append(row)
    out = {}
    for qid, given in rows.items():
        seen = [r["answer"] for r in given if r.get("answer") is not None]
        counts = {a: seen.count(a) for a in seen}
        scores = [r["scores"]["prm"] for r in given if (r.get("scores") or {}).get("prm") is not None]
        # top_share: votes of the most common real answer over all samples (0 with none)
        out[qid] = (max(counts.values()) / len(given) if seen else 0.0,
                    float(np.mean(scores)) if scores else math.nan)
    return out


@pytest.mark.slow
def test_on_the_qwen_pool_a_query_predicted_flat_keeps_only_its_probe(qwen_run):
    plan, results, run_dir = qwen_run
    probe = plan["probe"]
    model = CurvePredictor.from_plan(plan["per_query"]["predictor"])
    features = _probe_features(run_dir, probe)
    ids = [r["query_id"] for r in results]
    value, _ = model.predict(np.array([features[q] for q in ids]))
    flat = value.max(1) - value[:, 0] <= 1e-9  # no count predicted to beat the probe
    spent = np.array([r["samples"] for r in results])
    assert flat.any(), "no query was predicted flat: the test checks nothing"
    assert (spent[flat] == probe).all(), spent[flat]
    assert (spent[~flat] > probe).any(), "no query got more than its probe"


@pytest.mark.slow
def test_on_the_qwen_pool_the_plan_predicts_the_replayed_run(qwen_run):
    plan, results, _ = qwen_run
    assert plan["mode"] == "per_query"
    check_agreement(plan, results, "qwen per query")


@pytest.mark.slow
def test_on_the_builtin_workload_the_plan_predicts_the_replayed_run(tmp_path):
    from tests.paths import REPO
    from ttcdsl.workloads import builtin_workload

    table, _ = builtin_workload(600, 16, seed=5)
    plan, results = plan_and_run(REPO / "policies" / "per_query_vote.ttc", *split(table, tmp_path),
                                 tmp_path)
    check_agreement(plan, results, "workload per query")
