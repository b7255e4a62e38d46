"""What a real run can observe: no gold answers outside offline evaluation, and no
batch-relative values in per-query conditions."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.vocabulary import FUNCTIONS, OBSERVABLES
from ttcdsl.lang.walk import condition_exprs, conditions, walk


def check_observability(program: ast.Program, ctx: CheckContext) -> ast.Program:
    offline = ctx.symbols.offline is not None
    expressions: list[ast.Expr] = []
    for statement in program.statements:
        match statement:
            case ast.FeatureDecl(expr=expr) | ast.DifficultyDecl(expr=expr):
                expressions.append(expr)
            case ast.ScorerDecl(kind=kind) if kind.text == "gold" and not offline:
                ctx.diagnostics.error(
                    "TTC500",
                    "a gold scorer reads the gold answer, which a real run cannot see",
                    statement.span,
                    label="only for offline evaluation",
                    help="declare `offline evaluation` if this policy only runs on logged samples",
                )
    per_query: list[ast.Expr] = []
    for condition in conditions(program):
        per_query.extend(condition_exprs(condition))
    for expr in [*expressions, *per_query]:
        for node in walk(expr):
            if (
                not offline
                and isinstance(node, ast.Ref)
                and node.name.text not in ctx.symbols.features
                and OBSERVABLES.get(node.name.text, None) is not None
                and OBSERVABLES[node.name.text].needs_gold
            ):
                ctx.diagnostics.error(
                    "TTC500",
                    f"'{node.name.text}' reads the gold answer, which a real run cannot see",
                    node.span,
                    label="needs the gold answer",
                    help="declare `offline evaluation` if this policy only runs on logged samples",
                )
    for expr in per_query:
        for node in walk(expr):
            if isinstance(node, ast.Call):
                function = FUNCTIONS.get(node.function.text)
                if function is not None and function.batch_relative:
                    ctx.diagnostics.error(
                        "TTC501",
                        f"{function.name}() depends on the whole batch, but this condition is "
                        "decided per query",
                        node.span,
                        label="batch-relative",
                        help="compare the raw value instead, e.g. `when mean(tokens) > 900`",
                    )
    return program
