"""Candidate lists the planner chooses among: `strategy b = one of [...]` and `tuned [...]`.

A list must offer a real choice (two or more distinct candidates: TTC309, TTC310); a threshold,
tuned or plain, must lie where what it compares can reach (TTC606), or its rule holds always or
never; and only the planner's curves can choose, so a bandit allocation, which has none, cannot
hold a candidate list (TTC607).
"""

from __future__ import annotations

from collections.abc import Sequence

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.numbers import format_number
from ttcdsl.lang.vocabulary import VALUE_RANGES

_FOLLOWED_FEATURES = 16  # features resolved through other features before giving up


def check_candidates(program: ast.Program, ctx: CheckContext) -> ast.Program:
    bandit = ctx.symbols.allocate is not None and isinstance(ctx.symbols.allocate.allocation, ast.Bandit)
    for statement in program.statements:
        match statement:
            case ast.StrategyDecl(strategy=ast.OneOf(options=options, span=span)):
                _check_list(ctx, [_invocation_key(o) for o in options], [o.span for o in options],
                            span, what="strategy")
            case ast.StopBlock(rules=rules):
                for rule in rules:
                    if isinstance(rule.condition, ast.Comparison) and isinstance(rule.condition.right, ast.Tuned):
                        _check_tuned(rule.condition, rule.condition.right, ctx)
                        if bandit:
                            _no_planner(rule.condition.right, ctx, "the bandit allocates online")
                    elif isinstance(rule.condition, ast.Comparison):
                        _check_threshold(rule.condition, ctx)
            case ast.AllocateDecl(allocation=ast.Bandit(items=items)):
                for item in items:
                    condition = getattr(item, "condition", None)
                    if isinstance(condition, ast.Comparison) and isinstance(condition.right, ast.Tuned):
                        _no_planner(condition.right, ctx, "a solved rule is not planned")
                    elif isinstance(condition, ast.Comparison):
                        _check_threshold(condition, ctx)
    return program


def _invocation_key(invocation: ast.Invocation) -> tuple[str, ...]:
    return (invocation.name.text, *(a.text if isinstance(a, ast.Name) else a.literal for a in invocation.args))


def _check_list(ctx: CheckContext, keys: Sequence, spans: Sequence, whole, *, what: str) -> bool:
    if len(keys) < 2:
        ctx.diagnostics.error(
            "TTC310",
            f"a {what} candidate list needs at least two candidates; this one has one",
            whole,
            label="nothing to choose",
            help="add another candidate, or write the one value without the list",
        )
        return False
    seen: dict = {}
    ok = True
    for key, span in zip(keys, spans, strict=True):
        if key in seen:
            ctx.diagnostics.error(
                "TTC309",
                f"this {what} candidate is listed twice",
                span,
                label="a repeat of an earlier candidate",
                help="remove the repeat: each candidate is estimated once and the planner picks one",
            )
            ok = False
        seen.setdefault(key, span)
    return ok


def _check_tuned(comparison: ast.Comparison, tuned: ast.Tuned, ctx: CheckContext) -> None:
    values = tuned.values
    _check_list(ctx, [float(v.value) for v in values], [v.span for v in values], tuned.span,
                what="threshold")
    for value in values:
        _check_reach(comparison.left, value, ctx, tuned=True)


def _check_threshold(comparison: ast.Comparison, ctx: CheckContext) -> None:
    """A plain threshold (`when beta_confidence >= 95`): the same rule as a tuned candidate's,
    on either side of the operator; a percentage written for a fraction is the usual slip."""
    right, left = _constant(comparison.right), _constant(comparison.left)
    if right is not None:
        _check_reach(comparison.left, right, ctx, tuned=False)
    elif left is not None:
        _check_reach(comparison.right, left, ctx, tuned=False)


def _constant(expr: ast.Expr) -> ast.Number | None:
    """A written number, `-1` included (a negation of a number), as one Number spanning it."""
    if isinstance(expr, ast.Number):
        return expr
    if isinstance(expr, ast.Negate) and isinstance(expr.operand, ast.Number):
        return ast.Number(value=-expr.operand.value, literal="-" + expr.operand.literal, span=expr.span)
    return None


def _check_reach(compared: ast.Expr, value: ast.Number, ctx: CheckContext, *, tuned: bool) -> None:
    """TTC606: a threshold outside the range of what it compares makes its rule hold for every
    query or for none."""
    reach = value_range(compared, ctx)
    if reach is None:
        return
    low, high, what = reach
    if not ((low is not None and value.value < low) or (high is not None and value.value > high)):
        return
    bounds = f"[{format_number(low)}, {format_number(high)}]" if high is not None else \
        f">= {format_number(low)}"
    # a percentage for a fraction (95 for 0.95) is the usual slip; name the fraction
    fraction = ""
    if low == 0 and high == 1 and 1 < value.value <= 100:
        fraction = f" ({format_number(value.value / 100)}, not {value.literal}, for a fraction)"
    ctx.diagnostics.error(
        "TTC606",
        f"the {'tuned ' if tuned else ''}threshold {value.literal} is outside the range of {what}, {bounds}",
        value.span,
        label=f"{what} is never here",
        help=(f"tune within {bounds}{fraction}: a threshold outside it makes the rule hold always "
              "or never, so that candidate is not a choice") if tuned else
        (f"write a threshold within {bounds}{fraction}: one outside it makes the rule hold "
         "always or never"),
    )


def _no_planner(tuned: ast.Tuned, ctx: CheckContext, why: str) -> None:
    ctx.diagnostics.error(
        "TTC607",
        f"tuned thresholds are chosen by the planner from its curves; {why}",
        tuned.span,
        label="nothing chooses among these",
        help="write one threshold, or use `allocate optimal` (or `fixed`) with a stop block",
    )


def value_range(expr: ast.Expr, ctx: CheckContext, depth: int = 0) -> tuple[float | None, float | None, str] | None:
    """(low, high, name) of what an expression can be, where the language knows it (an
    observable or function with a known range, a feature defined as one, `clip`); else None."""
    match expr:
        case ast.Ref(name=name):
            feature = ctx.symbols.features.get(name.text)
            if feature is not None:
                if depth >= _FOLLOWED_FEATURES:
                    return None
                inner = value_range(feature.expr, ctx, depth + 1)
                return None if inner is None else (inner[0], inner[1], f"feature '{name.text}'")
            if name.text in VALUE_RANGES:
                return (*VALUE_RANGES[name.text], name.text)
        case ast.Call(function=function, args=args):
            if function.text == "clip" and len(args) == 3 and all(isinstance(a, ast.Number) for a in args[1:]):
                return (float(args[1].value), float(args[2].value), "clip(...)")
            if function.text in VALUE_RANGES:
                return (*VALUE_RANGES[function.text], f"{function.text}(...)")
    return None
