"""Plan and run on the real CRUXEval-output pool (800 problems x 10 CodeLlama-7B samples) with
replay: the run's accuracy must agree with the plan's prediction within a few standard errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.paths import REPO
from tests.runtime.runs import ttc
from ttcdsl.datasets import Dataset, Query, write_queries
from ttcdsl.importers import ImportOptions, import_cruxeval_scored
from ttcdsl.samples import save


@pytest.fixture(scope="module")
def crux_files(shared_data: Path, tmp_path_factory):
    table = import_cruxeval_scored(
        shared_data / "pools" / "cruxeval_output_codellama7b_x10.json", ImportOptions()
    )
    d = tmp_path_factory.mktemp("crux")
    samples = d / "crux.jsonl"
    save(table, samples)
    queries = d / "queries.jsonl"
    write_queries(
        Dataset(name="crux", queries=tuple(
            Query(id=q, kind="exact", prompt=f"CRUXEval output problem {q}")
            for q in table.query_ids()
        )),
        queries,
    )
    return d, samples, queries


@pytest.mark.parametrize("name", ["self_consistency", "early_stopping_sc"])
def test_run_agrees_with_the_plan(crux_files, name) -> None:
    d, samples, queries = crux_files
    plan = d / f"{name}.plan.yaml"
    assert ttc("plan", str(REPO / "policies" / f"{name}.ttc"), "-c", str(samples),
               "-o", str(plan), "--reps", "64", "--no-cross-check", "--force") == 0
    for seed in (0, 1):
        out = d / f"{name}-run{seed}"
        assert ttc("run", str(plan), "--queries", str(queries), "--samples", str(samples),
                   "--out", str(out), "--seed", str(seed), "--quiet") == 0
        report = json.loads((out / "report.json").read_text())
        predicted = report["predicted"]
        assert report["queries"] == 800
        assert abs(report["predicted"]["z"]) < 4, report
        assert all(limit["within"] for limit in report["budget"])
        print(f"{name} seed {seed}: run {report['accuracy']:.4f} ± {report['accuracy_se']:.4f}, "
              f"plan {predicted['accuracy']:.4f} ± {predicted['accuracy_se']:.4f}, "
              f"z {predicted['z']:.2f}; samples/query {report['spend']['samples_per_query']:.2f} "
              f"(plan {predicted['samples']:.2f}); uniform {report['baseline']['accuracy']:.4f}; "
              f"short {report['exhausted_queries']}")
