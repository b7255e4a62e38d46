"""Vectorised evaluation of policy expressions and stop conditions over sets of samples.

See :mod:`ttcdsl.features.evaluate` for the semantics every consumer relies on.
"""

from ttcdsl.features.batch import SampleBatch
from ttcdsl.features.evaluate import (
    NEVER,
    evaluate,
    evaluate_features,
    first_stop,
    holds,
)
from ttcdsl.features.scorers import resolve_scorers

__all__ = [
    "NEVER",
    "SampleBatch",
    "evaluate",
    "evaluate_features",
    "first_stop",
    "holds",
    "resolve_scorers",
]
