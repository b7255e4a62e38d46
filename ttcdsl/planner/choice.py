"""Uniform as an explicit candidate: the planner never runs an allocation it expects to lose.

Uniform allocation at the plan's own spend is always a plan the runtime can execute (when the
policy limits only samples: :func:`ttcdsl.planner.uniform.uniform_choice`), but it is not in the
knapsack: the policy's bins, strategies and stop rules constrain every option there (a
``keep_probe`` bin, a verifier that is worse than a vote), so the knapsack's optimum can be worse
than ignoring the bins. The plan's own comparison with uniform would say so, but it is measured on
the curves the optimum was chosen on, which flatters the choice (the winner's curse).

So the choice is made on the cross-fitted difference (:mod:`ttcdsl.planner.crossfit`), the
knapsack's procedure scored on calibration queries it did not see, against uniform at the same
spend. The rule: **the plan runs whichever of the two is ahead out of fold** — uniform when the
cross-fitted difference is below zero. Both are plans the runtime can execute at the same spend,
so the one with the better unbiased estimate is the better bet; the size of the noise does not
change which bet is better, only how sure the plan can be. Then the plan runs uniform instead
(``uniform_choice``), says so in a warning, and predicts uniform's accuracy. The warning says
whether the policy was worse beyond noise (the whole 95% interval below zero, the rule by which
every verdict of the tool calls a policy "worse than uniform", :func:`ttcdsl.verdict.judge`) or
behind within noise (a near tie: switching costs nothing in expectation, and a larger
calibration table would settle it). The policy's bins still bin the queries (the run reports
them), but every query gets the uniform count, the policy's answer strategy over all its
samples, no stop rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttcdsl.planner.calibration import Calibration
from ttcdsl.planner.crossfit import CrossFit, cross_fit
from ttcdsl.planner.knapsack import Knapsack, Solution
from ttcdsl.planner.problem import BinCurves
from ttcdsl.rates import rate_se


@dataclass(frozen=True, slots=True)
class Decision:
    """The rule's inputs and outcome at one budget: the cross-fitted comparison (None: it cannot
    be estimated), the spend uniform would run at, and uniform as a plan (None: the policy is
    not behind out of fold, or its limits do not let the plan run uniform)."""

    fit: CrossFit | None
    spend: float
    uniform: dict[str, Any] | None

    @property
    def behind(self) -> bool:
        return self.fit is not None and self.fit.difference < 0


def decide(
    calibration: Calibration,
    curves: BinCurves,
    problem: Knapsack,
    solve: Callable[[Knapsack], Solution],
    *,
    samples: float,
    seed: int = 0,
) -> Decision:
    """Whether the plan of ``problem`` runs uniform instead (module docstring): the one rule for
    ``ttc plan`` (:func:`choose`) and for every point of ``ttc plan --sweep``. ``samples``: the
    plan's own mean samples per query."""
    from ttcdsl.planner.uniform import uniform_choice

    fit = cross_fit(calibration, curves, problem, solve, seed=seed)
    # uniform spends the whole samples budget where one binds (at most the counts the table
    # can serve, as the policy's allocation), the plan's spend otherwise: never less than the
    # plan spends, so the comparison above, made at the plan's spend, stays fair to the policy
    bounds = [l.bound for l in problem.batch_limits if problem.resources[l.resource] == "samples"]
    spend = min(bounds + [float(curves.levels[-1])]) if bounds else float(samples)
    behind = fit is not None and fit.difference < 0
    return Decision(fit, spend, uniform_choice(calibration, curves.levels, spend) if behind else None)


def choose(
    plan: dict[str, Any],
    calibration: Calibration,
    curves: BinCurves,
    problem: Knapsack,
    solve: Callable[[Knapsack], Solution],
    *,
    seed: int = 0,
) -> None:
    """Record the cross-fitted comparison in ``plan["baseline"]`` and switch ``plan`` to
    uniform where the policy's allocation is behind uniform out of fold (module docstring)."""
    from ttcdsl.planner.uniform import uniform_at
    from ttcdsl.verdict import judge, verdict

    baseline = plan.get("baseline")
    if baseline is None or plan.get("predicted") is None:
        return
    decision = decide(calibration, curves, problem, solve, samples=float(plan["predicted"]["samples"]), seed=seed)
    fit = decision.fit
    baseline["cross_fitted"] = None if fit is None else _summary(fit, verdict)
    if not decision.behind:
        return
    beyond = judge(fit.difference, fit.difference_se) == "worse"
    how = (
        f"worse than uniform at the same spend beyond noise ({100 * fit.difference:+.1f} points, "
        f"{_interval(fit)[1:-1]}, wholly below zero)" if beyond else
        f"behind uniform at the same spend within noise ({100 * fit.difference:+.1f} points, "
        f"{_interval(fit)[1:-1]}: a near tie, so uniform is the better bet at no expected cost)"
    )
    spend, candidate = decision.spend, decision.uniform
    if candidate is None:
        plan["warnings"].append(
            f"on calibration queries it did not see, this allocation is {how}, but the policy's "
            "limits do not let the plan run uniform instead (it limits tokens or one bin, or its "
            "probe or per-query bounds exclude the uniform count)"
        )
        return
    (entry,) = uniform_at(calibration, np.array([spend]), per_query=True)
    per_query = entry["objective_per_query"]
    q = len(per_query)
    candidate["policy_predicted"] = dict(plan["predicted"])
    candidate["policy_baseline"] = {k: v for k, v in baseline.items() if k != "cross_fitted"}
    plan["uniform_choice"] = candidate
    metric = "coverage" if calibration.policy.objective == "coverage" else "accuracy"
    plan["predicted"] = {
        "accuracy": entry["accuracy"],
        "accuracy_se": rate_se(float(per_query.std(ddof=1) / math.sqrt(q)), float(per_query.mean()), q)
        if q > 1 else None,
        "coverage": entry["coverage"],
        "samples": spend,
        "samples_se": 0.0,
        "tokens": None,
        "tokens_se": None,
    }
    plan["predicted"][f"{metric}_se"] = plan["predicted"]["accuracy_se"]
    # the plan IS uniform now: its baseline is itself, at the same spend
    baseline.update({
        "samples": spend, "accuracy": entry["accuracy"], "coverage": entry["coverage"],
        "objective": entry["objective"], "difference": 0.0, "difference_se": 0.0,
        "verdict": verdict(0.0, 0.0),
        "how": f"the plan runs uniform itself: every query gets {_counts(candidate)} samples "
        f"(mixed to spend {spend:.4g} per query), no stop rules",
    })
    for spec in plan["bins"]:
        spec["allocation"] = [dict(o) for o in candidate["allocation"]]
        spec["predicted"] = None
    n = problem.meta["batch_size"]
    for entry in plan["budget"]:  # only batch sample limits (uniform_choice's condition)
        if entry.get("kind") in ("mean", "total") and entry.get("spent") is not None:
            entry["spent"] = spend if entry["kind"] == "mean" else spend * n
            entry["binding"] = bool(entry["spent"] >= entry["value"] * (1 - 1e-3))
    plan["warnings"].append(
        f"the plan runs UNIFORM allocation ({_counts(candidate)} samples per query, "
        f"{candidate['strategy']}, no stop rules): on calibration queries it did not see, the "
        f"policy's best allocation was {how}; its bins, strategies or stop rules "
        f"{'cost' if beyond else 'seem to cost'} more than they gain on this table"
    )


def _summary(fit: CrossFit, verdict) -> dict[str, Any]:
    return {
        "folds": fit.folds,
        "value": fit.value,
        "uniform": fit.uniform,
        "samples": fit.samples,
        "difference": fit.difference,
        "difference_se": fit.difference_se,
        "verdict": verdict(fit.difference, fit.difference_se),
    }


def _interval(fit: CrossFit) -> str:
    from ttcdsl.verdict import interval

    se = fit.difference_se
    if se is None or not math.isfinite(se):
        return "(no standard error)"
    return interval(fit.difference, se)


def _counts(candidate: dict[str, Any]) -> str:
    counts = sorted(o["samples"] for o in candidate["allocation"])
    return " or ".join(str(n) for n in counts)
