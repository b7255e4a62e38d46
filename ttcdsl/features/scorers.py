"""Resolving a policy's scorers to columns of a batch.

The evaluator reads ``score(s)`` and ``scores(s)`` from ``batch.scores[s]`` only; this is the one
place that says where each scorer kind's numbers come from, so the planner and the runtime
resolve them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ttcdsl.features.batch import SampleBatch
from ttcdsl.lang import ir


def resolve_scorers(
    batch: SampleBatch,
    scorers: Iterable[ir.Scorer],
    reward_scores: Mapping[str, np.ndarray] | None = None,
) -> SampleBatch:
    """The batch with a score column for every scorer: ``confidence`` reads ``logprob``, ``gold``
    reads ``correct``, and a ``reward_model`` scorer reads ``reward_scores[name]`` (``[B, L]``,
    NaN where a sample was not scored). Columns already in ``batch.scores`` are kept."""
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
                    scores[scorer.name] = np.asarray(
                        reward_scores[scorer.name], dtype=np.float64
                    )
                elif scorer.name not in scores:
                    raise KeyError(f"reward-model scorer '{scorer.name}' has no scores")
    return batch.with_scores(scores).check()
