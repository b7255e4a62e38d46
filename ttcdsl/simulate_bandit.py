"""The bandit's learned skip as the simulator's tables (:class:`simulator.bandit.SkipTables`).

The runtime decides a skip from a query's state (sample count, agreement, signal level) with
:func:`ttcdsl.runtime.bandit_gain.outlook`: its projected rounds and the value its next round is
judged by. Both depend on the state alone, so every state a run can reach (``n <= L``, three
agreements, three levels or none) is evaluated here by that same function, and the values are
replaced by their RANKS among all values (equal floats, equal ranks): the simulator then sorts
and compares integers, and decides exactly as the runtime's float64 comparisons do.

The level edges (terciles of the best signal) are returned as they are; the caller
(:func:`ttcdsl.simulate.lower_bandit`) makes them float32 thresholds whose comparison is the
runtime's float64 one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ttcdsl.lang import ir


def skip_tables(policy: ir.Policy, plan: Mapping, length: int):
    """The plan's learned skip for runs of at most ``length`` samples per query and its level
    edges (None: no levels), or None when the plan has none (``ttc run POLICY.ttc`` skips
    nothing). The tables' ``edges`` are left as float64 for the caller to round."""
    import jax.numpy as jnp

    from simulator.bandit import SkipTables
    from ttcdsl.runtime.bandit_gain import AGREEMENT, GainTable, level_scorer, outlook, settings, state_key

    learned = (plan.get("bandit") or {}).get("gain")
    if learned is None:
        return None
    table = GainTable.from_doc(learned)
    s = settings(policy)
    levels = (None,) if table.score_edges is None or level_scorer(policy) is None \
        else ("low", "mid", "high")
    outlooks = {(n, a, v): outlook(table, s, state_key(n, agreed, lv), n)
                for n in range(length + 1) for a, agreed in enumerate(AGREEMENT)
                for v, lv in enumerate(levels)}
    # a projection runs to the cap, or (a policy without one) to the calibration's depth, which
    # may lie past the simulated length
    width = max([1, math.ceil(length / s.round_samples)]
                + [len(projected) for projected, _ in outlooks.values()])
    now = np.full((length + 1, len(AGREEMENT), len(levels)), math.nan)
    value = np.full((length + 1, len(AGREEMENT), len(levels), width), math.nan)
    cost = np.zeros((length + 1, len(AGREEMENT), len(levels), width), np.int32)
    for (n, a, v), (projected, next_value) in outlooks.items():
        if next_value is None:
            continue
        now[n, a, v] = next_value
        for m, (x, c) in enumerate(projected):
            value[n, a, v, m], cost[n, a, v, m] = x, c
    distinct = np.unique(np.concatenate([now[~np.isnan(now)], value[~np.isnan(value)]]))

    def ranks(x):
        return np.where(np.isnan(x), -1, np.searchsorted(distinct, np.nan_to_num(x))).astype(np.int32)

    tables = SkipTables(now=jnp.asarray(ranks(now)), value=jnp.asarray(ranks(value)),
                        cost=jnp.asarray(cost), edges=jnp.zeros(2, jnp.float32))
    return tables, table.score_edges if len(levels) > 1 else None
