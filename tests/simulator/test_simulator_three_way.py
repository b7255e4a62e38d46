"""One semantics, three implementations: the same plan through (a) the runtime with the replay
backend on a samples table drawn from a simulator workload, (b) the planner's prediction and
(c) the simulator on that workload agree, within sampling error, on accuracy and samples spent
per query. The run's figures are recomputed here from its per-query results."""

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
    for name, values in (("accuracy", out.correct), ("samples", out.samples)):
        per_seed = np.asarray(values, np.float64).mean(1)
        figures[name] = (per_seed.mean(), per_seed.std(ddof=1) / math.sqrt(SEEDS))
    return figures


@pytest.mark.parametrize("name", ["adaptive_consistency", "early_stopping_sc", "self_consistency"])
def test_runtime_planner_and_simulator_agree(table, name, tmp_path):
    files = split(table, tmp_path)
    policy_path = REPO / "policies" / f"{name}.ttc"
    plan, results = plan_and_run(policy_path, *files, tmp_path)
    assert not any(r["exhausted"] for r in results), "the replay ran short"
    n = len(results)
    run = {
        "accuracy": np.array([bool(r["correct"]) for r in results], float),
        "samples": np.array([r["samples"] for r in results], float),
    }
    sim = simulated(load_policy(policy_path), plan, n)
    lines = []
    for metric, se_name in (("accuracy", "accuracy_se"), ("samples", "samples_se")):
        a, a_se = run[metric].mean(), run[metric].std(ddof=1) / math.sqrt(n)
        b, b_se = plan["predicted"][metric], plan["predicted"][se_name]
        c, c_se = sim[metric]
        line = (f"{name} {metric}: run {a:.3f} ± {a_se:.3f}, plan {b:.3f} ± {b_se:.3f}, "
                f"simulator {c:.3f} ± {c_se:.4f}")
        lines.append(line)
        for x, x_se, who in ((a, a_se, "run"), (b, b_se, "plan")):
            combined = math.hypot(x_se, c_se)
            assert abs(x - c) <= 3 * combined + 1e-9, f"{who} vs simulator: {line}"
    print("\n".join(lines))
