"""Which executor runs a plan: the planned one (``optimal``, ``fixed``), the per-query one
(``per_query``: the planned one with predicted per-query targets) or the online bandit.

It sits above both so that neither imports the other's module to choose (the bandit builds on the
planned executor; the planned executor knows nothing of the bandit).
"""

from __future__ import annotations

import dataclasses

from ttcdsl.runtime.backend import Backend
from ttcdsl.runtime.bandit import BanditExecutor
from ttcdsl.runtime.executor import Executor, RunSpec
from ttcdsl.runtime.per_query import PerQueryExecutor
from ttcdsl.samples.store import SampleStore


def executor_for(spec: RunSpec, backend: Backend, store: SampleStore, **kwargs) -> Executor:
    """The executor for the plan's mode: planned (optimal, fixed), per query, or the online
    bandit. A bin with candidates runs the strategy and thresholds the plan chose for it."""
    if spec.plan.get("mode") == "bandit":
        return BanditExecutor(spec, backend, store, **kwargs)
    if spec.plan.get("mode") == "per_query":
        return PerQueryExecutor(spec, backend, store, **kwargs)
    from ttcdsl.planner.candidates import apply_plan_choices

    spec = dataclasses.replace(spec, policy=apply_plan_choices(spec.policy, spec.plan))
    return Executor(spec, backend, store, **kwargs)
