"""Figure helpers every PNG plot shares (run reports, planner sweeps, comparisons): a figure on
matplotlib's Agg canvas and an atomic PNG write. It sits below the planner and the runtime, so
neither imports the other to draw.

matplotlib is imported only inside these functions (``ttc --help`` does not pay for it), and only
its non-interactive Agg canvas is used: figures are :class:`matplotlib.figure.Figure` objects
drawn on :class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, never pyplot, so nothing opens
a window and the process-wide backend of a caller (a notebook, say) is left as it was.
"""

from __future__ import annotations

from pathlib import Path

from ttcdsl.errors import UserError

DPI = 100
RUN_COLOR = "tab:blue"
PLAN_COLOR = "tab:orange"
UNIFORM_COLOR = "tab:gray"


def require_matplotlib() -> None:
    """A clear user error, with the fix, when matplotlib is not installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UserError(
            "PNG plots need matplotlib, which is not installed",
            hint="pip install matplotlib",
        )


def new_figure(width: float, height: float):
    """A figure on the Agg canvas (no pyplot, no global backend switch)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG to ``path`` atomically; the parent directory must exist."""
    from ttcdsl.samples.atomic import atomic_writer

    path = Path(path)
    with atomic_writer(path, mode="wb") as handle:
        # no "Software" stamp: the same report gives the same bytes across matplotlib patch releases
        figure.savefig(handle, format="png", dpi=DPI, metadata={"Software": None})
    return path
