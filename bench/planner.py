"""Benchmark: the planner's solvers side by side on the same synthetic curves.

    python bench/planner.py                         # default sizes
    python bench/planner.py --skip-simplex --out out/planner.json

Curves are accuracy-of-n-samples shaped, ``1 - (1 - p)^n`` with ``p ~ Beta(0.7, 1.0)`` per query
and 16 levels n = 1, 2, ..., 16 (cost = n samples). Reported:

* ``lagrangian.solve_lagrangian`` vs ``lp.LPModel`` with HiGHS-IPM at ``--queries`` (10^4) x 16:
  both objectives and their relative difference, the time of each and the ratio (target: the
  Lagrangian >= 100x faster; its first call, which compiles, is reported separately);
* HiGHS's default dual simplex on the same LP (the baseline behind the IPM choice; slow, so
  ``--skip-simplex`` leaves it out) and Clarabel;
* ``lagrangian.allocate_per_query`` at ``--per-query`` (10^6) x 16: compile (first call) and
  steady state (target <= 1 s);
* ``dp.solve_dp`` at 200 groups x 16 options x 2000 budget units (target <= 50 ms);

and writes every number to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttcdsl.planner.dp import budget_units, solve_dp
from ttcdsl.planner.knapsack import Knapsack, Limit
from ttcdsl.planner.lagrangian import allocate_per_query, solve_lagrangian
from ttcdsl.planner.lp import LPModel


def curves(
    queries: int, levels: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = np.arange(1, levels + 1, dtype=np.float64)
    p = rng.beta(0.7, 1.0, size=queries)
    return 1.0 - (1.0 - p[:, None]) ** n[None, :], n


def per_query_problem(
    queries: int, levels: int, budget: float, *, seed: int = 0
) -> Knapsack:
    value, n = curves(queries, levels, seed=seed)
    return Knapsack(
        value=value,
        cost=np.broadcast_to(n, (1, queries, levels)).copy(),
        allowed=np.ones((queries, levels), dtype=bool),
        weight=np.full(queries, 1.0 / queries),
        limits=(Limit(resource=0, bound=budget, label=f"mean samples <= {budget:g}"),),
        counts=np.ones(queries, dtype=np.int64),
    )


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def best_of(fn, repeat: int):
    """Smallest wall time of ``repeat`` calls (and the last result)."""
    best, value = np.inf, None
    for _ in range(repeat):
        value, t = timed(fn)
        best = min(best, t)
    return value, best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--queries", type=int, default=10_000, help="queries for the LP comparison"
    )
    parser.add_argument(
        "--per-query",
        type=int,
        default=1_000_000,
        help="queries for allocate_per_query",
    )
    parser.add_argument("--levels", type=int, default=16)
    parser.add_argument(
        "--budget", type=float, default=5.0, help="mean samples per query"
    )
    parser.add_argument("--dp-groups", type=int, default=200)
    parser.add_argument(
        "--dp-units", type=int, default=2000, help="DP budget units (total samples)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--skip-simplex", action="store_true", help="leave out HiGHS simplex (slow)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/planner.json"))
    args = parser.parse_args()
    rows: dict[str, dict] = {}

    # --- LP relaxation at 10^4 x 16: Lagrangian vs cvxpy ---------------------------------------
    problem = per_query_problem(args.queries, args.levels, args.budget)
    _, lag_cold = timed(lambda: solve_lagrangian(problem))
    lag, lag_warm = best_of(lambda: solve_lagrangian(problem), args.repeat)
    model = LPModel(problem)
    ipm_first = model.solve(solver="highs")
    ipm = min(
        (model.solve(solver="highs") for _ in range(args.repeat)),
        key=lambda s: s.seconds,
    )
    clarabel_first = model.solve(solver="clarabel")
    clarabel = min(
        (model.solve(solver="clarabel") for _ in range(args.repeat)),
        key=lambda s: s.seconds,
    )
    rel = abs(lag.objective - ipm.objective) / abs(ipm.objective)
    rows["lp"] = {
        "queries": args.queries,
        "levels": args.levels,
        "budget": args.budget,
        "lagrangian_objective": lag.objective,
        "ipm_objective": ipm.objective,
        "clarabel_objective": clarabel.objective,
        "relative_difference": rel,
        "lagrangian_first_call_s": lag_cold,
        "lagrangian_s": lag_warm,
        "cvxpy_build_s": model.build_seconds,
        "cvxpy_compile_s": dict(model.compile_seconds),
        "ipm_first_solve_s": ipm_first.seconds,
        "ipm_s": ipm.seconds,
        "clarabel_first_solve_s": clarabel_first.seconds,
        "clarabel_s": clarabel.seconds,
        "ipm_over_lagrangian": ipm.seconds / lag_warm,
    }
    print(
        f"LP {args.queries} x {args.levels}, mean budget {args.budget:g}: "
        f"lagrangian {lag_warm * 1e3:8.2f} ms (first call {lag_cold:.2f} s) | "
        f"cvxpy+HiGHS-ipm {ipm.seconds:7.3f} s -> {ipm.seconds / lag_warm:,.0f}x slower | "
        f"cvxpy+Clarabel {clarabel.seconds:7.3f} s -> {clarabel.seconds / lag_warm:,.0f}x slower",
        flush=True,
    )
    print(
        f"   objectives: lagrangian {lag.objective:.12f}  HiGHS-ipm {ipm.objective:.12f}  "
        f"Clarabel {clarabel.objective:.12f}  (lagrangian vs ipm: {rel:.1e} relative)",
        flush=True,
    )
    print(
        f"   cvxpy: build {model.build_seconds:.3f} s, canonicalise "
        + ", ".join(f"{k} {v:.3f} s" for k, v in model.compile_seconds.items()),
        flush=True,
    )

    if not args.skip_simplex:
        simplex = model.solve(solver="highs-simplex")
        rows["lp"].update(
            simplex_s=simplex.seconds,
            simplex_objective=simplex.objective,
            simplex_over_ipm=simplex.seconds / ipm.seconds,
        )
        print(
            f"   HiGHS dual simplex {simplex.seconds:7.2f} s ({simplex.seconds / ipm.seconds:.0f}x the IPM), "
            f"objective {simplex.objective:.12f}",
            flush=True,
        )

    # --- allocate_per_query at 10^6 x 16 -------------------------------------------------------
    value, n = curves(args.per_query, args.levels, seed=1)
    _, pq_cold = timed(lambda: allocate_per_query(value, n, args.budget))
    pq, pq_warm = best_of(
        lambda: allocate_per_query(value, n, args.budget), args.repeat
    )
    rows["per_query"] = {
        "queries": args.per_query,
        "levels": args.levels,
        "first_call_s": pq_cold,
        "steady_s": pq_warm,
        "objective": pq.objective,
        "gap": pq.gap,
        "status": pq.status,
    }
    print(
        f"allocate_per_query {args.per_query:,} x {args.levels}: steady {pq_warm:.3f} s, "
        f"first call (compiles) {pq_cold:.3f} s; objective {pq.objective:.9f}, gap {pq.gap:.1e}",
        flush=True,
    )

    # --- DP at 200 x 16 x 2000 units ------------------------------------------------------------
    dp_problem = per_query_problem(
        args.dp_groups, args.levels, args.dp_units / args.dp_groups, seed=2
    )
    assert budget_units(dp_problem) == args.dp_units
    dp, dp_s = best_of(lambda: solve_dp(dp_problem), args.repeat)
    dp_lp = LPModel(dp_problem).solve()
    rows["dp"] = {
        "groups": args.dp_groups,
        "options": args.levels,
        "budget_units": args.dp_units,
        "seconds": dp_s,
        "objective": dp.objective,
        "lp_objective": dp_lp.objective,
    }
    print(
        f"DP {args.dp_groups} x {args.levels} x {args.dp_units} units: {dp_s * 1e3:.1f} ms; "
        f"integer optimum {dp.objective:.9f} <= LP {dp_lp.objective:.9f}",
        flush=True,
    )

    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "benchmark": "planner: Lagrangian vs cvxpy (HiGHS-IPM, Clarabel, simplex), per-query, DP",
                    "machine": {
                        "python": platform.python_version(),
                        "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                    },
                    "results": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
