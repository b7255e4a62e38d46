"""Names and types in expressions: features, difficulty, stop and solved conditions."""

from __future__ import annotations

from typing import assert_never

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.diagnostics import did_you_mean
from ttcdsl.lang.parse import MAX_EXPRESSION_DEPTH
from ttcdsl.lang.vocabulary import FUNCTIONS, OBSERVABLES, STRATEGIES, Type
from ttcdsl.lang.walk import children, conditions, condition_exprs


class _Scope:
    """What an expression may read: features (all of them, or only those defined before)."""

    def __init__(self, ctx: CheckContext, *, visible_until: int | None) -> None:
        self.ctx = ctx
        self.visible_until = visible_until

    def check(self, expr: ast.Expr, *, want_number: bool = True) -> Type | None:
        actual = self._type(expr)
        if want_number and actual is not None and actual is not Type.NUMBER:
            self._not_a_number(expr, actual)
            return None
        return actual

    def _not_a_number(self, expr: ast.Expr, actual: Type) -> None:
        example = "top_share(answers)" if actual is Type.ANSWERS else "mean(...)"
        self.ctx.diagnostics.error(
            "TTC202",
            f"expected a number here, found {actual.value}",
            expr.span,
            label=f"this is {actual.value}",
            help=f"reduce it to one number per query first, e.g. {example}",
        )

    def _type(self, expr: ast.Expr) -> Type | None:
        match expr:
            case ast.Number():
                return Type.NUMBER
            case ast.Ref(name=name):
                return self._ref(name)
            case ast.Call():
                return self._call(expr)
            case ast.Binary(left=left, right=right):
                ok_left = self.check(left)
                ok_right = self.check(right)
                return Type.NUMBER if ok_left and ok_right else None
            case ast.Negate(operand=operand):
                return Type.NUMBER if self.check(operand) else None
            case _:
                assert_never(expr)

    def _ref(self, name: ast.Name) -> Type | None:
        symbols = self.ctx.symbols
        text = name.text
        if text in symbols.features:
            order = symbols.feature_order[text]
            if self.visible_until is not None and order >= self.visible_until:
                self.ctx.diagnostics.error(
                    "TTC109",
                    f"feature '{text}' is used before it is defined",
                    name.span,
                    label="defined below" if order > self.visible_until else "defined by itself",
                    help=f"define '{text}' above this feature (features cannot refer to themselves)",
                )
                return None
            return Type.NUMBER
        if text in OBSERVABLES:
            return OBSERVABLES[text].type
        if text in symbols.scorers:
            self.ctx.diagnostics.error(
                "TTC201",
                f"'{text}' is a scorer, not a value",
                name.span,
                label="a scorer name",
                help=f"use score({text}) for the best score so far or scores({text}) for all of them",
            )
            return None
        candidates = [*OBSERVABLES, *symbols.features]
        hint = did_you_mean(text, candidates)
        if text == "difficulty":
            hint = "difficulty is only used by `bins by difficulty`; define a feature to reuse it"
        elif text in FUNCTIONS:
            hint = f"'{text}' is a function: call it, e.g. {text}(...)"
        self.ctx.diagnostics.error(
            "TTC101",
            f"unknown name '{text}'",
            name.span,
            label="not a feature, observable or metric",
            help=hint or "observables: " + ", ".join(OBSERVABLES),
        )
        return None

    def _call(self, call: ast.Call) -> Type | None:
        diagnostics = self.ctx.diagnostics
        name = call.function.text
        function = FUNCTIONS.get(name)
        if function is None:
            if name in STRATEGIES:
                hint = f"'{name}' is a strategy; use it in `strategy BIN = {name}` or `answer`"
            else:
                hint = did_you_mean(name, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS)
            diagnostics.error(
                "TTC103",
                f"unknown function '{name}'",
                call.function.span,
                label="no such function",
                help=hint,
            )
            for arg in call.args:  # still check the arguments' names
                self._type(arg)
            return None
        if len(call.args) != len(function.params):
            expected = len(function.params)
            diagnostics.error(
                "TTC200",
                f"{name}() takes {expected} argument{'s' if expected != 1 else ''}, "
                f"{len(call.args)} given",
                call.span,
                label="wrong number of arguments",
                help=f"{name}({', '.join(p.name.lower() for p in function.params)}): {function.doc}",
            )
            return None
        ok = True
        for param, arg in zip(function.params, call.args, strict=True):
            if param is Type.SCORER:
                ok &= self._scorer_arg(name, arg)
                continue
            actual = self._type(arg)
            if actual is None:
                ok = False
            elif not param.accepts(actual):
                ok = False
                diagnostics.error(
                    "TTC201",
                    f"{name}() expects {param.value}, got {actual.value}",
                    arg.span,
                    label=f"this is {actual.value}",
                    help=f"{name}: {function.doc}",
                )
        return function.result if ok else None

    def _scorer_arg(self, function: str, arg: ast.Expr) -> bool:
        scorers = self.ctx.symbols.scorers
        if not isinstance(arg, ast.Ref):
            self.ctx.diagnostics.error(
                "TTC201",
                f"{function}() expects a scorer name",
                arg.span,
                label="not a scorer name",
                help=f"declare one (`scorer prm = reward_model \"...\"`) and write {function}(prm)",
            )
            return False
        if arg.name.text not in scorers:
            self.ctx.diagnostics.error(
                "TTC111",
                f"unknown scorer '{arg.name.text}'",
                arg.span,
                label="no scorer of this name",
                help=did_you_mean(arg.name.text, scorers)
                or f'declare it: `scorer {arg.name.text} = reward_model "MODEL"`',
            )
            return False
        return True


def check_expressions(program: ast.Program, ctx: CheckContext) -> ast.Program:
    for index, statement in enumerate(program.statements):
        match statement:
            case ast.FeatureDecl(expr=expr, name=name):
                first = ctx.symbols.feature_order.get(name.text) == index
                _Scope(ctx, visible_until=index if first else None).check(expr)
            case ast.DifficultyDecl(expr=expr):
                _Scope(ctx, visible_until=None).check(expr)
    for condition in conditions(program):
        for expr in condition_exprs(condition):
            _Scope(ctx, visible_until=None).check(expr)
    _check_depth_through_features(program, ctx)
    return program


def _check_depth_through_features(program: ast.Program, ctx: CheckContext) -> None:
    """TTC017: an expression with the features it reads written out in place must stay within
    TTC015's depth. The evaluators (the planner's, the runtime's, the simulator's) recurse through
    a feature into the features it reads, so a chain of a thousand features, each reading the
    previous one, is one expression a thousand operations deep to them: refused here, where the
    policy is written, not by a RecursionError in `ttc plan` or `ttc run`."""
    depths: dict[str, int] = {}  # feature -> its depth with the features it reads written out

    def depth(expr: ast.Expr) -> int:
        # iterative post-order: an expression itself is at most TTC015's depth, but stay safe
        out: dict[int, int] = {}
        stack: list[tuple[ast.Expr, bool]] = [(expr, False)]
        while stack:
            node, done = stack.pop()
            kids = children(node)
            if not done and kids:
                stack.append((node, True))
                stack.extend((k, False) for k in kids)
                continue
            if isinstance(node, ast.Ref):
                out[id(node)] = depths.get(node.name.text, 0)
            elif isinstance(node, ast.Number):
                out[id(node)] = 0
            else:  # an operation or a call: one level over its deepest operand
                out[id(node)] = 1 + max((out[id(k)] for k in kids), default=0)
        return out[id(expr)]

    def too_deep(expr: ast.Expr, where: str) -> bool:
        found = depth(expr)
        if found <= MAX_EXPRESSION_DEPTH:
            return False
        ctx.diagnostics.error(
            "TTC017",
            f"{where} is {found} operations deep with the features it reads written out, more "
            f"than {MAX_EXPRESSION_DEPTH}",
            expr.span,
            label="too deep through its features",
            help="compute it in fewer steps: each feature read adds its own depth (a chain of "
            "features each reading the previous one is as deep as all of them together)",
        )
        return True

    # Features read only features defined above them (TTC109), so one pass in order sees every
    # feature's depth before it is read. One report: past the first, every reader is too deep too.
    for statement in program.statements:
        match statement:
            case ast.FeatureDecl(expr=expr, name=name) if name.text not in depths:
                depths[name.text] = depth(expr)
                if depths[name.text] > MAX_EXPRESSION_DEPTH:
                    too_deep(expr, f"feature '{name.text}'")
                    return
            case ast.DifficultyDecl(expr=expr):
                if too_deep(expr, "the difficulty"):
                    return
    for condition in conditions(program):
        for expr in condition_exprs(condition):
            if too_deep(expr, "this condition's side"):
                return
