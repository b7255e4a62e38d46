"""``ttc simulate --check PLAN``: the plan's own predictions against the simulation of the plan.

A plan records what it predicts per query (``predicted``: accuracy, samples and tokens, each with
its standard error from the planner's curves). The simulation gives the same figures as a mean
over independent draws with its own standard error. A figure AGREES when the two differ by no
more than the combined 95% interval, ``q * sqrt(se_plan^2 + se_sim^2)``: the two estimates are
independent, so that is the interval of their difference. The quantile ``q`` is Student's t at
the Welch-Satterthwaite degrees of freedom: the plan's error is over many queries (normal), the
simulation's over a few draws (``df`` = draws - 1), so a simulation of few draws that dominates
the error widens the interval as its own would; and the interval is never narrower than either
side's own 95% interval (Welch's df follows the larger variance, which at two draws left the
simulation's own, with its t quantile at one df, wider than the combined one). A figure the plan does not record (no
token counts in its table) or records without an error is not checked, and the result says so.
Nor are tokens where the plan billed samples without a count at ``max_tokens``
(``tokens_unknown_share``): that figure is an upper bound, and the simulation's lengths are fitted
to the counts there are, so the two would disagree by construction.

Coverage is not checked: the plan records it without a standard error, and an interval from the
simulation's error alone would blame the plan for its own calibration noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ttcdsl.verdict import critical, half_width

FIGURES = (
    # (name in both documents, label, scale and unit for messages)
    ("accuracy", "accuracy", 100.0, " points"),
    ("samples", "samples per query", 1.0, ""),
    ("tokens", "tokens per query", 1.0, ""),
)


def check(plan: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """Each checked figure with both values, the difference and the combined interval, and
    whether every checked figure agrees (``agree``); ``skipped`` names the figures not checked."""
    predicted = plan.get("predicted") or {}
    simulated = report["simulated"]
    rows, skipped = [], []
    for name, label, scale, unit in FIGURES:
        value, se = predicted.get(name), predicted.get(f"{name}_se")
        sim = simulated.get(name)
        if value is None or se is None or sim is None or not _finite(value, se, sim["mean"], sim["se"]):
            skipped.append(label)
            continue
        unknown = predicted.get("tokens_unknown_share") if name == "tokens" else None
        if unknown:
            skipped.append(f"{label}, where the plan bills the {unknown:.0%} of samples without a count "
                           "at max_tokens: an upper bound")
            continue
        difference = sim["mean"] - value
        half = critical(_welch_df(se, sim["se"], sim.get("df"))) * math.sqrt(se**2 + sim["se"] ** 2)
        # never narrower than either side's own interval: at two draws Welch's df follows the
        # plan's many queries, and the t quantile of the simulation's one df was lost
        half = max(half, half_width(sim), critical() * se)
        rows.append({
            "figure": name, "label": label, "predicted": value, "predicted_se": se,
            "simulated": sim["mean"], "simulated_se": sim["se"], "simulated_half": half_width(sim),
            "difference": difference,
            "interval": half, "agree": abs(difference) <= half,
            "scale": scale, "unit": unit,
        })
    return {"figures": rows, "skipped": skipped, "agree": all(r["agree"] for r in rows)}


def describe(row: Mapping[str, Any]) -> str:
    """One figure in words: both values, the difference and the interval it is judged by."""
    s, unit = row["scale"], row["unit"]
    digits = 1 if s != 1.0 else 2
    pct = "%" if s != 1.0 else ""
    text = (f"{row['label']}: the plan predicts {s * row['predicted']:.{digits}f}{pct} "
            f"± {s * critical() * row['predicted_se']:.{digits}f}, the simulation gives "
            f"{s * row['simulated']:.{digits}f}{pct} ± {s * row['simulated_half']:.{digits}f}")
    direction = "higher" if row["difference"] > 0 else "lower"
    verdict = "beyond" if not row["agree"] else "within"
    return (f"{text}: {s * abs(row['difference']):.{digits}f}{unit} {direction} in simulation, "
            f"{verdict} the combined 95% interval of ±{s * row['interval']:.{digits}f}{unit}")


def _welch_df(plan_se: float, sim_se: float, sim_df: float | None) -> float | None:
    """Degrees of freedom of the difference (Welch-Satterthwaite) when the plan's side has
    infinitely many: (a + b)^2 / (b^2 / df_sim) with a, b the two variances. None (normal) when the
    simulation says none or has no spread."""
    if not sim_df or sim_se <= 0:
        return None
    a, b = plan_se**2, sim_se**2
    return (a + b) ** 2 / (b**2 / sim_df)


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
