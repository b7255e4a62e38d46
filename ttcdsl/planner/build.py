"""``make_plan``: policy + calibration table -> curves -> knapsack -> solve -> round -> plan.

The solver is chosen by the problem's shape. One batch limit and no per-bin limit is the
Lagrangian case: for a few bins the exact frontier (one sort of marginal gains, numpy, no compile)
answers it; at scale (per-query problems) the JAX Lagrangian does, whose compile costs seconds
that a handful of bins does not repay. Anything else goes to the LP (cvxpy). Small problems are
cross-checked by the LP and, where it applies, the exact integer DP; both appear in the plan.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.lang import ir
from ttcdsl.lang.diagnostics import DiagnosticError, Diagnostics
from ttcdsl.lang.numbers import format_number
from ttcdsl.planner.calibration import Calibration, calibrate
from ttcdsl.planner.knapsack import Knapsack, Solution
from ttcdsl.planner.plan import PLAN_VERSION
from ttcdsl.planner.problem import BinCurves, bin_curves, build_knapsack
from ttcdsl.samples.schema import SamplesTable

SOLVERS = ("auto", "frontier", "lagrangian", "lp", "dp")
CROSS_CHECK_MAX_GROUPS = 1000
"""Cross-check with every applicable solver below this many groups (bins: always)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanResult:
    plan: dict[str, Any]
    calibration: Calibration
    curves: BinCurves
    problem: Knapsack
    solution: Solution | None  # None in bandit mode (allocation happens online)
    queries: np.ndarray | None  # [G, K] whole queries per option after rounding
    search: CandidateSearch | None = None  # a policy with candidates: what the choice was made on
    solver: str = "auto"  # the solver asked for (ttc plan --solver): a sweep re-solves with it
    seed: int = 0  # the calibration's seed: a sweep cross-fits with the plan's folds


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateSearch:
    """What a policy's per-bin choice is made from: kept in the plan's result so ``ttc plan
    --sweep`` chooses again, by the same rule, at every budget it sweeps."""

    calibration: Calibration  # with the policy as offered (its candidates, nothing pinned)
    candidates: Any  # ttcdsl.planner.candidates.CandidateCurves
    wide: Knapsack  # every (choice, count) side by side, at the policy's own bounds
    mode: str
    solver: str


def make_plan(
    policy: ir.Policy,
    table: SamplesTable,
    *,
    policy_file: str = "",
    table_file: str = "",
    table_hash: str = "",
    solver: str = "auto",
    batch_size: int | None = None,
    score_columns: Mapping[str, str] | None = None,
    reps: int = 256,
    seed: int = 0,
    cross_check: bool = True,
    extrapolate: bool = False,
    progress: Callable[[str], None] | None = None,
    predict_bandit: bool = False,
) -> PlanResult:
    """The plan of ``policy`` calibrated on ``table``. ``predict_bandit``: a bandit's plan also
    predicts the run by simulating it on ``table`` (:mod:`ttcdsl.planner.bandit_forecast`: the
    JAX simulator, tens of seconds to compile); without it a bandit's plan predicts nothing."""
    if solver not in SOLVERS:
        raise UserError(f"unknown solver {solver!r}", hint=f"choose one of {', '.join(SOLVERS)}")
    say = progress or (lambda message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    from ttcdsl.observables import require
    from ttcdsl.planner import candidates as cand

    if len(table) == 0:  # before any check of what it holds, which it would fail for that
        raise UserError("the calibration table has no samples")
    mode = allocation_mode(policy)
    tuned = mode != "bandit" and cand.is_tuned(policy)
    candidate_warnings: list[str] = []
    dropped: dict[str, list[str]] = {}
    if tuned:
        # candidates the table cannot serve are dropped (with a warning), not refused
        policy, candidate_warnings, dropped = cand.servable(policy, table, score_columns)
    # the mapping of the scorers still declared (those of dropped candidates are gone)
    declared = {s.name for s in policy.scorers}
    columns = {k: v for k, v in (score_columns or {}).items() if k in declared}
    # Refuse a table that lacks what the policy reads: the key or the strategy would silently
    # evaluate to NaN (and be blamed on the data) instead.
    partly: list[str] = []  # observables only some samples carry: the plan says so
    require(policy, table, score_columns=columns, table_name="the calibration table", warn=partly.append)
    from ttcdsl.samples.degenerate import degenerate

    if degenerate(table) is not None:  # every figure 0 by construction: said, not predicted
        partly.append(f"the calibration table: {degenerate(table)}")
    from ttcdsl.samples.labels import label_conflict_warning

    conflict = label_conflict_warning(table, "the calibration table")
    if conflict:  # the plan's prediction and a replay score such answers by different rules
        partly.append(conflict)
    candidate_warnings = [*candidate_warnings, *partly]
    say("calibrating: probes, features and bins")
    calibration = calibrate(policy, table, score_columns=columns, seed=seed)
    timings["calibrate"] = time.perf_counter() - clock
    # A plan its run would refuse is no plan: the probe must fit every bin-scoped limit on the
    # batch the plan is for (--queries, or the calibration's queries), by the run's own rule.
    from ttcdsl.lang.feasibility import check_probe_budget

    overrun = check_probe_budget(policy, int(batch_size or calibration.n_queries))
    if overrun:
        raise DiagnosticError(overrun)
    clock = time.perf_counter()
    candidates, chosen, search = None, None, None
    if tuned:
        say(f"estimating curves for {sum(len(cand.bin_choices(b)) for b in policy.bins)} "
            f"candidate(s) in {len(policy.bins)} bin(s)")
        candidates = cand.candidate_curves(calibration, reps=reps, seed=seed, extrapolate=extrapolate)
        timings["curves"] = time.perf_counter() - clock
        say("choosing a candidate per bin")
        clock = time.perf_counter()
        wide = build_knapsack(calibration, cand.widened(candidates), batch_size=batch_size)
        _check_feasible(policy, wide, mode)
        search = CandidateSearch(
            calibration=calibration, candidates=candidates, wide=wide, mode=mode, solver=solver
        )
        chosen, method = _choose(search)
        timings["choose"] = time.perf_counter() - clock
        offered = policy  # with its candidates: the plan lists the choice for each tuned rule
        policy = cand.pin_policy(policy, [c[j] for c, j in zip(candidates.choices, chosen, strict=True)])
        calibration = dataclasses.replace(calibration, policy=policy)
        curves = cand.select(candidates, chosen, calibration)
    else:
        # A bandit allocates online: its plan holds the bins and the bandit's settings, no curves.
        say(f"estimating curves for {len(policy.bins)} bin(s)")
        curves = bin_curves(
            calibration, reps=reps, seed=seed, levels_only=mode == "bandit", extrapolate=extrapolate
        )
        timings["curves"] = time.perf_counter() - clock
    problem = build_knapsack(calibration, curves, batch_size=batch_size, estimated=mode != "bandit")
    warnings = candidate_warnings + _warnings(calibration, curves)

    solution, queries, checks, per_query = None, None, [], None
    clock = time.perf_counter()
    if mode == "per_query":
        from ttcdsl.planner.per_query import plan_per_query

        _check_feasible(policy, problem, mode)
        say("fitting the per-query predictor and allocating (per-query Lagrangian)")
        per_query = plan_per_query(calibration, curves)
        queries = per_query.queries
    elif mode != "bandit":
        _check_feasible(policy, problem, mode)
        say(f"solving ({mode})")
        solution, checks = _solve(problem, mode, solver, cross_check)
        if solution.status != "optimal":
            raise UserError(
                f"the solver {solution.solver} did not find a plan: {solution.status}"
                + (f" ({solution.message})" if getattr(solution, "message", "") else ""),
                hint="try another solver with --solver",
            )
        from ttcdsl.planner.rounding import round_to_queries

        # A bin no calibration query fell in has weight 0: round it as one query, then empty it.
        counts = problem.counts
        rounded = round_to_queries(problem, solution, np.maximum(counts, 1))
        queries = np.where(counts[:, None] > 0, rounded.queries, 0)
    timings["solve"] = time.perf_counter() - clock

    from ttcdsl.planner.report import plan_document
    from ttcdsl.samples import content_hash

    plan = plan_document(
        calibration=calibration,
        curves=curves,
        problem=problem,
        solution=solution,
        queries=queries,
        cross_checks=checks,
        mode=mode,
        policy_file=policy_file,
        table_file=table_file,
        table_hash=table_hash or content_hash(table),
        timings=timings,
        warnings=warnings,
        reps=reps,
        seed=seed,
    )
    if search is not None:
        wide = build_knapsack(calibration, cand.widened(candidates), batch_size=batch_size)
        x = queries / np.maximum(problem.counts, 1)[:, None]
        empty = problem.counts == 0
        x[empty] = problem.allowed[empty] / problem.allowed[empty].sum(1, keepdims=True)
        report = cand.candidate_report(candidates, chosen, wide, x, dropped)
        plan["candidate_search"] = {"method": method, "assignments": cand.combinations(candidates)}
        for b, (spec, doc, entry) in enumerate(zip(offered.bins, plan["bins"], report, strict=True)):
            choice = candidates.choices[b][chosen[b]]
            if cand.tuned_rules(spec):
                doc["tuned"] = [float(t) for t in choice.thresholds]
            if entry is not None:
                doc["candidates"] = entry
    if per_query is not None:
        _per_query_document(plan, per_query)
    if mode == "optimal" and solution is not None:
        from ttcdsl.planner.choice import choose

        # uniform is a candidate: judged on calibration queries the choice did not see
        choose(plan, calibration, curves, problem,
               lambda p: solve_relaxation(p, mode, solver), seed=seed)
    # The runtime reads each scorer from the column it was calibrated on.
    plan["score_columns"] = dict(score_columns or {})
    if mode == "bandit":
        from ttcdsl.runtime.bandit_gain import fit_table

        # the learned skip: what one more round is worth per state (ttcdsl.runtime.bandit_gain)
        say("learning the value of one more round per query state")
        plan["bandit"]["gain"] = fit_table(policy, table, score_columns, seed=seed).to_doc()
        if predict_bandit:
            from ttcdsl.planner.bandit_forecast import forecast

            clock = time.perf_counter()
            predicted, baseline, why_not = forecast(policy, plan, table, calibration, score_columns=columns,
                                                    seed=seed, progress=say)
            plan["timings"]["predict"] = round(time.perf_counter() - clock, 4)
            if why_not is not None:
                plan["warnings"].append(why_not)
            else:
                plan["predicted"], plan["baseline"] = predicted, baseline
                _spent_as_predicted(plan)
    assert plan["ttcdsl_plan"] == PLAN_VERSION
    return PlanResult(
        plan=plan,
        calibration=calibration,
        curves=curves,
        problem=problem,
        solution=solution,
        queries=queries,
        search=search,
        solver=solver,
        seed=seed,
    )


def _enumerates(search: CandidateSearch) -> bool:
    """Whether the choice is the exact enumeration (one batch limit, few assignments)."""
    from ttcdsl.planner import candidates as cand

    wide = search.wide
    single = len(wide.batch_limits) == 1 and not wide.group_limits
    return (
        search.mode == "optimal" and single
        and cand.combinations(search.candidates) <= cand.ENUMERATE_MAX
    )


def _choose(search: CandidateSearch) -> tuple[list[int], str]:
    """Each bin's candidate and how it was found: the knapsack over (choice, count) solved by the
    plan's own solvers (:mod:`ttcdsl.planner.candidates`, step 2), at the bounds of
    ``search.wide`` (checked feasible by the caller)."""
    from ttcdsl.planner import candidates as cand

    wide, mode, candidates = search.wide, search.mode, search.candidates
    if _enumerates(search):
        (limit,) = wide.batch_limits
        (best,) = cand.enumerate_best(wide, candidates, [limit.bound])
        assert best is not None, "the cheapest options form a feasible assignment (checked before)"
        return best, "enumeration"
    solution, _ = _solve(wide, mode, search.solver, cross_check=False)
    if solution.status != "optimal":
        raise UserError(
            f"the solver {solution.solver} did not find a plan: {solution.status}",
            hint="try another solver with --solver",
        )
    single = len(wide.batch_limits) == 1 and not wide.group_limits

    def resolve(allowed: np.ndarray) -> float:
        restricted = dataclasses.replace(wide, allowed=allowed)
        # the exact frontier where it applies: milliseconds per assignment
        found, _ = _solve(restricted, mode, "frontier" if single else search.solver, cross_check=False)
        return found.objective if found.status == "optimal" else -np.inf

    return cand.choose(wide, solution, candidates, resolve), "widened relaxation"


def choose_along(search: CandidateSearch, limit: int, bounds: np.ndarray) -> list[list[int] | None]:
    """Each bin's choice at every bound of the wide problem's limit ``limit`` (an index into its
    limits), by the plan's own rule (:func:`_choose`): with the exact enumeration, every
    assignment's frontier answers all bounds at once; otherwise the choice is made again per
    bound. ``None`` where no allocation meets the bound."""
    from ttcdsl.planner import candidates as cand

    if _enumerates(search):
        return cand.enumerate_best(search.wide, search.candidates, bounds)
    out: list[list[int] | None] = []
    for bound in bounds:
        limits = list(search.wide.limits)
        limits[limit] = dataclasses.replace(limits[limit], bound=float(bound))
        wide = dataclasses.replace(search.wide, limits=tuple(limits))
        if wide.violations(_least(wide, search.mode), tol=1e-12):
            out.append(None)
            continue
        out.append(_choose(dataclasses.replace(search, wide=wide))[0])
    return out


def _per_query_document(plan: dict[str, Any], per_query) -> None:
    """A per-query plan's predictions are the per-query allocation's, not the one bin's curve
    at the histogram of counts (which :func:`plan_document` would give)."""
    plan["predicted"] = per_query.predicted
    plan["bins"][0]["predicted"] = per_query.predicted
    plan["baseline"] = per_query.baseline
    plan["solver"] = per_query.solver
    _spent_as_predicted(plan)
    plan["per_query"] = per_query.section


def _spent_as_predicted(plan: dict[str, Any]) -> None:
    """The mean-samples limits' spend is the plan's predicted samples per query (a per-query or
    a bandit plan, whose allocation no bin curve values)."""
    for entry in plan["budget"]:
        if entry["kind"] == "mean" and entry["unit"] == "samples" and entry.get("bin") is None:
            entry["spent"] = plan["predicted"]["samples"]
            entry["binding"] = bool(entry["spent"] >= entry["value"] * (1 - 1e-3))


def allocation_mode(policy: ir.Policy) -> str:
    """The plan mode of the policy's allocation: optimal, per_query, fixed or bandit."""
    match policy.allocation:
        case ir.Optimal():
            return "optimal"
        case ir.PerQuery():
            return "per_query"
        case ir.Fixed():
            return "fixed"
        case ir.Bandit():
            return "bandit"
    raise AssertionError(policy.allocation)


def solve_relaxation(problem: Knapsack, mode: str, solver: str) -> Solution:
    """The plan's solver on ``problem``, no cross-checks (what the cross-fit re-solves per fold)."""
    return _solve(problem, mode, solver, False)[0]


def _solve(problem: Knapsack, mode: str, solver: str, cross_check: bool) -> tuple[Solution, list[Solution]]:
    """The plan's solution and the cross-checks of the other solvers."""
    if mode == "fixed" or not problem.limits:
        return _best_allowed(problem, "fixed" if mode == "fixed" else "unconstrained"), []
    single = len(problem.batch_limits) == 1 and not problem.group_limits
    if solver == "auto":
        if not single:
            solver = "lp"
        else:
            solver = "frontier" if problem.n_groups <= CROSS_CHECK_MAX_GROUPS else "lagrangian"
    if solver in ("frontier", "lagrangian", "dp") and not single:
        raise UserError(
            f"--solver {solver} handles one batch budget and no per-bin limit; this policy "
            f"declares {len(problem.limits)} limits",
            hint="use --solver lp (or auto)",
        )
    runners: dict[str, Callable[[], Solution]] = {
        "frontier": lambda: _frontier(problem),
        "lagrangian": lambda: _lagrangian(problem),
        "lp": lambda: _lp(problem),
        "dp": lambda: _dp(problem),
    }
    primary = runners[solver]()
    checks: list[Solution] = []
    if cross_check and problem.n_groups <= CROSS_CHECK_MAX_GROUPS:
        # The JAX Lagrangian is left out of cross-checks: its compile dwarfs a few bins' solve.
        others = ["lp"] + (["frontier", "dp"] if single else [])
        for name in others:
            if name != solver and (name != "dp" or _dp_applies(problem)):
                checks.append(runners[name]())
    return primary, checks


def _frontier(problem: Knapsack) -> Solution:
    """The relaxation's optimum from the concave-hull frontier, certified by its dual bound."""
    from ttcdsl.planner.frontier import frontier

    start = time.perf_counter()
    (limit,) = problem.batch_limits
    front = frontier(problem, [limit.bound])
    if not np.isfinite(front.objective[0]):
        return Solution(
            x=problem.cheapest(),
            objective=float("nan"),
            dual_bound=float("nan"),
            spend=problem.spend(problem.cheapest()),
            solver="frontier",
            status="infeasible",
            seconds=time.perf_counter() - start,
            message="the cheapest allocation exceeds the budget",
        )
    x = front.x_at(limit.bound)
    lam = float(front.marginal[0])
    # L(λ) = Σ_g w_g max_k (v - λ c) + λ B: an upper bound for any λ >= 0
    reduced = np.where(problem.allowed, problem.value - lam * problem.cost[limit.resource], -np.inf)
    dual = float(problem.weight @ reduced.max(1) + lam * limit.bound)
    return Solution(
        x=x,
        objective=problem.objective(x),
        dual_bound=dual,
        spend=problem.spend(x),
        solver="frontier",
        status="optimal",
        seconds=time.perf_counter() - start,
        multipliers=(lam,),
    )


def _lagrangian(problem: Knapsack) -> Solution:
    from ttcdsl.planner.lagrangian import solve_lagrangian

    return solve_lagrangian(problem)


def _lp(problem: Knapsack) -> Solution:
    from ttcdsl.planner.lp import solve_lp

    return solve_lp(problem)


def _dp(problem: Knapsack) -> Solution:
    from ttcdsl.planner.dp import solve_dp

    return solve_dp(problem)


def _dp_applies(problem: Knapsack) -> bool:
    """The DP works in whole budget units: exact when the costs are whole samples."""
    limit = problem.batch_limits[0]
    cost = problem.cost[limit.resource][problem.allowed]
    return problem.counts is not None and np.allclose(cost, np.round(cost)) and (
        problem.counts.sum() * limit.bound <= 2_000_000
    )


def _best_allowed(problem: Knapsack, name: str) -> Solution:
    """Fixed counts (one allowed option per bin) or no coupling limit: each bin's best option."""
    value = np.where(problem.allowed, problem.value, -np.inf)
    x = np.zeros_like(problem.value)
    x[np.arange(problem.n_groups), value.argmax(1)] = 1.0
    objective = problem.objective(x)
    return Solution(
        x=x,
        objective=objective,
        dual_bound=objective,
        spend=problem.spend(x),
        solver=name,
        status="optimal",
        seconds=0.0,
        multipliers=tuple(0.0 for _ in problem.limits),
        integral=True,
    )


def _least(problem: Knapsack, mode: str) -> np.ndarray:
    """The allocation that spends least under ``mode``: if it breaks a limit, every one does."""
    return _best_allowed(problem, mode).x if mode == "fixed" else problem.cheapest()


def _check_feasible(policy: ir.Policy, problem: Knapsack, mode: str) -> None:
    """Refuse a budget no allocation can meet, pointing at its line and saying what would do."""
    over = problem.violations(_least(problem, mode), tol=1e-12)
    if not over:
        return
    diagnostics = Diagnostics(policy.source)
    n = problem.meta.get("batch_size", 0)
    source_of = dict(zip(problem.limits, problem.meta["limit_source"], strict=True))
    for limit, spent in over:
        declared = policy.budget.limits[source_of[limit]]
        needed = spent if declared.kind == "mean" else spent * _scale(declared, problem, n)
        what = "the fixed counts" if mode == "fixed" else "the cheapest allocation the policy allows"
        diagnostics.error(
            "TTC400",
            f"on the calibration set {what} needs {format_number(_round_up(needed))} "
            f"{declared.unit}"
            + (" per query" if declared.kind == "mean" else "")
            + f", more than this limit of {format_number(declared.value)}",
            declared.span,
            label="cannot be met",
            help=f"a feasible limit is at least {format_number(_round_up(needed))}"
            + (
                "; or lower the probe and the per-query minimum"
                if mode != "fixed"
                else "; or lower the fixed counts"
            ),
        )
    raise DiagnosticError(diagnostics.sorted())


def _scale(declared: ir.BudgetLimit, problem: Knapsack, n: int) -> float:
    """Mean-per-query spend -> the declared total's scale."""
    if declared.bin is None:
        return n
    b = list(problem.group_names).index(declared.bin)
    return float(problem.weight[b]) * n


def _round_up(value: float) -> float:
    return float(np.ceil(value * 1000) / 1000) if value < 100 else float(np.ceil(value))


def _depth_note(calibration: Calibration) -> str:
    """Why counts stop where they do: the fewest samples a calibration query holds (every query
    must be servable at every count), naming the shallow queries when the others hold more."""
    low, high = calibration.samples_per_query
    if low == high:
        return "the samples every calibration query holds"
    held = calibration.pool.n_samples
    shallow = [q for q, m in zip(calibration.query_ids, held) if m == low]
    return (f"the fewest any calibration query holds ({len(shallow)} of {len(held)} hold {low}, "
            f"e.g. {shallow[0]!r}; the others up to {high}: leave the shallow ones out of the "
            "table to plan further)")


def _longer_than_served(calibration: Calibration) -> str | None:
    """A warning when calibration samples are longer than the max_tokens a run would serve them
    under: the plan counts them cut off, without an answer, as the run would get them. A log of
    a reasoning model generated at 32k tokens and planned under an example's 1024 predicted an
    accuracy near 0 with no word of why."""
    from ttcdsl.samples.truncation import is_cut

    policy, pool = calibration.policy, calibration.pool
    k = int(policy.probe or 0)
    bin_caps = np.array([spec.sampling.max_tokens for spec in policy.bins])[calibration.bin_index]
    served_under = np.where(np.arange(pool.tokens.shape[1])[None, :] < k,
                            policy.sampling.max_tokens, bin_caps[:, None])
    cut = pool.valid & is_cut(pool.tokens, served_under)
    if not cut.any():
        return None
    n, total = int(cut.sum()), int(pool.valid.sum())
    caps = sorted({int(c) for c in served_under[cut]})
    return (
        f"{n} of {total} calibration samples ({n / total:.0%}) are longer than the max_tokens "
        f"({', '.join(map(str, caps))}) a run would serve them under: the plan counts them cut "
        "off, without an answer (wrong where labelled), as the run would get them; if the log "
        "was generated with a larger limit and the run will be too, raise max_tokens in the "
        "policy's sampling block"
    )


def _warnings(calibration: Calibration, curves: BinCurves) -> list[str]:
    out: list[str] = []
    if calibration.unlabelled:
        out.append(
            f"{len(calibration.unlabelled)} calibration queries have samples without a correctness "
            f"label and were left out (e.g. {calibration.unlabelled[0]!r}): the curves and "
            "predictions are measured on the labelled queries only"
        )
    from ttcdsl.planner.report import unknown_token_share

    unknown = unknown_token_share(calibration)
    if 0 < unknown < 1:
        out.append(
            f"{unknown:.0%} of the calibration samples have no completion token count: the "
            "plan's token figures bill each of them at its max_tokens, as a run's ledger does "
            "(an upper bound, not a measurement)"
        )
    longer = _longer_than_served(calibration)
    if longer:
        out.append(longer)
    if isinstance(calibration.policy.allocation, ir.Bandit):
        return out
    policy = calibration.policy
    if calibration.dropped:
        out.append(
            f"{len(calibration.dropped)} calibration queries have no sample beyond the probe "
            f"and were left out (e.g. {calibration.dropped[0]!r})"
        )
    counts = calibration.counts()
    for b, spec in enumerate(policy.bins):
        if counts[b] == 0:
            out.append(f"bin {spec.name!r} has no calibration query; it gets its smallest count")
        elif counts[b] < 10:
            out.append(f"bin {spec.name!r} has only {counts[b]} calibration queries: wide error bars")
        if curves.extrapolated[b][curves.allowed[b]].any():
            first = curves.levels[curves.allowed[b] & curves.extrapolated[b]][0]
            out.append(
                f"bin {spec.name!r}: counts from {first} on exceed some queries' logged "
                "samples (--extrapolate); those values are extrapolated by the Dirichlet model, "
                "and a replay of the calibration table cannot serve them"
            )
    depth = _depth_note(calibration)
    for spec in policy.bins:
        if spec.fixed_samples is not None and spec.fixed_samples > curves.levels[-1]:
            out.append(
                f"bin {spec.name!r}: its fixed {spec.fixed_samples} samples per query are cut to "
                f"{curves.levels[-1]}, {depth} (a replay of it can serve no more); pass "
                "--extrapolate to plan past it by the model"
            )
    high = policy.budget.find("per_query_max", "samples")
    depth_bound = curves.levels[-1] >= int(calibration.samples_per_query[0])
    # only where the table's depth is what stopped the counts (a fixed allocation's largest
    # count stops them too, and was then said to be "the samples every query holds")
    if high is not None and high.value > curves.levels[-1] and not curves.extrapolate and depth_bound:
        out.append(
            f"counts stop at {curves.levels[-1]} samples per query, {depth}, below the policy's "
            f"maximum of {high.value:g}; pass --extrapolate to plan past it by the model"
        )
    rounds = policy.budget.rounds
    if rounds is not None:
        # the executor steps ceil(remaining / rounds left) samples per round: past this count a
        # bin with stop rules asks several samples at once. The stop rules are still checked at
        # every count (the rest of a round is cancelled at the stop point), so the plan's
        # figures hold; but a live backend's cancel is not instant, and what comes back past the
        # stop point is spent without being used.
        start = 1 if policy.probe else 0
        every = policy.probe + max(0, rounds - start)
        for b, spec in enumerate(policy.bins):
            if spec.stop and (curves.allowed[b] & (curves.levels > every)).any():
                out.append(
                    f"bin {spec.name!r}: with rounds <= {rounds}, counts above {every} take "
                    "more than one sample per round; the stop rules are still checked after "
                    "every sample and the rest of the round cancelled, but with live generation "
                    "samples that finish before the cancel takes effect are spent (not used)"
                )
    if calibration.undefined_key:
        out.append(
            f"binning: the key {policy.binning.key!r} is undefined for "
            f"{calibration.undefined_key} calibration queries whose probe was cut at max_tokens "
            f"{policy.sampling.max_tokens} (a cut sample has no answer or score); they are in the "
            f"last bin, {policy.bins[-1].name!r}, where a run sends them too"
        )
    for tie in calibration.ties:
        cuts = ", ".join(f"{c:g}" for c in tie["cuts"])
        empty = tie["empty_bins"]
        out.append(
            f"binning: {tie['tied_share']:.1%} of the calibration queries have "
            f"{policy.binning.key} exactly {tie['value']:g}, where the quantile cut(s) {cuts} "
            "fall: ties cannot be split, so all of them go to the upper bin (at run time too)"
            + (f"; bin(s) {', '.join(repr(e) for e in empty)} are empty" if empty else "")
        )
    return out

