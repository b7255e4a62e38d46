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
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--enumerate-up-to", type=int, default=16, help="largest m for enumeration")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    results = []
    for m in args.sizes:
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
            lambda pool=pool, m=m: montecarlo.simulate(pool, "majority_vote", m, key=0, reps=args.reps)
        )
        mc, t_warm = timed(
            lambda pool=pool, m=m: montecarlo.simulate(pool, "majority_vote", m, key=1, reps=args.reps)
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

    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "benchmark": "majority-vote curve: exact DP vs enumeration vs Monte Carlo",
                    "machine": {
                        "python": platform.python_version(),
                        "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                    },
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
