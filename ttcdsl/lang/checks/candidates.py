"""Candidate lists the planner chooses among: `strategy b = one of [...]` and `tuned [...]`.

A list must offer a real choice (two or more distinct candidates: TTC309, TTC310); a threshold,
tuned or plain, must lie where what it compares can reach (TTC606), or its rule holds always or
never; and only the planner's curves can choose, so a bandit allocation, which has none, cannot
hold a candidate list (TTC607).
"""

from __future__ import annotations

import math
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
        _check_reach(comparison.left, value, ctx, tuned=True, op=comparison.op)


_MIRRORED = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
_HOLDS = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__, "<=": float.__le__,
          "==": float.__eq__, "!=": float.__ne__}


def _check_threshold(comparison: ast.Comparison, ctx: CheckContext) -> None:
    """A plain threshold (`when beta_confidence >= 95`): the same rule as a tuned candidate's,
    on either side of the operator; a percentage written for a fraction is the usual slip."""
    if _check_constant(comparison, ctx):
        return
    right, left = _constant(comparison.right), _constant(comparison.left)
    if right is not None:
        _check_reach(comparison.left, right, ctx, tuned=False, op=comparison.op)
    elif left is not None:
        _check_reach(comparison.right, left, ctx, tuned=False, op=_MIRRORED[comparison.op])


def _check_constant(comparison: ast.Comparison, ctx: CheckContext) -> bool:
    """TTC606: a condition whose two sides are numbers (`when 1 > 2`, or a feature defined as a
    number) reads nothing of the query: it holds for every query at its first check or never."""
    sides = [_interval(side, ctx, 0) for side in (comparison.left, comparison.right)]
    if any(side is None or side[0] != side[1] for side in sides):
        return False
    holds = _HOLDS[comparison.op](float(sides[0][0]), float(sides[1][0]))
    verdict = "holds for every query as soon as it is checked" if holds else "never holds"
    ctx.diagnostics.error(
        "TTC606",
        f"this condition compares two constants ({format_number(sides[0][0])} {comparison.op} "
        f"{format_number(sides[1][0])}): it {verdict}",
        comparison.left.span.cover(comparison.right.span),
        label=f"always {'true' if holds else 'false'}",
        help="compare something the query's samples give (an observable or a feature), e.g. "
        "`top_share >= 0.75`; `samples >= N` stops at N samples",
    )
    return True


def _constant(expr: ast.Expr) -> ast.Number | None:
    """A written number, `-1` included (a negation of a number), as one Number spanning it."""
    if isinstance(expr, ast.Number):
        return expr
    if isinstance(expr, ast.Negate) and isinstance(expr.operand, ast.Number):
        return ast.Number(value=-expr.operand.value, literal="-" + expr.operand.literal, span=expr.span)
    return None


def _check_reach(compared: ast.Expr, value: ast.Number, ctx: CheckContext, *, tuned: bool, op: str) -> None:
    """TTC606: a threshold outside the range of what it compares makes its rule hold for every
    query or for none; so does a strict comparison at the range's end (`top_share > 1`)."""
    reach = value_range(compared, ctx)
    if reach is None:
        return
    low, high, what = reach
    at_top = op == ">" and high is not None and value.value == high
    if at_top or (op == "<" and low is not None and value.value == low):
        ctx.diagnostics.error(
            "TTC606",
            f"the {'tuned ' if tuned else ''}threshold {value.literal} is the "
            f"{'largest' if op == '>' else 'smallest'} value {what} can take: "
            f"`{op} {value.literal}` never holds",
            value.span,
            label=f"{what} is never {'above' if op == '>' else 'below'} this",
            help=f"write `{op}=` to include {value.literal}, or a threshold strictly inside its range",
        )
        return
    if not ((low is not None and value.value < low) or (high is not None and value.value > high)):
        return
    bounds = (f"[{format_number(low)}, {format_number(high)}]" if low is not None and high is not None
              else f">= {format_number(low)}" if low is not None else f"<= {format_number(high)}")
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
        (f"write a threshold {'within ' if low is not None and high is not None else ''}{bounds}{fraction}: "
         "one outside it makes the rule hold always or never"),
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
    observable or function with a known range, a feature defined as one, `clip`, and sums,
    differences, products and quotients of those and numbers, by interval arithmetic); else
    None. A bare number is no range (comparing two numbers is another matter)."""
    if isinstance(expr, ast.Number):
        return None
    bounds = _interval(expr, ctx, depth)
    if bounds is None or (bounds[0] == -math.inf and bounds[1] == math.inf):
        return None
    low, high = bounds
    return (None if low == -math.inf else low, None if high == math.inf else high, _name(expr))


def _name(expr: ast.Expr) -> str:
    match expr:
        case ast.Ref(name=name):
            return f"feature '{name.text}'" if name.text not in VALUE_RANGES else name.text
        case ast.Call(function=function):
            return f"{function.text}(...)"
    from ttcdsl.lang.fmt import format_expr

    text = format_expr(expr)
    return f"'{text}'" if len(text) <= 40 else f"'{text[:37]}...'"


def _interval(expr: ast.Expr, ctx: CheckContext, depth: int) -> tuple[float, float] | None:
    """Sound bounds [low, high] (infinite where unbounded) of an expression, or None."""
    match expr:
        case ast.Number(value=value):
            return (float(value), float(value))
        case ast.Ref(name=name):
            feature = ctx.symbols.features.get(name.text)
            if feature is not None:
                if depth >= _FOLLOWED_FEATURES:
                    return None
                return _interval(feature.expr, ctx, depth + 1)
            if name.text in VALUE_RANGES:
                return _known(VALUE_RANGES[name.text])
        case ast.Call(function=function, args=args):
            if function.text == "clip" and len(args) == 3 and all(isinstance(a, ast.Number) for a in args[1:]):
                return (float(args[1].value), float(args[2].value))
            if function.text in VALUE_RANGES:
                return _known(VALUE_RANGES[function.text])
        case ast.Negate(operand=operand):
            inner = _interval(operand, ctx, depth)
            return None if inner is None else (-inner[1], -inner[0])
        case ast.Binary(op=op, left=left, right=right):
            a, b = _interval(left, ctx, depth), _interval(right, ctx, depth)
            if a is None or b is None:
                return None
            if op == "+":
                return (a[0] + b[0], a[1] + b[1])
            if op == "-":
                return (a[0] - b[1], a[1] - b[0])
            if op == "/":
                if b[0] <= 0 <= b[1]:
                    return None
                b = (1 / b[1], 1 / b[0])
            products = [_times(x, y) for x in a for y in b]
            return (min(products), max(products))
    return None


def _known(bounds: tuple[float | None, float | None]) -> tuple[float, float]:
    low, high = bounds
    return (-math.inf if low is None else low, math.inf if high is None else high)


def _times(x: float, y: float) -> float:
    """x * y for interval ends, where 0 times an unbounded end is 0 (the limit), not NaN."""
    return 0.0 if x == 0 or y == 0 else x * y
