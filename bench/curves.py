"""Benchmark: the exact majority-vote curve (hypergeometric DP) vs subset enumeration and vs JAX
Monte Carlo, side by side on the same synthetic pools.

    python bench/curves.py                          # default sizes
    python bench/curves.py --queries 1000 --out out/curves.json

For each (queries, m) it builds a pool whose answers per query follow a random Dirichlet over up
to m distinct answers (one correct), computes the full curve n = 1..m with

* ``exact.majority_vote``    — ours, exact, O(m^3 log m) per correct answer, vectorised over queries
* enumeration                — every n-subset of the m samples, vote counted in numpy (exact too;
                               only run where sum_n C(m, n) stays small)
* ``montecarlo.simulate``    — JAX simulation with ``--reps`` replications (first call includes
                               compilation; the second call, reported as "mc warm", does not)

checks that the three agree (enumeration to 1e-12, Monte Carlo within 5 standard errors per level), prints
wall-clock seconds and the ratios, and writes every number to ``--out`` (JSON).

Then the cold start of the extrapolating Monte Carlo (best-of-n and weighted vote beyond the logged
samples, what ``ttc plan`` runs once per bin): the built-in workload, 12 logged samples per query,
levels 1..64, 256 replications, bins of 60, 60 and 45 queries, each implementation in a fresh
process. "first" includes compilation, "same shape" is the next bin, "new size" a bin of another
size. The baseline is ``montecarlo.py`` as of ``--baseline`` (a git revision; skipped without git).

    python bench/curves.py --part cold --out out/curves_cold.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttcdsl.curves import (  # noqa: E402
    QueryPool,  # noqa: E402
    exact,
    montecarlo,
)


def synthetic_pool(queries: int, m: int, *, seed: int = 0) -> QueryPool:
    rng = np.random.default_rng(seed)
    answers, correct = [], []
    for _ in range(queries):
        k = int(rng.integers(1, m + 1))
        p = rng.dirichlet(np.full(k + 1, 0.7))  # last category: no answer extracted
        draw = rng.choice(k + 1, size=m, p=p)
        right = int(rng.integers(0, k))
        answers.append([None if a == k else int(a) for a in draw])
        correct.append([a == right for a in draw])
    return QueryPool.from_lists(answers, correct)


def enumerate_majority(pool: QueryPool, m: int) -> np.ndarray:
    """Exact majority-vote curve by visiting every n-subset (vectorised over queries)."""
    n_ans = pool.answer_correct.shape[1]
    onehot = (pool.answer[:, :, None] == np.arange(n_ans)).astype(np.float64)  # [Q, m, A]
    out = np.zeros((pool.n_queries, m))
    for n in range(1, m + 1):
        subsets = np.array(list(itertools.combinations(range(m), n)))
        member = np.zeros((len(subsets), m))
        member[np.arange(len(subsets))[:, None], subsets] = 1.0
        acc = np.zeros(pool.n_queries)
        for lo in range(0, len(subsets), 2048):
            votes = np.einsum("sj,qja->qsa", member[lo : lo + 2048], onehot)
            top = votes.max(-1, keepdims=True)
            tied = (votes == top) & (votes > 0)
            acc += (
                (tied & pool.answer_correct[:, None, :]).sum(-1) / np.maximum(tied.sum(-1), 1)
            ).sum(1)
        out[:, n - 1] = acc / len(subsets)
    return out


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


BASELINE = "868b1b4fbd7ea6e05f3b3ed46d8256caaa28d1fa"  # montecarlo.py before the cold-start rewrite
COLD_BINS = (np.arange(60), np.arange(60, 120), np.arange(120, 165))


def cold_worker(impl: str, strategy: str) -> dict:
    """Run in a fresh process: time the extrapolating Monte Carlo on three bins, first call first."""
    import importlib.util

    from ttcdsl.curves import extrapolate
    from ttcdsl.workloads import builtin_workload

    if impl == "current":
        module = montecarlo
    else:
        spec = importlib.util.spec_from_file_location("montecarlo_baseline", impl)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    table, _ = builtin_workload(300, 16, seed=0)
    pool = QueryPool.from_table(table).columns(4)  # 12 logged samples per query
    seconds, means, errs = [], [], []
    for rows in COLD_BINS:
        sub = pool.take(rows)
        alpha = extrapolate.fit_dirichlet(sub)
        args = {"key": 0, "reps": 256, "score": sub.score("prm"), "alpha": alpha}
        mc, t = timed(lambda sub=sub, args=args: module.simulate(sub, strategy, 64, **args))
        seconds.append(t)
        means.append(mc.mean.mean(0).tolist())
        errs.append((np.sqrt((mc.stderr**2).sum(0)) / len(rows)).tolist())
    return {"seconds": seconds, "bin_mean": means, "bin_stderr": errs}


def cold_start(baseline: str) -> list[dict]:
    """Each implementation and strategy in its own process, side by side."""
    root = Path(__file__).resolve().parents[1]
    impls = {"current": "current"}
    tmp = tempfile.TemporaryDirectory()
    try:
        source = subprocess.run(
            ["git", "show", f"{baseline}:ttcdsl/curves/montecarlo.py"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        path = Path(tmp.name) / "montecarlo_baseline.py"
        path.write_text(source)
        impls = {"baseline": str(path), **impls}
    except (OSError, subprocess.CalledProcessError):
        print(f"no baseline: git revision {baseline} unavailable", flush=True)
    rows = []
    for strategy in ("weighted_vote", "best_of_n"):
        runs = {}
        for name, impl in impls.items():
            out = subprocess.run(
                [sys.executable, __file__, "--cold-worker", impl, strategy],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs[name] = json.loads(out.strip().splitlines()[-1])
        row = {"strategy": strategy, "bins": [len(b) for b in COLD_BINS], **runs}
        line = [f"{strategy:13s}"]
        for name, run in runs.items():
            first, same, other = run["seconds"]
            line.append(
                f"{name}: first {first:6.2f} s, same shape {same:5.2f} s, new size {other:5.2f} s"
            )
        if "baseline" in runs:
            old, new = runs["baseline"]["seconds"], runs["current"]["seconds"]
            row["speedup"] = {
                k: old[i] / new[i] for i, k in enumerate(("first", "same_shape", "new_size"))
            }
            line.append("speedup " + " / ".join(f"{v:.1f}x" for v in row["speedup"].values()))
            # the two are different random streams of one estimator: bin means agree within noise
            a, b = (np.array(runs[k]["bin_mean"]) for k in ("baseline", "current"))
            sa, sb = (np.array(runs[k]["bin_stderr"]) for k in ("baseline", "current"))
            z = np.abs(a - b) / np.maximum(np.sqrt(sa**2 + sb**2), 1e-12)
            row["max_abs_z_bin_mean"] = float(z.max())
            assert z.max() < 5, z.max()
        rows.append(row)
        print("; ".join(line), flush=True)
    tmp.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--enumerate-up-to", type=int, default=16, help="largest m for enumeration")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--part", choices=("all", "dp", "cold"), default="all")
    parser.add_argument(
        "--baseline", default=BASELINE, help="git revision of the old montecarlo.py"
    )
    parser.add_argument(
        "--cold-worker", nargs=2, metavar=("IMPL", "STRATEGY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.cold_worker:
        print(json.dumps(cold_worker(*args.cold_worker)))
        return

    results = []
    for m in args.sizes if args.part != "cold" else []:
        pool = synthetic_pool(args.queries, m)
        dp, t_dp = timed(lambda pool=pool, m=m: exact.majority_vote(pool, m))
        row = {
            "queries": args.queries,
            "m": m,
            "distinct_answers_max": int(pool.answer_correct.shape[1]),
            "dp_s": t_dp,
        }
        if m <= args.enumerate_up_to:
            brute, t_enum = timed(lambda pool=pool, m=m: enumerate_majority(pool, m))
            assert np.abs(brute - dp).max() < 1e-12
            row.update(
                enumeration_s=t_enum,
                enumeration_over_dp=t_enum / t_dp,
                subsets=sum(math.comb(m, n) for n in range(1, m + 1)),
            )
        _, t_cold = timed(
            lambda pool=pool, m=m: montecarlo.simulate(
                pool, "majority_vote", m, key=0, reps=args.reps
            )
        )
        mc, t_warm = timed(
            lambda pool=pool, m=m: montecarlo.simulate(
                pool, "majority_vote", m, key=1, reps=args.reps
            )
        )
        reps = mc.reps
        sd = np.sqrt(np.clip(dp * (1 - dp), 0, None) / reps)
        # per entry: 5 standard errors plus a few counts (rare events are Poisson, not normal);
        # per level, summed over queries: a z-score
        assert (np.abs(mc.mean - dp) <= 5 * sd + 4 / reps).all()
        z = (mc.mean - dp).sum(0) / np.maximum(np.sqrt((sd**2).sum(0)), 1e-12)
        assert (np.abs(z) < 5).all(), z
        row.update(
            mc_reps=args.reps,
            mc_cold_s=t_cold,
            mc_warm_s=t_warm,
            mc_warm_over_dp=t_warm / t_dp,
            mean_accuracy_at_m=float(dp[:, -1].mean()),
        )
        results.append(row)
        parts = [f"Q={args.queries} m={m:3d}: exact DP {t_dp:7.3f} s"]
        if "enumeration_s" in row:
            parts.append(
                f"enumeration {row['enumeration_s']:7.3f} s ({row['enumeration_over_dp']:.0f}x slower)"
            )
        parts.append(
            f"MC {args.reps} reps {t_warm:6.2f} s warm / {t_cold:6.2f} s cold "
            f"({row['mc_warm_over_dp']:.1f}x the DP)"
        )
        print("; ".join(parts), flush=True)

    cold = cold_start(args.baseline) if args.part != "dp" else []

    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "benchmark": "majority-vote curve: exact DP vs enumeration vs Monte Carlo; "
                    "cold start of the extrapolating Monte Carlo, baseline vs current",
                    "machine": {
                        "python": platform.python_version(),
                        "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                    },
                    "results": results,
                    "cold_start": cold,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
