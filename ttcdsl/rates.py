"""The standard error of a rate (a share of queries: accuracy, coverage) where Wald's fails.

Wald's ``sqrt(p (1 - p) / n)`` is 0 wherever every query agrees: one right query read "accuracy
1 ± 0", and a plan whose calibration queries of a bin were all right predicted that bin at
"1.000 ± 0.000", as if measured exactly. Wilson's interval is not: its 95% half-width over the
quantile is the error used for every rate ttcdsl reports (runs, plans). The two agree for large
``n`` away from 0 and 1.
"""

from __future__ import annotations

import math

WILSON_Z = 1.959963984540054  # the 95% normal quantile the interval is drawn at


def wilson_se(p: float, n: int) -> float:
    """Wilson's standard error of a share ``p`` of ``n`` (> 0) binary outcomes."""
    z2 = WILSON_Z**2
    return math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)


def rate_se(se: float, p: float, n: int) -> float:
    """A measured standard error ``se`` of a mean rate ``p`` over ``n`` queries, or, where every
    query's rate is at 0 or 1 and ``se`` is therefore 0, Wilson's error of ``n`` such queries."""
    if se > 0 or not (p <= 0.0 or p >= 1.0) or n <= 0:
        return se
    return wilson_se(p, n)
