"""What a bandit plan predicts: the online bandit simulated on its own calibration table.

A bandit decides online which queries get each round, so no bin curve says what it will spend or
earn, and a second, planner-side model of its rounds would be one more implementation of the
run's rules. Its plan predicts by running it instead: the JAX simulator's empirical mode
(:mod:`simulator.empirical`) serves each calibration query its own logged samples in fresh
random orders through the bandit's lowering (:func:`ttcdsl.simulate.lower_bandit`: the runtime's
rounds, exploration rule, solved rules, learned skip and ledger), :data:`DRAWS` times, and the
three-way tests hold that lowering to the runtime.

Like every plan's prediction, it is a mean per query with the standard error of a mean over the
calibration queries (the spread between queries, which a new batch draws afresh, plus the
orders' noise), and the baseline is exact uniform allocation at the predicted spend on the same
calibration queries, paired per query (:func:`ttcdsl.planner.uniform.paired_baseline`).

What it cannot know: the learned skip was fitted on the same table, so the prediction is
in-sample for the skip (a table-sized handful of state values); counts past a query's logged
samples come from the fitted model (the share is recorded). A bandit the simulator cannot model
gets no prediction, and the plan says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ttcdsl.lang import ir
from ttcdsl.planner.calibration import Calibration
from ttcdsl.rates import rate_se

DRAWS = 16  # sample orders simulated per plan: the orders' noise is then a small part of the error
PER_QUERY = ("correct", "covered", "samples", "tokens")


def forecast(
    policy: ir.Policy,
    plan: Mapping[str, Any],
    table,
    calibration: Calibration,
    *,
    score_columns: Mapping[str, str] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """``(predicted, baseline, why_not)``: the plan's ``predicted`` and ``baseline`` sections,
    or ``(None, None, reason)`` when the simulator cannot model the bandit."""
    from ttcdsl.curves.pool import QueryPool
    from ttcdsl.planner.uniform import paired_baseline
    from ttcdsl.simulate import Unsupported, Workload, check_supported, fit_table, simulate_plan

    try:
        check_supported(policy, plan)
    except Unsupported as error:
        return None, None, f"no prediction: {error.message}"
    say = progress or (lambda message: None)
    fitted, logged = fit_table(table, policy, empirical=True, score_columns=score_columns)
    simulated_ids = list(QueryPool.from_table(table).query_ids)  # fit_table's row order
    n = len(simulated_ids)
    say(f"predicting the run: the bandit simulated on the calibration table ({DRAWS} sample "
        f"orders of {n} queries)")
    from ttcdsl.errors import UserError

    try:
        report = simulate_plan(policy, plan, Workload(name="calibration", fitted=fitted, logged=logged),
                               n_queries=n, seeds=DRAWS, seed=seed, baselines=False, per_query=True)
    except UserError as error:
        # a bandit the simulation cannot finish (one with no per-query cap whose questions run
        # past the longest draw): the plan, and a comparison's replay of it, still stand, with
        # no prediction and the reason (it failed the whole comparison row)
        return None, None, f"no prediction: {error.message}" + (f" ({error.hint})" if error.hint else "")
    row = {q: i for i, q in enumerate(simulated_ids)}
    take = np.array([row[q] for q in calibration.query_ids])  # the calibration's queries, its order
    per_query = {name: values.mean(0)[take] for name, values in report["per_query"].items()}
    # a table without token counts gives the simulator nothing to count: unknown, not 0
    tokens_known = _tokens_known(table) and bool(np.isfinite(per_query["tokens"]).all())

    def mean(name: str) -> float:
        return float(per_query[name].mean())

    def se(name: str) -> float | None:
        q = len(per_query[name])
        if q < 2:
            return None
        measured = float(per_query[name].std(ddof=1) / math.sqrt(q))
        # a rate whose every query is at 0 or 1 has no measured spread: Wilson's error instead
        return rate_se(measured, mean(name), q) if name in ("correct", "covered") else measured

    predicted = {
        "accuracy": mean("correct"),
        "accuracy_se": se("correct"),
        "coverage": mean("covered"),
        "coverage_se": se("covered"),
        "samples": mean("samples"),
        "samples_se": se("samples"),
        "tokens": mean("tokens") if tokens_known else None,
        "tokens_se": se("tokens") if tokens_known else None,
        "source": f"simulated: the bandit on the calibration table, {DRAWS} sample orders",
        "extrapolated": report["simulated"].get("extrapolated", 0.0),
    }
    metric = "covered" if policy.objective == "coverage" else "correct"
    baseline = paired_baseline(calibration, per_query[metric], predicted["samples"], predicted["tokens"])
    return predicted, baseline, None


def _tokens_known(table) -> bool:
    """Every sample's completion tokens are logged (the simulated spend in tokens is then the
    logged samples')."""
    counts = np.ma.MaskedArray(table.completion_tokens)
    return bool(len(counts)) and not np.ma.getmaskarray(counts).any()
