"""Scorer declarations, names that would shadow built-ins, and definitions nothing uses."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.diagnostics import did_you_mean
from ttcdsl.lang.vocabulary import FUNCTIONS, OBSERVABLES, SCORER_KINDS
from ttcdsl.lang.walk import condition_exprs, conditions, walk


def check_definitions(program: ast.Program, ctx: CheckContext) -> ast.Program:
    diagnostics = ctx.diagnostics
    for statement in program.statements:
        match statement:
            case ast.ScorerDecl(name=name, kind=kind, model=model, logits=logits):
                if logits is not None and kind.text != "reward_model":
                    diagnostics.error(
                        "TTC206",
                        f"only a reward model's scores can be logits, not a {kind.text} scorer's",
                        logits,
                        label="remove this",
                        help=f"write `scorer {name.text} = {kind.text}`",
                    )
                if kind.text not in SCORER_KINDS:
                    diagnostics.error(
                        "TTC105",
                        f"unknown scorer kind '{kind.text}'",
                        kind.span,
                        label="not a scorer kind",
                        help=did_you_mean(kind.text, SCORER_KINDS)
                        or "scorer kinds: " + ", ".join(SCORER_KINDS),
                    )
                elif kind.text == "reward_model" and model is None:
                    diagnostics.error(
                        "TTC206",
                        "a reward model scorer needs the model's name or path",
                        kind.span,
                        label="which model?",
                        help=f'write `scorer {name.text} = reward_model "Qwen/Qwen2.5-Math-PRM-7B"`',
                    )
                elif kind.text != "reward_model" and model is not None:
                    diagnostics.error(
                        "TTC206",
                        f"a {kind.text} scorer takes no model",
                        model.span,
                        label="remove this",
                        help=f"write `scorer {name.text} = {kind.text}`",
                    )
                _no_shadowing(name, ctx)
            case ast.FeatureDecl(name=name):
                _no_shadowing(name, ctx)
                if name.text == "difficulty":
                    # `bins by difficulty` always reads the difficulty statement: a feature of that
                    # name could be compared in a stop rule but never binned on, and bins by it
                    # were told "the policy defines no difficulty"
                    ctx.diagnostics.error(
                        "TTC102",
                        "'difficulty' names the difficulty statement (`difficulty = EXPR`), not a feature",
                        name.span,
                        label="a keyword of the language",
                        help="choose another name, e.g. `feature hardness = ...`, or write "
                        "`difficulty = EXPR` to define the key `bins by difficulty` reads",
                    )
    _warn_unused(program, ctx)
    return program


def _no_shadowing(name: ast.Name, ctx: CheckContext) -> None:
    if name.text in OBSERVABLES or name.text in FUNCTIONS:
        ctx.diagnostics.error(
            "TTC102",
            f"'{name.text}' is already defined by the language",
            name.span,
            label="a built-in name",
            help=f"choose another name, e.g. '{name.text}_feature'",
        )


def _warn_unused(program: ast.Program, ctx: CheckContext) -> None:
    used: set[str] = set()
    expressions: list[ast.Expr] = []
    for statement in program.statements:
        match statement:
            case ast.FeatureDecl(expr=expr) | ast.DifficultyDecl(expr=expr):
                expressions.append(expr)
            case ast.BinsDecl(key=key):
                used.add(key.text)
            case ast.StrategyDecl(options=options):
                used.update(a.text for inv in options for a in inv.args if isinstance(a, ast.Name))
            case ast.AnswerDecl(aggregation=inv):
                used.update(a.text for a in inv.args if isinstance(a, ast.Name))
            case ast.AllocateDecl(allocation=ast.PerQuery()):
                # the per-query predictor reads every feature of the probe
                used.update(ctx.symbols.features)
    for condition in conditions(program):
        expressions.extend(condition_exprs(condition))
    for expr in expressions:
        used.update(n.name.text for n in walk(expr) if isinstance(n, ast.Ref))
    unused = [
        ("feature", decl.name, "use it in the difficulty, a bins statement or a stop rule")
        for decl in ctx.symbols.features.values()
    ] + [("scorer", decl.name, "use it in a strategy, feature or stop rule")
         for decl in ctx.symbols.scorers.values()]
    for kind, name, use in unused:
        if name.text not in used:
            ctx.diagnostics.warning(
                "TTC150",
                f"{kind} '{name.text}' is never used",
                name.span,
                label="unused",
                help=f"{use}, or remove it",
            )
