"""The one sentence that says whether a policy beats uniform allocation at equal spend.

The README promises that a policy that does not beat uniform says so. Every consumer (the run
report, the planner's ``--explain``, sweeps) words it through :func:`verdict`, so the rule is
the same everywhere: the difference (policy minus uniform, in accuracy) and its 95% confidence
interval; "better" only when the whole interval is above zero, "worse" only when it is below,
"no better" otherwise (including an unknown standard error, which proves nothing).

An interval from a mean over a few independent draws (``ttc simulate --seeds 4``) is Student's
t with ``df`` = draws - 1 degrees of freedom, not the normal: at two draws the 95% quantile is
12.7, not 1.96. Every function takes ``df`` (``None``: a mean over many queries, the normal).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def critical(df: float | None = None) -> float:
    """The two-sided 95% quantile of a mean's error: Student's t with ``df`` degrees of freedom,
    the normal's when ``df`` is None or infinite."""
    if df is None or not math.isfinite(df):
        return Z95
    if df <= 0:
        raise ValueError(f"an interval needs at least one degree of freedom, got {df!r}")
    from scipy.stats import t  # a dependency of jax and cvxpy; imported only for few draws

    return float(t.ppf(0.975, df))


def half_width(summary) -> float:
    """The half width of a summary's 95% interval (``{"mean", "se", "lo", "hi"}``, as the
    simulator reports a mean over draws), NaN when it has none. Read from its own bounds, so the
    printed spread is the interval the summary was judged by, whatever its quantile."""
    lo, hi = summary.get("lo"), summary.get("hi")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return float("nan")
    return (hi - lo) / 2


def format_interval(summary, scale: float = 1.0, digits: int = 2) -> str:
    """``72.0 ± 3.1``, or ``72.0 (0.0..100.0)`` where the interval was cut at a bound the
    figure cannot pass (a rate at 0 or 1: a t interval over two draws runs far past them)."""
    mean, lo, hi = summary["mean"], summary.get("lo"), summary.get("hi")
    text = f"{scale * mean:.{digits}f}"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return text
    if math.isclose(mean - lo, hi - mean, rel_tol=1e-9, abs_tol=1e-12):
        return f"{text} ± {scale * (hi - lo) / 2:.{digits}f}"
    return f"{text} ({scale * lo:.{digits}f}..{scale * hi:.{digits}f})"


def judge(diff: float, se: float | None, df: float | None = None) -> str:
    """``better``, ``worse`` or ``no better`` (than uniform): the module's rule, the word only.
    The planner reads it too: it runs uniform instead of a policy only when this says ``worse``
    (:mod:`ttcdsl.planner.choice`)."""
    if diff is None or not math.isfinite(diff):
        raise ValueError(f"verdict needs a finite difference, got {diff!r}")
    if se is None or not math.isfinite(se) or se < 0:
        return "no better"
    half = critical(df) * se
    if diff - half > 0:
        return "better"
    if diff + half < 0:
        return "worse"
    return "no better"


def interval(diff: float, se: float, df: float | None = None) -> str:
    """``(95% CI -3.6..+0.9)``: the interval the rule reads, in points."""
    half = critical(df) * se
    return f"(95% CI {100 * (diff - half):+.1f}..{100 * (diff + half):+.1f})"


def verdict(diff: float, se: float | None, df: float | None = None) -> str:
    """``diff`` = policy accuracy minus uniform's at equal spend (a share, e.g. 0.031), ``se``
    its standard error (``df``: its degrees of freedom, module docstring); the sentence with the
    difference and its 95% CI in points."""
    word = judge(diff, se, df)
    points = f"{100 * diff:+.1f} points"
    if se is None or not math.isfinite(se) or se < 0:
        return f"{word} than uniform at equal spend: {points} (no standard error: no CI)"
    return f"{word} than uniform at equal spend: {points} {interval(diff, se, df)}"
