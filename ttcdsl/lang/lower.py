"""Checked AST -> Policy IR. Runs only on programs the checks passed, so it asserts rather than
reports: a failed assertion here is a bug in a check, not a user error."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, assert_never

from ttcdsl.lang import ast, ir
from ttcdsl.lang.vocabulary import SAMPLING_PARAMS

ALL_BIN = "all"  # the one bin of a policy that declares none


def lower(program: ast.Program) -> ir.Policy:
    statements = program.statements
    header = _one(statements, ast.PolicyDecl)
    assert header is not None
    features = {s.name.text for s in statements if isinstance(s, ast.FeatureDecl)}
    scorers = {s.name.text for s in statements if isinstance(s, ast.ScorerDecl)}
    expr = _ExprLowering(features, scorers)

    global_sampling = _sampling(_global(statements, ast.SamplingBlock), base=None)
    global_stop = tuple(
        _stop_rules(_global(statements, ast.StopBlock), expr)
    )
    probe = _one(statements, ast.ProbeDecl)
    answer_decl = _one(statements, ast.AnswerDecl)
    answer = _strategy(answer_decl.aggregation) if answer_decl else ir.Strategy(kind="majority_vote")
    allocate = _one(statements, ast.AllocateDecl)
    assert allocate is not None
    bins_decl = _one(statements, ast.BinsDecl)
    strategies = {
        s.bin.text: tuple(_strategy(o) for o in s.options)
        for s in statements
        if isinstance(s, ast.StrategyDecl)
    }
    fixed = _fixed_counts(allocate.allocation)

    bin_names = [n.text for n in bins_decl.names] if bins_decl else [ALL_BIN]
    bins = []
    for name in bin_names:
        sampling_block = _for_bin(statements, ast.SamplingBlock, name)
        stop_block = _for_bin(statements, ast.StopBlock, name)
        options = strategies.get(name, (answer,))
        strategy = options[0]
        bins.append(
            ir.Bin(
                name=name,
                strategy=strategy,
                candidates=options if len(options) > 1 else (),
                sampling=_sampling(sampling_block, base=global_sampling) if sampling_block else global_sampling,
                stop=global_stop + tuple(_stop_rules(stop_block, expr)),
                fixed_samples=_fixed_for(fixed, name, strategy, probe),
            )
        )

    return ir.Policy(
        name=header.name.text,
        description=header.description.value if header.description else "",
        offline=_one(statements, ast.OfflineDecl) is not None,
        budget=_budget(_one(statements, ast.BudgetBlock)),
        sampling=global_sampling,
        probe=int(probe.count.value) if probe else 0,
        scorers=tuple(
            ir.Scorer(
                name=s.name.text,
                kind=s.kind.text,  # type: ignore[arg-type]
                model=s.model.value if s.model else None,
                logits=s.logits is not None,
                span=s.span,
            )
            for s in statements
            if isinstance(s, ast.ScorerDecl)
        ),
        features=tuple(
            ir.Feature(name=s.name.text, expr=expr(s.expr), span=s.span)
            for s in statements
            if isinstance(s, ast.FeatureDecl)
        ),
        difficulty=(expr(d.expr) if (d := _one(statements, ast.DifficultyDecl)) else None),
        binning=(
            ir.Binning(
                key=bins_decl.key.text,
                method=bins_decl.method.text,  # type: ignore[arg-type]
                cuts=tuple(float(c.value) for c in bins_decl.cuts),
                span=bins_decl.span,
            )
            if bins_decl
            else None
        ),
        bins=tuple(bins),
        allocation=_allocation(allocate.allocation, expr),
        objective=(allocate.objective.text if allocate.objective else "accuracy"),  # type: ignore[arg-type]
        answer=answer,
        source=program.source,
    )


def _one(statements: tuple[ast.Statement, ...], kind: type) -> Any:
    return next((s for s in statements if isinstance(s, kind)), None)


def _global(statements: tuple[ast.Statement, ...], kind: type) -> Any:
    return next((s for s in statements if isinstance(s, kind) and s.bin is None), None)


def _for_bin(statements: tuple[ast.Statement, ...], kind: type, name: str) -> Any:
    return next(
        (s for s in statements if isinstance(s, kind) and s.bin is not None and s.bin.text == name),
        None,
    )


def _sampling(block: ast.SamplingBlock | None, *, base: ir.Sampling | None) -> ir.Sampling:
    values: dict[str, Any] = {}
    for setting in block.settings if block else ():
        param = SAMPLING_PARAMS[setting.name.text]
        value = setting.value.value
        values[param.name] = int(value) if param.integer else float(value)
    if base is None:
        return ir.Sampling(**values)
    return replace(base, **values)


def _strategy(invocation: ast.Invocation) -> ir.Strategy:
    scorer = invocation.args[0].text if invocation.args else None
    return ir.Strategy(kind=invocation.name.text, scorer=scorer)  # type: ignore[arg-type]


def _budget(block: ast.BudgetBlock | None) -> ir.Budget:
    if block is None:
        return ir.Budget()
    limits: list[ir.BudgetLimit] = []
    rounds = None
    charge = False
    for item in block.items:
        match item:
            case ast.MeanLimit(unit=unit, value=value, bin=bin_name, span=span):
                limits.append(_limit("mean", unit, value, bin_name, span))
            case ast.TotalLimit(unit=unit, value=value, bin=bin_name, span=span):
                limits.append(_limit("total", unit, value, bin_name, span))
            case ast.CapLimit(unit=unit, value=value, bin=bin_name, span=span):
                limits.append(_limit("per_query_max", unit, value, bin_name, span))
            case ast.RangeLimit(unit=unit, low=low, high=high, bin=bin_name, span=span):
                limits.append(_limit("per_query_min", unit, low, bin_name, span))
                limits.append(_limit("per_query_max", unit, high, bin_name, span))
            case ast.RoundsLimit(value=value):
                rounds = int(value.value)
            case ast.ChargePrompt():
                charge = True
            case _:
                assert_never(item)
    return ir.Budget(limits=tuple(limits), rounds=rounds, charge_prompt_tokens=charge)


def _limit(kind: str, unit: ast.Name, value: ast.Number, bin_name: ast.Name | None, span) -> ir.BudgetLimit:
    return ir.BudgetLimit(
        kind=kind,  # type: ignore[arg-type]
        unit=unit.text,  # type: ignore[arg-type]
        value=value.value,
        bin=bin_name.text if bin_name else None,
        span=span,
    )


def _fixed_counts(allocation: ast.Allocation) -> dict[str, int] | int | None:
    match allocation:
        case ast.FixedUniform(count=count):
            return int(count.value)
        case ast.FixedPerBin(items=items):
            return {item.bin.text: int(item.count.value) for item in items}
    return None


def _fixed_for(fixed: dict[str, int] | int | None, name: str, strategy: ir.Strategy,
               probe: ast.ProbeDecl | None) -> int | None:
    if fixed is None:
        return None
    if isinstance(fixed, int):
        return fixed
    if name in fixed:
        return fixed[name]
    assert strategy.kind == "keep_probe", "a check lets only keep_probe bins omit a fixed count"
    return int(probe.count.value) if probe else 0


def _allocation(allocation: ast.Allocation, expr: _ExprLowering) -> ir.Allocation:
    match allocation:
        case ast.Optimal():
            return ir.Optimal()
        case ast.PerQuery():
            return ir.PerQuery()
        case ast.FixedUniform() | ast.FixedPerBin():
            return ir.Fixed()
        case ast.Bandit(items=items):
            round_samples, explore, bill = 1, "all", "samples"
            solved: list[ir.Condition] = []
            for item in items:
                match item:
                    case ast.BanditRound(count=count):
                        round_samples = int(count.value)
                    case ast.BanditExplore(rule=rule):
                        explore = rule.text
                    case ast.BanditSolved(condition=condition):
                        solved.append(_condition(condition, expr))
                    case ast.BanditBill(unit=unit):
                        bill = unit.text
                    case _:
                        assert_never(item)
            return ir.Bandit(
                round_samples=round_samples,
                explore=explore,  # type: ignore[arg-type]
                solved=tuple(solved),
                bill=bill,  # type: ignore[arg-type]
            )
        case _:
            assert_never(allocation)


def _stop_rules(block: ast.StopBlock | None, expr: _ExprLowering) -> list[ir.StopRule]:
    if block is None:
        return []
    return [ir.StopRule(condition=_condition(rule.condition, expr), span=rule.span) for rule in block.rules]


def _condition(condition: ast.Condition, expr: _ExprLowering) -> ir.Condition:
    match condition:
        case ast.Comparison(left=left, op=op, right=ast.Tuned(values=values), after=after, span=span):
            return ir.Threshold(
                left=expr(left),
                op=op,  # type: ignore[arg-type]
                right=expr(values[0]),
                after=int(after.value) if after else None,
                span=span,
                tuned=tuple(float(v.value) for v in values),
            )
        case ast.Comparison(left=left, op=op, right=right, after=after, span=span):
            return ir.Threshold(
                left=expr(left),
                op=op,  # type: ignore[arg-type]
                right=expr(right),
                after=int(after.value) if after else None,
                span=span,
            )
        case ast.Unanimous(last=last, disjoint=disjoint, span=span):
            return ir.UnanimousWindow(last=int(last.value), disjoint=disjoint, span=span)
        case _:
            assert_never(condition)


class _ExprLowering:
    def __init__(self, features: set[str], scorers: set[str]) -> None:
        self.features = features
        self.scorers = scorers

    def __call__(self, node: ast.Expr) -> ir.Expr:
        match node:
            case ast.Number(value=value, span=span):
                return ir.Const(value=float(value), span=span)
            case ast.Ref(name=name, span=span):
                if name.text in self.features:
                    return ir.FeatureRef(name=name.text, span=span)
                if name.text in self.scorers:
                    return ir.ScorerRef(name=name.text, span=span)
                return ir.ObservableRef(name=name.text, span=span)
            case ast.Call(function=function, args=args, span=span):
                return ir.Apply(function=function.text, args=tuple(self(a) for a in args), span=span)
            case ast.Binary(op=op, left=left, right=right, span=span):
                return ir.Arith(op=op, left=self(left), right=self(right), span=span)  # type: ignore[arg-type]
            case ast.Negate(operand=operand, span=span):
                return ir.Neg(operand=self(operand), span=span)
            case _:
                assert_never(node)
