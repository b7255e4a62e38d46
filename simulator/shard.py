"""Questions sharded across devices (``jax.sharding``), so a rollout scales past one device.

The rollouts are written for one global view of the questions (``[S, Q, ...]``: seeds, then
questions); placing those arrays with a :class:`~jax.sharding.NamedSharding` that splits the
question axis over a one-axis :class:`~jax.sharding.Mesh` lets ``jax.jit`` partition the rollout
(GSPMD), with collectives only where questions meet: the batch ledger, whose sums and ranks run
over every question. Random draws inside the rollout do not change with the layout (JAX's
partitionable threefry, on by default), so a sharded rollout is the unsharded one, value for
value (``tests/simulator/test_simulate_cli.py`` checks it on two CPU devices).

The mesh uses the most devices that divide the number of questions evenly (every shard the same
size); with one device, or a count no device split divides, the arrays are left as they are.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "questions"


def question_devices(n_questions: int, devices=None) -> list:
    """The devices ``n_questions`` questions are split over: the most (of ``devices``, default
    all) that divide them evenly; one device means no sharding."""
    devices = list(jax.devices() if devices is None else devices)
    for n in range(len(devices), 0, -1):
        if n_questions % n == 0:
            return devices[:n]
    return devices[:1]


def shard_questions(tree, n_questions: int, *, axis: int = 1, devices=None):
    """``tree`` (arrays whose axis ``axis`` is the questions axis, or scalars) placed with the
    question axis split over :func:`question_devices`; unchanged when that is one device.
    Arrays without that axis (fewer dimensions, or another length there) are replicated."""
    chosen = question_devices(n_questions, devices)
    if len(chosen) == 1:
        return tree
    mesh = Mesh(np.array(chosen), (AXIS,))

    def place(x):
        if getattr(x, "ndim", 0) > axis and x.shape[axis] == n_questions:
            spec = PartitionSpec(*([None] * axis), AXIS)
        else:
            spec = PartitionSpec()
        return jax.device_put(x, NamedSharding(mesh, spec))

    return jax.tree.map(place, tree)
