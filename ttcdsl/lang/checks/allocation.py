"""Allocation modes (optimal, per query, fixed, bandit), objectives, and stop-rule parameters."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.bins import check_bin_reference
from ttcdsl.lang.checks.budget import check_unit, keeps_probe, per_query_bounds, scope_text
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.checks.twice import given_twice
from ttcdsl.lang.checks.values import check_range
from ttcdsl.lang.diagnostics import Note, did_you_mean
from ttcdsl.lang.numbers import format_number
from ttcdsl.lang.vocabulary import EXPLORE_RULES, FUNCTIONS, OBJECTIVES
from ttcdsl.lang.walk import conditions, walk


def check_allocation(program: ast.Program, ctx: CheckContext) -> ast.Program:
    allocate = ctx.symbols.allocate
    if allocate is not None:
        _check_objective(allocate, ctx)
        match allocate.allocation:
            case ast.Optimal():
                pass
            case ast.PerQuery() as per_query:
                _check_per_query(per_query, program, ctx)
            case ast.FixedUniform(count=count):
                if check_range(ctx, count, what="a fixed allocation", integer=True, low=1):
                    if _check_at_least_probe(count, ctx):
                        scopes = [b for b in ctx.symbols.bins if _spends_fixed(ctx, b)]
                        _check_fixed_bounds(count, scopes if ctx.symbols.bins else [None], ctx)
            case ast.FixedPerBin(items=items, span=span):
                _check_fixed_per_bin(items, span, ctx)
            case ast.Bandit() as bandit:
                _check_bandit(bandit, program, ctx)
    _check_conditions_reachable(program, ctx)
    for condition in conditions(program):
        match condition:
            case ast.Comparison(after=after) if after is not None:
                check_range(ctx, after, what="`after`", integer=True, low=1)
            case ast.Unanimous(last=last, disjoint=disjoint):
                what = "`unanimous window`" if disjoint else "`unanimous last`"
                check_range(ctx, last, what=what, integer=True, low=2)
    return program


def _most_samples(ctx: CheckContext, scope: str | None) -> tuple[int | float, object] | None:
    """The most samples a query of bin `scope` (None: the policy without bins) can get, and what
    sets it (a per-query maximum, a fixed count, keep_probe's probe), or None where unbounded."""
    found: list[tuple[int | float, object]] = []
    high = per_query_bounds(ctx.budget_limits, "samples", scope)[1]
    if high is not None:
        found.append((high[0].value, high[1]))
    probe = ctx.symbols.probe
    probe_size = int(probe.count.value) if probe is not None and probe.count.is_integer else 0
    if scope is not None and keeps_probe(ctx, scope) and probe is not None:
        found.append((probe_size, probe))
    allocation = ctx.symbols.allocate.allocation if ctx.symbols.allocate is not None else None
    if scope is None or _spends_fixed(ctx, scope):
        match allocation:
            case ast.FixedUniform(count=count) if count.is_integer and count.value >= 1:
                found.append((count.value, count))
            case ast.FixedPerBin(items=items):
                for item in items:
                    if item.bin.text == scope and item.count.is_integer:
                        found.append((item.count.value, item))
    return min(found, key=lambda pair: pair[0]) if found else None


def _needed(condition: ast.Condition) -> ast.Number | None:
    """The sample count a condition cannot hold before: `after N`, `samples >= N`, the window of
    `unanimous last|window K`."""
    match condition:
        case ast.Unanimous(last=last) if last.is_integer:
            return last
        case ast.Comparison(after=after) if after is not None and after.is_integer:
            return after
        case ast.Comparison(left=ast.Ref(name=name), op=">=" | "==", right=ast.Number() as count) \
                if name.text == "samples":
            return count
    return None


def _check_conditions_reachable(program: ast.Program, ctx: CheckContext) -> None:
    """TTC609: a stop or solved rule that needs more samples than any query it applies to can
    get (`when unanimous last 40` under `samples per query <= 32`, `after 12` under `fixed 8`)
    never holds."""
    bins = list(ctx.symbols.bins) or [None]
    for statement in program.statements:
        match statement:
            case ast.StopBlock(bin=bin_name, rules=rules):
                scopes = [bin_name.text] if bin_name is not None else bins
                found = [rule.condition for rule in rules]
            case ast.AllocateDecl(allocation=ast.Bandit(items=items)):
                scopes = bins
                found = [i.condition for i in items if isinstance(i, ast.BanditSolved)]
            case _:
                continue
        if any(scope is not None and scope not in ctx.symbols.bins for scope in scopes):
            continue
        limits = [_most_samples(ctx, scope) for scope in scopes]
        if any(limit is None for limit in limits):
            continue
        most, source = max(limits, key=lambda pair: pair[0])
        for condition in found:
            needed = _needed(condition)
            if needed is None or needed.value <= most:
                continue
            where = f"bin '{scopes[0]}'" if scopes != [None] and len(scopes) == 1 else "the policy"
            ctx.diagnostics.error(
                "TTC609",
                f"this rule cannot hold before a query has {needed.literal} samples, but no query "
                f"of {where} gets more than {format_number(most)}",
                needed.span,
                label=f"more than {format_number(most)}",
                help=f"lower it to {format_number(most)} or less, or raise "
                + ("the per-query maximum" if isinstance(source, ast.RangeLimit | ast.CapLimit)
                   else "the probe" if isinstance(source, ast.ProbeDecl) else "the fixed count"),
                notes=(Note(span=source.span, message="the most samples a query gets comes from here"),),
            )


def _check_objective(allocate: ast.AllocateDecl, ctx: CheckContext) -> None:
    objective = allocate.objective
    if objective is not None and objective.text not in OBJECTIVES:
        ctx.diagnostics.error(
            "TTC108",
            f"unknown objective '{objective.text}'",
            objective.span,
            label="not an objective",
            help=did_you_mean(objective.text, OBJECTIVES) or "maximize accuracy or coverage",
        )


def _check_at_least_probe(count: ast.Number, ctx: CheckContext) -> bool:
    probe = ctx.symbols.probe
    if probe is None or count.value >= probe.count.value:
        return True
    ctx.diagnostics.error(
        "TTC601",
        f"a fixed allocation of {count.literal} is smaller than the probe of {probe.count.literal}",
        count.span,
        label="below the probe size",
        help="fixed counts include the probe; use `keep_probe` to spend nothing more",
        notes=(Note(span=probe.span, message="the probe is declared here"),),
    )
    return False


def _spends_fixed(ctx: CheckContext, bin_name: str) -> bool:
    """Whether a bin's fixed count is what it spends: a keep_probe bin spends its probe and a
    `single` bin one sample, whatever the count says."""
    decl = ctx.symbols.strategies.get(bin_name)
    single = (decl is not None and isinstance(decl.strategy, ast.Invocation)
              and decl.strategy.name.text == "single")
    return not single and not keeps_probe(ctx, bin_name)


def _check_fixed_bounds(count: ast.Number, scopes: list[str | None], ctx: CheckContext) -> None:
    """TTC608: a fixed count outside the per-query bounds of a bin it applies to (the batch's or
    the bin's own); the planner finds no count for that bin and refuses the policy."""
    reported: set[int] = set()
    for scope in scopes:
        low, high = per_query_bounds(ctx.budget_limits, "samples", scope)
        for bound, outside, side in ((low, lambda b: count.value < b, "minimum"),
                                     (high, lambda b: count.value > b, "maximum")):
            if bound is None or not outside(bound[0].value) or id(bound[1]) in reported:
                continue
            reported.add(id(bound[1]))
            where = scope_text(bound[1].bin.text if bound[1].bin is not None else None)
            ctx.diagnostics.error(
                "TTC608",
                f"the fixed allocation gives {count.literal} samples per query, "
                f"{'below' if side == 'minimum' else 'above'} the per-query {side} of "
                f"{bound[0].literal}{where}",
                count.span,
                label=f"{'below' if side == 'minimum' else 'above'} the {side}",
                help=f"give {'at least' if side == 'minimum' else 'at most'} {bound[0].literal} "
                f"samples, or change the budget's per-query {side}",
                notes=(Note(span=bound[1].span, message=f"the {side} comes from here"),),
            )


def _check_count_it_spends(item: ast.FixedItem, ctx: CheckContext) -> None:
    """TTC608: a keep_probe bin spends its probe and a `single` bin one sample (or its probe),
    whatever its fixed count says; a different count was ignored without a word."""
    probe = ctx.symbols.probe
    probe_size = int(probe.count.value) if probe is not None else 0
    keep = keeps_probe(ctx, item.bin.text)
    spends = probe_size if keep else max(1, probe_size)
    if item.count.value == spends:
        return
    strategy = "keep_probe" if keep else "single"
    ctx.diagnostics.error(
        "TTC608",
        f"bin '{item.bin.text}' is {strategy}: it spends {spends} sample{'s' if spends != 1 else ''} "
        f"per query whatever its count, not {item.count.literal}",
        item.count.span,
        label="never spent",
        help=f"give it {spends}" + (", or leave it out (a keep_probe bin needs no count)" if keep else "")
        + ", or change its strategy",
    )


def _check_fixed_per_bin(items: tuple[ast.FixedItem, ...], span, ctx: CheckContext) -> None:
    given: dict[str, ast.FixedItem] = {}
    for item in items:
        if not check_bin_reference(item.bin, ctx, code="TTC110", what="fixed allocation"):
            continue
        if item.bin.text in given:
            given_twice(ctx, f"bin '{item.bin.text}' is given two fixed counts", item.span,
                        given[item.bin.text].span, label="second count")
            continue
        given[item.bin.text] = item
        if check_range(ctx, item.count, what="a fixed allocation", integer=True, low=0):
            if _check_at_least_probe(item.count, ctx):
                if _spends_fixed(ctx, item.bin.text):
                    _check_fixed_bounds(item.count, [item.bin.text], ctx)
                else:
                    _check_count_it_spends(item, ctx)
    if ctx.symbols.bins_decl is None:
        if not items:
            ctx.diagnostics.error(
                "TTC305",
                "a per-bin fixed allocation needs bins",
                span,
                label="the policy declares no bins",
                help="use `allocate fixed N` for the same count everywhere",
            )
        return
    keep_probe = {
        name
        for name, decl in ctx.symbols.strategies.items()
        if isinstance(decl.strategy, ast.Invocation) and decl.strategy.name.text == "keep_probe"
    }
    missing = [name for name in ctx.symbols.bins if name not in given and name not in keep_probe]
    if missing:
        ctx.diagnostics.error(
            "TTC600",
            f"the fixed allocation gives no count for bin{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{m}'" for m in missing),
            span,
            label="every bin needs a count",
            help="add " + "  ".join(f"{m} N" for m in missing) + " inside the braces",
        )


def _check_bandit(bandit: ast.Bandit, program: ast.Program, ctx: CheckContext) -> None:
    diagnostics = ctx.diagnostics
    per_bin = [
        s for s in program.statements
        if isinstance(s, ast.BinsDecl | ast.StrategyDecl)
    ]
    for statement in per_bin:
        diagnostics.error(
            "TTC602",
            "bandit allocation decides per query online; bins and strategies do not apply",
            statement.span,
            label="not used by `allocate bandit`",
            help="remove it and use `answer` for the aggregation, or use `allocate optimal`",
        )
    seen: dict[type, ast.BanditItem] = {}
    for item in bandit.items:
        if not isinstance(item, ast.BanditSolved):
            if type(item) in seen:
                given_twice(ctx, "this bandit setting is given twice", item.span, seen[type(item)].span)
                continue
            seen[type(item)] = item
        match item:
            case ast.BanditRound(count=count):
                check_range(ctx, count, what="the round size", integer=True, low=1)
            case ast.BanditExplore(rule=rule) if rule.text not in EXPLORE_RULES:
                diagnostics.error(
                    "TTC108",
                    f"unknown exploration rule '{rule.text}'",
                    rule.span,
                    label="not an exploration rule",
                    help=did_you_mean(rule.text, EXPLORE_RULES)
                    or "rules: " + ", ".join(EXPLORE_RULES),
                )
            case ast.BanditBill(unit=unit):
                check_unit(unit, ctx)
    explore = seen.get(ast.BanditExplore)
    if isinstance(explore, ast.BanditExplore) and explore.rule.text in ANSWER_RULES:
        gold = next((i for i in bandit.items if isinstance(i, ast.BanditSolved)
                     and _first_correct_retires(i.condition, ctx)), None)
        if gold is not None:
            diagnostics.error(
                "TTC610",
                f"`explore {explore.rule.text}` ranks by how contested the answers are, which "
                "says nothing when a query retires at its first correct sample",
                explore.rule.span,
                label="no signal under this solved rule",
                help="every active query's samples are all wrong here; use `explore all` "
                "(elimination) or `explore ucb`",
                notes=(Note(span=gold.span, message="a query retires at its first correct "
                            "sample here"),),
            )
    missing = []
    if ast.BanditRound not in seen:
        missing.append("`round N samples`")
    if not any(isinstance(i, ast.BanditSolved) for i in bandit.items):
        missing.append("a `solved when ...` rule")
    if missing:
        diagnostics.error(
            "TTC604",
            "the bandit block needs " + " and ".join(missing),
            bandit.span,
            label="incomplete bandit block",
            help="e.g. `allocate bandit { round 2 samples  solved when top_share >= 0.75 after 4 }`",
        )


# The exploration rules that rank by the answers' contest (ttcdsl.runtime.bandit).
ANSWER_RULES = ("gap", "entropy")


def _first_correct_retires(condition: ast.Condition, ctx: CheckContext) -> bool:
    """Whether the solved rule reads the best gold grade so far (``score(g)`` of a gold scorer,
    or ``max(correct)``): a query then retires at its first correct sample, so an active
    query's samples are all wrong."""
    if not isinstance(condition, ast.Comparison):
        return False
    for expr in (condition.left, condition.right):
        for node in walk(expr):
            if not isinstance(node, ast.Call) or len(node.args) != 1:
                continue
            (arg,) = node.args
            if not isinstance(arg, ast.Ref):
                continue
            if node.function.text == "score":
                scorer = ctx.symbols.scorers.get(arg.name.text)
                if scorer is not None and scorer.kind.text == "gold":
                    return True
            if node.function.text == "max" and arg.name.text == "correct":
                return True
    return False


def _check_per_query(per_query: ast.PerQuery, program: ast.Program, ctx: CheckContext) -> None:
    """`allocate per query` predicts each query's curve from its probe's features and spends a
    mean samples budget through the per-query Lagrangian: it needs a probe and a feature, has no
    bins, and spends samples only (the planner prices no other limit per query)."""
    diagnostics = ctx.diagnostics
    symbols = ctx.symbols
    if symbols.probe is None:
        diagnostics.error(
            "TTC612",
            "per-query allocation predicts each query's curve from its probe, but the policy has "
            "no probe",
            per_query.span,
            label="needs `probe N samples`",
            help="add `probe 4 samples` (spent on every query first; it counts against the budget)",
        )
    if not symbols.features and symbols.difficulty is None:
        diagnostics.error(
            "TTC613",
            "per-query allocation predicts from the probe's features, but the policy declares none",
            per_query.span,
            label="no `feature` or `difficulty` to predict from",
            help="add e.g. `feature agreement = top_share(answers)`",
        )
    for statement in program.statements:
        if isinstance(statement, ast.BinsDecl | ast.StrategyDecl):
            diagnostics.error(
                "TTC614",
                "per-query allocation gives every query its own count; bins and per-bin "
                "strategies do not apply",
                statement.span,
                label="not used by `allocate per query`",
                help="remove it and use `answer` for the aggregation, or use `allocate optimal`",
            )
    for statement in program.statements:
        if isinstance(statement, ast.FeatureDecl | ast.DifficultyDecl):
            _check_calibration_relative(statement.expr, per_query, ctx)
    budget = symbols.budget
    for item in budget.items if budget is not None else ():
        match item:
            case ast.MeanLimit(unit=unit, bin=None) if unit.text == "samples":
                continue
            case ast.RangeLimit(unit=unit, bin=None) | ast.CapLimit(unit=unit, bin=None) if (
                unit.text == "samples"
            ):
                continue
            case ast.MeanLimit() | ast.TotalLimit() | ast.RangeLimit() | ast.CapLimit():
                diagnostics.error(
                    "TTC615",
                    "per-query allocation spends a mean samples budget with per-query sample "
                    "bounds; it cannot keep this limit",
                    item.span,
                    label="not supported by `allocate per query`",
                    help="use `mean samples per query <= B` and `samples per query in a..b`, or "
                    "`allocate optimal` for token, total and per-bin limits",
                )


def _check_calibration_relative(expr: ast.Expr, per_query: ast.PerQuery, ctx: CheckContext) -> None:
    """The per-query predictor is fitted on the calibration table's features and reads a run's
    features as the same quantities: a batch-relative function (``normalize``) means another
    thing on each batch (a run of 5 queries rescales over those 5), so the same probe would be
    read differently from how the predictor learned it. Refused (TTC616): the predictor already
    standardizes every feature with the calibration's statistics, so the raw value loses
    nothing."""
    for node in walk(expr):
        if isinstance(node, ast.Call):
            function = FUNCTIONS.get(node.function.text)
            if function is not None and function.batch_relative:
                ctx.diagnostics.error(
                    "TTC616",
                    f"per-query allocation predicts from features fitted on the calibration "
                    f"table, but {function.name}() rescales over each batch, so a run batch would "
                    "read it differently",
                    node.span,
                    label="batch-relative",
                    help="use the raw value, e.g. `feature length = mean(tokens) / 1024`: the "
                    "predictor standardizes each feature with the calibration's statistics",
                    notes=(Note(span=per_query.span, message="per-query allocation is chosen here"),),
                )
