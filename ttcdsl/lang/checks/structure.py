"""The shape of the file: one header, first; statements that may appear once; an allocation."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.checks.twice import given_twice


def _singleton_key(statement: ast.Statement) -> tuple[str, str] | None:
    """Statements that may appear once (per bin, where they take a bin): (key, how to name it)."""
    match statement:
        case ast.PolicyDecl():
            return ("policy", "the policy header")
        case ast.OfflineDecl():
            return ("offline", "`offline evaluation`")
        case ast.BudgetBlock():
            return ("budget", "the budget block")
        case ast.SamplingBlock(bin=None):
            return ("sampling", "the sampling block")
        case ast.SamplingBlock(bin=bin_name):
            return (f"sampling:{bin_name.text}", f"the sampling block of bin '{bin_name.text}'")
        case ast.ProbeDecl():
            return ("probe", "the probe")
        case ast.DifficultyDecl():
            return ("difficulty", "the difficulty")
        case ast.BinsDecl():
            return ("bins", "the bins statement")
        case ast.StopBlock(bin=None):
            return ("stop", "the stop block")
        case ast.StopBlock(bin=bin_name):
            return (f"stop:{bin_name.text}", f"the stop block of bin '{bin_name.text}'")
        case ast.AllocateDecl():
            return ("allocate", "the allocate statement")
        case ast.AnswerDecl():
            return ("answer", "the answer statement")
        case ast.FeatureDecl(name=name):
            return (f"feature:{name.text}", f"feature '{name.text}'")
        case ast.ScorerDecl(name=name):
            return (f"scorer:{name.text}", f"scorer '{name.text}'")
        case ast.StrategyDecl(bin=bin_name):
            return (f"strategy:{bin_name.text}", f"the strategy of bin '{bin_name.text}'")
    return None


def _headline_span(statement: ast.Statement):  # the part worth underlining
    match statement:
        case ast.FeatureDecl(name=name) | ast.ScorerDecl(name=name):
            return name.span
        case ast.StrategyDecl(bin=bin_name):
            return bin_name.span
        case ast.SamplingBlock(bin=bin_name) | ast.StopBlock(bin=bin_name) if bin_name is not None:
            return bin_name.span
    # The renderer underlines only the first line of a multi-line span, i.e. the block's head.
    return statement.span


def check_structure(program: ast.Program, ctx: CheckContext) -> ast.Program:
    diagnostics = ctx.diagnostics
    statements = program.statements
    headers = [s for s in statements if isinstance(s, ast.PolicyDecl)]
    if not headers:
        first = statements[0].span if statements else None
        diagnostics.error(
            "TTC100",
            "the policy has no header",
            first,
            label="expected `policy NAME` before this" if first else "",
            help='start the file with `policy my_policy "what it does"`',
        )
    elif statements[0] is not headers[0]:
        diagnostics.error(
            "TTC100",
            "the policy header must be the first statement",
            headers[0].span,
            label="move this to the top of the file",
            help="put `policy ...` before every other statement",
        )

    seen: dict[str, ast.Statement] = {}
    for statement in statements:
        key = _singleton_key(statement)
        if key is None:
            continue
        name, description = key
        if name in seen:
            first = seen[name]
            given_twice(ctx, f"{description} is defined more than once", _headline_span(statement),
                        _headline_span(first), label="second definition", help="keep one of the definitions",
                        first_label="first defined here")
        else:
            seen[name] = statement

    if "allocate" not in seen:
        diagnostics.error(
            "TTC603",
            "the policy does not say how to allocate samples",
            headers[0].span if headers else None,
            label="this policy has no `allocate` statement",
            help="add e.g. `allocate optimal maximize accuracy` or `allocate fixed 8`",
        )
    return program
