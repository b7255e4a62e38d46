"""The run report: what the run achieved, what it spent, and what the plan said it would.

``report.json`` (for machines) holds:

* ``accuracy`` (share of queries whose final answer is labelled correct, with its binomial
  standard error) and ``coverage`` (share with at least one correct sample), over labelled queries;
  ``predicted``: the plan's accuracy and its standard error, and ``z``, the gap in standard errors
  of the difference (plan and run errors combined);
* ``accuracy_over`` / ``coverage_over``: the queries each rate is computed over. A query with
  no answer counts as WRONG where the source is labelled (even if some of its samples are
  unlabelled: a sample without an answer is never right), except one the backend gave no sample
  at all (a failed request, a replay table without it): its outcome is unknown, and it is left
  out (``unserved_queries`` counts them; every query unserved: the rates are None);
* ``outcome_rules``: the version of the rules that scored each query
  (:data:`ttcdsl.runtime.aggregate.OUTCOME_RULES`; absent: scored before they were numbered);
* ``predicted.samples_z``: the spend's gap to the plan (mean samples per query; the run's
  standard error of the mean and the plan's ``samples_se`` combined; none without it);
* ``spend``: samples; tokens MEASURED (``None``: some sample's count is unknown, with
  ``tokens_note`` saying how many) apart from ``billed_tokens``, the ledger's charge (an unknown
  count billed as ``max_tokens``, a worst-case bound); per bin the same, with the bin's
  accuracy and the plan's prediction; ``histogram``: queries per sample count;
* ``truncation_rate``: share of samples that ended with finish reason ``length`` (None where
  some sample's reason is unknown: the queries whose reasons are all known are no fair sample;
  ``truncated_at_least`` then counts the truncations seen in those);
* ``bandit`` (bandit runs): the settings, the queries the solved rules retired and those still
  unsolved when the budget or the rounds ran out;
* ``stop_savings``: samples the stop rules did not spend, against the targets of the queries they
  retired, counting only samples the backend could have served (``unverifiable_samples``: the
  rest), and of fire-and-cancel: ``cancelled_requests`` (samples asked in the round a query
  stopped and never generated) and ``past_stop_samples`` (generated past the stop point before a
  cancel took effect: spent and billed, never used); ``budget``: each limit with its cap, spend and ``basis`` (measured, or a worst-case
  bound where token counts are unknown); counts of queries cut short by the budget or by a
  backend shortfall, and ``shortfall``, in words;
* ``baseline``: uniform allocation at equal spend: every query gets the same number of samples
  (``floor`` or ``ceil`` of the run's mean, the extra ones to the first queries by seeded rank)
  with the run's seed, from the same replay table (a live run with ``--baseline``: from the
  run's model, its own samples reused, :mod:`ttcdsl.runtime.live_baseline`, which adds
  ``live``), aggregated with the policy's answer strategy, no probe, no stop rules; samples a
  short query cannot take go to the others by rank, and ``samples`` is what it DREW
  (``equal_spend`` says whether it reached the run's spend);
* ``verdict``: better / no better / worse than uniform at equal spend, from the paired per-query
  differences (:func:`ttcdsl.verdict.verdict`).

The terminal rendering is rich tables. PNG plots of a report (its histogram, the bins against the
plan, the run against the uniform baseline) are drawn on request by ``ttc report RUN_DIR --plots
DIR`` (:mod:`ttcdsl.runtime.plots`, matplotlib); a run itself draws none.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ttcdsl.lang import ir
from ttcdsl.planner.plan import bin_runs, edited_after_planning
from ttcdsl.rates import wilson_se
from ttcdsl.runtime.aggregate import OUTCOME_RULES, aggregate
from ttcdsl.runtime.assignment import rank_key
from ttcdsl.runtime.backend import Backend, GenerationRequest


def known_rate(values: Sequence[bool | None]) -> tuple[float | None, float | None, int]:
    """The share of True among the known values, its standard error, and how many are known:
    the one rule for every rate a report states (``accuracy`` over the queries whose correctness
    is known, ``coverage`` over those whose coverage is known; the two can differ), which
    :func:`ttcdsl.runtime.audit.check_results_file` applies again to ``results.jsonl``.
    The error is the Wilson interval's (its 95% half-width over 1.96), not Wald's
    sqrt(p(1-p)/n): Wald's is 0 wherever every query agrees, so one right query read
    "accuracy 1 ± 0" and a 5-sigma miss of the plan's prediction. The two agree for large n."""
    known = [bool(v) for v in values if v is not None]
    if not known:
        return None, None, 0
    n, p = len(known), sum(known) / len(known)
    return p, wilson_se(p, n), n


def build_report(
    outcome,
    plan: Mapping[str, Any],
    policy: ir.Policy,
    *,
    baseline: Callable[[int], dict] | None = None,
    no_baseline: str = "no uniform baseline for this backend",
) -> dict[str, Any]:
    """The report of a finished run (``baseline``: uniform at a spend, or None where the run
    has none, and ``no_baseline`` says why in the verdict), or of an unfinished one
    (``baseline`` not given)."""
    results = outcome.results
    n = len(results)
    accuracy, accuracy_se, labelled = known_rate([r.correct for r in results])
    coverage, _, covered_over = known_rate([r.covered for r in results])
    samples = sum(r.samples for r in results)
    predicted = plan.get("predicted") or {}
    z = None
    if accuracy is not None and predicted.get("accuracy") is not None:
        se = math.hypot(accuracy_se or 0.0, predicted.get("accuracy_se") or 0.0)
        z = (accuracy - predicted["accuracy"]) / se if se > 0 else None
    bins = []
    for b, spec in enumerate(plan["bins"]):
        members = [r for r in results if r.bin == spec["name"]]
        acc, acc_se, _ = known_rate([r.correct for r in members])
        # what ran: uniform's strategy in every bin where the plan runs uniform
        strategy, runs_uniform = bin_runs(plan, spec)
        bins.append(
            {
                "name": spec["name"],
                "strategy": strategy,
                "uniform": runs_uniform,
                "queries": len(members),
                "samples": sum(r.samples for r in members),
                "tokens": _measured(members),
                "billed_tokens": sum(r.billed_tokens for r in members),
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
    # a rate only where every query's finish reasons are known: the queries whose reasons are
    # all known are not a fair sample (a replay marks the samples IT cut at max_tokens, so a
    # query whose every sample was cut is "known" and the rate over such queries read 1)
    truncated = sum(r.truncated for r in results if r.truncated is not None)
    reasons_known = all(r.truncated is not None for r in results)
    base = None
    if baseline is not None and n:
        from ttcdsl.equal_spend import matched_baseline

        tokens = None if any(r.tokens is None for r in results) else sum(r.tokens for r in results)
        base = matched_baseline(baseline, policy, samples, tokens)
    # the verdict pairs the policy's objective: coverage for `maximize coverage`, else accuracy
    metric = "coverage" if policy.objective == "coverage" else "accuracy"
    per_query_base = None
    if base:
        accuracy_pairs, covered_pairs = base.pop("per_query"), base.pop("per_query_covered", None)
        per_query_base = covered_pairs if metric == "coverage" else accuracy_pairs
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
        # the denominators: queries each rate is computed over (a query with no answer counts
        # as wrong where the source is labelled, so it stays in)
        "accuracy_over": labelled,
        "unserved_queries": sum(r.samples == 0 and r.exhausted is not None for r in results),
        # an interrupted run's queries it had not reached yet: unknown, left out like the above
        "unreached_queries": sum(r.samples == 0 and r.exhausted is None for r in results)
        if outcome.end == "interrupted" else 0,
        "coverage": coverage,
        "coverage_over": covered_over,
        # the rules that scored each query (ttcdsl.runtime.aggregate.OUTCOME_RULES)
        "outcome_rules": OUTCOME_RULES,
        "predicted": {
            "accuracy": predicted.get("accuracy"),
            "accuracy_se": predicted.get("accuracy_se"),
            "samples": predicted.get("samples"),
            "samples_se": predicted.get("samples_se"),
            "z": z,
            "samples_z": _samples_z(results, predicted),
            # the plan was edited after the planner predicted it: the figures are not its own
            "plan_edited": edited_after_planning(plan),
        },
        "spend": _spend(results),
        "bins": bins,
        "histogram": {str(k): histogram[k] for k in sorted(histogram)},
        "truncation_rate": truncated / samples if reasons_known and samples else None,
        # where the rate is unknown: the truncations seen in queries whose reasons are known
        "truncated_at_least": None if reasons_known else truncated,
        "stop_savings": _stop_savings(results),
        "budget": list(outcome.budget),
        "budget_cut_queries": sum(r.budget_cut for r in results),
        "exhausted_queries": sum(r.exhausted is not None for r in results),
        "unkeyed": _unkeyed(results, plan),
        "shortfall": _shortfall(results),
        "baseline": base,
        "verdict": _verdict(results, base, per_query_base, metric=metric,
                            why="the run has not finished" if baseline is None else no_baseline),
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


def _measured(results) -> int | None:
    """Measured tokens of ``results``: unknown (None) when any query's count is unknown."""
    if any(r.tokens is None for r in results):
        return None
    return sum(r.tokens for r in results)


def _spend(results) -> dict[str, Any]:
    """Samples; tokens MEASURED (None when any sample's count is unknown) apart from tokens
    BILLED (the ledger's charge, where an unknown count is a worst-case bound)."""
    n = len(results)
    samples = sum(r.samples for r in results)
    tokens = _measured(results)
    billed = sum(r.billed_tokens for r in results)
    unknown = sum(r.tokens_unknown for r in results)
    note = None
    if unknown:
        note = (
            f"{unknown} of {samples} samples have no token count: measured tokens are unknown; "
            "billed tokens charge each such sample max_tokens, a worst-case bound, not a "
            "measurement"
        )
    return {
        "samples": samples,
        "tokens": tokens,
        "billed_tokens": billed,
        "samples_per_query": samples / n if n else None,
        "tokens_per_query": tokens / n if n and tokens is not None else None,
        "billed_tokens_per_query": billed / n if n else None,
        "tokens_unknown_samples": unknown,
        "tokens_note": note,
    }


def _samples_z(results, predicted: Mapping[str, Any]) -> float | None:
    """The spend's gap to the plan in standard errors: mean samples per query against the
    plan's, the run's standard error of the mean and the plan's combined. None without the
    plan's standard error (plans older than ``samples_se``)."""
    n = len(results)
    mean_plan, se_plan = predicted.get("samples"), predicted.get("samples_se")
    if mean_plan is None or se_plan is None or n < 2:
        return None
    counts = [r.samples for r in results]
    mean = sum(counts) / n
    var = sum((c - mean) ** 2 for c in counts) / (n - 1)
    se = math.hypot(math.sqrt(var / n), float(se_plan))
    return (mean - float(mean_plan)) / se if se > 0 else None


def _stop_savings(results) -> dict[str, Any]:
    """Samples the stop rules did not spend: only those the backend could have served (a
    target beyond what replay logged could never have been reached); the rest is
    unverifiable, counted apart."""
    saved = unverifiable = 0
    for r in results:
        if not r.stopped:
            continue
        target = r.target or 0
        reachable = target if r.available is None else min(target, r.available)
        saved += max(0, reachable - r.samples)
        unverifiable += max(0, target - max(reachable, r.samples))
    out: dict[str, Any] = {
        "stopped_queries": sum(r.stopped for r in results),
        "samples_saved": saved,
        "unverifiable_samples": unverifiable,
        "cancelled_requests": sum(r.cancelled for r in results),
        "past_stop_samples": sum(r.past_stop for r in results),
    }
    if unverifiable:
        out["how"] = (
            f"{unverifiable} more samples of the stopped queries' targets are not counted: "
            "the table does not hold them, so no run could have spent them"
        )
    return out


def _shortfall(results) -> dict[str, Any] | None:
    """Queries the backend ran short for, in words."""
    short = [r for r in results if r.exhausted is not None]
    if not short:
        return None
    asked = [r.target for r in short if r.target is not None]
    held = sorted({r.available for r in short if r.available is not None})
    if held:
        holds = str(held[0]) if len(held) == 1 else f"{held[0]}..{held[-1]}"
        wanted = f"the plan asked for up to {max(asked)}" if asked else "the run asked for more"
        how = (
            f"{len(short)} queries ran out of logged samples: {wanted}, the table holds "
            f"{holds} per query"
        )
    else:
        how = f"{len(short)} queries got fewer samples than asked: {short[0].exhausted}"
    return {"queries": len(short), "asked_max": max(asked) if asked else None,
            "held": held, "how": how}


def _verdict(results, base, per_query_base, *, metric: str, why: str) -> dict[str, Any]:
    """Run against uniform at equal spend: the paired per-query difference in ``metric``
    (accuracy, or coverage for a policy that maximizes it: same queries, run minus uniform) and
    its standard error, in the words of :func:`ttcdsl.verdict.verdict`; without a baseline,
    ``why`` there is none."""
    from ttcdsl.verdict import verdict

    if results and all(r.samples == 0 and r.exhausted is not None for r in results):
        return {"text": "no verdict: no query got a sample", "diff": None, "se": None,
                "queries": 0, "metric": metric}
    if base is None or per_query_base is None:
        return {"text": f"no verdict: {why}", "diff": None, "se": None, "queries": 0,
                "metric": metric}
    pairs = [
        (float(getattr(r, "covered" if metric == "coverage" else "correct")),
         float(per_query_base[r.query_id]))
        for r in results
        if r.correct is not None and per_query_base.get(r.query_id) is not None
    ]
    if not pairs:
        return {"text": "no verdict: no gold labels", "diff": None, "se": None, "queries": 0,
                "metric": metric}
    d = [a - b for a, b in pairs]
    m = len(d)
    diff = sum(d) / m
    se = math.sqrt(sum((x - diff) ** 2 for x in d) / (m - 1) / m) if m > 1 else None
    text = verdict(diff, se)
    if not base.get("equal_spend", True):
        text += f" - but the uniform baseline drew only {base['samples']} of {base['target_samples']} samples"
    if base.get("budget_unit") == "tokens" and base.get("matched") != "tokens":
        text += " - at equal samples, not the equal tokens the budget is in"
    if metric == "coverage":
        text += " - in coverage, the policy's objective"
    return {"text": text, "diff": diff, "se": se, "queries": m, "metric": metric}


def uniform_shares(query_ids: Sequence[str], spend: int, seed: int) -> dict[str, int]:
    """Each query's share of ``spend`` samples under uniform allocation: ``floor`` or ``ceil``
    of the mean, the extra ones to the first queries by seeded rank (in that order)."""
    base, extra = divmod(spend, len(query_ids))
    ranked = sorted(query_ids, key=lambda q: (rank_key(seed, q), q))
    return {q: base + (1 if i < extra else 0) for i, q in enumerate(ranked)}


def uniform_baseline(
    backend: Backend, policy: ir.Policy, query_ids: Sequence[str], spend: int, seed: int,
    *, live: bool = False,
) -> dict[str, Any]:
    """Uniform allocation at ``spend`` samples in total (module docstring). A query whose log
    holds fewer samples than its share takes what it holds, and the samples it could not take go
    to the queries that can, one each in seeded rank order, until the spend is reached or no
    query has more; ``samples`` is what was DRAWN, ``equal_spend`` whether it equals ``spend``.
    Requests carry the run's ``seed``, as the run's own do, so a live backend generates the
    samples the run would have (``live``: the wording says generated, not replayed)."""
    n = len(query_ids)
    base, extra = divmod(spend, n)
    ranked = sorted(query_ids, key=lambda q: (rank_key(seed, q), q))
    wanted = uniform_shares(query_ids, spend, seed)
    rows: dict[str, list] = {q: [] for q in query_ids}
    short: set[str] = set()
    while True:
        requests = [
            dataclasses.replace(
                GenerationRequest.from_sampling(
                    policy.sampling, query_id=q, n=k, first_sample_index=len(rows[q])
                ),
                seed=seed,
            )
            for q, k in wanted.items() if k > 0
        ]
        if not requests:
            break
        for result in backend.generate(requests):
            rows[result.query_id].extend(
                s.to_row(result.query_id, round=0) for s in result.samples
            )
            if result.shortfall:
                short.add(result.query_id)
        deficit = spend - sum(len(v) for v in rows.values())
        open_ = [q for q in ranked if q not in short]
        if deficit <= 0 or not open_:
            break
        each, rest = divmod(deficit, len(open_))
        wanted = {q: each + (1 if i < rest else 0) for i, q in enumerate(open_)}
    strategy = policy.answer
    if strategy.kind == "keep_probe":
        strategy = ir.Strategy(kind="majority_vote")
    labelled = backend.capabilities.labelled
    outcomes = {
        q: aggregate(strategy, rows[q], scorers=policy.scorers, labelled=labelled)
        for q in query_ids
    }
    drawn = sum(len(v) for v in rows.values())
    every = [row for q in query_ids for row in rows[q]]
    known = all(row.completion_tokens is not None for row in every)
    accuracy, accuracy_se, over = known_rate([o.correct for o in outcomes.values()])
    coverage, _, _ = known_rate([o.covered for o in outcomes.values()])
    source = ("generated by the run's model with its seed" if live
              else "from the same replay table and seed")
    how = (
        f"every query gets {base}{f' or {base + 1}' if extra else ''} samples {source}, "
        "no probe, no stop rules"
    )
    if short:
        held = "got fewer samples than asked" if live else "hold fewer samples than that"
        how += (
            f"; {len(short)} queries {held}, and the samples they could "
            "not take went to the other queries by seeded rank"
        )
    if drawn < spend:
        held = "the backend returned" if live else "the table holds"
        how += f"; {held} only {drawn} of the {spend} samples: NOT at equal spend"
    return {
        "strategy": strategy.kind,
        "samples": drawn,
        "target_samples": spend,
        "equal_spend": drawn == spend,
        "samples_per_query": drawn / n,
        # measured; unknown (None) when any sample lacks a count, never 0
        "completion_tokens": sum(row.completion_tokens for row in every) if known else None,
        # as the run's own `tokens` are measured: plus prompts where the policy charges them
        "tokens": _measured_tokens(every, policy.budget.charge_prompt_tokens),
        # as the run's ledger bills: an unknown count at max_tokens, plus the prompt's bound
        # (the largest count its query's rows logged) where the policy charges prompts
        "billed_tokens": sum(
            policy.sampling.max_tokens if row.completion_tokens is None else row.completion_tokens
            for row in every
        ) + (_prompt_bill(rows) if policy.budget.charge_prompt_tokens else 0),
        "accuracy": accuracy,
        "accuracy_se": accuracy_se,
        "accuracy_over": over,
        "coverage": coverage,
        "how": how,
        "per_query": {q: o.correct for q, o in outcomes.items()},  # build_report takes it out
        "per_query_covered": {q: o.covered for q, o in outcomes.items()},  # and this
    }


def _prompt_bill(rows_by_query: Mapping[str, Sequence]) -> int:
    """Each drawn sample's prompt charge: its query's prompt bound, the largest prompt count
    the query's rows carry (the bound a replay's ledger is given)."""
    total = 0
    for rows in rows_by_query.values():
        counts = [row.prompt_tokens for row in rows if row.prompt_tokens is not None]
        total += (max(counts) if counts else 0) * len(rows)
    return total


def _measured_tokens(rows, charge_prompt: bool) -> int | None:
    """Completion tokens, plus prompt tokens where charged, of ``rows``; None when any is unknown."""
    total = 0
    for row in rows:
        if row.completion_tokens is None or (charge_prompt and row.prompt_tokens is None):
            return None
        total += row.completion_tokens + (row.prompt_tokens if charge_prompt else 0)
    return total


def _plots_note() -> str:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # found, not imported: a run stays fast
        return "matplotlib is not installed: no PNG plots (pip install matplotlib)"
    return "PNG plots: ttc report RUN_DIR --plots DIR"


def _truncation_cell(report: Mapping[str, Any], spend: Mapping[str, Any]) -> str:
    rate = report["truncation_rate"]
    if rate is not None:
        return _fmt(rate, 3)
    if not report.get("queries") or not spend.get("samples"):
        return "-"
    least = report.get("truncated_at_least")
    return ("unknown (some samples have no finish reason"
            + (f"; at least {least} ended at max_tokens)" if least else ")"))


def _accuracy_cell(report: Mapping[str, Any], over: int) -> str:
    unserved = report.get("unserved_queries") or 0
    unreached = report.get("unreached_queries") or 0
    left_out = (f"; {unserved} the backend gave no sample are left out: their outcome is unknown"
                if unserved else "")
    if unreached:
        left_out += (f"; {unreached} the run has not reached yet are left out: their outcome is "
                     "unknown")
    if report["accuracy"] is None:
        if unreached and unserved + unreached == report["queries"]:
            return "unknown: no query has a sample yet (the run is unfinished)"
        if unserved and unserved == report["queries"]:
            return "unknown: no query got a sample (see the shortfall)"
        return "- (no gold labels)"
    return (f"{_fmt(report['accuracy'])} ± {_fmt(report['accuracy_se'], 2)} (over {over} of "
            f"{report['queries']} queries; no answer counts as wrong{left_out})")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_report(report: Mapping[str, Any], file=None, *, plots_note: bool = True) -> None:
    """The report as rich tables (standard output by default); ``plots_note``: end with how to
    get its PNG plots (not when the caller is writing them)."""
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
    spend = report["spend"]
    over = report.get("accuracy_over", report.get("labelled"))
    rows = [
        ("queries", report["queries"]),
        ("rounds", f"{report['rounds']} (ended: {report['end']})"),
        ("accuracy", _accuracy_cell(report, over)),
        # a bandit run from its .ttc file (or a plan that could not simulate it) predicts
        # nothing: said in words, not as "- ± - (z = -)"
        ("plan predicted", "none: the plan made no prediction" if pred.get("accuracy") is None
         else f"{_fmt(pred['accuracy'])} ± {_fmt(pred['accuracy_se'], 2)} "
              f"(z = {_fmt(pred['z'], 2)})" + _edited_note(pred.get("plan_edited"))),
        ("coverage", f"{_fmt(report['coverage'])} (over {report.get('coverage_over', over)} queries)"
         if report["coverage"] is not None else "-"),
        ("samples / query", _fmt(spend["samples_per_query"]) if pred.get("samples") is None
         else f"{_fmt(spend['samples_per_query'])} (plan {_fmt(pred['samples'])}"
              + (f" ± {_fmt(pred.get('samples_se'), 2)}, z = {_fmt(pred.get('samples_z'), 2)})"
                 if pred.get("samples_se") is not None else ", no z: the plan has no samples_se)")),
        ("tokens / query", _tokens_cell(spend)),
        ("truncation rate", _truncation_cell(report, spend)),
        ("stopped early", _savings_cell(report["stop_savings"])),
        ("cut by budget / shortfall", f"{report['budget_cut_queries']} / {report['exhausted_queries']}"),
    ]
    shortfall = report.get("shortfall")
    if shortfall:
        rows.append(("shortfall", shortfall["how"]))
    unkeyed = report.get("unkeyed")
    if unkeyed:
        rows.append(("binning key unknown", unkeyed["how"]))
    bandit = report.get("bandit")
    if bandit:
        rows[rows.index(next(r for r in rows if r[0] == "stopped early"))] = (
            "solved (retired)", f"{bandit['solved_queries']} queries; explore "
            f"{bandit['explore']}, rounds of {bandit['round_samples']}")
    base = report.get("baseline")
    if base:
        rows.append(("uniform at equal spend", f"{_fmt(base['accuracy'])} ({base['how']})"))
        live = base.get("live")
        if live:
            rows.append(("uniform baseline samples", live["how"]))
    for name, value in rows:
        head.add_row(name, str(value))
    console.print(head)
    table = Table(title="per bin")
    for column in ("bin", "strategy", "queries", "samples/q", "plan samples/q", "accuracy",
                   "plan accuracy", "stopped", "tokens"):
        table.add_column(column, justify="left" if column in ("bin", "strategy") else "right")
    for b in report["bins"]:
        table.add_row(
            b["name"], ("uniform: " if b.get("uniform") else "") + b["strategy"], str(b["queries"]), _fmt(b["mean_samples"]),
            _fmt(b["predicted_samples"]), _fmt(b["accuracy"]), _fmt(b["predicted_accuracy"]),
            str(b["stopped"]), _bin_tokens(b),
        )
    console.print(table)
    budget = Table(title="budget")
    bounded = any(limit.get("basis", "measured") != "measured" for limit in report["budget"])
    for column in ("limit", "cap", "spent", "largest query", "within") + (("spent is",) if bounded else ()):
        budget.add_column(column)
    for limit in report["budget"]:
        cells = [limit["label"], _fmt(limit["cap"], 8), _fmt(limit["spent"], 10),
                 _fmt(limit["largest"], 10), "yes" if limit["within"] else "NO"]
        if bounded:
            cells.append(limit.get("basis", "measured"))
        budget.add_row(*cells)
    if report["budget"]:
        console.print(budget)
    hist = "  ".join(f"{k}:{v}" for k, v in report["histogram"].items())
    console.print(f"samples per query (count:queries)  {hist}")
    if spend.get("tokens_note"):
        console.print(f"tokens: {spend['tokens_note']}")
    if plots_note:
        console.print(f"note: {_plots_note()}")  # not the stored note: an older run's may be stale
    verdict = report.get("verdict")
    if verdict:
        console.print(f"verdict: {verdict['text']}")


def _edited_note(edited: bool | None) -> str:
    if edited:
        return "; the plan was edited after planning: this predicted the plan as made, not as run"
    if edited is None:
        return ("; the plan has no plan_sha256: whether it was edited after planning, so that "
                "this predicted another plan, cannot be checked")
    return ""


def _tokens_cell(spend: Mapping[str, Any]) -> str:
    billed = _fmt(spend.get("billed_tokens_per_query"), 6)
    if spend.get("tokens_per_query") is None and spend.get("billed_tokens_per_query") is not None:
        return f"unknown (billed {billed}: a worst-case bound, token counts unknown)"
    return _fmt(spend.get("tokens_per_query"), 6)


def _bin_tokens(b: Mapping[str, Any]) -> str:
    if b.get("tokens") is None and b.get("billed_tokens") is not None:
        return f"unknown (billed {b['billed_tokens']})"
    return str(b["tokens"])


def _savings_cell(savings: Mapping[str, Any]) -> str:
    text = f"{savings['stopped_queries']} queries, {savings['samples_saved']} samples saved"
    if savings.get("unverifiable_samples"):
        text += f" (+{savings['unverifiable_samples']} unverifiable: the table does not hold them)"
    if savings.get("cancelled_requests") or savings.get("past_stop_samples"):
        text += (f"; {savings.get('cancelled_requests', 0)} requests cancelled at a stop, "
                 f"{savings.get('past_stop_samples', 0)} samples generated past it (billed, unused)")
    return text


def _unkeyed(results, plan: Mapping[str, Any]) -> dict[str, Any] | None:
    """Queries whose binning key came out NaN (their probe carries nothing the key can read):
    they go to the last bin, as the planner bins them. Said, never silent: a key that is NaN for
    every query means the run read an observable nobody measured."""
    binning = plan.get("binning")
    if binning is None:
        return None
    unknown = [r for r in results if r.key is None and r.bin is not None]
    if not unknown:
        return None
    last = plan["bins"][-1]["name"]
    return {
        "queries": len(unknown),
        "how": f"{len(unknown)} of {len(results)} queries have no value of the key "
        f"{binning['key']!r} (their probe samples carry nothing it reads): they went to the "
        f"last bin, {last!r}",
    }
