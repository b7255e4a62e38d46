"""``ttc simulate --sweep LO..HI``: the simulated objective against the budget, for the policy,
uniform allocation at the policy's spend and the static oracle at the same spend.

Each budget is the policy planned again at ``mean samples per query <= B`` (the statement
rewritten in its source, as ``ttc compare`` does: :func:`ttcdsl.compare.runs.with_limit`; a
policy without one at its first batch limit in its own units, ``total tokens <= B``) and
simulated on the same draws of the workload (same seeds at every budget), so the points differ
by the budget alone. A budget the policy cannot be planned at (below its probe, say) gets a row
with the reason; the others stand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ttcdsl.errors import UserError
from ttcdsl.verdict import format_interval

ORACLE_COLOR = "tab:green"


def sweep(budgets: Sequence[float], simulate_at: Callable[[float], dict],
          limit: str = "mean samples per query") -> dict[str, Any]:
    """``simulate_at(budget)`` (a :func:`ttcdsl.simulate.simulate_plan` report) at every budget,
    shaped as rows; a budget that raises a :class:`UserError` gets its message. ``limit``: what
    the budgets are values of (the policy's limit they set)."""
    points, first = [], None
    for budget in budgets:
        try:
            report = simulate_at(budget)
        except UserError as error:
            points.append({"budget": budget, "error": error.message})
            continue
        first = first or report
        metric = "coverage" if report["objective"] == "coverage" else "accuracy"
        points.append({
            "budget": budget,
            "samples": report["simulated"]["samples"],
            "max_samples": report["simulated"]["max_samples"],
            "policy": report["simulated"][metric],
            "uniform": report["uniform"][metric],
            "oracle": report["oracle"]["objective"],
            "difference": report["difference"],
            "verdict": report["verdict"],
        })
    if first is None:
        reasons = "; ".join(f"{p['budget']:g}: {p['error']}" for p in points)
        raise UserError(f"no budget of the sweep could be simulated ({reasons})")
    return {
        "policy": first["policy"], "workload": first["workload"], "queries": first["queries"],
        "seeds": first["seeds"], "objective": first["objective"],
        "limit": limit, "points": points,
    }


def render(doc: Mapping[str, Any], file=None) -> None:
    """The sweep as a rich table: per budget the spend and the objective of the three, each
    with its 95% interval, and the verdict against uniform."""
    from rich.console import Console
    from rich.table import Table

    metric = "coverage" if doc["objective"] == "coverage" else "accuracy"
    table = Table(title=f"{doc['policy']} on {doc['workload']}: simulated {metric} by budget "
                  f"({doc['queries']} questions x {doc['seeds']} draws, 95% intervals)")
    for name, justify in (("budget", "right"), ("samples/query", "right"), ("policy %", "right"),
                          ("uniform %", "right"), ("oracle %", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify)
    for p in doc["points"]:
        if "error" in p:
            table.add_row(f"{p['budget']:g}", "", "", "", "", f"not simulated: {p['error']}")
            continue
        table.add_row(f"{p['budget']:g}", _cell(p["samples"], 1.0, 2), _cell(p["policy"], 100.0, 1),
                      _cell(p["uniform"], 100.0, 1), _cell(p["oracle"], 100.0, 1), p["verdict"])
    Console(file=file, highlight=False, width=160).print(table)


def _cell(v: Mapping[str, float], scale: float, digits: int) -> str:
    return format_interval(v, scale, digits)


def write_plot(doc: Mapping[str, Any], path) -> Any:
    """The sweep as a PNG (Agg, :mod:`ttcdsl.plotting`): the objective against the simulated mean
    samples per query for the policy, uniform and the oracle, with 95% error bars."""
    import numpy as np

    from ttcdsl.plotting import PLAN_COLOR, UNIFORM_COLOR, new_figure, save_png

    rows = sorted((p for p in doc["points"] if "error" not in p), key=lambda p: p["samples"]["mean"])
    figure = new_figure(6.4, 4.4)
    ax = figure.add_subplot()
    xs = np.array([p["samples"]["mean"] for p in rows])
    for key, label, color, marker in (("policy", doc["policy"], PLAN_COLOR, "o"),
                                      ("uniform", "uniform at equal spend", UNIFORM_COLOR, "s"),
                                      ("oracle", "static oracle at equal spend", ORACLE_COLOR, "^")):
        ys = np.array([100 * p[key]["mean"] for p in rows])
        # below and above the mean apart: an interval cut at 0 or 100% is not symmetric
        err = np.array([[100 * _reach(p[key], "lo") for p in rows],
                        [100 * _reach(p[key], "hi") for p in rows]])
        ax.errorbar(xs, ys, yerr=err, marker=marker, markersize=3.5, color=color, label=label, capsize=2)
    ax.set_xlabel("mean samples per query (simulated)")
    ax.set_ylabel(f"simulated {doc['objective']} %")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{doc['policy']} on {doc['workload']}: {doc['objective']} vs budget\n"
                 f"budget swept: {doc['limit']}", fontsize=10)
    return save_png(figure, path)


def _reach(summary: Mapping[str, float], side: str) -> float:
    """How far the interval reaches from the mean to its ``lo`` or ``hi``: 0 where unknown."""
    bound = summary.get(side)
    if bound is None or not math.isfinite(bound):
        return 0.0
    return abs(float(bound) - float(summary["mean"]))
