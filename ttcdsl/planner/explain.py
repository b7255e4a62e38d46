"""``ttc plan --explain``: the plan as tables a person can check at a glance (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ttcdsl.planner.plan import bin_runs


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _console() -> Console:
    """The terminal's width on a terminal; wide enough for every column in a pipe or a file."""
    console = Console()
    return console if console.is_terminal else Console(width=140)


def explain(plan: dict[str, Any], console: Console | None = None) -> None:
    console = console or _console()
    policy = plan["policy"]
    console.print(f"[bold]{policy['name']}[/bold] — {policy.get('description', '')}")
    calibration = plan["calibration"]
    console.print(
        f"calibration: {calibration['queries']} queries ({_left_out(calibration)}), "
        f"{calibration['samples_per_query'][0]}–{calibration['samples_per_query'][1]} samples "
        f"each; mode {plan['mode']}, objective {plan['objective']}, probe {plan['probe']}"
    )
    table = Table(title="bins")
    # where some counts are unknown the token figures are billed (each unknown at max_tokens):
    # a bound, said in the column's heading as on the `predicted` line below
    billed = bool((plan.get("predicted") or {}).get("tokens_unknown_share"))
    headings = ("bin", "key range", "share", "strategy", "n: share", plan["objective"][:3], "± se",
                "exp. samples", "billed tokens (bound)" if billed else "exp. tokens")
    for column in headings:
        table.add_column(
            column,
            justify="left" if column in ("bin", "strategy") else "right",
            overflow="fold",  # a long bin or strategy name wraps rather than being cut off
        )
    for spec in plan["bins"]:
        allocation = spec.get("allocation") or []
        counts = ", ".join(
            f"{o['samples']}" if o["share"] == 1 else f"{o['samples']}: {o['share']:.2f}"
            for o in allocation
        ) or "online"
        predicted = spec.get("predicted") or {}
        strategy, runs_uniform = bin_runs(plan, spec)
        if runs_uniform:  # the bins bin, but every query runs uniform (plan warning)
            strategy = f"uniform: {strategy}"
        key_range = spec.get("key_range")
        table.add_row(
            spec["name"],
            "-" if key_range is None else f"{_num(key_range[0], 2)}..{_num(key_range[1], 2)}",
            f"{spec['share']:.2f}",
            strategy,
            counts,
            _num(predicted.get(plan["objective"])),
            _num(predicted.get("accuracy_se")),
            _num(predicted.get("samples"), 2),
            _num(predicted.get("tokens"), 0),
        )
    console.print(table)
    _candidates(plan, console)
    stops = {tuple(spec["stop"]) for spec in plan["bins"]}
    if plan.get("uniform_choice") is not None:
        if stops != {()}:
            console.print("stop rules: none (the plan runs uniform; the policy's are not checked)")
    elif stops == {()}:
        pass
    elif len(stops) == 1:
        console.print(f"stop rules (every bin, checked {plan['stop_check']}): " + "; ".join(stops.pop()))
    else:
        for spec in plan["bins"]:
            if spec["stop"]:
                console.print(f"stop rules of {spec['name']}: " + "; ".join(spec["stop"]))

    budget = Table(title="budget")
    for column in ("limit", "spent", "binding"):
        budget.add_column(column)
    for limit in plan["budget"]:
        budget.add_row(limit["label"], _num(limit.get("spent")), "yes" if limit.get("binding") else "")
    console.print(budget)

    predicted, baseline, solver = plan.get("predicted"), plan.get("baseline"), plan.get("solver")
    if predicted:
        def spread(name: str, digits: int) -> str:
            se = predicted.get(f"{name}_se")
            return f"{_num(predicted[name], digits)}" + ("" if se is None else f" ± {_num(se, digits)}")

        console.print(
            f"predicted: accuracy {_num(predicted['accuracy'])} ± {_num(predicted['accuracy_se'])}, "
            f"coverage {_num(predicted['coverage'])}, {spread('samples', 2)} samples per query"
            + (f", {spread('tokens', 0)} tokens" if predicted.get("tokens") else "")
            + (f" (billed: {predicted['tokens_unknown_share']:.0%} of the counts unknown, each at "
               "max_tokens)" if predicted.get("tokens") and predicted.get("tokens_unknown_share")
               else "")
            + (f" ({predicted['source']})" if predicted.get("source") else "")
        )
    if baseline:
        console.print(
            f"uniform {baseline['strategy']} at the same spend: accuracy "
            f"{_num(baseline['accuracy'])}, coverage {_num(baseline['coverage'])}"
        )
    if solver:
        console.print(
            f"solver {solver['name']}: {solver['status']}, relaxation {_num(solver['relaxation'], 6)}, "
            f"dual bound {_num(solver['dual_bound'], 6)}, rounded {_num(solver['objective'], 6)} "
            f"(loss {_num(solver['rounding_loss'], 6)}), {_num(solver['seconds'], 4)} s"
        )
        for check in solver["cross_checks"]:
            console.print(
                f"  cross-check {check['solver']}: {check['status']}, objective "
                f"{_num(check['objective'], 6)}{' (integer)' if check['integral'] else ''}, "
                f"{_num(check['seconds'], 4)} s"
            )
    if plan["mode"] == "bandit":
        bandit = plan["bandit"]
        console.print(
            f"bandit: rounds of {bandit['round_samples']}, explore {bandit['explore']}, "
            f"solved when {' or '.join(bandit['solved'])}; allocation happens online"
        )
        gain = bandit.get("gain")
        if gain is not None:
            console.print(
                f"learned skip: {len(gain['states'])} query states valued on the calibration "
                f"({gain['orders']} sample orders); a query waits while its next round is "
                "worth less than what the budget buys elsewhere, even at the upper end of its 95% "
                "interval",
                markup=False,
            )
    if plan["mode"] == "per_query":
        section = plan["per_query"]
        predictor = section["predictor"]
        console.print(
            f"per query: counts from a {predictor['model']} predictor of each query's curve "
            f"from {', '.join(predictor['features'])} ({predictor['neighbours']} neighbours, "
            f"{len(predictor['count'])} distinct probes); on the calibration queries "
            f"{section['predicted_flat']:.0%} have a flat predicted curve and "
            f"{section['probe_only']:.0%} keep only the probe",
            markup=False,
        )
    for warning in plan.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"verdict: {plan_verdict(plan)}", markup=False, soft_wrap=True)  # one line


def _candidates(plan: dict[str, Any], console: Console) -> None:
    """Bins with candidates: what the planner chose and what the runner-up would have given at
    the same spend."""
    bins = [spec for spec in plan["bins"] if spec.get("candidates")]
    if not bins:
        return
    metric = plan["objective"][:3]
    table = Table(title="candidates (chosen vs the best other at the same spend)")
    for column in ("bin", "considered", "spend", "chosen", metric, "runner-up", metric + " ", "dropped"):
        table.add_column(column, justify="left" if column in ("bin", "chosen", "runner-up", "dropped")
                         else "right", overflow="fold")
    for spec in bins:
        record = spec["candidates"]
        chosen, runner = record["chosen"], record.get("runner_up")
        table.add_row(
            spec["name"],
            str(record["considered"]),
            f"{_num(record['spend'], 2)} {record['spend_unit']}",
            _choice(chosen),
            _num(chosen["value"]),
            "-" if runner is None else _choice(runner),
            "-" if runner is None else _num(runner["value"]),
            "; ".join(record.get("dropped", [])),
        )
    console.print(table)


def _choice(entry: dict[str, Any]) -> str:
    thresholds = entry.get("thresholds")
    return entry["strategy"] + ("" if not thresholds else f", stop at {', '.join(f'{t:g}' for t in thresholds)}")


def plan_verdict(plan: dict[str, Any]) -> str:
    """The last line of every explanation: does the plan beat uniform at equal spend?"""
    baseline = plan.get("baseline") or {}
    if plan["mode"] == "bandit":
        if baseline.get("verdict"):  # ttcdsl.planner.bandit_forecast
            return (f"{baseline['verdict']} (the bandit simulated on the calibration queries; "
                    "its learned skip was fitted on them too)")
        return ("a bandit allocates online, and this plan has no simulated prediction; "
                "ttc run reports the run against uniform at equal spend")
    fitted = baseline.get("cross_fitted")
    uniform = plan.get("uniform_choice")
    if uniform is not None and fitted:
        return (f"{baseline['verdict']}: the plan runs uniform, since out of fold the policy's "
                f"allocation was {100 * fitted['difference']:+.1f} points")
    if fitted and baseline.get("verdict"):
        # the honest figure first: scored on calibration queries the choice did not see
        return (f"{fitted['verdict']} (out of fold; {100 * baseline['difference']:+.1f} points on "
                "the queries it was chosen on)")
    if baseline.get("verdict"):
        return baseline["verdict"]
    return "unknown: uniform at the plan's spend could not be valued on the calibration samples"


def render_sweep(sweep: dict[str, Any], console: Console | None = None) -> None:
    console = console or _console()
    table = Table(title=f"frontier: {sweep['limit']}")
    chooses = any("choice" in row for row in sweep["points"])
    for column in ("budget", sweep["objective"], "spent", "uniform", "vs uniform"):
        table.add_column(column, justify="right")
    if chooses:  # a policy with candidates: the choice made at each budget
        table.add_column("choice per bin")
    for row in sweep["points"]:
        cells = [
            _num(row["budget"], 2),
            # the plan at this budget runs uniform (behind it out of fold): say so in the cell
            _num(row["objective"]) + (" (uniform)" if row.get("runs") == "uniform" else ""),
            _num(row["spent"], 3),
            _num(row.get("uniform")), _short_verdict(row),
        ]
        if chooses:
            cells.append(_choice_cell(row.get("choice")))
        table.add_row(*cells)
    console.print(table)
    unmet = [row for row in sweep["points"] if row.get("why")]
    for why in dict.fromkeys(row["why"] for row in unmet):  # what the "-" rows mean, once each
        budgets = ", ".join(f"{row['budget']:g}" for row in unmet if row["why"] == why)
        console.print(f"budget(s) {budgets}: {why}", markup=False, soft_wrap=True)
    console.print(f"verdict: {sweep_verdict(sweep)}", markup=False, soft_wrap=True)  # one line


def _choice_cell(choice: list[dict[str, Any]] | None) -> str:
    """``level1 majority_vote; level2 best_of_n(prm) @0.9`` for a sweep row's choice."""
    if not choice:
        return "-"
    return "; ".join(
        f"{c['bin']} {c['strategy']}" + "".join(f" @{t:g}" for t in c.get("tuned", []))
        for c in choice
    )


def _short_verdict(row: dict[str, Any]) -> str:
    """``better +2.1 pts`` for a table cell (the full sentence ends the sweep)."""
    text = row.get("verdict")
    if not text:
        return "-"
    word = text.split(" than")[0]
    return f"{word} {100 * row['difference']:+.1f} pts"


def sweep_verdict(sweep: dict[str, Any]) -> str:
    """One line over the sweep: at which budgets the policy beats uniform at equal spend."""
    groups: dict[str, list[str]] = {"better": [], "no better": [], "worse": []}
    for row in sweep["points"]:
        text = row.get("verdict")
        if not text:
            continue
        word = next(w for w in ("better", "no better", "worse") if text.startswith(w + " than"))
        groups[word].append(f"{row['budget']:g}")
    if not any(groups.values()):
        return "unknown: no budget of the sweep could be compared with uniform"
    parts = [f"{word} than uniform at equal spend at budget(s) {', '.join(b)}"
             for word, b in groups.items() if b]
    switched = [f"{row['budget']:g}" for row in sweep["points"] if row.get("runs") == "uniform"]
    if switched:
        parts.append(f"the plan runs uniform itself at budget(s) {', '.join(switched)} "
                     "(the policy is behind it out of fold there)")
    return "; ".join(parts)


def _left_out(calibration) -> str:
    """The calibration queries the plan left out, by why (the warnings say which)."""
    why = [(calibration.get("dropped") or 0, "without a sample beyond the probe"),
           (calibration.get("unlabelled") or 0, "with an unlabelled sample")]
    parts = [f"{n} {reason}" for n, reason in why if n]
    return "left out: " + "; ".join(parts) if parts else "none left out"
