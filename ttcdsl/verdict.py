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


def verdict(diff: float, se: float | None) -> str:
    """``diff`` = policy accuracy minus uniform's at equal spend (a share, e.g. 0.031), ``se``
    its standard error; the sentence with the difference and its 95% CI in points."""
    if diff is None or not math.isfinite(diff):
        raise ValueError(f"verdict needs a finite difference, got {diff!r}")
    points = f"{100 * diff:+.1f} points"
    if se is None or not math.isfinite(se) or se < 0:
        return f"no better than uniform at equal spend: {points} (no standard error: no CI)"
    lo, hi = diff - Z95 * se, diff + Z95 * se
    ci = f"(95% CI {100 * lo:+.1f}..{100 * hi:+.1f})"
    if lo > 0:
        word = "better than"
    elif hi < 0:
        word = "worse than"
    else:
        word = "no better than"
    return f"{word} uniform at equal spend: {points} {ci}"
