"""One compared policy: planned on the calibration queries, replayed on the evaluation queries.

A policy whose budget declares ``mean samples per query <= B`` is re-run at each compared mean
budget: its text is rewritten at that statement's span (so the plan and the run see an ordinary
policy, with its own hash) and planned again. A policy without that limit (a fixed count, a token
budget) runs once, at its own budget. A bandit's plan is ``ttc plan``'s: the online one
(:func:`ttcdsl.planner.online`) with the learned skip fitted on the calibration queries
(:mod:`ttcdsl.runtime.bandit_gain`) and, unless asked not to, its simulated prediction.

Each run is the runtime's own executor with the replay backend over the evaluation table, into a
throw-away samples store: the numbers are the ones ``ttc run`` would report, query by query.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ttcdsl.lang import ir
from ttcdsl.samples.schema import SamplesTable


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """Per evaluation query (in the evaluation order): the run's outcome under one seed."""

    seed: int
    correct: np.ndarray  # [Q] float: 1 correct, 0 wrong or no answer
    covered: np.ndarray  # [Q] float: some sample correct
    samples: np.ndarray  # [Q] int
    tokens: np.ndarray  # [Q] float, NaN where a count is unknown
    uniform_correct: np.ndarray  # [Q] uniform at the run's total spend on the same orders
    uniform_covered: np.ndarray


def mean_budget_limit(policy: ir.Policy) -> ir.BudgetLimit | None:
    """The batch's ``mean samples per query`` limit, the one a comparison varies (or None)."""
    return policy.budget.find("mean", "samples")


def at_budget(policy: ir.Policy, budget: float) -> ir.Policy:
    """``policy`` with its mean samples budget set to ``budget`` (rewritten in its source)."""
    limit = mean_budget_limit(policy)
    if limit is None:
        raise ValueError(f"{policy.name} declares no mean samples budget")
    return with_limit(policy, limit, budget)


def varied_limit(policy: ir.Policy) -> ir.BudgetLimit | None:
    """The budget ``ttc simulate --budget/--sweep`` sets: the batch's ``mean samples per query``
    where declared (what ``ttc compare`` varies), otherwise the policy's first batch limit in its
    own units (``total tokens``, ``mean tokens per query``, ...: what ``ttc plan --sweep``
    sweeps); None without a batch limit."""
    batch = [l for l in policy.budget.limits if l.kind in ("mean", "total") and l.bin is None]
    return mean_budget_limit(policy) or (batch[0] if batch else None)


def with_limit(policy: ir.Policy, limit: ir.BudgetLimit, value: float) -> ir.Policy:
    """``policy`` with the batch ``limit`` (one of its own) set to ``value``, rewritten in its
    source and parsed again (so every check of the language applies to the new budget)."""
    from ttcdsl.lang.api import parse_policy
    from ttcdsl.lang.numbers import format_number

    if limit.kind not in ("mean", "total") or limit.bin is not None:
        raise ValueError(f"{limit.kind} limits are not batch budgets")
    statement = (f"mean {limit.unit} per query <= {format_number(value)}" if limit.kind == "mean"
                 else f"total {limit.unit} <= {format_number(value)}")
    text = policy.source.text
    replaced = text[: limit.span.start] + statement + text[limit.span.end :]
    return parse_policy(replaced, name=policy.source.name)


def describe_limit(limit: ir.BudgetLimit) -> str:
    """``total tokens``, ``mean samples per query``: what a budget value is a value of."""
    return f"mean {limit.unit} per query" if limit.kind == "mean" else f"total {limit.unit}"


def plan_for(
    policy: ir.Policy,
    calibration: SamplesTable,
    score_columns: Mapping[str, str],
    *,
    reps: int,
    progress: Callable[[str], None],
    predict_bandit: bool = False,
) -> dict:
    """The plan the policy runs from: ``ttc plan``'s (optimal, fixed, or a bandit's online plan
    with its learned skip fitted on the calibration queries). ``predict_bandit``: a bandit's plan
    also predicts its run, as ``ttc plan``'s does (:mod:`ttcdsl.planner.bandit_forecast`, the
    simulator on the calibration queries), so its row gets a planned figure like any other."""
    from ttcdsl.planner.build import make_plan

    result = make_plan(
        policy, calibration, policy_file=policy.source.name, score_columns=score_columns,
        reps=reps, cross_check=False, progress=progress, predict_bandit=predict_bandit,
    )
    return result.plan


def replay(
    policy: ir.Policy,
    plan: Mapping,
    evaluation: SamplesTable,
    query_ids: Sequence[str],
    score_columns: Mapping[str, str],
    seeds: Sequence[int],
) -> list[RunResult]:
    """Run the plan on the evaluation queries once per seed (a seed is a sample order), and
    uniform allocation at each run's spend on the same orders
    (:func:`ttcdsl.runtime.report.uniform_baseline`, the run report's baseline)."""
    from ttcdsl.equal_spend import matched_baseline
    from ttcdsl.observables import require
    from ttcdsl.runtime.executor import RunSpec
    from ttcdsl.runtime.executors import executor_for
    from ttcdsl.runtime.replay import ReplayBackend, prompt_bounds
    from ttcdsl.runtime.report import uniform_baseline
    from ttcdsl.samples import RunMeta, SampleStore

    from ttcdsl.planner.candidates import apply_plan_choices

    policy = apply_plan_choices(policy, plan)  # bins with candidates run the plan's choice
    require(policy, evaluation, score_columns=score_columns,
            table_name="the evaluation table", query_ids=tuple(query_ids))
    bounds = prompt_bounds(evaluation) if policy.budget.charge_prompt_tokens else {}
    out = []
    with tempfile.TemporaryDirectory(prefix="ttc-compare-") as scratch:
        for seed in seeds:
            backend = ReplayBackend(evaluation, seed=seed, score_columns=score_columns)
            store = SampleStore.create(
                Path(scratch) / f"samples-{seed}.jsonl",
                RunMeta(policy_hash=policy.source_hash, backend=backend.name, seed=seed,
                        source=f"ttc compare {policy.name}"),
            )
            spec = RunSpec(
                policy=policy, plan=plan, query_ids=tuple(query_ids),
                prompts={q: "" for q in query_ids}, seed=seed,
                # as `ttc run` replays: the ledger bounds each prompt by its logged count
                prompt_bounds=bounds,
            )
            try:
                outcome = executor_for(spec, backend, store).run()
                spent = sum(r.samples for r in outcome.results)
                tokens = None if any(r.tokens is None for r in outcome.results) \
                    else sum(r.tokens for r in outcome.results)
                # the run report's baseline: uniform at the run's spend (in its budget's unit),
                # the same served orders
                base = matched_baseline(
                    lambda total: uniform_baseline(backend, policy, tuple(query_ids), total, seed),
                    policy, spent, tokens)
            finally:
                backend.close()
            results = outcome.results
            out.append(RunResult(
                seed=seed,
                correct=np.array([1.0 if r.correct else 0.0 for r in results]),
                covered=np.array([1.0 if r.covered else 0.0 for r in results]),
                samples=np.array([r.samples for r in results], dtype=np.int64),
                tokens=np.array(
                    [np.nan if r.tokens is None else float(r.tokens) for r in results]
                ),
                uniform_correct=np.array(
                    [1.0 if base["per_query"][q] else 0.0 for q in query_ids]),
                uniform_covered=np.array(
                    [1.0 if base["per_query_covered"][q] else 0.0 for q in query_ids]),
            ))
            store.path.unlink()
    return out
