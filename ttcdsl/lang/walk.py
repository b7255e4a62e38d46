"""Walking expressions and conditions, and finding every place a policy holds one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_never

from ttcdsl.lang import ast


def children(expr: ast.Expr) -> tuple[ast.Expr, ...]:
    match expr:
        case ast.Number() | ast.Ref():
            return ()
        case ast.Call(args=args):
            return args
        case ast.Binary(left=left, right=right):
            return (left, right)
        case ast.Negate(operand=operand):
            return (operand,)
        case _:
            assert_never(expr)


def walk(expr: ast.Expr) -> Iterator[ast.Expr]:
    """Every node of an expression, parents before children."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def condition_exprs(condition: ast.Condition) -> tuple[ast.Expr, ...]:
    match condition:
        case ast.Comparison(left=left, right=ast.Tuned()):
            return (left,)
        case ast.Comparison(left=left, right=right):
            return (left, right)
        case ast.Unanimous():
            return ()
        case _:
            assert_never(condition)


def conditions(program: ast.Program) -> Iterator[ast.Condition]:
    """Stop rules and bandit solved rules: the per-query conditions."""
    for statement in program.statements:
        match statement:
            case ast.StopBlock(rules=rules):
                yield from (rule.condition for rule in rules)
            case ast.AllocateDecl(allocation=ast.Bandit(items=items)):
                yield from (i.condition for i in items if isinstance(i, ast.BanditSolved))
