"""Resolving a policy's scorers to columns of a batch.

The evaluator reads ``score(s)`` and ``scores(s)`` from ``batch.scores[s]`` only; this is the one
place that says where each scorer kind's numbers come from, so the planner and the runtime
resolve them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ttcdsl.features.batch import SampleBatch
from ttcdsl.lang import ir


def as_read(scorer: ir.Scorer, values):
    """A reward model's scores as the policy reads them: ``sigmoid(score)`` for a scorer declared
    with ``logits`` (an outcome reward model's raw outputs), else the scores unchanged. Floats,
    NumPy and masked arrays alike (NaN and the mask are kept). The one place the rule lives:
    features and stop rules (:func:`resolve_scorers`), the runtime's per-sample reads
    (:func:`ttcdsl.runtime.aggregate.score_of`), the planner's calibration, the comparison's
    baselines and the observables check all call it, on the table's raw column."""
    if not scorer.logits:
        return values
    if isinstance(values, float | int):
        return 1.0 / (1.0 + math.exp(-values)) if math.isfinite(values) else (
            values if math.isnan(values) else float(values > 0))
    with np.errstate(over="ignore"):
        if isinstance(values, np.ma.MaskedArray):
            return np.ma.MaskedArray(1.0 / (1.0 + np.exp(-values.data.astype(np.float64))),
                                     mask=np.ma.getmaskarray(values))
        return 1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float64)))


def resolve_scorers(
    batch: SampleBatch,
    scorers: Iterable[ir.Scorer],
    reward_scores: Mapping[str, np.ndarray] | None = None,
) -> SampleBatch:
    """The batch with a score column for every scorer: ``confidence`` reads ``logprob``, ``gold``
    reads ``correct``, and a ``reward_model`` scorer reads ``reward_scores[name]`` (``[B, L]``,
    NaN where a sample was not scored) or the batch's column of its name, both raw and read
    through :func:`as_read`."""
    reward_scores = reward_scores or {}
    scores = dict(batch.scores)
    for scorer in scorers:
        match scorer.kind:
            case "confidence":
                scores[scorer.name] = batch.logprob
            case "gold":
                scores[scorer.name] = batch.correct
            case "reward_model":
                if scorer.name in reward_scores:
                    raw = np.asarray(reward_scores[scorer.name], dtype=np.float64)
                elif scorer.name in scores:
                    raw = scores[scorer.name]
                else:
                    raise KeyError(f"reward-model scorer '{scorer.name}' has no scores")
                scores[scorer.name] = as_read(scorer, raw)
    return batch.with_scores(scores).check()
