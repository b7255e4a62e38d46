"""The one sentence that says whether a policy beats uniform allocation at equal spend.

The README promises that a policy that does not beat uniform says so. Every consumer (the run
report, the planner's ``--explain``, sweeps) words it through :func:`verdict`, so the rule is
the same everywhere: the difference (policy minus uniform, in accuracy) and its 95% confidence
interval; "better" only when the whole interval is above zero, "worse" only when it is below,
"no better" otherwise (including an unknown standard error, which proves nothing).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def judge(diff: float, se: float | None) -> str:
    """``better``, ``worse`` or ``no better`` (than uniform): the module's rule, the word only.
    The planner reads it too: it runs uniform instead of a policy only when this says ``worse``
    (:mod:`ttcdsl.planner.choice`)."""
    if diff is None or not math.isfinite(diff):
        raise ValueError(f"verdict needs a finite difference, got {diff!r}")
    if se is None or not math.isfinite(se) or se < 0:
        return "no better"
    if diff - Z95 * se > 0:
        return "better"
    if diff + Z95 * se < 0:
        return "worse"
    return "no better"


def interval(diff: float, se: float) -> str:
    """``(95% CI -3.6..+0.9)``: the interval the rule reads, in points."""
    return f"(95% CI {100 * (diff - Z95 * se):+.1f}..{100 * (diff + Z95 * se):+.1f})"


def verdict(diff: float, se: float | None) -> str:
    """``diff`` = policy accuracy minus uniform's at equal spend (a share, e.g. 0.031), ``se``
    its standard error; the sentence with the difference and its 95% CI in points."""
    word = judge(diff, se)
    points = f"{100 * diff:+.1f} points"
    if se is None or not math.isfinite(se) or se < 0:
        return f"{word} than uniform at equal spend: {points} (no standard error: no CI)"
    return f"{word} than uniform at equal spend: {points} {interval(diff, se)}"
