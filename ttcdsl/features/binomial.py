"""The Adaptive-Consistency stopping probability without scipy.

Aggarwal et al. (2023) stop when P(p > 1/2) >= 0.95 for p ~ Beta(v1 + 1, v2 + 1), with v1 >= v2
the votes of the two leading answers. For integer a, b the Beta CDF is a binomial tail,
I_x(a, b) = P(Binomial(a + b - 1, x) >= a), so with a = v1 + 1, b = v2 + 1, n = v1 + v2 + 1:

    P(p > 1/2) = 1 - I_{1/2}(a, b) = P(Binomial(n, 1/2) <= v1) = 2^-n * sum_{i <= v1} C(n, i).

(Check: v1 = 1, v2 = 0 gives Beta(2, 1), whose density 2p leaves 3/4 above 1/2; the formula gives
P(Binomial(2, 1/2) <= 1) = 3/4. A tie v1 = v2 gives exactly 1/2.)

The CDFs of Binomial(n, 1/2) for n = 0..N are kept in one flat table, built once with Pascal's
rule in floating point: C(n, i) / 2^n is exact while C(n, i) < 2^53 and the partial sums are exact
for n <= 53, so the table agrees with exact rational arithmetic there; far tails below 1e-308
underflow to 0, which is their value to double precision anyway. The table grows on demand by
doubling and holds N^2 / 2 doubles (N = 1024: 4 MiB); a row count beyond ``TABLE_LIMIT`` is
computed per distinct n instead.
"""

from __future__ import annotations

import numpy as np

TABLE_LIMIT = 2048


def _pascal_cdf_rows(n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat, offsets): the CDF of Binomial(n, 1/2) at 0..n is flat[offsets[n] : offsets[n] + n + 1]."""
    offsets = np.zeros(n_max + 2, dtype=np.int64)
    offsets[1:] = np.cumsum(np.arange(1, n_max + 2))
    flat = np.empty(int(offsets[-1]))
    pmf = np.ones(1)
    for n in range(n_max + 1):
        if n > 0:
            grown = np.zeros(n + 1)
            grown[:-1] += pmf
            grown[1:] += pmf
            pmf = grown * 0.5
        flat[offsets[n] : offsets[n + 1]] = np.minimum(np.cumsum(pmf), 1.0)
    return flat, offsets


class _Table:
    """The growing flat table; one per process."""

    def __init__(self) -> None:
        self.n_max = -1
        self.flat = np.empty(0)
        self.offsets = np.zeros(1, dtype=np.int64)

    def ensure(self, n_max: int) -> None:
        if n_max > self.n_max:
            size = 64
            while size < n_max:
                size *= 2
            self.flat, self.offsets = _pascal_cdf_rows(min(size, TABLE_LIMIT))
            self.n_max = min(size, TABLE_LIMIT)


_TABLE = _Table()


def _cdf_row(n: int) -> np.ndarray:
    """CDF of Binomial(n, 1/2) at 0..n via log-space terms (rows beyond the table)."""
    i = np.arange(1, n + 1)
    log_pmf = np.concatenate([[0.0], np.cumsum(np.log((n - i + 1) / i))]) - n * np.log(
        2.0
    )
    return np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)


def binomial_half_cdf(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``P(Binomial(n, 1/2) <= k)`` elementwise for integer arrays with 0 <= k <= n."""
    n = np.asarray(n, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    if n.size and (int(k.min()) < 0 or bool((k > n).any())):
        raise ValueError("binomial_half_cdf needs 0 <= k <= n")
    out = np.empty(n.shape)
    in_table = n <= TABLE_LIMIT
    if in_table.any():
        _TABLE.ensure(int(n[in_table].max()))
        out[in_table] = _TABLE.flat[_TABLE.offsets[n[in_table]] + k[in_table]]
    for big in np.unique(n[~in_table]):
        where = n == big
        out[where] = _cdf_row(int(big))[k[where]]
    return out


def beta_half_sf(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """P(p > 1/2) for p ~ Beta(first + 1, second + 1), elementwise (any counts >= 0)."""
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    return binomial_half_cdf(first + second + 1, first)
