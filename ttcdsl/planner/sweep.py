"""``ttc plan --sweep``: the objective at every budget in a range — the frontier, for plots.

The budget swept is the policy's first batch limit, in its own units (a total stays a total).
With one batch limit and no per-bin limit the LP optimum at every budget comes from one sort of
marginal gains (:func:`ttcdsl.planner.frontier.frontier`); otherwise the LP is built once and
re-solved per budget with only that bound changed. Points are relaxation values (a bin may mix
two counts); each point also gives uniform allocation at the same mean samples per query, with
the policy's answer strategy, for comparison.

A policy with candidates (`one of`, `tuned`) is chosen for again at every budget, by the plan's
own rule (:func:`ttcdsl.planner.build.choose_along`), and each point records its choice.

Every point is the plan `ttc plan` would make at that budget, the cross-fitted check against
uniform included (:func:`ttcdsl.planner.choice.decide`, with the plan's solver and folds): where
the policy is behind uniform out of fold, that plan runs uniform, so the point gives uniform's
figures, ``runs: uniform``, the policy's own optimum as ``policy_objective`` and the cross-fitted
difference that decided it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.planner.build import PlanResult
from ttcdsl.planner.uniform import equal_spend, uniform_at, versus_uniform


def sweep_budget(result: PlanResult, budgets: list[float]) -> dict[str, Any]:
    problem = result.problem
    policy = result.calibration.policy
    if result.plan["mode"] == "bandit":  # its curves are never estimated: the frontier would read 0
        raise UserError(
            "--sweep draws the planned frontier, but a bandit allocates online and has none",
            hint="ttc simulate POLICY --sweep LO..HI simulates the bandit at each budget",
        )
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

    n = len(bounds)
    objective, spend, samples = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    versus: list[dict | None] = [None] * n
    choices: list[list[dict[str, Any]] | None] = [None] * n
    switched: list[dict | None] = [None] * n
    policy_objective = np.full(n, np.nan)
    matched = np.full(n, np.nan)  # uniform's samples per query at each point's spend (its unit)
    for at, calibration, curves, pinned, chosen in _per_choice(result, index, bounds):
        o, s, m, allocations, method = _along(pinned, index, bounds[at])
        objective[at], spend[at], samples[at] = o, s, m
        policy_objective[at] = o
        for i, x, count in zip(at, allocations, m, strict=True):
            choices[i] = chosen
            if x is None or not np.isfinite(count):
                continue
            with np.errstate(invalid="ignore"):
                tokens = float(pinned.weight @ (x * np.where(x > 0, curves.tokens, 0.0)).sum(1))
            matched[i] = equal_spend(calibration, float(count), tokens if np.isfinite(tokens) else None)
            versus[i] = versus_uniform(calibration, curves, x, float(matched[i]))
            if result.plan.get("mode") == "optimal":  # the plan's own rule, at this budget
                switched[i] = _uniform_instead(result, calibration, curves, _at_bound(pinned, index, bounds[i]),
                                               float(count))
    for i, switch in enumerate(switched):
        if switch is not None:  # the plan at this budget runs uniform: its figures are uniform's
            objective[i], samples[i] = switch["objective"], switch["samples"]
            matched[i] = switch["samples"]
            spend[i] = switch["samples"] if sweep_limit.resource == 0 else np.nan
            versus[i] = {"difference": 0.0, "difference_se": 0.0, "verdict": switch["verdict"]}
    uniform = [None if u is None else u["objective"] for u in uniform_at(result.calibration, matched)]
    out = {
        "limit": " ".join(policy.source.text[declared.span.start : declared.span.end].split()),
        "objective": policy.objective,
        "method": method if result.search is None else f"{method}, candidates chosen per budget",
        "points": [
            {
                "budget": float(b),
                "objective": None if not np.isfinite(o) else float(o),
                "spent": None if not np.isfinite(s) else float(s * scale),
                "samples_per_query": None if not np.isfinite(n) else float(n),
                "uniform": u,
                "difference": None if v is None else v["difference"],
                "difference_se": None if v is None else v["difference_se"],
                "verdict": None if v is None else v["verdict"],
                "runs": None if not np.isfinite(p) else ("uniform" if w is not None else "policy"),
                "policy_objective": None if not np.isfinite(p) else float(p),
                "cross_fitted": None if w is None else w["cross_fitted"],
            }
            for b, o, s, n, u, v, p, w in zip(
                budgets, objective, spend, samples, uniform, versus, policy_objective, switched, strict=True
            )
        ],
    }
    if result.search is not None:
        for point, chosen in zip(out["points"], choices, strict=True):
            point["choice"] = chosen
    least = _least_spend(problem, sweep_limit) * scale
    for point in out["points"]:
        if point["objective"] is None:  # a bare "-" said nothing of why
            point["why"] = (
                f"no allocation fits: the least the policy can spend is {least:.4g} "
                f"({out['limit'].split('<=')[0].strip()})" if point["budget"] < least
                else "no allocation meets the policy's other limits at this budget")
    return out


def _least_spend(problem, limit) -> float:
    """The least the swept resource can be per query: every group at its cheapest allowed
    option (the probe, a fixed count, a per-query minimum)."""
    cost = np.where(problem.allowed, problem.cost[limit.resource], np.inf)
    return float(problem.weight @ cost.min(axis=1))


def _at_bound(problem, index: int, bound: float):
    """``problem`` with its limit ``index`` at ``bound`` (the budget a sweep point plans at)."""
    limits = tuple(dataclasses.replace(l, bound=float(bound)) if i == index else l
                   for i, l in enumerate(problem.limits))
    return dataclasses.replace(problem, limits=limits)


def _uniform_instead(result: PlanResult, calibration, curves, problem, samples: float) -> dict | None:
    """Uniform's figures where the plan made at this point's budget would run uniform (the rule
    of :func:`ttcdsl.planner.choice.decide`, with the plan's solver and folds); None where it
    would run the policy."""
    from ttcdsl.planner.build import solve_relaxation
    from ttcdsl.planner.choice import decide
    from ttcdsl.verdict import verdict

    mode = result.plan["mode"]
    decision = decide(calibration, curves, problem, lambda p: solve_relaxation(p, mode, result.solver),
                      samples=samples, seed=result.seed)
    if decision.uniform is None:
        return None
    (entry,) = uniform_at(calibration, np.array([decision.spend]))
    fit = decision.fit
    return {"objective": entry["objective"], "samples": decision.spend, "verdict": verdict(0.0, 0.0),
            "cross_fitted": {"difference": fit.difference, "difference_se": fit.difference_se,
                             "verdict": verdict(fit.difference, fit.difference_se)}}


def _per_choice(result: PlanResult, index: int, bounds: np.ndarray):
    """``(points, calibration, curves, problem, choice)`` per distinct per-bin choice along the
    sweep: the plan's own for a policy without candidates (``choice`` None); otherwise the
    choice the plan's rule makes at each budget (:func:`ttcdsl.planner.build.choose_along`),
    with the curves and knapsack of the policy pinned to it, built as ``make_plan`` builds them.
    Budgets no allocation meets keep the plan's choice (they get no value either way)."""
    search = result.search
    if search is None:
        yield np.arange(len(bounds)), result.calibration, result.curves, result.problem, None
        return
    from ttcdsl.planner import candidates as cand
    from ttcdsl.planner.build import choose_along
    from ttcdsl.planner.problem import build_knapsack

    along = choose_along(search, index, bounds)
    unmet = np.array([i for i, c in enumerate(along) if c is None], dtype=np.int64)
    if len(unmet):  # no value at these budgets whatever the choice: the plan's own problem says so
        yield unmet, result.calibration, result.curves, result.problem, None
    for assignment in dict.fromkeys(tuple(c) for c in along if c is not None):
        at = np.array([i for i, c in enumerate(along) if c is not None and tuple(c) == assignment])
        offered = search.calibration.policy
        picked = [search.candidates.choices[b][j] for b, j in enumerate(assignment)]
        calibration = dataclasses.replace(search.calibration, policy=cand.pin_policy(offered, picked))
        curves = cand.select(search.candidates, assignment, calibration)
        problem = build_knapsack(calibration, curves, batch_size=result.problem.meta["batch_size"])
        yield at, calibration, curves, problem, _describe(offered, picked)


def _describe(offered, picked) -> list[dict[str, Any]]:
    """The choice of every bin with candidates, as the plan's bins record it."""
    from ttcdsl.planner import candidates as cand

    out = []
    for spec, choice in zip(offered.bins, picked, strict=True):
        if not spec.candidates and not cand.tuned_rules(spec):
            continue
        entry: dict[str, Any] = {"bin": spec.name, "strategy": choice.strategy.label}
        if choice.thresholds:
            entry["tuned"] = [float(t) for t in choice.thresholds]
        out.append(entry)
    return out


def _along(problem, index: int, bounds: np.ndarray):
    """The relaxation's optimum of ``problem`` at every bound of its limit ``index``: objective,
    spend of that limit's resource, mean samples per query, allocations, and the method."""
    if len(problem.limits) == 1:
        from ttcdsl.planner.frontier import frontier

        front = frontier(problem, bounds)
        objective, spend = np.asarray(front.objective), np.asarray(front.spend)
        samples = _samples_along(problem, front, bounds)
        allocations = [_x_at(front, bound) for bound in bounds]
        return objective, spend, samples, allocations, "frontier (one sort of marginal gains)"
    from ttcdsl.planner.lp import LPModel

    sweep_limit = problem.limits[index]
    model = LPModel(problem)
    base = np.array([l.bound for l in problem.limits], dtype=np.float64)  # ints would truncate a budget
    objective, spend, samples, allocations = [], [], [], []
    for bound in bounds:
        b = base.copy()
        b[index] = bound
        sol = model.solve(b)
        ok = sol.status == "optimal"
        objective.append(sol.objective if ok else np.nan)
        spend.append(sol.spend[sweep_limit.resource] if ok else np.nan)
        samples.append(sol.spend[0] if ok else np.nan)
        allocations.append(sol.x if ok else None)
    return (
        *map(np.asarray, (objective, spend, samples)), allocations,
        "LP re-solved per budget (parameters, no rebuild)",
    )


def _x_at(front, bound: float) -> np.ndarray | None:
    try:
        return front.x_at(bound)
    except ValueError:  # below the cheapest allocation: no point
        return None


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


def write_sweep_plot(sweep: dict[str, Any], path, *, policy: str | None = None):
    """Draw a sweep as a PNG at ``path`` (atomically): the predicted objective against the mean
    samples per query, one line for the policy's frontier and one for uniform allocation at the
    same spend. Points without a value (below the cheapest allocation) are left out. Returns the
    path. matplotlib is imported here only (Agg canvas, see :mod:`ttcdsl.plotting`)."""
    from ttcdsl.plotting import PLAN_COLOR, UNIFORM_COLOR, new_figure, save_png

    figure = new_figure(6.4, 4.4)
    ax = figure.add_subplot()
    drawn = 0
    for key, label, color, marker, zorder in (
        ("objective", f"{policy or 'policy'} (frontier)", PLAN_COLOR, "o", 3),
        ("uniform", "uniform at equal spend", UNIFORM_COLOR, "s", 2),
    ):
        rows = sorted((
            (p["samples_per_query"], p[key])
            for p in sweep["points"]
            if _finite(p.get("samples_per_query")) and _finite(p.get(key))
        ), key=lambda row: row[0])
        if not rows:
            continue
        xs = np.array([r[0] for r in rows], dtype=np.float64)
        ys = np.array([r[1] for r in rows], dtype=np.float64)
        ax.plot(xs, ys, marker=marker, markersize=3.5, color=color, label=label, zorder=zorder)
        drawn += 1
    if not drawn:
        raise UserError(
            "the sweep has no point to plot (every budget is below the cheapest allocation)",
            hint="sweep a range of larger budgets",
        )
    ax.set_xlabel("mean samples per query")
    ax.set_ylabel(f"predicted {sweep['objective']}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{policy + ': ' if policy else ''}{sweep['objective']} vs spend\n"
                 f"budget swept: {sweep['limit']}", fontsize=10)
    return save_png(figure, path)


def _finite(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and bool(np.isfinite(float(value)))
