"""Benchmark: how long the `ttc` command takes to start and finish small jobs, against the bare
interpreter measured in the same run.

    python bench/cli_startup.py                    # 5 repeats of each
    python bench/cli_startup.py --repeat 9 --out out/cli_startup.json

Each command runs in a fresh process (``python -m ttcdsl ...``), as a user runs it, on a small
built-in workload written to a temporary directory first; the best of ``--repeat`` wall-clock
times is kept. The baseline is ``python -c pass`` (what any Python command costs) and the ratio
says how many baselines each command takes:

* ``ttc check`` of every example policy (must import no jax, cvxpy or pyarrow);
* ``ttc plan`` of a ``fixed`` policy (no solver, no Monte Carlo: what does it import?);
* ``ttc plan`` of an ``optimal`` policy (curves and the solver);
* ``ttc run`` of the fixed plan with replay (200 queries).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(argv: list[str], cwd: Path, repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        best = min(best, elapsed)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    py = sys.executable
    ttc = [py, "-m", "ttcdsl"]
    policies = sorted(str(p) for p in (REPO / "policies").glob("*.ttc"))
    with tempfile.TemporaryDirectory() as scratch:
        d = Path(scratch)
        subprocess.run(
            [*ttc, "workload", "-o", "cal.jsonl", "--dataset", "q.jsonl", "--queries", "200"],
            cwd=d, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True,
        )
        fixed = str(REPO / "policies" / "self_consistency.ttc")
        optimal = str(REPO / "policies" / "adaptive_consistency.ttc")
        subprocess.run(
            [*ttc, "plan", fixed, "-c", "cal.jsonl", "-o", "fixed.plan.yaml"],
            cwd=d, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True,
        )
        cases = {
            "python -c pass (baseline)": [py, "-c", "pass"],
            "ttc check policies/*.ttc": [*ttc, "check", *policies],
            "ttc plan (fixed policy)": [*ttc, "plan", fixed, "-c", "cal.jsonl", "-o",
                                        "f2.plan.yaml", "--force"],
            "ttc plan (optimal policy)": [*ttc, "plan", optimal, "-c", "cal.jsonl", "-o",
                                          "o.plan.yaml", "--force", "--reps", "32"],
            "ttc run (fixed plan, replay)": [*ttc, "run", "fixed.plan.yaml", "--queries", "q.jsonl",
                                             "--samples", "cal.jsonl", "--out", "run", "--force",
                                             "--quiet"],
        }
        figures = {name: _time(argv, d, args.repeat) for name, argv in cases.items()}
    base = figures["python -c pass (baseline)"]
    print(f"{'command':36s} {'best s':>8s} {'x baseline':>11s}")
    for name, seconds in figures.items():
        print(f"{name:36s} {seconds:8.3f} {seconds / base:11.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "python": platform.python_version(), "machine": platform.machine(),
            "repeat": args.repeat, "seconds": figures,
            "ratio_to_baseline": {k: v / base for k, v in figures.items()},
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
