"""Constant folding: the parts of expressions that read no samples, worked out at check time.

A division by a constant zero is NaN for every query at run time (the evaluator's rule for x/0),
and constant arithmetic that overflows is infinite for every query; neither can be what the author
meant, and the planner would later only see a NaN key with no location. So both are reported
here, at the constant that causes them. Features defined by numbers alone are constants too
(`feature scale = 1024 - 1024` then `mean(tokens) / scale`); they are folded in declaration order,
since a feature may only read features defined before it.
"""

from __future__ import annotations

import math
from typing import assert_never

from ttcdsl.lang import ast
from ttcdsl.lang.arith import arith
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.walk import condition_exprs, conditions


class _Folder:
    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.features: dict[str, float] = {}  # constant features folded so far

    def fold(self, expr: ast.Expr) -> float | None:
        """The value of ``expr`` as the evaluator computes it (IEEE doubles) when it reads no
        samples; None when it does, or when a fault inside it was already reported."""
        match expr:
            case ast.Number(value=value):
                return float(value)
            case ast.Ref(name=name):
                return self.features.get(name.text)
            case ast.Call(args=args):
                for arg in args:  # report inside the arguments; the functions read samples
                    self.fold(arg)
                return None
            case ast.Negate(operand=operand):
                value = self.fold(operand)
                return None if value is None else -value
            case ast.Binary(op=op, left=left, right=right):
                a, b = self.fold(left), self.fold(right)
                if b == 0.0 and op == "/":
                    shown = right.name.text if isinstance(right, ast.Ref) else None
                    self.ctx.diagnostics.error(
                        "TTC207",
                        "division by zero: the divisor is always 0, so this is NaN for every query",
                        right.span,
                        label=f"'{shown}' is always 0" if shown else "this is always 0",
                        help="divide by a nonzero constant, or by an expression that reads the samples",
                    )
                    return None
                if a is None or b is None:
                    return None
                value = arith(op, a, b)
                if not math.isfinite(value):
                    self.ctx.diagnostics.error(
                        "TTC207",
                        f"constant arithmetic overflows: {a:g} {op} {b:g} is too large for a number",
                        expr.span,
                        label="overflows to infinity",
                        help="use smaller constants",
                    )
                    return None
                return value
            case _:
                assert_never(expr)


def check_constants(program: ast.Program, ctx: CheckContext) -> ast.Program:
    folder = _Folder(ctx)
    for index, statement in enumerate(program.statements):
        match statement:
            case ast.FeatureDecl(expr=expr, name=name):
                value = folder.fold(expr)
                first = ctx.symbols.feature_order.get(name.text) == index
                if value is not None and first:
                    folder.features[name.text] = value
            case ast.DifficultyDecl(expr=expr):
                folder.fold(expr)
    for condition in conditions(program):
        for expr in condition_exprs(condition):
            folder.fold(expr)
    return program
