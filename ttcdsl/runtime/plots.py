"""PNG plots of a run report (``ttc report RUN_DIR --plots DIR``); the figure helpers they share
with the planner's sweep plot live below both, in :mod:`ttcdsl.plotting`.

:func:`write_run_plots` reads the dict :func:`ttcdsl.runtime.report.build_report` returns (the
run's ``report.json``) and writes up to three files:

* ``samples_histogram.png``: queries per sample count (the report's ``histogram``);
* ``bins.png``: per bin, the mean samples per query beside the plan's, and, where queries are
  labelled, the bin's accuracy (± its standard error) beside the plan's prediction (± its
  standard error where the plan gives one);
* ``policy_vs_uniform.png``: the run's accuracy against uniform allocation at equal spend (the
  report's ``baseline``), each ± its standard error.

A plot whose data the report lacks is skipped, not an error: no queries, no histogram; no gold
labels, no accuracy panel and no comparison; a backend that cannot replay, no baseline.

matplotlib is imported only inside these functions (``ttc --help`` does not pay for it), and only
its non-interactive Agg canvas is used: figures are :class:`matplotlib.figure.Figure` objects
drawn on :class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, never pyplot, so nothing opens
a window and the process-wide backend of a caller (a notebook, say) is left as it was. Every file
is written atomically (a temporary file beside it, then a rename).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ttcdsl.plotting import (  # noqa: F401 - re-exported for the report command
    DPI,
    PLAN_COLOR,
    RUN_COLOR,
    UNIFORM_COLOR,
    new_figure,
    require_matplotlib,
    save_png,
)

HISTOGRAM = "samples_histogram.png"
BINS = "bins.png"
VS_UNIFORM = "policy_vs_uniform.png"

def plot_directory(directory: str | Path) -> Path:
    """``directory``, created if missing; a user's error where it cannot hold the plots (checked
    by ``ttc report`` before it prints anything)."""
    from ttcdsl.output_dir import output_directory

    return output_directory(directory, "the plots")


def write_run_plots(
    report: Mapping[str, Any],
    directory: str | Path,
    *,
    skipped: list[str] | None = None,
) -> list[Path]:
    """Draw the plots of ``report`` into ``directory`` (created if missing); return the paths
    written, in the order of the module docstring. A plot without data is not written (and a
    file of its name left there by an earlier call is removed, so the directory never mixes two
    reports); when ``skipped`` is given, a one-line reason per skipped plot is appended to it."""
    require_matplotlib()
    directory = plot_directory(directory)
    notes = skipped if skipped is not None else []
    written = []
    for name, draw in ((HISTOGRAM, _histogram), (BINS, _bins), (VS_UNIFORM, _vs_uniform)):
        figure = draw(report, notes, name)
        if figure is not None:
            written.append(save_png(figure, directory / name))
        elif (directory / name).is_file():  # an earlier report's plot would pass for this one's
            (directory / name).unlink()
    return written


# --- the three run plots ------------------------------------------------------------------------


def _title(report: Mapping[str, Any], what: str) -> str:
    mode = report.get("mode")
    return f"{report.get('policy', '?')}{f' ({mode})' if mode else ''}: {what}"


def _number(value: Any) -> float | None:
    """A finite float, or None (missing, null, NaN)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _histogram(report: Mapping[str, Any], notes: list[str], name: str):
    counts = {}
    for key, value in (report.get("histogram") or {}).items():
        try:
            counts[int(key)] = int(value)
        except (TypeError, ValueError):
            continue
    counts = {k: v for k, v in counts.items() if v > 0}
    if not counts:
        notes.append(f"{name}: skipped, the report has no queries per sample count")
        return None
    figure = new_figure(6.4, 4.0)
    ax = figure.add_subplot()
    xs = sorted(counts)
    ax.bar(xs, [counts[x] for x in xs], width=0.8, color=RUN_COLOR)
    mean = _number((report.get("spend") or {}).get("samples_per_query"))
    if mean is not None:
        ax.axvline(mean, color="black", linestyle="--", linewidth=1,
                   label=f"mean {mean:.3g} samples/query")
        ax.legend(loc="upper right")
    ax.set_xlabel("samples per query")
    ax.set_ylabel("queries")
    if len(xs) <= 30:
        ax.set_xticks(xs)
    ax.set_title(_title(report, f"samples per query ({sum(counts.values())} queries)"))
    return figure


def _bins(report: Mapping[str, Any], notes: list[str], name: str):
    bins = [b for b in report.get("bins") or [] if _number(b.get("mean_samples")) is not None]
    if not bins:
        notes.append(f"{name}: skipped, no bin has queries")
        return None
    labelled = any(_number(b.get("accuracy")) is not None for b in bins)
    if not labelled:
        notes.append(f"{name}: accuracy panel left out, no gold labels")
    figure = new_figure(11.0 if labelled else 6.0, 4.2)
    axes = figure.subplots(1, 2 if labelled else 1, squeeze=False)[0]
    names = [str(b.get("name")) for b in bins]
    xs = list(range(len(bins)))
    width = 0.38

    ax = axes[0]
    ax.bar([x - width / 2 for x in xs], [_number(b["mean_samples"]) for b in bins], width,
           color=RUN_COLOR, label="run")
    _paired(ax, xs, width, [_number(b.get("predicted_samples")) for b in bins], None, "plan")
    ax.set_ylabel("mean samples per query")
    ax.set_title("samples per query")
    _bin_axis(ax, xs, names, bins)

    if labelled:
        ax = axes[1]
        acc = [_number(b.get("accuracy")) for b in bins]
        se = [_number(b.get("accuracy_se")) for b in bins]
        ax.bar([x - width / 2 for x in xs], [a if a is not None else 0.0 for a in acc], width,
               yerr=[s if (s is not None and a is not None) else 0.0 for a, s in zip(acc, se)],
               capsize=3, color=RUN_COLOR, label="run ± s.e.")
        _paired(ax, xs, width, [_number(b.get("predicted_accuracy")) for b in bins],
                [_number(b.get("predicted_accuracy_se")) for b in bins], "plan")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy")
        _bin_axis(ax, xs, names, bins)
    figure.suptitle(_title(report, "per bin"))
    return figure


def _paired(ax, xs, width, values, errors, label) -> None:
    """The plan's value per bin as a bar beside the run's (± its error where given)."""
    points = [(x, v, (errors[i] if errors else None)) for i, (x, v) in enumerate(zip(xs, values))
              if v is not None]
    if not points:
        return
    has_error = any(e is not None for _, _, e in points)
    ax.bar([x + width / 2 for x, _, _ in points], [v for _, v, _ in points], width,
           yerr=[e or 0.0 for _, _, e in points] if has_error else None, capsize=3,
           color=PLAN_COLOR, label=f"{label} ± s.e." if has_error else label)


def _bin_axis(ax, xs, names, bins) -> None:
    ax.set_xticks(xs, [f"{n}\n({b.get('queries', '?')} q)" for n, b in zip(names, bins)])
    ax.legend(loc="best")


def _vs_uniform(report: Mapping[str, Any], notes: list[str], name: str):
    base = report.get("baseline")
    accuracy = _number(report.get("accuracy"))
    if not base:
        notes.append(f"{name}: skipped, the report has no uniform baseline")
        return None
    if accuracy is None or _number(base.get("accuracy")) is None:
        notes.append(f"{name}: skipped, no gold labels (no accuracy to compare)")
        return None
    spend = report.get("spend") or {}
    run_spq = _number(spend.get("samples_per_query"))
    base_spq = _number(base.get("samples_per_query"))
    uniform = f"uniform {base['strategy']}" if base.get("strategy") else "uniform"
    labels = [
        f"{report.get('policy', 'policy')}\n{_spq(run_spq)}",
        f"{uniform}\n{_spq(base_spq)}",
    ]
    values = [accuracy, _number(base["accuracy"])]
    errors = [_number(report.get("accuracy_se")) or 0.0, _number(base.get("accuracy_se")) or 0.0]
    figure = new_figure(6.0, 4.2)
    ax = figure.add_subplot()
    bars = ax.bar([0, 1], values, 0.6, yerr=errors, capsize=6, color=[RUN_COLOR, UNIFORM_COLOR])
    for bar, value, error in zip(bars, values, errors):
        ax.annotate(f"{value:.3f} ± {error:.3f}", (bar.get_x() + bar.get_width() / 2,
                    min(value + error, 1.0)), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=9)
    ax.set_xticks([0, 1], labels)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(f"accuracy ± s.e. ({report.get('labelled', '?')} labelled queries)")
    ax.set_title(_title(report, "run vs uniform at equal spend"))
    return figure


def _spq(value: float | None) -> str:
    return "" if value is None else f"{value:.3g} samples/query"
