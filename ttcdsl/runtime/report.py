"""The run report: what the run achieved, what it spent, and what the plan said it would.

``report.json`` (for machines) holds:

* ``accuracy`` (share of queries whose final answer is labelled correct, with its binomial
  standard error) and ``coverage`` (share with at least one correct sample), over labelled queries;
  ``predicted``: the plan's accuracy and its standard error, and ``z``, the gap in standard errors
  of the difference (plan and run errors combined);
* ``spend``: samples and billed tokens, total and per query; per bin the same, with the bin's
  accuracy and the plan's prediction; ``histogram``: queries per sample count;
* ``truncation_rate``: share of samples that ended with finish reason ``length``;
* ``bandit`` (bandit runs): the settings, the queries the solved rules retired and those still
  unsolved when the budget or the rounds ran out;
* ``stop_savings``: samples the stop rules did not spend, against the targets of the queries they
  retired; ``budget``: each limit with its cap and spend; counts of queries cut short by the
  budget or by a backend shortfall;
* ``baseline``: uniform allocation at equal spend, where the backend can replay it: every query
  gets the same number of samples (``floor`` or ``ceil`` of the run's mean, the extra ones to the
  first queries by seeded rank) from the same table with the same seed, aggregated with the
  policy's answer strategy, no probe, no stop rules.

The terminal rendering is rich tables. PNG plots of a report (its histogram, the bins against the
plan, the run against the uniform baseline) are drawn on request by ``ttc report RUN_DIR --plots
DIR`` (:mod:`ttcdsl.runtime.plots`, matplotlib); a run itself draws none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ttcdsl.lang import ir
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.runtime.assignment import rank_key
from ttcdsl.runtime.backend import Backend, GenerationRequest


def _rate(values: Sequence[bool | None]) -> tuple[float | None, float | None, int]:
    known = [bool(v) for v in values if v is not None]
    if not known:
        return None, None, 0
    p = sum(known) / len(known)
    return p, math.sqrt(p * (1 - p) / len(known)), len(known)


def build_report(
    outcome,
    plan: Mapping[str, Any],
    policy: ir.Policy,
    *,
    baseline: Callable[[int], dict] | None = None,
) -> dict[str, Any]:
    results = outcome.results
    n = len(results)
    accuracy, accuracy_se, labelled = _rate([r.correct for r in results])
    coverage, _, _ = _rate([r.covered for r in results])
    samples = sum(r.samples for r in results)
    tokens = sum(r.tokens for r in results)
    predicted = plan.get("predicted") or {}
    z = None
    if accuracy is not None and predicted.get("accuracy") is not None:
        se = math.hypot(accuracy_se or 0.0, predicted.get("accuracy_se") or 0.0)
        z = (accuracy - predicted["accuracy"]) / se if se > 0 else None
    bins = []
    for b, spec in enumerate(plan["bins"]):
        members = [r for r in results if r.bin == spec["name"]]
        acc, acc_se, _ = _rate([r.correct for r in members])
        bins.append(
            {
                "name": spec["name"],
                "strategy": spec["strategy"],
                "queries": len(members),
                "samples": sum(r.samples for r in members),
                "tokens": sum(r.tokens for r in members),
                "mean_samples": (sum(r.samples for r in members) / len(members)) if members else None,
                "accuracy": acc,
                "accuracy_se": acc_se,
                "predicted_accuracy": (spec.get("predicted") or {}).get("accuracy"),
                "predicted_accuracy_se": (spec.get("predicted") or {}).get("accuracy_se"),
                "predicted_samples": (spec.get("predicted") or {}).get("samples"),
                "stopped": sum(r.stopped for r in members),
            }
        )
    histogram: dict[int, int] = {}
    for r in results:
        histogram[r.samples] = histogram.get(r.samples, 0) + 1
    truncated = sum(r.truncated for r in results)
    report: dict[str, Any] = {
        "policy": plan["policy"]["name"],
        "mode": plan["mode"],
        "queries": n,
        "labelled": labelled,
        "rounds": outcome.rounds,
        "end": outcome.end,
        "generated": outcome.generated,
        "reused": outcome.reused,
        "accuracy": accuracy,
        "accuracy_se": accuracy_se,
        "coverage": coverage,
        "predicted": {
            "accuracy": predicted.get("accuracy"),
            "accuracy_se": predicted.get("accuracy_se"),
            "samples": predicted.get("samples"),
            "z": z,
        },
        "spend": {
            "samples": samples,
            "tokens": tokens,
            "samples_per_query": samples / n if n else None,
            "tokens_per_query": tokens / n if n else None,
        },
        "bins": bins,
        "histogram": {str(k): histogram[k] for k in sorted(histogram)},
        "truncation_rate": truncated / samples if samples else None,
        "stop_savings": {
            "stopped_queries": sum(r.stopped for r in results),
            "samples_saved": sum(max(0, (r.target or 0) - r.samples) for r in results if r.stopped),
        },
        "budget": list(outcome.budget),
        "budget_cut_queries": sum(r.budget_cut for r in results),
        "exhausted_queries": sum(r.exhausted is not None for r in results),
        "baseline": baseline(samples) if baseline is not None and n else None,
        "plots": _plots_note(),
    }
    if plan["mode"] == "bandit":
        settings = plan.get("bandit") or {}
        report["bandit"] = {
            "round_samples": settings.get("round_samples"),
            "explore": settings.get("explore"),
            "bill": settings.get("bill"),
            "solved_queries": sum(r.stopped for r in results),
            # neither solved nor out of samples: the budget (or the rounds) ended them
            "unsolved_at_end": sum(r.budget_cut for r in results),
        }
    return report


def uniform_baseline(
    backend: Backend, policy: ir.Policy, query_ids: Sequence[str], spend: int, seed: int
) -> dict[str, Any]:
    """Uniform allocation at ``spend`` samples in total (module docstring)."""
    n = len(query_ids)
    base, extra = divmod(spend, n)
    ranked = sorted(query_ids, key=lambda q: (rank_key(seed, q), q))
    counts = {q: base + (1 if i < extra else 0) for i, q in enumerate(ranked)}
    requests = [
        GenerationRequest.from_sampling(policy.sampling, query_id=q, n=counts[q])
        for q in query_ids
        if counts[q] > 0
    ]
    results = {r.query_id: r for r in backend.generate(requests)}
    strategy = policy.answer
    if strategy.kind == "keep_probe":
        strategy = ir.Strategy(kind="majority_vote")
    outcomes = []
    tokens = 0
    for q in query_ids:
        result = results.get(q)
        rows = [s.to_row(q, round=0) for s in result.samples] if result else []
        tokens += sum(r.completion_tokens or 0 for r in rows)
        outcomes.append(aggregate(strategy, rows, scorers=policy.scorers))
    accuracy, accuracy_se, _ = _rate([o.correct for o in outcomes])
    coverage, _, _ = _rate([o.covered for o in outcomes])
    return {
        "strategy": strategy.kind,
        "samples": spend,
        "samples_per_query": spend / n,
        "completion_tokens": tokens,
        "accuracy": accuracy,
        "accuracy_se": accuracy_se,
        "coverage": coverage,
        "how": f"every query gets {base}{f' or {base + 1}' if extra else ''} samples from the same "
        "replay table and seed, no probe, no stop rules",
    }


def _plots_note() -> str:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # found, not imported: a run stays fast
        return "matplotlib is not installed: no PNG plots (pip install matplotlib)"
    return "PNG plots: ttc report RUN_DIR --plots DIR"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_report(report: Mapping[str, Any], file=None) -> None:
    """The report as rich tables (standard output by default)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        console.width = 120  # a pipe or a file: no terminal width to fit
    partial = " - PARTIAL, the run has not finished" if report.get("partial") else ""
    head = Table(title=f"run of {report['policy']} ({report['mode']}){partial}", show_header=False)
    head.add_column("what")
    head.add_column("value", justify="right")
    acc = report["accuracy"]
    pred = report["predicted"]
    rows = [
        ("queries", report["queries"]),
        ("rounds", f"{report['rounds']} (ended: {report['end']})"),
        ("accuracy", f"{_fmt(acc)} ± {_fmt(report['accuracy_se'], 2)}" if acc is not None else "-"),
        ("plan predicted", f"{_fmt(pred['accuracy'])} ± {_fmt(pred['accuracy_se'], 2)} "
                           f"(z = {_fmt(pred['z'], 2)})"),
        ("coverage", _fmt(report["coverage"])),
        ("samples / query", f"{_fmt(report['spend']['samples_per_query'])} "
                            f"(plan {_fmt(pred['samples'])})"),
        ("tokens / query", _fmt(report["spend"]["tokens_per_query"], 6)),
        ("truncation rate", _fmt(report["truncation_rate"], 3)),
        ("stopped early", f"{report['stop_savings']['stopped_queries']} queries, "
                          f"{report['stop_savings']['samples_saved']} samples saved"),
        ("cut by budget / shortfall", f"{report['budget_cut_queries']} / {report['exhausted_queries']}"),
    ]
    bandit = report.get("bandit")
    if bandit:
        rows[-2] = ("solved (retired)", f"{bandit['solved_queries']} queries; explore "
                    f"{bandit['explore']}, rounds of {bandit['round_samples']}")
    base = report.get("baseline")
    if base:
        rows.append(("uniform at equal spend", f"{_fmt(base['accuracy'])} ({base['how']})"))
    for name, value in rows:
        head.add_row(name, str(value))
    console.print(head)
    table = Table(title="per bin")
    for column in ("bin", "strategy", "queries", "samples/q", "plan samples/q", "accuracy",
                   "plan accuracy", "stopped", "tokens"):
        table.add_column(column, justify="left" if column in ("bin", "strategy") else "right")
    for b in report["bins"]:
        table.add_row(
            b["name"], b["strategy"], str(b["queries"]), _fmt(b["mean_samples"]),
            _fmt(b["predicted_samples"]), _fmt(b["accuracy"]), _fmt(b["predicted_accuracy"]),
            str(b["stopped"]), str(b["tokens"]),
        )
    console.print(table)
    budget = Table(title="budget")
    for column in ("limit", "cap", "spent", "largest query", "within"):
        budget.add_column(column)
    for limit in report["budget"]:
        budget.add_row(limit["label"], _fmt(limit["cap"], 8), _fmt(limit["spent"], 10),
                       _fmt(limit["largest"], 10), "yes" if limit["within"] else "NO")
    if report["budget"]:
        console.print(budget)
    hist = "  ".join(f"{k}:{v}" for k, v in report["histogram"].items())
    console.print(f"samples per query (count:queries)  {hist}")
    console.print(f"note: {_plots_note()}")  # not the stored note: an older run's may be stale
