"""The runtime: executes a plan round by round against a generation backend.

* :mod:`~ttcdsl.runtime.backend` — the protocol every backend speaks (:class:`Backend`,
  :class:`GenerationRequest`, :class:`GenerationResult`, ...) and :func:`sample_seed`.
* :mod:`~ttcdsl.runtime.replay` — :class:`ReplayBackend`, serving logged samples without
  replacement in a seeded order.

Nothing here imports jax or vllm; the engine backends import theirs when constructed.
"""

from ttcdsl.runtime.backend import (
    Backend,
    BackendCapabilities,
    BackendError,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
    sample_seed,
)
from ttcdsl.runtime.replay import ReplayBackend, replay_order

__all__ = [
    "Backend",
    "BackendCapabilities",
    "BackendError",
    "GeneratedSample",
    "GenerationRequest",
    "GenerationResult",
    "ReplayBackend",
    "replay_order",
    "sample_seed",
]
