"""Candidates the planner chooses among per bin: Snell et al.'s argmax over test-time settings.

A bin may list candidate strategies (`strategy hard = one of [majority_vote, best_of_n(prm)]`)
and its stop rules candidate thresholds (`when beta_confidence >= tuned [0.9, 0.95, 0.99]`). A
*choice* is one strategy and one value per tuned rule; a bin's choices are their product. Every
choice's curves are estimated on the calibration samples exactly as a plain bin's are (the run
simulated with that strategy and those thresholds, :mod:`ttcdsl.planner.stopping`), and the
choice is made by the same multiple-choice knapsack, its options widened from counts ``n`` to
(choice, n):

1. solve the widened knapsack (the same solvers, limits and rounding as any plan);
2. a bin runs one choice (the runtime applies one strategy per bin). With one batch limit (the
   common case, solved by the exact frontier in milliseconds) and at most
   ``ENUMERATE_MAX`` assignments of one choice per bin, every assignment's restricted
   relaxation is solved and the best kept: exact, and the tests check it against an independent
   brute force. Otherwise each bin keeps the choice the widened solution gives its queries to;
   where the solution splits a bin between choices (at most one bin per coupling limit), each
   is tried and the better restricted optimum kept. That is exact when the relaxation puts each
   bin on one choice, and close otherwise (on random small instances it missed the best
   assignment in about 2% of them, by little); the plan says which method chose;
3. the plan is then made for the policy with every bin pinned to its choice, so the rest of the
   planner (rounding, predictions, cross-checks) and the runtime see an ordinary policy.

The plan records each bin's choice and the runner-up: the best other choice's value at the same
spend (its concave hull over counts at the chosen allocation's expected samples). The runtime
reads the choice back from the plan with :func:`apply_plan_choices`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.lang import ir

ENUMERATE_MAX = 4096
"""Assignments of one choice per bin solved one by one (single-limit problems) before falling back
to the widened solution's choice."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """One candidate of a bin: its strategy and one threshold per tuned stop rule, in order."""

    strategy: ir.Strategy
    thresholds: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        if not self.thresholds:
            return self.strategy.label
        return f"{self.strategy.label}, stop at {', '.join(f'{t:g}' for t in self.thresholds)}"


def is_tuned(policy: ir.Policy) -> bool:
    return any(spec.tuned for spec in policy.bins)


def tuned_rules(spec: ir.Bin) -> list[int]:
    """Indices into ``spec.stop`` of the rules with candidate thresholds."""
    return [
        i for i, rule in enumerate(spec.stop)
        if isinstance(rule.condition, ir.Threshold) and rule.condition.tuned
    ]


def bin_choices(spec: ir.Bin) -> list[Choice]:
    """Every choice of the bin: candidate strategies x candidate thresholds (a plain bin: one)."""
    strategies = spec.candidates or (spec.strategy,)
    values = [spec.stop[i].condition.tuned for i in tuned_rules(spec)]  # type: ignore[union-attr]
    return [
        Choice(strategy=s, thresholds=tuple(t))
        for s in strategies
        for t in itertools.product(*values)
    ]


def pin_bin(spec: ir.Bin, choice: Choice) -> ir.Bin:
    """The bin with its choice applied: one strategy, fixed thresholds, nothing left to tune."""
    stop = list(spec.stop)
    for i, value in zip(tuned_rules(spec), choice.thresholds, strict=True):
        rule = stop[i]
        condition = rule.condition
        assert isinstance(condition, ir.Threshold)
        right = ir.Const(value=float(value), span=condition.right.span)
        stop[i] = dataclasses.replace(
            rule, condition=dataclasses.replace(condition, right=right, tuned=())
        )
    return dataclasses.replace(spec, strategy=choice.strategy, candidates=(), stop=tuple(stop))


def pin_policy(policy: ir.Policy, choices: Sequence[Choice]) -> ir.Policy:
    bins = tuple(pin_bin(spec, c) for spec, c in zip(policy.bins, choices, strict=True))
    return dataclasses.replace(policy, bins=bins)


def with_candidates(policy: ir.Policy, kept: Sequence[tuple[ir.Strategy, ...]]) -> ir.Policy:
    """The policy with each bin's strategy candidates cut to ``kept[b]`` (first = the default)."""
    bins = []
    for spec, strategies in zip(policy.bins, kept, strict=True):
        if spec.candidates:
            spec = dataclasses.replace(
                spec, strategy=strategies[0], candidates=strategies if len(strategies) > 1 else ()
            )
        bins.append(spec)
    return dataclasses.replace(policy, bins=tuple(bins))


# ---- what the table can serve ------------------------------------------------------------------


def servable(
    policy: ir.Policy, table, score_columns: Mapping[str, str] | None
) -> tuple[ir.Policy, list[str], dict[str, list[str]]]:
    """Drop the candidate strategies the table cannot serve (a scorer with no column, scores that
    are no vote weights), each with a warning naming it; refuse a bin with none left. Returns the
    policy, the warnings and each bin's dropped candidates."""
    from ttcdsl.observables import known_share, policy_needs

    columns = dict(score_columns or {})
    warnings: list[str] = []
    dropped_by_bin: dict[str, list[str]] = {}
    kept: list[tuple[ir.Strategy, ...]] = []
    for spec in policy.bins:
        if not spec.candidates:
            kept.append((spec.strategy,))
            continue
        ok, dropped = [], []
        for strategy in spec.candidates:
            why = _cannot_serve(policy, spec, strategy, table, columns, policy_needs, known_share)
            if why is None:
                ok.append(strategy)
            else:
                dropped.append(f"{strategy.label} ({why})")
        if not ok:
            raise UserError(
                f"TTC502: the calibration table can serve none of the candidate strategies of "
                f"bin {spec.name!r}: {'; '.join(dropped)}",
                hint="map the scorer to a column the table has with --score SCORER=COLUMN "
                f"(its score columns: {', '.join(sorted(table.scores)) or 'none'}), or list a "
                "candidate it can serve (ttc explain TTC502)",
            )
        for text in dropped:
            warnings.append(
                f"TTC502: bin {spec.name!r}: candidate {text} is dropped: the calibration table "
                "cannot serve it; the planner chooses among the others"
            )
        kept.append(tuple(ok))
        if dropped:
            dropped_by_bin[spec.name] = dropped
    served = with_candidates(policy, kept)
    if dropped_by_bin:
        served = only_used_scorers(served)
    return served, warnings, dropped_by_bin


def _used_scorers(policy: ir.Policy) -> set[str]:
    from ttcdsl.observables import _condition_exprs, _nodes

    used = {policy.answer.scorer}
    exprs = [f.expr for f in policy.features] + ([policy.difficulty] if policy.difficulty else [])
    for spec in policy.bins:
        used.update(s.scorer for s in (spec.strategy, *spec.candidates))
        exprs.extend(e for rule in spec.stop for e in _condition_exprs(rule.condition))
    for expr in exprs:
        used.update(n.name for n in _nodes(expr) if isinstance(n, ir.ScorerRef))
    return {u for u in used if u is not None}


def _cannot_serve(policy, spec, strategy, table, columns, policy_needs, known_share) -> str | None:
    # what the strategy alone reads (features and stop rules are required of every candidate,
    # by ``require``): a policy whose only reader is this strategy, as its answer
    alone = dataclasses.replace(
        policy, bins=(), binning=None, features=(), difficulty=None, answer=strategy,
        allocation=ir.Optimal(),
    )
    for need in policy_needs(alone, columns):
        if known_share(need, table) == 0.0:
            return f"the table lacks {need.what}"
    if strategy.kind == "weighted_vote" and policy.scorer_kind(strategy.scorer) == "reward_model":
        from ttcdsl.features.weights import vote_weights

        column = table.scores.get(columns.get(strategy.scorer, strategy.scorer))
        values = np.ma.masked_array(column).astype(np.float64).filled(np.nan)
        try:
            vote_weights("reward_model", values, strategy.scorer)
        except UserError as error:
            return str(error)
    return None


# ---- estimating and choosing ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateCurves:
    """Each bin's choices and their curves: ``curves[j]`` holds row ``b`` for choice ``j`` of
    every bin with more than ``j`` choices."""

    choices: tuple[tuple[Choice, ...], ...]  # [G][C_b]
    curves: tuple[Any, ...]  # [C] BinCurves


def candidate_curves(calibration, *, reps: int, seed: int, extrapolate: bool) -> CandidateCurves:
    from ttcdsl.planner.problem import bin_curves

    policy = calibration.policy
    choices = tuple(tuple(bin_choices(spec)) for spec in policy.bins)
    width = max(len(c) for c in choices)
    passes = []
    for j in range(width):
        # bins with fewer choices repeat their last one but are not simulated again
        pinned = pin_policy(policy, [c[min(j, len(c) - 1)] for c in choices])
        only = frozenset(b for b, c in enumerate(choices) if len(c) > j)
        passes.append(bin_curves(
            dataclasses.replace(calibration, policy=pinned), reps=reps, seed=seed,
            extrapolate=extrapolate, only=only,
        ))
    return CandidateCurves(choices=choices, curves=tuple(passes))


def widened(candidates: CandidateCurves):
    """All choices side by side: a BinCurves whose options are (choice j, count k) at column
    ``j * K + k``; a bin's missing choices are not allowed."""
    first = candidates.curves[0]
    width, k = len(candidates.curves), len(first.levels)
    fields = {}
    for field in dataclasses.fields(first):
        name = field.name
        value = getattr(first, name)
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == k:
            fields[name] = np.concatenate([getattr(c, name) for c in candidates.curves], axis=1)
        else:
            fields[name] = value
    fields["levels"] = np.tile(first.levels, width)
    allowed = fields["allowed"].copy()
    for b, choices in enumerate(candidates.choices):
        allowed[b, len(choices) * k:] = False
    fields["allowed"] = allowed
    # per-query curves serve the predictions of the final (selected) curves only
    fields["per_query"] = {n: np.full((v.shape[0], width * k), np.nan) for n, v in first.per_query.items()}
    fields["per_query_noise"] = dict(fields["per_query"])
    return dataclasses.replace(first, **fields)


def select(candidates: CandidateCurves, chosen: Sequence[int], calibration):
    """The BinCurves of one choice per bin (``chosen[b]``), shaped like any bin's curves."""
    first = candidates.curves[0]
    k = len(first.levels)
    fields = {}
    for field in dataclasses.fields(first):
        name = field.name
        value = getattr(first, name)
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == k:
            fields[name] = np.stack([getattr(candidates.curves[j], name)[b] for b, j in enumerate(chosen)])
        elif isinstance(value, np.ndarray) and value.ndim == 1 and name in ("probe_tokens_max", "stop_simulated"):
            fields[name] = np.array([getattr(candidates.curves[j], name)[b] for b, j in enumerate(chosen)])
        else:
            fields[name] = value
    per_query = {n: v.copy() for n, v in first.per_query.items()}
    noise = {n: v.copy() for n, v in first.per_query_noise.items()}
    for b, j in enumerate(chosen):
        rows = calibration.bin_rows(b)
        for n in per_query:
            per_query[n][rows] = candidates.curves[j].per_query[n][rows]
            noise[n][rows] = candidates.curves[j].per_query_noise[n][rows]
    fields["per_query"], fields["per_query_noise"] = per_query, noise
    return dataclasses.replace(first, **fields)


def choose(problem, solution, candidates: CandidateCurves, resolve) -> list[int]:
    """Each bin's choice from the widened problem's solution (module docstring, step 2).
    ``resolve(allowed) -> objective`` solves the problem restricted to ``allowed`` options."""
    k = len(candidates.curves[0].levels)
    g = problem.n_groups
    share = solution.x.reshape(g, -1, k).sum(axis=2)  # [G, C]
    value = np.where(problem.allowed, problem.value, -np.inf).reshape(g, -1, k).max(axis=2)
    chosen = [int(np.lexsort((-value[b], -share[b]))[0]) for b in range(g)]
    split = [b for b in range(g) if (share[b] > 1e-9).sum() > 1]
    if not split:
        return chosen
    best, best_objective = chosen, -np.inf
    for combo in itertools.product(*[np.flatnonzero(share[b] > 1e-9).tolist() for b in split]):
        trial = list(chosen)
        for b, j in zip(split, combo, strict=True):
            trial[b] = int(j)
        objective = resolve(restrict(problem, trial, k))
        if objective > best_objective + 1e-12:
            best, best_objective = trial, objective
    return best


def enumerate_best(problem, candidates: CandidateCurves, bounds: Sequence[float]) -> list[list[int] | None]:
    """Each bin's choice by brute force, at every bound of the problem's one batch limit: the
    restricted relaxation of every assignment of one choice per bin, solved by its exact frontier
    (one per assignment answers every bound), the best kept (the first on ties). ``None`` at a
    bound no assignment meets."""
    from ttcdsl.planner.frontier import frontier

    k = len(candidates.curves[0].levels)
    bounds = [float(b) for b in bounds]
    best: list[list[int] | None] = [None] * len(bounds)
    best_objective = np.full(len(bounds), -np.inf)
    for combo in itertools.product(*[range(len(c)) for c in candidates.choices]):
        restricted = dataclasses.replace(problem, allowed=restrict(problem, combo, k))
        front = frontier(restricted, bounds)
        for i, bound in enumerate(bounds):
            if not np.isfinite(front.objective[i]):
                continue  # below this assignment's cheapest allocation
            # the objective of the allocation the plan would run (as the frontier solver gives it)
            objective = restricted.objective(front.x_at(bound))
            if objective > best_objective[i] + 1e-12:
                best[i], best_objective[i] = list(combo), objective
    return best


def combinations(candidates: CandidateCurves) -> int:
    return int(np.prod([len(c) for c in candidates.choices]))


def restrict(problem, chosen: Sequence[int], k: int) -> np.ndarray:
    """The widened problem's allowed options cut to one choice per bin."""
    allowed = np.zeros_like(problem.allowed)
    for b, j in enumerate(chosen):
        allowed[b, j * k:(j + 1) * k] = problem.allowed[b, j * k:(j + 1) * k]
    return allowed


def best_at_spend(value: np.ndarray, cost: np.ndarray, spend: float) -> float | None:
    """The most ``value`` a mix of (at most two) options reaches at mean ``cost <= spend``: the
    upper concave hull at ``spend`` (None when every option costs more)."""
    ok = np.isfinite(value) & np.isfinite(cost)
    value, cost = value[ok], cost[ok]
    cheap = cost <= spend + 1e-12
    if not cheap.any():
        return None
    best = float(value[cheap].max())
    for i in np.flatnonzero(cheap):
        for h in np.flatnonzero(cost > spend):
            t = (spend - cost[i]) / (cost[h] - cost[i])
            best = max(best, float((1 - t) * value[i] + t * value[h]))
    return best


def candidate_report(
    candidates: CandidateCurves, chosen: Sequence[int], problem, x: np.ndarray, dropped: Mapping[str, list[str]]
) -> list[dict[str, Any] | None]:
    """Per bin (None for a bin without candidates): the choice, its predicted value and spend,
    and the runner-up's value at the same spend."""
    k = len(candidates.curves[0].levels)
    resource = problem.batch_limits[0].resource if problem.batch_limits else 0
    out: list[dict[str, Any] | None] = []
    for b, choices in enumerate(candidates.choices):
        if len(choices) == 1 and not dropped.get(problem.group_names[b]):
            out.append(None)
            continue
        j = chosen[b]
        block = slice(j * k, (j + 1) * k)
        spend = float(x[b] @ problem.cost[resource, b, block])
        entry: dict[str, Any] = {
            "considered": len(choices),
            "spend": spend,
            "spend_unit": problem.resources[resource],
            "chosen": _describe(choices[j], float(x[b] @ problem.value[b, block])),
            "runner_up": None,
        }
        runner = None
        for other in range(len(choices)):
            if other == j:
                continue
            cols = slice(other * k, (other + 1) * k)
            ok = problem.allowed[b, cols]
            got = best_at_spend(
                np.where(ok, problem.value[b, cols], np.nan), np.where(ok, problem.cost[resource, b, cols], np.nan),
                spend,
            )
            if got is not None and (runner is None or got > runner[1]):
                runner = (other, got)
        if runner is not None:
            entry["runner_up"] = _describe(choices[runner[0]], runner[1])
        if dropped.get(problem.group_names[b]):
            entry["dropped"] = list(dropped[problem.group_names[b]])
        out.append(entry)
    return out


def _describe(choice: Choice, value: float) -> dict[str, Any]:
    out: dict[str, Any] = {"strategy": choice.strategy.label}
    if choice.thresholds:
        out["thresholds"] = [float(t) for t in choice.thresholds]
    out["value"] = value
    return out


# ---- the runtime's side --------------------------------------------------------------------------


class ChoiceError(ValueError):
    """A plan's choice that is not one of the policy's candidates: (field, message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def plan_choices(policy: ir.Policy, plan: Mapping[str, Any]) -> list[Choice]:
    """Each bin's choice as the plan records it (``strategy``, ``scorer``, ``tuned``), checked
    against the policy's candidates."""
    out = []
    for i, (spec, mine) in enumerate(zip(policy.bins, plan["bins"], strict=True)):
        where = f"bins[{i}]"
        strategies = spec.candidates or (spec.strategy,)
        kind, scorer = mine.get("strategy"), mine.get("scorer", spec.strategy.scorer)
        strategy = next((s for s in strategies if s.kind == kind and s.scorer == scorer), None)
        if strategy is None:
            shown = kind if scorer is None else f"{kind}({scorer})"
            raise ChoiceError(
                f"{where}.strategy",
                f"the plan says {shown!r}, but the policy's candidates are "
                f"{[s.label for s in strategies]}",
            )
        rules = tuned_rules(spec)
        values = mine.get("tuned", [])
        if len(values) != len(rules):
            raise ChoiceError(
                f"{where}.tuned",
                f"the plan gives {len(values)} tuned threshold(s), but the bin has {len(rules)}",
            )
        for n, (r, value) in enumerate(zip(rules, values, strict=True)):
            options = spec.stop[r].condition.tuned  # type: ignore[union-attr]
            if not any(np.isclose(value, o, rtol=1e-9, atol=0.0) for o in options):
                raise ChoiceError(
                    f"{where}.tuned[{n}]",
                    f"the plan says {value!r}, but the rule's candidates are {list(options)}",
                )
        thresholds = tuple(
            next(o for o in spec.stop[r].condition.tuned if np.isclose(v, o, rtol=1e-9, atol=0.0))  # type: ignore[union-attr]
            for r, v in zip(rules, values, strict=True)
        )
        out.append(Choice(strategy=strategy, thresholds=thresholds))
    return out


def apply_plan_choices(policy: ir.Policy, plan: Mapping[str, Any]) -> ir.Policy:
    """The policy as the plan runs it: each bin pinned to the plan's choice (a policy without
    candidates comes back unchanged). Raises :class:`ChoiceError` for a choice the policy does
    not offer (the plan check turns it into a message naming the plan's field)."""
    if not is_tuned(policy) or plan.get("mode") == "bandit":
        return policy
    return only_used_scorers(pin_policy(policy, plan_choices(policy, plan)))


def only_used_scorers(policy: ir.Policy) -> ir.Policy:
    """The policy without the scorers nothing reads any more (those of candidates not chosen or
    dropped): every scorer declared is loaded from the table, and those may have no column."""
    used = _used_scorers(policy)
    return dataclasses.replace(policy, scorers=tuple(s for s in policy.scorers if s.name in used))
