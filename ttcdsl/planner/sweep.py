"""``ttc plan --sweep``: the objective at every budget in a range — the frontier, for plots.

The budget swept is the policy's first batch limit, in its own units (a total stays a total).
With one batch limit and no per-bin limit the LP optimum at every budget comes from one sort of
marginal gains (:func:`ttcdsl.planner.frontier.frontier`); otherwise the LP is built once and
re-solved per budget with only that bound changed. Points are relaxation values (a bin may mix
two counts); each point also gives uniform allocation at the same mean samples per query, with
the policy's answer strategy, for comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.planner.build import PlanResult


def sweep_budget(result: PlanResult, budgets: list[float]) -> dict[str, Any]:
    problem = result.problem
    policy = result.calibration.policy
    if not problem.batch_limits:
        raise UserError(
            "--sweep varies the policy's batch budget, but this policy has none",
            hint="declare e.g. `mean samples per query <= 8` in the budget block",
        )
    sweep_limit = problem.batch_limits[0]
    index = problem.limits.index(sweep_limit)
    declared = policy.budget.limits[problem.meta["limit_source"][index]]
    scale = 1.0 if declared.kind == "mean" else float(problem.meta["batch_size"])
    bounds = np.asarray(budgets, dtype=np.float64) / scale

    if len(problem.limits) == 1:
        from ttcdsl.planner.frontier import frontier

        front = frontier(problem, bounds)
        objective, spend = np.asarray(front.objective), np.asarray(front.spend)
        samples = _samples_along(problem, front, bounds)
        method = "frontier (one sort of marginal gains)"
    else:
        from ttcdsl.planner.lp import LPModel

        model = LPModel(problem)
        base = np.array([l.bound for l in problem.limits])
        objective, spend, samples = [], [], []
        for bound in bounds:
            b = base.copy()
            b[index] = bound
            sol = model.solve(b)
            ok = sol.status == "optimal"
            objective.append(sol.objective if ok else np.nan)
            spend.append(sol.spend[sweep_limit.resource] if ok else np.nan)
            samples.append(sol.spend[0] if ok else np.nan)
        objective, spend, samples = map(np.asarray, (objective, spend, samples))
        method = "LP re-solved per budget (parameters, no rebuild)"
    from ttcdsl.planner.uniform import uniform_at

    uniform = [None if u is None else u["objective"] for u in uniform_at(result.calibration, samples)]
    return {
        "limit": " ".join(policy.source.text[declared.span.start : declared.span.end].split()),
        "objective": policy.objective,
        "method": method,
        "points": [
            {
                "budget": float(b),
                "objective": None if not np.isfinite(o) else float(o),
                "spent": None if not np.isfinite(s) else float(s * scale),
                "samples_per_query": None if not np.isfinite(n) else float(n),
                "uniform": u,
            }
            for b, o, s, n, u in zip(budgets, objective, spend, samples, uniform, strict=True)
        ],
    }


def _samples_along(problem, front, bounds) -> np.ndarray:
    """Mean samples per query at each point of a one-limit frontier."""
    if problem.limits[0].resource == 0:
        return np.asarray(front.spend)
    out = []
    for bound in bounds:
        try:
            out.append(problem.spend(front.x_at(bound))[0])
        except ValueError:  # below the cheapest allocation: no point
            out.append(np.nan)
    return np.asarray(out)
