"""The comparison as a rich table, markdown, or a PNG (JSON is the document itself)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REFERENCE_HEADER = ("budget", "uniform maj. vote", "uniform coverage", "uniform best-of-n",
                    "static oracle (vote)", "static oracle (coverage)", "dynamic oracle (coverage)")
ROW_HEADER = ("policy", "budget", "samples/q (max)", "accuracy", "coverage", "metric",
              "uniform: exact / same orders", "static oracle", "dyn. oracle", "oracle share", "efficiency",
              "vs uniform (95% CI)", "verdict")


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _budget(value: float | None) -> str:
    return "own" if value is None else f"{value:g}"


# The reference is the table's samples as logged: a policy's max_tokens cuts none of them (a
# policy row's uniform is at its own max_tokens). Said in the title: with every right sample
# longer than the policies' max_tokens it read uniform 1.000 beside rows of 0.000.
REFERENCE_TITLE = ("uniform and the oracles (exact curves of the samples as logged, no max_tokens cut; "
                   "each policy row's uniform is at the policy's own max_tokens)")


def reference_cells(doc: Mapping[str, Any]) -> list[list[str]]:
    """One line per budget: uniform per strategy and both oracles."""
    by = {}
    for r in doc["reference"]:
        by.setdefault(r["budget"], {})[r["strategy"]] = r
    lines = []
    for budget in doc["budgets"]:
        cell = by.get(budget, {})
        mv, cov = cell.get("majority_vote", {}), cell.get("pass_at_k", {})
        bon, dyn = cell.get("best_of_n", {}), cell.get("dynamic_oracle", {})
        lines.append([
            _budget(budget), _f(mv.get("uniform")), _f(cov.get("uniform")), _f(bon.get("uniform")),
            _f(mv.get("static_oracle")), _f(cov.get("static_oracle")), _f(dyn.get("coverage")),
        ])
    return lines


def row_cells(row: Mapping[str, Any]) -> list[str]:
    if "error" in row:
        return [row["policy"], _budget(row["budget"]), "-", "-", "-", "-", "-", "-", "-", "-",
                "-", "-", row["error"] if row.get("internal") else f"cannot run: {row['error']}"]
    ci = row.get("ci")
    diff = f"{100 * row['diff']:+.1f} pts" + (
        f" ({100 * ci[0]:+.1f}..{100 * ci[1]:+.1f})" if ci else ""
    )
    share = None if row["oracle_share"] is None else f"{100 * row['oracle_share']:.0f}%"
    eff = None if row["efficiency"] is None else f"{row['efficiency']:.2f}x"
    word = row["verdict"].split(" uniform", 1)[0]
    tokens = row.get("tokens_per_query")
    spend = f"{row['samples_per_query']:.2f} ({row['max_samples']})" + (
        "" if tokens is None else f", {tokens:,.0f} tok")
    return [
        row["policy"], _budget(row["budget"]), spend,
        _f(row["accuracy"]), _f(row["coverage"]), row["metric"],
        f"{_f(row['uniform'])} / {_f(row.get('uniform_same_orders'))}" + _matched(row),
        _f(row["static_oracle"]), _f(row["dynamic_oracle"]), share or "-",
        eff or "> logged", diff, word,
    ]


def _matched(row: Mapping[str, Any]) -> str:
    """Where uniform is not at the run's samples: the samples it gets, and why."""
    matched = row.get("equal_spend", "samples")
    if matched == "tokens":
        return f" at {row['uniform_samples_per_query']:.2f} (equal tokens)"
    if matched != "samples":
        return " (equal samples: token counts unknown)"
    return ""


def _title(doc: Mapping[str, Any]) -> str:
    return (
        f"{doc['evaluation_queries']} evaluation queries ({doc['split']}; planned on "
        f"{doc['calibration_queries']} others), {doc['repeats']} sample order(s), "
        f"{doc['logged_per_query']} logged samples per query at most"
        + (f"; {doc['unlabelled_left_out']} queries without full correctness labels left out"
           if doc.get("unlabelled_left_out") else "")
        + "".join(f"; at budget {budget}, {count} queries hold fewer samples and get only those"
                  for budget, count in (doc.get("shallow_queries") or {}).items())
    )


NOTES = (
    "metric: the policy's objective; uniform (exact curves, and on the run's own sample orders, "
    "which the difference and its CI pair with) and static oracle at the policy's own mean spend "
    "(in its budget's unit: a budget in tokens gives uniform the samples that bill the policy's "
    "tokens, 'at N (equal tokens)') and max_tokens; oracle share = (policy - uniform) / (oracle - uniform), above 100% when "
    "stop rules adapt within a query and beat the static oracle, which fixes counts in advance; "
    "efficiency = "
    "uniform's smallest spend (one sample per query at least) to match / the policy's spend "
    "('> logged': uniform never matches it within the logged samples); below 1.00x where "
    "uniform's curve is flat or falls, so uniform matches the policy with fewer samples (the "
    "extra samples buy nothing); 1.00x for a policy whose results are uniform's own at equal "
    "spend on every query and order; CI: paired by query, over the orders."
)


def render_rich(doc: Mapping[str, Any], file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        console.width = 200
    ref = Table(title=REFERENCE_TITLE)
    for name in REFERENCE_HEADER:
        ref.add_column(name, justify="right")
    for line in reference_cells(doc):
        ref.add_row(*line)
    console.print(ref)
    table = Table(title=_title(doc))
    for name in ROW_HEADER:
        table.add_column(name, justify="left" if name in ("policy", "verdict") else "right")
    for row in doc["rows"]:
        table.add_row(*row_cells(row))
    console.print(table)
    console.print(NOTES)


def render_markdown(doc: Mapping[str, Any]) -> str:
    def md(header: Sequence[str], lines: list[list[str]]) -> list[str]:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
        return out

    parts = [f"{_title(doc)}.", ""]
    parts += [f"{REFERENCE_TITLE[0].upper()}{REFERENCE_TITLE[1:]}:", ""]
    parts += md(REFERENCE_HEADER, reference_cells(doc)) + [""]
    parts += md(ROW_HEADER, [row_cells(r) for r in doc["rows"]]) + ["", NOTES, ""]
    return "\n".join(parts)


def write_plot(doc: Mapping[str, Any], path: str | Path, *, title: str = "") -> Path:
    """Accuracy (vote) and coverage against mean spend: uniform and the static oracle as lines
    (on the samples as logged), the dynamic oracle and every policy as points (filled: accuracy,
    hollow: coverage metric), each policy's uniform at its own spend and max_tokens as an x."""
    from ttcdsl.plotting import new_figure, save_png

    figure = new_figure(8.0, 5.0)
    ax = figure.add_subplot()
    styles = {"majority_vote": ("tab:gray", "uniform maj. vote"),
              "pass_at_k": ("tab:olive", "uniform coverage"),
              "best_of_n": ("tab:brown", "uniform best-of-n")}
    for strategy, curve in doc["curves"].items():
        color, label = styles.get(strategy, ("black", f"uniform {strategy}"))
        ax.plot(curve["spend"], curve["uniform"], color=color, label=label)
        if strategy != "best_of_n":
            ax.plot(curve["spend"], curve["static_oracle"], color=color, linestyle="--",
                    label=f"static oracle ({'coverage' if strategy == 'pass_at_k' else 'vote'})")
    dyn = [r for r in doc["reference"] if r["strategy"] == "dynamic_oracle"]
    if dyn:
        ax.plot([r["samples_per_query"] for r in dyn], [r["coverage"] for r in dyn], "k^:",
                label="dynamic oracle (coverage)")
    by_policy: dict[str, list] = {}
    for row in doc["rows"]:
        if "error" not in row:
            by_policy.setdefault(row["policy"], []).append(row)
    for name, rows in by_policy.items():
        rows = sorted(rows, key=lambda r: r["samples_per_query"])
        hollow = rows[0]["metric"] == "coverage"
        line, = ax.plot([r["samples_per_query"] for r in rows], [r["value"] for r in rows], "o-",
                        markerfacecolor="none" if hollow else None,
                        label=f"{name} ({rows[0]['metric']})")
        # uniform as this policy's runs are served (its max_tokens), at the policy's own spend
        ax.plot([r["samples_per_query"] for r in rows], [r["uniform"] for r in rows], "x",
                color=line.get_color())
    ax.set_xlabel("mean samples per query")
    ax.set_ylabel("accuracy / coverage")
    ax.set_title(title or "policies vs uniform and the oracles")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return save_png(figure, path)
