"""Where stop rules start being checked: ONE rule shared by the planner, the executor and the
bandit, so that what a plan simulates is what a run does.

A stop rule retires a query only once it has at least ``max(1, probe, per-query minimum)``
samples: never before the probe is complete (the probe is spent on every query), and never below
the policy's ``samples per query in MIN..MAX`` floor (a query that stopped at 2 when the policy
asks for at least 6 would break the policy). Only batch-wide minimums count here: the signature
takes no bin.
"""

from __future__ import annotations

import math

from ttcdsl.lang import ir


def first_stop_check(policy: ir.Policy) -> int:
    """The first sample count at which a stop (or bandit ``solved``) rule may retire a query."""
    floors = [
        math.ceil(limit.value)
        for limit in policy.budget.limits
        if limit.kind == "per_query_min" and limit.unit == "samples" and limit.bin is None
    ]
    return max(1, int(policy.probe or 0), *floors)
