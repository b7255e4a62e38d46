"""The standard normal CDF and its inverse in plain numpy (numpy has neither, and the simulator
avoids scipy and keeps JAX out of generation).

They serve inverse-CDF sampling of truncated log-normal token lengths: a sample that finishes with
an answer must have stopped before the token cap, so its length is drawn from the log-normal
conditioned on lying below the cap, ``exp(mu + sigma * ndtri(u * ndtr(c)))`` with
``c = (log cap - mu) / sigma``. ``ndtr`` is accurate to a few parts in 1e7 (relative, tails included) and ``ndtri`` to
about 1e-8 absolute: far below what a token count can show.
"""

from __future__ import annotations

import numpy as np

# W. J. Cody-style Chebyshev fit of erfc (Numerical Recipes' erfcc): fractional error < 1.2e-7.
_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851638,
    -0.82215223,
    0.17087277,
)

# P. J. Acklam's rational approximation of the normal quantile: relative error < 1.2e-9.
_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
      -30.66479806614716, 2.506628277459239)  # fmt: skip
_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
      -13.28068155288572)  # fmt: skip
_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
      4.374664141464968, 2.938163982698783)  # fmt: skip
_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
_P_LOW = 0.02425


def _horner(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    result = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        result = result * x + c
    return result


def erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function, elementwise."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _horner(_ERFC[::-1], t)
    tail = t * np.exp(-z * z + poly)
    return np.where(x >= 0, tail, 2.0 - tail)


def ndtr(x: np.ndarray) -> np.ndarray:
    """``P(Z <= x)`` for a standard normal ``Z``, elementwise."""
    return 0.5 * erfc(-np.asarray(x, dtype=np.float64) / np.sqrt(2.0))


def ndtri(p: np.ndarray) -> np.ndarray:
    """The ``x`` with ``ndtr(x) == p``, elementwise; ``p`` is clipped into ``(0, 1)``."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1.0 - 1e-16)
    q = p - 0.5
    r = q * q
    central = _horner(_A, r) * q / (_horner(_B, r) * r + 1.0)
    low = np.sqrt(-2.0 * np.log(np.minimum(p, 1.0 - p)))
    tail = _horner(_C, low) / (_horner(_D, low) * low + 1.0)
    return np.where(p < _P_LOW, tail, np.where(p > 1.0 - _P_LOW, -tail, central))
