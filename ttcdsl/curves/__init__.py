"""Response curves for the planner: accuracy, coverage and cost of a strategy at n samples.

    pool = QueryPool.from_table(table)                   # or QueryPool.from_lists(...)
    curve = response_curve(pool, "majority_vote", 16, queries=bin_rows)
    curve.accuracy          # [queries x levels], curve.method flags EXACT / MONTE_CARLO / EXTRAPOLATED

Modules: :mod:`.pool` (input arrays), :mod:`.exact` (closed forms and the majority-vote DP),
:mod:`.montecarlo` (JAX simulation of the runtime rules), :mod:`.extrapolate` (fitted models beyond
the logged samples), :mod:`.curve` (assembly). JAX is imported only when a name that needs it
(``response_curve``, ``simulate``, ...) is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ttcdsl.curves.extrapolate import Extrapolation
from ttcdsl.curves.pool import QueryPool

_LAZY = {
    "Curve": "ttcdsl.curves.curve",
    "Method": "ttcdsl.curves.curve",
    "STRATEGIES": "ttcdsl.curves.curve",
    "response_curve": "ttcdsl.curves.curve",
    "simulate": "ttcdsl.curves.montecarlo",
    "evaluate_order": "ttcdsl.curves.montecarlo",
}

__all__ = ["Extrapolation", "QueryPool", *_LAZY]

if TYPE_CHECKING:
    from ttcdsl.curves.curve import STRATEGIES, Curve, Method, response_curve
    from ttcdsl.curves.montecarlo import evaluate_order, simulate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ttcdsl.curves' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
