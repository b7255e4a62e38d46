"""Named parametric workloads: populations of questions ``ttc simulate --workload NAME`` draws.

Each is a :class:`simulator.model.Mixture` that differs from the built-in, MATH-like one in the
one respect it is named for, so that a policy can be dry-run where it should help and where it
should not:

* ``builtin``: :func:`simulator.model.default_mixture`, the population ``ttc workload`` draws its
  tables from (:mod:`simulator.population`: half easy, a tail of hard and hopeless);
* ``easy``: mostly questions one sample solves; adaptive allocation has little to save or win;
* ``hard``: a coverage workload: 40% of the questions are (nearly) unsolvable and a quarter hard;
  spending on the hopeless ones is waste, so allocation and stop rules matter most;
* ``trap``: the built-in difficulty, but each question's wrong answers gather on one distractor
  (a Dirichlet concentration of 0.05 instead of 0.5), so majority votes lock onto a wrong answer
  and coverage and accuracy part ways.

The tiers' shares are :data:`simulator.population.TIERS`' (easy, medium, hard, hopeless).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.model import Mixture

# jax is imported inside the factories only: the names and descriptions feed `ttc simulate
# --help`, and every ttc command builds its parser, `ttc check` included, which must not load jax.


def _builtin() -> Mixture:
    from simulator.model import default_mixture

    return default_mixture()


def _easy() -> Mixture:
    import jax.numpy as jnp

    return _builtin()._replace(weights=jnp.asarray([0.75, 0.17, 0.06, 0.02], jnp.float32))


def _hard() -> Mixture:
    import jax.numpy as jnp

    return _builtin()._replace(weights=jnp.asarray([0.15, 0.20, 0.25, 0.40], jnp.float32))


def _trap() -> Mixture:
    import jax.numpy as jnp

    return _builtin()._replace(wrong_concentration=jnp.asarray(0.05, jnp.float32))


WORKLOADS: dict[str, tuple[str, Callable[[], Mixture]]] = {
    "builtin": ("the built-in MATH-like mix: half easy, a tail of hard and hopeless", _builtin),
    "easy": ("mostly easy questions (75% solved by almost every sample)", _easy),
    "hard": ("coverage: 40% nearly unsolvable, 25% hard questions", _hard),
    "trap": ("built-in difficulty, wrong answers gathered on one distractor (votes fail)", _trap),
}
"""name -> (what it is, its mixture)."""


def mixture(name: str) -> Mixture:
    """The named workload's mixture; KeyError for an unknown name (callers list :data:`WORKLOADS`)."""
    return WORKLOADS[name][1]()
