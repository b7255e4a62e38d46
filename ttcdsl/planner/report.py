"""The plan document: the solved, rounded allocation written out with everything that explains it.

Predictions come from the *rounded* allocation (what will run), not the relaxation; the solver
section carries both values and the rounding loss. Uncertainty is the standard error of the bin
means over the calibration queries (the spread a new batch of the same kind would show), plus the
Monte Carlo noise where curves were simulated.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ttcdsl.lang import ir
from ttcdsl.planner.calibration import Calibration
from ttcdsl.planner.knapsack import Knapsack, Solution
from ttcdsl.planner.plan import PLAN_VERSION
from ttcdsl.planner.problem import BinCurves
from ttcdsl.rates import rate_se

STOP_CHECK = (
    "after every sample, from max(1, probe, the per-query minimum) samples on (probe included)"
)


def plan_document(
    *,
    calibration: Calibration,
    curves: BinCurves,
    problem: Knapsack,
    solution: Solution | None,
    queries: np.ndarray | None,
    cross_checks: list[Solution],
    mode: str,
    policy_file: str,
    table_file: str,
    table_hash: str,
    timings: dict[str, float],
    warnings: list[str],
    reps: int,
    seed: int,
) -> dict[str, Any]:
    from ttcdsl import __version__

    policy = calibration.policy
    counts = calibration.counts()
    x = None if queries is None else queries / np.maximum(counts, 1)[:, None]
    if x is not None:
        # a bin without calibration queries still runs its (only) allowed count
        empty = counts == 0
        x[empty] = problem.allowed[empty] / problem.allowed[empty].sum(1, keepdims=True)

    doc: dict[str, Any] = {
        "ttcdsl_plan": PLAN_VERSION,
        "policy": {
            "name": policy.name,
            "description": policy.description,
            "file": policy_file,
            "source_sha256": policy.source_hash,
        },
        "calibration": {
            "table": table_file,
            "content_sha256": table_hash,
            "queries": calibration.n_queries,
            "dropped": len(calibration.dropped),
            "unlabelled": len(calibration.unlabelled),
            "samples_per_query": list(calibration.samples_per_query),
            "probe_split": (
                f"{policy.probe} samples of each query, the first a replay with seed {seed} serves, "
                "are its probe: "
                "they give its features and its bin; the run is simulated from that probe, then "
                "the query's other samples in random orders"
                if policy.probe
                else "no probe: one bin; curves from all samples"
            ),
            "curve_reps": reps,
            "seed": seed,
            # counts past this many samples per query are model-extrapolated (--extrapolate)
            "extrapolated_beyond": _extrapolated_beyond(curves),
        },
        "objective": policy.objective,
        "mode": mode,
        "batch_size": int(problem.meta["batch_size"]),
        "probe": policy.probe,
        "stop_check": STOP_CHECK,
        "binning": _binning(calibration),
        "bins": [_bin(calibration, curves, x, queries, b) for b in range(len(policy.bins))],
        "budget": _budget(policy, problem, x),
        "predicted": _predicted(calibration, problem, curves, x) if x is not None else None,
        "baseline": _baseline(calibration, problem, curves, x) if x is not None else None,
        "solver": _solver(problem, solution, x, cross_checks),
    }
    if isinstance(policy.allocation, ir.Bandit):
        bandit = policy.allocation
        doc["bandit"] = {
            "round_samples": bandit.round_samples,
            "explore": bandit.explore,
            "solved": [source_text(policy, c.span) for c in bandit.solved],
            "bill": bandit.bill,
        }
    doc["timings"] = {k: round(v, 4) for k, v in timings.items()}
    doc["warnings"] = warnings
    doc["created_by"] = f"ttc {__version__}"
    return doc


def _extrapolated_beyond(curves: BinCurves) -> int | None:
    """The logged depth past which the counts the plan considers are model-extrapolated
    (--extrapolate); None when every count can be replayed from the calibration table."""
    if not curves.extrapolate:
        return None
    return curves.depth if (curves.allowed & curves.extrapolated).any() else None


def source_text(policy: ir.Policy, span) -> str:
    return " ".join(policy.source.text[span.start : span.end].split())


def _binning(calibration: Calibration) -> dict[str, Any] | None:
    binning = calibration.policy.binning
    if binning is None:
        return None
    return {
        "key": binning.key,
        "method": binning.method,
        "cuts": list(binning.cuts),
        "edges": list(calibration.edges),
        "rule": "a query whose key equals an edge goes to the upper bin",
        "ties": [dict(t) for t in calibration.ties],
    }


def _bin(calibration, curves: BinCurves, x, queries, b: int) -> dict[str, Any]:
    policy = calibration.policy
    spec = policy.bins[b]
    counts = calibration.counts()
    edges = (-math.inf, *calibration.edges, math.inf)
    allowed = curves.allowed[b]
    value = curves.coverage if policy.objective == "coverage" else curves.accuracy
    out: dict[str, Any] = {
        "name": spec.name,
        "share": counts[b] / counts.sum(),
        "queries": int(counts[b]),
        "key_range": [edges[b], edges[b + 1]] if policy.binning else None,
        "strategy": spec.strategy.kind,
        "scorer": spec.strategy.scorer,
        "sampling": sampling_fields(spec.sampling),
        "stop": [source_text(policy, rule.span) for rule in spec.stop],
    }
    if x is not None:
        options = np.flatnonzero(x[b] > 0)
        out["allocation"] = [
            {
                "samples": int(curves.levels[k]),
                "share": float(x[b, k]),
                "queries": int(queries[b, k]),
            }
            for k in options
        ]
        out["predicted"] = {
            "accuracy": float(x[b] @ curves.accuracy[b]),
            "accuracy_se": float(x[b] @ curves.accuracy_se[b]),
            "coverage": float(x[b] @ curves.coverage[b]),
            "samples": float(x[b] @ curves.samples[b]),
            "samples_se": float(x[b] @ curves.samples_se[b]),
            "tokens": float(x[b] @ np.nan_to_num(curves.tokens[b], nan=0.0))
            if np.isfinite(curves.tokens[b][x[b] > 0]).all()
            else None,
            "tokens_se": float(x[b] @ np.nan_to_num(curves.tokens_se[b], nan=0.0))
            if np.isfinite(curves.tokens_se[b][x[b] > 0]).all()
            else None,
        }
        if counts[b] == 0:
            # no calibration query measured this bin: what a query that lands in it would score
            # is unknown (its curves are empty means, 0), not 0 with certainty
            out["predicted"].update(accuracy=None, accuracy_se=None, coverage=None)
    if _is_bandit(policy):
        return out
    curve: dict[str, Any] = {"levels": curves.levels[allowed], "value": value[b][allowed]}
    if curves.stop_simulated[b]:  # otherwise the expected samples are the levels themselves
        curve["samples"] = curves.samples[b][allowed]
    if np.isfinite(curves.tokens[b][allowed]).any():
        curve["tokens"] = curves.tokens[b][allowed]
    extrapolated = allowed & curves.extrapolated[b]
    curve["extrapolated_from"] = int(curves.levels[extrapolated][0]) if extrapolated.any() else None
    curve["stop_rules_simulated"] = bool(curves.stop_simulated[b])
    out["curve"] = curve
    return out


def _is_bandit(policy: ir.Policy) -> bool:
    return isinstance(policy.allocation, ir.Bandit)


def sampling_fields(sampling: ir.Sampling) -> dict[str, Any]:
    values = ((f.name, getattr(sampling, f.name)) for f in dataclasses.fields(sampling))
    return {name: value for name, value in values if value is not None}


def budget_entries(policy: ir.Policy) -> list[tuple[ir.BudgetLimit, dict[str, Any]]]:
    """Each declared limit as the plan lists it (a range ``a..b`` once, under its lower bound)."""
    out = []
    seen_ranges = set()
    for limit in policy.budget.limits:
        if limit.kind in ("per_query_min", "per_query_max"):
            # `samples per query in a..b` declares two bounds with one span: report it once
            key = (limit.span.start, limit.span.end)
            if key in seen_ranges:
                continue
            seen_ranges.add(key)
        out.append(
            (
                limit,
                {
                    "label": source_text(policy, limit.span),
                    "kind": limit.kind,
                    "unit": limit.unit,
                    "bin": limit.bin,
                    "value": limit.value,
                },
            )
        )
    return out


def _budget(policy: ir.Policy, problem: Knapsack, x) -> list[dict[str, Any]]:
    n = problem.meta["batch_size"]
    resources = problem.resources
    per_bin = problem.group_spend(x) if x is not None else None
    spend = problem.spend(x) if x is not None else None
    out = []
    for limit, entry in budget_entries(policy):
        if x is not None and limit.kind in ("mean", "total"):
            r = resources.index(limit.unit)
            if limit.bin is None:
                mean = spend[r]
            else:
                mean = per_bin[r, list(problem.group_names).index(limit.bin)]
            if limit.kind == "mean":
                spent = mean
            else:
                share = 1.0 if limit.bin is None else problem.weight[list(problem.group_names).index(limit.bin)]
                spent = mean * n * share
            entry["spent"] = float(spent)
            entry["binding"] = bool(spent >= limit.value * (1 - 1e-3))
        out.append(entry)
    return out


def _predicted(calibration: Calibration, problem: Knapsack, curves: BinCurves, x) -> dict[str, Any]:
    """Per-query means over the batch, each with its standard error, so a run's spend can be
    scored like its accuracy. The error is that of a mean over the calibration queries, each
    valued at its bin's allocation: the spread between queries (bins included, since a new
    batch's bin shares vary too) over the query count, plus the replications' noise."""
    w = problem.weight

    def mean(values: np.ndarray) -> float:
        return float(w @ (x * np.where(x > 0, values, 0.0)).sum(1))

    def se(name: str) -> float | None:
        rows = calibration.bin_index
        mix = x[rows]  # [Q, K] each query's allocation
        used = mix > 0
        values = curves.per_query[name]
        if not np.isfinite(np.where(used, values, 0.0)).all():
            return None
        per_query = (mix * np.where(used, values, 0.0)).sum(1)
        noise = ((mix * np.sqrt(np.where(used, curves.per_query_noise[name], 0.0))).sum(1)) ** 2
        q = len(per_query)
        between = per_query.var(ddof=1) / q if q > 1 else 0.0
        return float(np.sqrt(between + noise.sum() / q**2))

    tokens_known = np.isfinite(np.where(x > 0, curves.tokens, 0.0)).all()
    accuracy, accuracy_se = mean(curves.accuracy), se("accuracy")
    return {
        "accuracy": accuracy,
        "accuracy_se": None if accuracy_se is None
        else rate_se(accuracy_se, accuracy, calibration.n_queries),
        "coverage": mean(curves.coverage),
        "samples": mean(curves.samples),
        "samples_se": se("samples"),
        "tokens": mean(curves.tokens) if tokens_known else None,
        "tokens_se": se("tokens") if tokens_known else None,
        # the share of calibration samples whose count is unknown, billed at max_tokens as the
        # run's ledger bills them: the tokens are then a bill, not a measurement
        "tokens_unknown_share": unknown_token_share(calibration) if tokens_known else None,
    }


def unknown_token_share(calibration: Calibration) -> float:
    """The share of the calibration's samples without a completion token count (0 when all
    have one; a table with none has no token figures at all)."""
    pool = calibration.pool
    unknown = pool.valid & ~np.isfinite(pool.tokens)
    return float(unknown.sum() / max(1, pool.valid.sum()))


def _baseline(calibration: Calibration, problem: Knapsack, curves: BinCurves, x) -> dict[str, Any] | None:
    from ttcdsl.planner.uniform import equal_spend, spend_words, uniform_at, versus_uniform

    samples = float(problem.weight @ (x * curves.samples).sum(1))
    with np.errstate(invalid="ignore"):
        tokens = float(problem.weight @ (x * np.where(x > 0, curves.tokens, 0.0)).sum(1))
    tokens = tokens if math.isfinite(tokens) else None
    # uniform spends as much as the plan in the budget's unit (tokens for a token budget)
    spent = equal_spend(calibration, samples, tokens)
    (uniform,) = uniform_at(calibration, np.array([spent]))
    if uniform is None:
        return None
    lo = math.floor(spent)
    return {
        "strategy": calibration.policy.answer.kind,
        "samples": spent,
        **uniform,
        "how": f"every query gets {lo} or {lo + 1} samples (mixed to spend {spent:.4g} per "
        f"query), no probe, no stop rules, same held-out samples{spend_words(calibration, samples, tokens)}",
        # the plan minus uniform, paired per calibration query; null when it cannot be paired
        **(versus_uniform(calibration, curves, x, spent)
           or {"difference": None, "difference_se": None, "verdict": None}),
    }


def _solver(problem: Knapsack, solution: Solution | None, x, checks: list[Solution]) -> dict[str, Any] | None:
    if solution is None:
        return None
    rounded = problem.objective(x)
    return {
        "name": solution.solver,
        "status": solution.status,
        "seconds": solution.seconds,
        "relaxation": solution.objective,
        "dual_bound": solution.dual_bound,
        "gap": solution.gap,
        "objective": rounded,
        "rounding_loss": solution.objective - rounded,
        "multipliers": [float(m) for m in solution.multipliers],
        "cross_checks": [
            {
                "solver": c.solver,
                "status": c.status,
                "objective": c.objective,
                "integral": c.integral,
                "seconds": c.seconds,
            }
            for c in checks
        ],
    }
