"""Where stop rules start: the one rule the planner's simulation, the executor and the bandit's
``solved`` checks all follow, so that what a plan simulates is what a run does.

A stop rule is first checked when a query has ``max(1, probe, minimum)`` samples, where
``minimum`` is the per-query sample minimum (``samples per query in a..b`` for the batch, or one
scoped to the query's bin: the larger applies). Checking earlier would let a rule end a query
below the minimum the policy promised; before the probe is complete the query has no bin, so no
stop rules, yet. Counts include the probe.
"""

from __future__ import annotations

import math

from ttcdsl.lang import ir


def first_stop_check(policy: ir.Policy, bin: str | None = None) -> int:
    """The first sample count (probe included) at which ``bin``'s stop rules are checked."""
    first = max(1, int(policy.probe or 0))
    for scope in {None, bin}:
        low = policy.budget.find("per_query_min", "samples", scope)
        if low is not None:
            first = max(first, math.ceil(low.value))
    return first
