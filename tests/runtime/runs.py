"""Helpers for the executor tests: small policies with hand-written plans, a built-in workload
on disk, and `ttc run` in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.plan import save_plan
from ttcdsl.workloads import builtin_workload, write_workload

ADAPTIVE = """\
policy small_adaptive "probe 2, two bins by agreement, a stop rule, a mean budget"

budget {
  mean samples per query <= 6
  samples per query in 1..12
}

sampling { temperature 0.7  max_tokens 4096 }
probe 2 samples

scorer conf = confidence
feature agreement = top_share(answers)

bins by agreement thresholds [0.75] as split, agree
strategy split = weighted_vote(conf)
strategy agree = majority_vote

stop {
  when unanimous last 3
}

allocate optimal maximize accuracy
"""

ALLOCATION = {
    "split": [{"samples": 10, "share": 0.5}, {"samples": 7, "share": 0.5}],
    "agree": [{"samples": 3, "share": 1.0}],
}


def write_policy(directory: Path, text: str = ADAPTIVE, name: str = "policy.ttc") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def hand_plan(
    policy_path: Path,
    allocation: dict[str, list[dict]] = ALLOCATION,
    edges: list[float] | None = (0.75,),
    mode: str = "optimal",
    out: Path | None = None,
) -> Path:
    """A plan the planner could have written for ``policy_path`` (allocation chosen by hand)."""
    policy = load_policy(policy_path)
    plan = {
        "ttcdsl_plan": 1,
        "policy": {"name": policy.name, "file": str(policy_path),
                   "source_sha256": policy.source_hash},
        "objective": "accuracy",
        "mode": mode,
        "probe": policy.probe,
        "stop_check": "after every sample, from the end of the probe on",
        "binning": None if policy.binning is None else {
            "key": policy.binning.key, "method": policy.binning.method,
            "cuts": list(policy.binning.cuts), "edges": list(edges),
        },
        "bins": [
            {
                "name": b.name,
                "strategy": b.strategy.kind,
                "sampling": {"max_tokens": b.sampling.max_tokens},
                "allocation": allocation[b.name],
                "predicted": {"accuracy": 0.5, "samples": 5.0},
            }
            for b in policy.bins
        ],
        "predicted": {"accuracy": 0.5, "accuracy_se": 0.05, "samples": 5.0},
    }
    out = out or policy_path.with_suffix(".plan.yaml")
    save_plan(plan, out)
    return out


def workload_files(directory: Path, n: int = 30, m: int = 16, seed: int = 0) -> tuple[Path, Path]:
    table, dataset = builtin_workload(n, m, seed=seed)
    samples, queries = directory / "samples.jsonl", directory / "queries.jsonl"
    write_workload(table, dataset, samples, queries)
    return samples, queries


def run_args(plan: Path, queries: Path, samples: Path, out: Path, seed: int = 0) -> list[str]:
    return ["run", str(plan), "--queries", str(queries), "--samples", str(samples),
            "--out", str(out), "--seed", str(seed), "--quiet"]


def ttc(*args: str) -> int:
    return main(list(args))


def ttc_subprocess(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ttcdsl", *args], cwd=REPO, env=full, capture_output=True,
        text=True, timeout=120,
    )


def results(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def sample_keys(run_dir: Path) -> list[tuple[str, int]]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()[1:]
    return [(r["query_id"], r["sample_index"]) for r in map(json.loads, lines)]


def reference_run(directory: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A small adaptive policy's hand-made plan, a built-in workload of 24 queries x 16 samples,
    and its uninterrupted run (seed 5) to compare resumed or contended runs with."""
    policy = write_policy(directory)
    plan = hand_plan(policy)
    samples, queries = workload_files(directory, n=24, m=16)
    reference = directory / "reference"
    assert ttc(*run_args(plan, queries, samples, reference, seed=5)) == 0
    return directory, plan, queries, samples, reference
