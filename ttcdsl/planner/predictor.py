"""The per-query curve predictor of ``allocate per query``: probe features -> response curve.

Fitted at plan time on the calibration queries: each query's features are evaluated on its probe
(:mod:`ttcdsl.planner.calibration`, the same evaluator a run uses), and its target is its own
curve — expected objective (accuracy or coverage) and expected samples at each count — simulated
from its probe and held-out samples by the planner's simulation of a run
(:mod:`ttcdsl.planner.stopping`: stop rules, truncation and all).

The model is a smoothed nearest-neighbour regression: a query's predicted curve is the mean curve
of the calibration queries nearest to it in standardized feature space, at least ``neighbours``
of them, every query tied at the boundary distance included (probe features are often discrete,
e.g. agreement of 4 samples takes 4 values, so ties are the rule: a query gets the mean curve of
all calibration queries whose probes looked exactly like its own when there are enough of them).
It is a local average of real curves, so a prediction is always a curve some queries had (it is
monotone where they are, and flat where every neighbour's is: the hopeless and the settled).

Stored in the plan as calibration *points*: the distinct standardized feature vectors with how
many calibration queries had each and their mean curves (prediction only needs those sums), plus
the standardization (centre, scale, and the median that stands in for an undefined feature value,
e.g. a probe cut at ``max_tokens``). Pure numpy: a run imports it without the planner's solvers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttcdsl.lang import ir

PREDICTOR_VERSION = 1
ROWS_PER_CHUNK = 2048  # queries per block of the [queries, points, features] distance array


def neighbours_for(n_queries: int) -> int:
    """How many calibration queries a prediction averages: ``ceil(sqrt(Q))``, at least 5 — wide
    enough that a curve's mean has a small error, narrow enough to follow the features."""
    return max(5, math.ceil(math.sqrt(max(n_queries, 1))))


def feature_names(policy: ir.Policy) -> tuple[str, ...]:
    """The features the predictor reads: the policy's, in order, then its difficulty."""
    names = tuple(f.name for f in policy.features)
    return names + (("difficulty",) if policy.difficulty is not None else ())


def feature_matrix(names: Sequence[str], features: Mapping[str, np.ndarray]) -> np.ndarray:
    """``[Q, F]`` float64 from the evaluator's per-feature arrays (NaN: undefined)."""
    return np.stack([np.asarray(features[n], dtype=np.float64) for n in names], axis=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvePredictor:
    names: tuple[str, ...]  # [F] feature names
    center: np.ndarray  # [F] calibration mean of each feature
    scale: np.ndarray  # [F] calibration standard deviation (1 where constant)
    fill: np.ndarray  # [F] calibration median: the value of an undefined feature
    levels: np.ndarray  # [K] int64 sample counts, probe included
    points: np.ndarray  # [P, F] distinct standardized feature vectors
    count: np.ndarray  # [P] calibration queries at each point
    value: np.ndarray  # [P, K] their mean objective curve
    samples: np.ndarray  # [P, K] their mean expected samples (probe included)
    neighbours: int

    # ------------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        names: Sequence[str],
        x: np.ndarray,
        value: np.ndarray,
        samples: np.ndarray,
        levels: np.ndarray,
        *,
        neighbours: int | None = None,
    ) -> CurvePredictor:
        """Fit on ``x`` [Q, F] raw features and per-query curves ``value``/``samples`` [Q, K]."""
        x = np.asarray(x, dtype=np.float64)
        q = x.shape[0]
        if q == 0:
            raise ValueError("no calibration query to fit the predictor on")
        # rounded as the plan stores them, so that a run standardizes exactly as the fit did
        fill = _six(np.array([np.nanmedian(c) if np.isfinite(c).any() else 0.0 for c in x.T]))
        filled = np.where(np.isfinite(x), x, fill[None, :])
        center = _six(filled.mean(0))
        scale = filled.std(0)
        scale = _six(np.where(scale > 1e-12, scale, 1.0))
        z = _round_z((filled - center) / scale)
        points, inverse = np.unique(z, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        count = np.bincount(inverse, minlength=len(points)).astype(np.float64)
        sums_v = np.zeros((len(points), value.shape[1]))
        sums_s = np.zeros_like(sums_v)
        np.add.at(sums_v, inverse, value)
        np.add.at(sums_s, inverse, samples)
        return cls(
            names=tuple(names),
            center=center,
            scale=scale,
            fill=fill,
            levels=np.asarray(levels, dtype=np.int64),
            points=points,
            count=count,
            value=sums_v / count[:, None],
            samples=sums_s / count[:, None],
            neighbours=int(neighbours or neighbours_for(q)),
        )

    def standardize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return _round_z((np.where(np.isfinite(x), x, self.fill[None, :]) - self.center) / self.scale)

    # --------------------------------------------------------------------- prediction

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[Q, K]`` predicted objective and expected samples for raw features ``x`` [Q, F]."""
        z = self.standardize(x)
        counts = np.broadcast_to(self.count, (len(z), len(self.count)))
        chosen = self._select(z, counts)
        chosen = chosen.astype(np.float64)
        total = (chosen * counts).sum(1, keepdims=True)
        return (chosen @ (self.value * self.count[:, None]) / total,
                chosen @ (self.samples * self.count[:, None]) / total)

    def predict_left_out(
        self, x: np.ndarray, value: np.ndarray, samples: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out predictions for the calibration queries the model was fitted on (``x``,
        ``value``, ``samples`` as given to :meth:`fit`): each query predicted from the others
        only, as a new query would be — the honest basis of the plan's predicted accuracy."""
        z = self.standardize(x)
        own = np.array([_row_of(self.points, row) for row in z])
        counts = np.broadcast_to(self.count, (len(z), len(self.count))).copy()
        counts[np.arange(len(z)), own] -= 1.0
        chosen = self._select(z, counts).astype(np.float64)
        total = (chosen * counts).sum(1, keepdims=True)
        # sums over the chosen points, minus the query's own curve where its point was chosen
        mine = chosen[np.arange(len(z)), own][:, None]
        pv = (chosen @ (self.value * self.count[:, None]) - mine * value) / total
        ps = (chosen @ (self.samples * self.count[:, None]) - mine * samples) / total
        return pv, ps

    def _select(self, z: np.ndarray, counts: np.ndarray) -> np.ndarray:
        out = np.zeros(counts.shape, dtype=bool)
        for start in range(0, len(z), ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            out[rows] = self._select_chunk(z[rows], counts[rows])
        return out

    def _select_chunk(self, z: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``[Q, P]`` bool: the points within the smallest radius that holds ``neighbours``
        queries (all of them when there are fewer); ties at that radius are all in."""
        d = np.sqrt(((z[:, None, :] - self.points[None, :, :]) ** 2).sum(2))  # [Q, P]
        d = np.where(counts > 0, d, np.inf)
        order = np.argsort(d, axis=1, kind="stable")
        sorted_d = np.take_along_axis(d, order, axis=1)
        cum = np.cumsum(np.take_along_axis(counts, order, axis=1), axis=1)
        need = np.minimum(self.neighbours, cum[:, -1])
        first = np.argmax(cum >= need[:, None] - 1e-9, axis=1)
        radius = sorted_d[np.arange(len(z)), first]
        return (d <= radius[:, None] + 1e-12) & (counts > 0)

    # ------------------------------------------------------------------ plan (de)serialization

    def to_plan(self) -> dict[str, Any]:
        return {
            "version": PREDICTOR_VERSION,
            "model": "nearest_neighbours",
            "features": list(self.names),
            "neighbours": self.neighbours,
            "center": self.center,
            "scale": self.scale,
            "fill": self.fill,
            "levels": self.levels,
            "points": [list(p) for p in self.points],
            "count": [int(c) for c in self.count],
            "value": [list(v) for v in self.value],
            "samples": [list(s) for s in self.samples],
        }

    @classmethod
    def from_plan(cls, data: Any) -> CurvePredictor:
        """Rebuild from a plan's ``per_query.predictor``; raises ``ValueError(field, message)``
        naming the field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("", "must be a mapping")
        if data.get("version") != PREDICTOR_VERSION:
            raise ValueError("version", f"predictor version {data.get('version')!r}; this ttc "
                             f"reads version {PREDICTOR_VERSION}")
        names = data.get("features")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError("features", "must be a non-empty list of feature names")
        f = len(names)
        neighbours = data.get("neighbours")
        if not isinstance(neighbours, int) or isinstance(neighbours, bool) or neighbours < 1:
            raise ValueError("neighbours", f"must be a positive integer, got {neighbours!r}")
        center = _array(data, "center", (f,))
        scale = _array(data, "scale", (f,))
        if (scale <= 0).any():
            raise ValueError("scale", "must be positive")
        fill = _array(data, "fill", (f,))
        levels = _array(data, "levels", (None,))
        k = len(levels)
        if k == 0 or (levels != np.round(levels)).any() or (np.diff(levels) <= 0).any():
            raise ValueError("levels", "must be increasing whole sample counts")
        count = _array(data, "count", (None,))
        p = len(count)
        if p == 0 or (count < 1).any():
            raise ValueError("count", "must list at least one point, each with a query or more")
        return cls(
            names=tuple(names),
            center=center,
            scale=scale,
            fill=fill,
            levels=levels.astype(np.int64),
            points=_array(data, "points", (p, f)),
            count=count,
            value=_array(data, "value", (p, k)),
            samples=_array(data, "samples", (p, k)),
            neighbours=neighbours,
        )


def _six(values: np.ndarray) -> np.ndarray:
    """Six significant digits, as the plan writes floats (:func:`ttcdsl.planner.plan.dump_plan`)."""
    values = np.asarray(values, dtype=np.float64)
    return np.array([float(f"{v:.6g}") for v in values.reshape(-1)]).reshape(values.shape)


def _round_z(z: np.ndarray) -> np.ndarray:
    """Standardized values to six significant digits: the plan stores them so, and a run must
    find the same points (and ties) as the planner did."""
    return _six(z)


def _row_of(points: np.ndarray, row: np.ndarray) -> int:
    return int(np.flatnonzero((points == row[None, :]).all(1))[0])


def _array(data: Mapping, field: str, shape: tuple) -> np.ndarray:
    try:
        values = np.asarray(data.get(field), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(field, "must be numbers") from None
    if values.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, values.shape)):
        want = " x ".join("?" if s is None else str(s) for s in shape)
        raise ValueError(field, f"must have shape [{want}], got {list(values.shape)}")
    if not np.isfinite(values).all():
        raise ValueError(field, "must be finite numbers")
    return values
