"""The plan predicts the run: plan on one half of a pool's queries, run the plan with the replay
backend on the other half, and compare samples per query and accuracy (within 3 combined
standard errors). The run's figures are recomputed here from its per-query results."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO
from tests.runtime.runs import ttc
from ttcdsl.datasets import Dataset, Query, write_queries
from ttcdsl.importers import ImportOptions, import_cruxeval_scored, import_qwen25math_eval
from ttcdsl.samples import save
from ttcdsl.samples.schema import SamplesTable
from ttcdsl.workloads import builtin_workload

POLICIES = ("adaptive_consistency", "early_stopping_sc")


def split(table: SamplesTable, d: Path) -> tuple[Path, Path, Path]:
    """Calibration table, evaluation table and evaluation queries: queries split in two halves
    by a hash of their id (no query is in both)."""
    ids = sorted(table.query_ids())
    half = {q for q in ids if hashlib.sha256(q.encode()).digest()[0] % 2 == 0}
    keep = np.array([q in half for q in table.query_id])
    calibration, evaluation = d / "calibration.jsonl", d / "evaluation.jsonl"
    save(table.take(np.flatnonzero(keep)), calibration)
    save(table.take(np.flatnonzero(~keep)), evaluation)
    queries = d / "queries.jsonl"
    write_queries(
        Dataset(name="eval", queries=tuple(
            Query(id=q, kind="exact", prompt=f"problem {q}") for q in ids if q not in half
        )),
        queries,
    )
    return calibration, evaluation, queries


def plan_and_run(policy: Path, calibration: Path, evaluation: Path, queries: Path, d: Path,
                 *extra: str, simulate_bandit: bool = False) -> tuple[dict, list[dict]]:
    """Plan ``policy`` on ``calibration`` and replay the plan on ``evaluation``. A bandit's plan
    predicts its run (a JAX simulation) only with ``simulate_bandit``: the tests that check the
    prediction ask for it, the rest save its compile."""
    plan = d / f"{policy.stem}.plan.yaml"
    quick = () if simulate_bandit else ("--no-simulate",)
    assert ttc("plan", str(policy), "-c", str(calibration), "-o", str(plan), "--reps", "64",
               "--no-cross-check", "--force", *quick, *extra) == 0
    out = d / f"{policy.stem}-run"
    assert ttc("run", str(plan), "--queries", str(queries), "--samples", str(evaluation),
               "--out", str(out), "--quiet", "--force") == 0
    import yaml

    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return yaml.safe_load(plan.read_text()), results


def check_agreement(plan: dict, results: list[dict], label: str) -> None:
    predicted = plan["predicted"]
    spent = np.array([r["samples"] for r in results], dtype=float)
    right = np.array([bool(r["correct"]) for r in results], dtype=float)
    n = len(results)
    assert not any(r["exhausted"] for r in results), "the replay ran short: the plan asked for more"
    lines = []
    for name, values, se_name in (("samples", spent, "samples_se"), ("accuracy", right, "accuracy_se")):
        run, run_se = values.mean(), values.std(ddof=1) / math.sqrt(n)
        combined = math.hypot(run_se, predicted[se_name])
        z = (run - predicted[name]) / combined if combined else 0.0
        lines.append(f"{label} {name}: plan {predicted[name]:.3f} ± {predicted[se_name]:.3f}, "
                     f"run {run:.3f} ± {run_se:.3f}, z {z:+.2f}")
        assert abs(z) <= 3, lines[-1]
    print("\n".join(lines))


@pytest.fixture(scope="module")
def qwen(shared_data: Path):
    return import_qwen25math_eval(
        shared_data / "pools" / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7)
    )


@pytest.fixture(scope="module")
def crux(shared_data: Path):
    return import_cruxeval_scored(
        shared_data / "pools" / "cruxeval_output_codellama7b_x10.json", ImportOptions()
    )


@pytest.mark.parametrize("name", POLICIES)
def test_plan_predicts_the_run_on_the_qwen_pool(qwen, name, tmp_path):
    files = split(qwen, tmp_path)
    plan, results = plan_and_run(REPO / "policies" / f"{name}.ttc", *files, tmp_path)
    check_agreement(plan, results, f"qwen {name}")


@pytest.mark.parametrize("name", POLICIES)
def test_plan_predicts_the_run_on_the_cruxeval_pool(crux, name, tmp_path):
    files = split(crux, tmp_path)
    plan, results = plan_and_run(REPO / "policies" / f"{name}.ttc", *files, tmp_path)
    check_agreement(plan, results, f"crux {name}")


@pytest.mark.parametrize("name", ("adaptive_vote", *POLICIES))
def test_plan_predicts_the_run_on_the_builtin_workload(name, tmp_path):
    table, _ = builtin_workload(600, 16, seed=5)
    files = split(table, tmp_path)
    plan, results = plan_and_run(REPO / "policies" / f"{name}.ttc", *files, tmp_path)
    check_agreement(plan, results, f"workload {name}")
