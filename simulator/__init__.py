"""Pure-JAX simulator of per-question response processes.

A leaf package: it never imports ``ttcdsl``. ``ttcdsl`` lowers a plan to arrays this package
understands, so the simulator can be used and tested on its own.

* :mod:`simulator.population`: the built-in population of questions (difficulty tiers, wrong
  answers, lengths, verifier, confidence, prompts), written once over ``numpy``/``jax.numpy``;
* :mod:`simulator.workload`: ``ttc workload``'s tables drawn from it in NumPy (bit-stable by seed:
  the README's figures and the golden plans rest on them);
* :mod:`simulator.model`: the JAX workload model (the same population, log-normal lengths cut at
  ``max_tokens``, scores) and its samples, for rollouts under ``jit``;
* :mod:`simulator.threefry`: ``jax.random``'s uniform and normal draws, the same bits, fused (faster on CPU);
* :mod:`simulator.order`: the ledger's seeded tie order of the queries;
* :mod:`simulator.fit`: a workload fitted to a samples table's arrays (empirical Bayes);
* :mod:`simulator.rollout`: a planned run's rules as pure JAX functions, vmapped over seeds;
* :mod:`simulator.bandit`: the online bandit's rounds, exploration rules, learned skip and ledger;
* :mod:`simulator.empirical`: a table's logged samples in random orders, the fit past their depth;
* :mod:`simulator.oracle`: the static oracle (knapsack on known response processes).
"""

from simulator.workload import (
    DEFAULT_MIX,
    TIERS,
    Draws,
    Workload,
    draw_samples,
    synthetic_workload,
)

__all__ = ["DEFAULT_MIX", "TIERS", "Draws", "Workload", "draw_samples", "synthetic_workload"]
