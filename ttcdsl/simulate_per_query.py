"""``allocate per query`` as the simulator's target rule (:attr:`simulator.rollout.Config.target_fn`).

A per-query run decides every query's target at once, after the whole batch's probe: the
policy's features on each probe go through the plan's predictor
(:class:`ttcdsl.planner.predictor.CurvePredictor`), and the plan's rule
(:func:`ttcdsl.planner.per_query.allocate_counts`) turns the predicted curves into counts under
the batch's mean budget, split queries moving up in the order of their rank
(:class:`ttcdsl.runtime.per_query.PerQueryExecutor`). The simulator runs that same numpy code: the
features are computed in jit from the probe's statistics (the lowering of a binning key), and
the predictor and the Lagrangian are called back on the host, once per simulated batch. One
implementation of the rule, so the simulator decides as a run does (the tests hold them equal
query by query on the sequences a replay served).

The simulator's probe statistics are float32 where the run's features are float64: features that
float32 holds exactly (vote shares of a small probe, answer counts, whole token counts) give the
run's very targets; others (a mean log-probability) may land on the other side of a predictor
point's rounding, rarely.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ttcdsl.lang import ir


def feature_exprs(policy: ir.Policy) -> list[ir.Expr]:
    """The expressions of the features the predictor reads, in its order
    (:func:`ttcdsl.planner.predictor.feature_names`)."""
    from ttcdsl.planner.predictor import feature_names

    return [policy.difficulty if name == "difficulty" else ir.FeatureRef(name=name, span=None)
            for name in feature_names(policy)]


def target_rule(policy: ir.Policy, plan: Mapping, n_queries: int, lower_key):
    """The plan's per-query rule as a function of the probe's statistics and each query's rank
    (``[Q]`` each, jnp) returning ``[Q]`` int32 targets (probe included). ``lower_key`` lowers a
    feature expression to a function of :class:`simulator.rollout.ProbeStats` (raising on what
    the simulator cannot read)."""
    import jax
    import jax.numpy as jnp

    from ttcdsl.planner.per_query import allocate_counts, mean_budget
    from ttcdsl.planner.predictor import CurvePredictor

    try:
        predictor = CurvePredictor.from_plan(plan["per_query"]["predictor"])
    except ValueError as error:
        from ttcdsl.errors import UserError

        field, message = error.args if len(error.args) == 2 else ("", str(error))
        raise UserError(f"the plan's per_query.predictor{'.' + field if field else ''}: {message}") from None
    features = [lower_key(expr, policy) for expr in feature_exprs(policy)]
    levels = predictor.levels
    budget = mean_budget(policy)
    probe = int(plan.get("probe", policy.probe) or 0)

    def allocate(x: np.ndarray, rank: np.ndarray) -> np.ndarray:
        # the per-query executor's decision (ttcdsl.runtime.per_query), on one simulated batch
        value, samples = predictor.predict(np.asarray(x, np.float64))
        choice, _ = allocate_counts(value, samples, levels, budget, np.full(len(rank), float(probe)),
                                    order=np.asarray(rank, np.int64))
        return np.maximum(levels[choice], probe).astype(np.int32)

    def targets(stats, rank):
        x = jnp.stack([f(stats) for f in features], axis=1).astype(jnp.float32)
        return jax.pure_callback(allocate, jax.ShapeDtypeStruct((n_queries,), jnp.int32), x, rank,
                                 vmap_method="sequential")

    return targets, int(levels.max())
