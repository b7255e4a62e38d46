"""Budget limits: units, values, scopes, and limits that contradict each other."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.bins import check_bin_reference
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.checks.twice import given_twice
from ttcdsl.lang.checks.values import check_range
from ttcdsl.lang.diagnostics import Note, did_you_mean
from ttcdsl.lang.feasibility import default_min_samples
from ttcdsl.lang.numbers import format_number
from ttcdsl.lang.vocabulary import UNITS

_KIND = {
    ast.MeanLimit: "mean per query",
    ast.TotalLimit: "total",
    ast.RangeLimit: "per-query range",
    ast.CapLimit: "per-query maximum",
}


def check_unit(name: ast.Name, ctx: CheckContext) -> bool:
    if name.text in UNITS:
        return True
    ctx.diagnostics.error(
        "TTC107",
        f"unknown unit '{name.text}'",
        name.span,
        label="not a unit",
        help=did_you_mean(name.text, UNITS) or "units: samples, tokens",
    )
    return False


def check_budget(program: ast.Program, ctx: CheckContext) -> ast.Program:
    block = ctx.symbols.budget
    if block is None:
        _check_needs_budget(ctx, has_spend_limit=False)
        return program
    seen: dict[tuple, ast.BudgetItem] = {}
    valid: list[ast.BudgetItem] = []
    for item in block.items:
        ok = _check_item(item, ctx)
        key = _item_key(item)
        if key in seen:
            given_twice(ctx, "this budget limit is given twice", item.span, seen[key].span,
                        label="second limit of the same kind")
            continue
        seen[key] = item
        if ok:
            valid.append(item)
    ctx.budget_limits = valid
    _check_consistency(valid, ctx)
    _check_bounds(valid, ctx)
    has_spend_limit = any(isinstance(i, ast.MeanLimit | ast.TotalLimit) for i in valid)
    if any(isinstance(i, ast.ChargePrompt) for i in valid) and not any(
        isinstance(i, ast.MeanLimit | ast.TotalLimit | ast.RangeLimit | ast.CapLimit)
        and i.unit.text == "tokens"
        for i in valid
    ):
        charge = next(i for i in valid if isinstance(i, ast.ChargePrompt))
        ctx.diagnostics.error(
            "TTC203",
            "`charge prompt tokens` needs a token budget to charge",
            charge.span,
            label="no token limit in this budget",
            help="add e.g. `total tokens <= 4M`, or remove this line",
        )
    _check_needs_budget(ctx, has_spend_limit=has_spend_limit or len(valid) != len(block.items))
    return program


def _item_key(item: ast.BudgetItem) -> tuple:
    match item:
        case ast.MeanLimit() | ast.TotalLimit() | ast.RangeLimit() | ast.CapLimit():
            return (type(item).__name__, item.unit.text, item.bin.text if item.bin else None)
    return (type(item).__name__,)


def _check_item(item: ast.BudgetItem, ctx: CheckContext) -> bool:
    match item:
        case ast.RoundsLimit(value=value):
            return check_range(ctx, value, what="rounds", integer=True, low=1)
        case ast.ChargePrompt():
            return True
    ok = check_unit(item.unit, ctx)
    if item.bin is not None:
        ok &= check_bin_reference(item.bin, ctx, code="TTC110", what="budget limit")
    whole = item.unit.text == "tokens" or not isinstance(item, ast.MeanLimit)
    match item:
        case ast.MeanLimit(value=value) | ast.TotalLimit(value=value) | ast.CapLimit(value=value):
            ok &= check_range(ctx, value, what=f"a {_KIND[type(item)]} budget", integer=whole,
                              low=0, low_open=True)
        case ast.RangeLimit(low=low, high=high):
            ok &= check_range(ctx, low, what="the range's lower end", integer=True, low=0)
            ok &= check_range(ctx, high, what="the range's upper end", integer=True, low=1)
            if ok and low.value > high.value:
                ctx.diagnostics.error(
                    "TTC402",
                    f"the range {low.literal}..{high.literal} is empty",
                    low.span.cover(high.span),
                    label="lower end above upper end",
                    help=f"write {high.literal}..{low.literal}",
                )
                ok = False
    return ok


def _limit(items: list[ast.BudgetItem], kind: type, unit: str, scope: str | None):
    for item in items:
        if isinstance(item, kind) and item.unit.text == unit:
            if (item.bin.text if item.bin else None) == scope:
                return item
    return None


def _check_consistency(items: list[ast.BudgetItem], ctx: CheckContext) -> None:
    """Contradictions visible without knowing the batch size: a minimum per query (range or
    probe) above the mean, and a probe above a per-query maximum."""
    probe = ctx.symbols.probe
    probe_size = int(probe.count.value) if probe and probe.count.is_integer else 0
    scopes = [None, *dict.fromkeys(i.bin.text for i in items if getattr(i, "bin", None))]
    reported: set[int] = set()
    for unit in UNITS:
        for scope in scopes:
            mean = _limit(items, ast.MeanLimit, unit, scope)
            range_ = _limit(items, ast.RangeLimit, unit, scope) or _limit(
                items, ast.RangeLimit, unit, None
            )
            minimum, reason = (range_.low.value, range_) if range_ else (0, None)
            if unit == "samples" and probe_size > minimum:
                minimum, reason = probe_size, probe
            implicit = unit == "samples" and default_minimum(ctx) > minimum
            if implicit:  # the planner's floor, though nothing in the budget writes it
                minimum, reason = default_minimum(ctx), ctx.symbols.allocate
            if mean is not None and reason is not None and minimum > mean.value.value:
                ctx.diagnostics.error(
                    "TTC400",
                    f"every query gets at least {format_number(minimum)} {unit}, "
                    f"but the mean may be at most {mean.value.literal}",
                    mean.value.span,
                    label="below the per-query minimum",
                    help=f"raise the mean to at least {format_number(minimum)}"
                    + (": a query with no sample has no answer" if implicit else ", or lower the minimum"),
                    notes=(Note(span=reason.span, message=(
                        f"this allocation gives every query at least {format_number(minimum)} "
                        "sample (the default per-query minimum)" if implicit
                        else "the minimum comes from here")),),
                )
            if unit != "samples" or probe is None:
                continue
            for limit in (_limit(items, ast.RangeLimit, unit, scope), _limit(items, ast.CapLimit, unit, scope)):
                if limit is None or id(limit) in reported:
                    continue
                high = limit.high if isinstance(limit, ast.RangeLimit) else limit.value
                if probe_size > high.value:
                    reported.add(id(limit))
                    ctx.diagnostics.error(
                        "TTC401",
                        f"the probe ({probe.count.literal} samples) exceeds the per-query "
                        f"maximum of {high.literal}",
                        high.span,
                        label="below the probe size",
                        help=f"raise the maximum to at least {probe.count.literal}, or probe fewer samples",
                        notes=(Note(span=probe.span, message="the probe is declared here"),),
                    )


def per_query_bounds(
    items: list[ast.BudgetItem], unit: str, scope: str | None
) -> tuple[tuple[ast.Number, ast.BudgetItem] | None, tuple[ast.Number, ast.BudgetItem] | None]:
    """The per-query (minimum, maximum) of `unit` that hold in bin `scope` (None: every bin),
    each as (the number that sets it, its limit): the batch's bounds and the bin's together, as
    the planner and the run apply them; None where nothing bounds that side."""
    lows: list[tuple[ast.Number, ast.BudgetItem]] = []
    highs: list[tuple[ast.Number, ast.BudgetItem]] = []
    for item in items:
        if not isinstance(item, ast.RangeLimit | ast.CapLimit) or item.unit.text != unit:
            continue
        if item.bin is not None and item.bin.text != scope:
            continue
        if isinstance(item, ast.RangeLimit):
            lows.append((item.low, item))
            highs.append((item.high, item))
        else:
            highs.append((item.value, item))
    low = max(lows, key=lambda pair: pair[0].value, default=None)
    high = min(highs, key=lambda pair: pair[0].value, default=None)
    return low, high


def keeps_probe(ctx: CheckContext, bin_name: str) -> bool:
    decl = ctx.symbols.strategies.get(bin_name)
    return (decl is not None and isinstance(decl.strategy, ast.Invocation)
            and decl.strategy.name.text == "keep_probe")


def scope_text(scope: str | None) -> str:
    return f" in bin '{scope}'" if scope is not None else ""


def _check_bounds(items: list[ast.BudgetItem], ctx: CheckContext) -> None:
    """A per-query maximum below a per-query minimum (`samples per query <= 3` with `samples per
    query in 5..8`, or a bin's range against the batch's cap): no count satisfies both, and the
    planner refuses the bin ("no sample count the policy allows")."""
    scopes = [None, *dict.fromkeys(i.bin.text for i in items if getattr(i, "bin", None))]
    reported: set[tuple[int, int]] = set()
    spending = [name for name in ctx.symbols.bins if not keeps_probe(ctx, name)]
    for unit in UNITS:
        for scope in scopes:
            # a keep_probe bin spends its probe whatever the minimum says (the probe against the
            # maximum is TTC401's)
            if (scope is None and ctx.symbols.bins and not spending) or (scope is not None and keeps_probe(ctx, scope)):
                continue
            low, high = per_query_bounds(items, unit, scope)
            if low is None or high is None or low[0].value <= high[0].value:
                continue
            key = (id(low[1]), id(high[1]))
            if key in reported:
                continue
            reported.add(key)
            ctx.diagnostics.error(
                "TTC402",
                f"the per-query maximum of {high[0].literal} {unit} is below the per-query minimum "
                f"of {low[0].literal}{scope_text(scope)}: no count satisfies both",
                high[0].span,
                label=f"below the minimum of {low[0].literal}",
                help=f"raise the maximum to at least {low[0].literal}, or lower the minimum to "
                f"{high[0].literal} or less",
                notes=(Note(span=low[1].span, message="the minimum comes from here"),),
            )


def default_minimum(ctx: CheckContext) -> int:
    allocate = ctx.symbols.allocate
    return default_min_samples(allocate.allocation) if allocate is not None else 0


def _check_needs_budget(ctx: CheckContext, *, has_spend_limit: bool) -> None:
    allocate = ctx.symbols.allocate
    if allocate is None or has_spend_limit:
        return
    match allocate.allocation:
        case ast.Optimal() | ast.Bandit() | ast.PerQuery():
            mode = {ast.Optimal: "optimal", ast.Bandit: "bandit", ast.PerQuery: "per query"}[
                type(allocate.allocation)
            ]
            ctx.diagnostics.error(
                "TTC403",
                f"`allocate {mode}` needs a budget to spend",
                allocate.allocation.span,
                label="no mean or total limit declared",
                help="add `budget { mean samples per query <= 8 }` (or a total/tokens limit)",
            )
