"""From a calibrated policy to the knapsack: per-bin curves, costs, and the policy's limits.

Options are sample counts ``n = lo..hi`` (probe included, as a run counts them), shared by all
bins; ``hi`` is at most what the calibration table holds per query (a replay of it can serve no
more, and no more can be checked) unless the user asks for extrapolation. A bin may use the
counts its strategy and the policy's per-query bounds allow:

* ``keep_probe`` bins and ``single`` bins spend exactly the probe (``single`` at least one sample);
* under ``allocate fixed`` each bin has its one count;
* ``samples per query in a..b`` (for the batch or for one bin) prunes counts, and so does a
  per-query token bound, against the largest expected tokens of a member of the bin at that count.

Every batch limit becomes a mean per query: a total is divided by the batch size (the number of
queries the plan is for; by default the calibration set's). A limit on one bin is a group limit.
Accuracy, coverage, samples and tokens at each count come from simulating the run on the bin's
calibration queries (:mod:`ttcdsl.planner.stopping`): their real probe (whose tokens the run
bills), then held-out samples, the bin's stop rules and ``max_tokens`` applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.lang import ir
from ttcdsl.lang.numbers import format_number
from ttcdsl.lang.vocabulary import DEFAULT_MIN_SAMPLES
from ttcdsl.planner.calibration import Calibration
from ttcdsl.planner.knapsack import Knapsack, Limit

DEFAULT_MAX_SAMPLES = 64
"""Largest count considered when the policy sets no per-query maximum."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BinCurves:
    """What the planner knows about each bin at each count: ``[G, K]`` arrays over ``levels``."""

    levels: np.ndarray  # [K] sample counts n, probe included
    allowed: np.ndarray  # [G, K]
    accuracy: np.ndarray  # [G, K] bin mean of the objective's metric's companions below
    accuracy_se: np.ndarray  # [G, K] standard error of the bin mean over its queries
    coverage: np.ndarray  # [G, K]
    samples: np.ndarray  # [G, K] expected samples per query (n, or less with stop rules)
    samples_se: np.ndarray  # [G, K] standard error of the bin mean of samples per query
    tokens: np.ndarray  # [G, K] expected billed tokens per query (NaN unknown)
    tokens_se: np.ndarray  # [G, K] its standard error (NaN unknown)
    tokens_query_max: np.ndarray  # [G, K] the largest member's expected tokens (NaN unknown)
    probe_tokens_max: np.ndarray  # [G] the largest member's billed probe tokens (NaN unknown)
    extrapolated: np.ndarray  # [G, K] bool: some query's curve goes beyond its logged samples
    stop_simulated: np.ndarray  # [G] bool: stop rules simulated for this bin
    depth: int  # samples per query the calibration pool can replay (its smallest query's)
    extrapolate: bool  # counts past `depth` were allowed (model-extrapolated)
    # per calibration query (rows of the calibration): accuracy, samples, tokens at each count,
    # [Q, K], and their Monte Carlo variance divided by the replications (NaN: not simulated)
    per_query: dict[str, np.ndarray]
    per_query_noise: dict[str, np.ndarray]


def option_levels(policy: ir.Policy, depth: int | None = None) -> np.ndarray:
    """The sample counts considered (probe included): from the smallest the policy allows to its
    per-query maximum (or :data:`DEFAULT_MAX_SAMPLES`), cut at ``depth`` when given."""
    budget = policy.budget
    low = budget.find("per_query_min", "samples")
    high = budget.find("per_query_max", "samples")
    lo = max(DEFAULT_MIN_SAMPLES, policy.probe, int(low.value) if low else DEFAULT_MIN_SAMPLES)
    if isinstance(policy.allocation, ir.Fixed):
        fixed = [b.fixed_samples for b in policy.bins if b.fixed_samples is not None]
        hi = max([lo, *fixed])
        lo = min([lo, *fixed])
    else:
        hi = int(high.value) if high else max(lo, DEFAULT_MAX_SAMPLES)
    if depth is not None and hi > depth:
        # a fixed count past the depth is cut to it (and the plan warns): what can be checked
        if lo > depth:
            raise UserError(
                f"the policy needs at least {lo} samples per query, but the calibration table has "
                f"only {depth} for some query, so a replay of it cannot serve them and the planner "
                "cannot verify them",
                hint="calibrate on more samples per query, or pass --extrapolate to let the "
                "planner model counts past the logged ones (a replay run will run short)",
            )
        hi = depth
    return np.arange(lo, max(lo, hi) + 1, dtype=np.int64)


def bin_curves(
    calibration: Calibration,
    *,
    reps: int = 256,
    seed: int = 0,
    levels_only: bool = False,
    extrapolate: bool = False,
    only: frozenset[int] | None = None,
) -> BinCurves:
    """Estimate every bin's curves by simulating the run on its calibration queries
    (:mod:`ttcdsl.planner.stopping`; ``levels_only``: skip the estimates, leaving zeros, for a
    bandit plan that allocates online). Counts stop at what the calibration pool holds per query
    unless ``extrapolate``. ``only``: simulate these bins alone (the others' rows stay zero; the
    candidates module takes each bin's row from the pass that simulated it)."""
    from ttcdsl.planner.stopping import simulate_bin

    policy = calibration.policy
    depth = int(calibration.samples_per_query[0])
    levels = option_levels(policy, None if extrapolate or levels_only else depth)
    g, k = len(policy.bins), len(levels)
    shape = (g, k)
    accuracy, se, coverage = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    samples = np.broadcast_to(levels.astype(np.float64), shape).copy()
    samples_se = np.zeros(shape)
    tokens, tokens_se, tokens_max = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    probe_max = np.full(g, np.nan)
    extrapolated = np.zeros(shape, dtype=bool)
    stop_simulated = np.zeros(g, dtype=bool)
    allowed = _allowed(policy, levels)
    names = ("accuracy", "coverage", "samples", "tokens")
    per_query = {n: np.full((calibration.n_queries, k), np.nan) for n in names}
    per_query_noise = {n: np.full((calibration.n_queries, k), np.nan) for n in names}

    for b, spec in enumerate(policy.bins):
        rows = calibration.bin_rows(b)
        if only is not None and b not in only and rows.size:
            continue
        if rows.size == 0 or levels_only:
            # No calibration query landed here: the bin gets its cheapest count and no credit.
            if rows.size == 0:
                allowed[b] = np.zeros(k, dtype=bool)
                allowed[b, np.flatnonzero(_allowed(policy, levels)[b])[0]] = True
            continue
        cols = np.flatnonzero(allowed[b])
        sim = simulate_bin(calibration, b, levels[cols], reps=reps, seed=seed + b)
        accuracy[b, cols] = sim.accuracy
        coverage[b, cols] = sim.coverage
        se[b, cols] = sim.accuracy_se
        samples[b, cols] = sim.samples
        samples_se[b, cols] = sim.samples_se
        tokens[b, cols] = sim.tokens
        tokens_se[b, cols] = sim.tokens_se
        tokens_max[b, cols] = sim.tokens_query_max
        probe_max[b] = float(np.max(sim.probe_tokens)) if np.isfinite(sim.probe_tokens).all() else np.nan
        extrapolated[b, cols] = sim.extrapolated
        stop_simulated[b] = bool(spec.stop)
        for n in names:
            per_query[n][np.ix_(rows, cols)] = sim.per_query[n]
            per_query_noise[n][np.ix_(rows, cols)] = sim.per_query_var[n] / reps
    return BinCurves(
        levels=levels,
        allowed=allowed,
        accuracy=accuracy,
        accuracy_se=se,
        coverage=coverage,
        samples=samples,
        samples_se=samples_se,
        tokens=tokens,
        tokens_se=tokens_se,
        tokens_query_max=tokens_max,
        probe_tokens_max=probe_max,
        extrapolated=extrapolated,
        stop_simulated=stop_simulated,
        depth=depth,
        extrapolate=extrapolate,
        per_query=per_query,
        per_query_noise=per_query_noise,
    )


def _allowed(policy: ir.Policy, levels: np.ndarray) -> np.ndarray:
    allowed = np.ones((len(policy.bins), len(levels)), dtype=bool)
    budget = policy.budget
    for b, spec in enumerate(policy.bins):
        row = allowed[b]
        if spec.strategy.kind == "keep_probe":
            row &= levels == policy.probe
        elif spec.strategy.kind == "single":
            row &= levels == max(1, policy.probe)
        elif spec.fixed_samples is not None:
            # cut to the largest count considered (the table's depth without --extrapolate)
            row &= levels == min(spec.fixed_samples, int(levels[-1]))
        for scope in (None, spec.name):
            low = budget.find("per_query_min", "samples", scope)
            high = budget.find("per_query_max", "samples", scope)
            if low is not None and spec.strategy.kind != "keep_probe":
                row &= levels >= low.value
            if high is not None:
                row &= levels <= high.value
        if not row.any():
            raise UserError(
                f"bin {spec.name!r} has no sample count the policy allows "
                f"(its strategy is {spec.strategy.kind}, the counts considered are "
                f"{levels[0]}..{levels[-1]})",
                hint="check the per-query bounds and fixed counts of this bin",
            )
    return allowed


def _missing_tokens(calibration: Calibration) -> UserError:
    """The refusal of a token limit on a table that lacks the counts it needs, naming which."""
    pool = calibration.pool
    completion = bool(np.isfinite(pool.tokens[pool.valid]).any())
    charged = calibration.policy.budget.charge_prompt_tokens
    if completion and charged:
        return UserError(
            "the policy limits tokens and charges prompt tokens, but the calibration table "
            "lacks prompt token counts (its completion tokens are counted)",
            hint="import the calibration samples with --prompt-tokens-field, or with "
            "--prompt-field and --tokenizer",
        )
    return UserError(
        "the policy limits tokens, but the calibration table has no completion token counts"
        + (" (and no prompt token counts, which it charges)"
           if charged and not np.isfinite(calibration.prompt_tokens).any() else ""),
        hint="import the calibration samples with --completion-tokens-field, or with "
        "--text-field and --tokenizer so tokens are counted",
    )


def build_knapsack(
    calibration: Calibration, curves: BinCurves, *, batch_size: int | None = None,
    estimated: bool = True,
) -> Knapsack:
    """The allocation problem: maximize the objective's metric under every declared limit.
    ``estimated``: the curves hold estimates (False: only their levels, as a bandit's plan,
    which allocates online and predicts nothing, so no token count is needed)."""
    policy = calibration.policy
    counts = calibration.counts()
    n = int(batch_size or calibration.n_queries)
    weight = counts / counts.sum()
    resources = ("samples", "tokens")
    cost = np.stack([curves.samples, curves.tokens])
    allowed = curves.allowed.copy()

    uses_tokens = any(l.unit == "tokens" for l in policy.budget.limits)
    if uses_tokens and estimated and not np.isfinite(curves.tokens[allowed & (counts[:, None] > 0)]).all():
        raise _missing_tokens(calibration)
    cost = np.where(np.isfinite(cost), cost, 0.0)

    limits: list[Limit] = []
    source: list[int] = []  # index of each Limit's declaration in policy.budget.limits
    for index, limit in enumerate(policy.budget.limits):
        r = resources.index(limit.unit)
        label = _label(policy, limit)
        if limit.kind in ("per_query_min", "per_query_max"):
            if limit.unit == "tokens":
                # a per-query bound holds for every query, not the bin's mean one: compare the
                # largest (smallest) member's expected tokens, probe included
                b = None if limit.bin is None else _bin_index(policy, limit.bin)
                rows = slice(None) if b is None else slice(b, b + 1)
                if limit.kind == "per_query_max":
                    expected = curves.tokens_query_max[rows]
                    ok = expected <= limit.value
                else:
                    expected = curves.tokens[rows]
                    ok = expected >= limit.value
                allowed[rows] &= np.where(np.isfinite(expected), ok, True)
            continue  # sample bounds were applied when the curves were built
        if limit.bin is None:
            bound = limit.value if limit.kind == "mean" else limit.value / n
            limits.append(Limit(resource=r, bound=bound, label=label))
            source.append(index)
        else:
            b = _bin_index(policy, limit.bin)
            share = weight[b]
            if limit.kind == "mean":
                bound = limit.value
            elif share > 0:
                bound = limit.value / (share * n)
            else:
                continue  # no query in this bin: its total cannot be exceeded
            limits.append(Limit(resource=r, bound=bound, group=b, label=label))
            source.append(index)

    for b in np.flatnonzero(~allowed.any(1)):
        probe = curves.probe_tokens_max[b]
        bounds = [
            l.value for l in policy.budget.limits
            if l.kind == "per_query_max" and l.unit == "tokens" and l.bin in (None, policy.bins[b].name)
        ]
        if bounds and np.isfinite(probe) and probe > min(bounds):
            # the probe is spent before the query has a bin: no allocation can undo it
            raise UserError(
                f"bin {policy.bins[b].name!r}: some calibration query's probe alone bills "
                f"{probe:g} tokens, over the per-query bound of {min(bounds):g}; the run spends "
                "the probe before binning, so such queries would exceed it",
                hint="raise the per-query token bound, or lower the policy's max_tokens (the "
                "probe's)",
            )
        raise UserError(
            f"bin {policy.bins[b].name!r}: every sample count is ruled out by the per-query token "
            "bound at the expected tokens of this bin's largest member",
            hint="raise the per-query token bound or lower max_tokens for this bin",
        )
    value = curves.coverage if policy.objective == "coverage" else curves.accuracy
    return Knapsack(
        value=value,
        cost=cost,
        allowed=allowed,
        weight=weight,
        limits=tuple(limits),
        resources=resources,
        counts=counts,
        group_names=tuple(b.name for b in policy.bins),
        option_names=tuple(f"n={n}" for n in curves.levels),
        meta={"levels": curves.levels.tolist(), "batch_size": n, "limit_source": tuple(source)},
    )


def _bin_index(policy: ir.Policy, name: str) -> int:
    return [b.name for b in policy.bins].index(name)


def _label(policy: ir.Policy, limit: ir.BudgetLimit) -> str:
    """The limit as the user wrote it (its source text), for messages and the plan."""
    text = policy.source.text[limit.span.start : limit.span.end].strip()
    return " ".join(text.split()) or f"{limit.kind} {limit.unit} <= {format_number(limit.value)}"
