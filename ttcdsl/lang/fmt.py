"""The canonical formatter: AST -> text, keeping every comment.

Layout rules: one statement per line, blocks indented by two spaces, a blank line kept (at most
one) where the source had one, expressions with single spaces around operators and only the
parentheses the precedence needs. `sampling` and `fixed` blocks stay on one line when they fit and
hold no comments. Comments stay attached to the statement or block item they precede, or trail
the line they ended. Invariants (tested): parse(format(x)) == parse(x), format is idempotent, and
no comment is lost.
"""

from __future__ import annotations

from typing import assert_never

from ttcdsl.lang import ast
from ttcdsl.lang.source import Span

INDENT = "  "
MAX_INLINE_WIDTH = 100
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def format_program(program: ast.Program) -> str:
    return _Printer(program).run()


class _Printer:
    def __init__(self, program: ast.Program) -> None:
        self.program = program
        self.comments = sorted(program.comments, key=lambda c: c.span.start)
        self.next_comment = 0
        self.out: list[str] = []
        self.last_line = 0  # source line of the last thing printed (for blank lines)

    # -- comments and blank lines --
    def _blank_before(self, line: int) -> None:
        if self.out and self.last_line and line > self.last_line + 1 and self.out[-1] != "":
            if not self.out[-1].endswith("{"):
                self.out.append("")

    def _leading_comments(self, before: int, indent: str) -> None:
        while self.next_comment < len(self.comments):
            comment = self.comments[self.next_comment]
            if comment.span.start >= before:
                return
            self._blank_before(comment.span.line)
            self.out.append(indent + comment.text)
            self.last_line = comment.span.line
            self.next_comment += 1

    def _trailing_comment(self, span: Span, *, limit: int | None = None) -> None:
        if self.next_comment >= len(self.comments):
            return
        comment = self.comments[self.next_comment]
        if comment.span.line == span.end_line and comment.span.start >= span.end and (
            limit is None or comment.span.start < limit
        ):
            self.out[-1] += "  " + comment.text
            self.next_comment += 1

    def _has_comments_inside(self, span: Span) -> bool:
        return any(span.start < c.span.start < span.end for c in self.comments)

    def _emit(self, node_span: Span, lines: list[str], indent: str, *, limit: int | None = None) -> None:
        self._leading_comments(node_span.start, indent)
        self._blank_before(node_span.line)
        self.out.extend(indent + line for line in lines)
        self.last_line = node_span.end_line
        self._trailing_comment(node_span, limit=limit)

    # -- program --
    def run(self) -> str:
        for statement in self.program.statements:
            self._statement(statement)
        self._leading_comments(len(self.program.source.text) + 1, "")
        while self.out and self.out[-1] == "":
            self.out.pop()
        return "\n".join(self.out) + "\n" if self.out else ""

    def _statement(self, statement: ast.Statement) -> None:
        match statement:
            case ast.BudgetBlock(items=items):
                self._block(statement.span, "budget", items, self._budget_item, inline=False)
            case ast.SamplingBlock(bin=bin_name, settings=settings):
                head = "sampling" + (f" {bin_name.text}" if bin_name else "")
                self._block(statement.span, head, settings, self._setting, inline=True)
            case ast.StopBlock(bin=bin_name, rules=rules):
                head = "stop" + (f" {bin_name.text}" if bin_name else "")
                self._block(statement.span, head, rules, self._stop_rule, inline=False)
            case ast.AllocateDecl(allocation=allocation, objective=objective):
                tail = f" maximize {objective.text}" if objective else ""
                match allocation:
                    case ast.FixedPerBin(items=items):
                        self._block(statement.span, "allocate fixed", items, self._fixed_item,
                                    inline=True, tail=tail)
                    case ast.Bandit(items=items):
                        self._block(statement.span, "allocate bandit", items, self._bandit_item,
                                    inline=False, tail=tail)
                    case ast.Optimal():
                        self._emit(statement.span, ["allocate optimal" + tail], "")
                    case ast.PerQuery():
                        self._emit(statement.span, ["allocate per query" + tail], "")
                    case ast.FixedUniform(count=count):
                        self._emit(statement.span, [f"allocate fixed {count.literal}{tail}"], "")
                    case _:
                        assert_never(allocation)
            case _:
                self._emit(statement.span, [self._simple(statement)], "")

    def _block(self, span: Span, head: str, items, render, *, inline: bool, tail: str = "") -> None:
        texts = [render(item) for item in items]
        one_line = f"{head} {{ {'  '.join(texts)} }}{tail}" if texts else f"{head} {{}}{tail}"
        if not items or (
            inline and not self._has_comments_inside(span) and len(one_line) <= MAX_INLINE_WIDTH
        ):
            self._emit(span, [one_line], "")
            return
        self._leading_comments(span.start, "")
        self._blank_before(span.line)
        self.out.append(f"{head} {{")
        self.last_line = span.line
        for item, text in zip(items, texts, strict=True):
            self._emit(item.span, [text], INDENT, limit=span.end)
        self._leading_comments(span.end - 1, INDENT)  # comments before the closing brace
        self.out.append("}" + tail)
        self.last_line = span.end_line
        self._trailing_comment(span)

    # -- statements on one line --
    def _simple(self, statement: ast.Statement) -> str:
        match statement:
            case ast.PolicyDecl(name=name, description=description):
                return f"policy {name.text}" + (f" {description.literal}" if description else "")
            case ast.OfflineDecl():
                return "offline evaluation"
            case ast.ProbeDecl(count=count):
                return f"probe {count.literal} samples"
            case ast.FeatureDecl(name=name, expr=expr):
                return f"feature {name.text} = {format_expr(expr)}"
            case ast.DifficultyDecl(expr=expr):
                return f"difficulty = {format_expr(expr)}"
            case ast.BinsDecl(key=key, method=method, cuts=cuts, names=names):
                return (
                    f"bins by {key.text} {method.text} [{', '.join(c.literal for c in cuts)}] "
                    f"as {', '.join(n.text for n in names)}"
                )
            case ast.StrategyDecl(bin=bin_name, strategy=ast.OneOf(options=options)):
                listed = ", ".join(_invocation(o) for o in options)
                return f"strategy {bin_name.text} = one of [{listed}]"
            case ast.StrategyDecl(bin=bin_name, strategy=strategy):
                return f"strategy {bin_name.text} = {_invocation(strategy)}"
            case ast.ScorerDecl(name=name, kind=kind, model=model, logits=logits):
                return (f"scorer {name.text} = {kind.text}" + (f" {model.literal}" if model else "")
                        + (" logits" if logits else ""))
            case ast.AnswerDecl(aggregation=aggregation):
                return f"answer {_invocation(aggregation)}"
            case ast.BudgetBlock() | ast.SamplingBlock() | ast.StopBlock() | ast.AllocateDecl():
                raise AssertionError("blocks are printed by _block")
            case _:
                assert_never(statement)

    # -- block items --
    @staticmethod
    def _budget_item(item: ast.BudgetItem) -> str:
        def scope(bin_name: ast.Name | None) -> str:
            return f" for {bin_name.text}" if bin_name else ""

        match item:
            case ast.MeanLimit(unit=unit, value=value, bin=bin_name):
                return f"mean {unit.text} per query <= {value.literal}{scope(bin_name)}"
            case ast.TotalLimit(unit=unit, value=value, bin=bin_name):
                return f"total {unit.text} <= {value.literal}{scope(bin_name)}"
            case ast.RangeLimit(unit=unit, low=low, high=high, bin=bin_name):
                return f"{unit.text} per query in {low.literal}..{high.literal}{scope(bin_name)}"
            case ast.CapLimit(unit=unit, value=value, bin=bin_name):
                return f"{unit.text} per query <= {value.literal}{scope(bin_name)}"
            case ast.RoundsLimit(value=value):
                return f"rounds <= {value.literal}"
            case ast.ChargePrompt():
                return "charge prompt tokens"
            case _:
                assert_never(item)

    @staticmethod
    def _setting(setting: ast.Setting) -> str:
        return f"{setting.name.text} {setting.value.literal}"

    @staticmethod
    def _stop_rule(rule: ast.StopRule) -> str:
        return f"when {format_condition(rule.condition)}"

    @staticmethod
    def _fixed_item(item: ast.FixedItem) -> str:
        return f"{item.bin.text} {item.count.literal}"

    @staticmethod
    def _bandit_item(item: ast.BanditItem) -> str:
        match item:
            case ast.BanditRound(count=count):
                return f"round {count.literal} samples"
            case ast.BanditExplore(rule=rule):
                return f"explore {rule.text}"
            case ast.BanditSolved(condition=condition):
                return f"solved when {format_condition(condition)}"
            case ast.BanditBill(unit=unit):
                return f"bill {unit.text}"
            case _:
                assert_never(item)


def _invocation(invocation: ast.Invocation) -> str:
    if not invocation.args:
        return invocation.name.text
    args = ", ".join(a.text if isinstance(a, ast.Name) else a.literal for a in invocation.args)
    return f"{invocation.name.text}({args})"


def format_condition(condition: ast.Condition) -> str:
    match condition:
        case ast.Comparison(left=left, op=op, right=right, after=after):
            shown = (
                f"tuned [{', '.join(v.literal for v in right.values)}]"
                if isinstance(right, ast.Tuned)
                else format_expr(right)
            )
            text = f"{format_expr(left)} {op} {shown}"
            return text + (f" after {after.literal}" if after else "")
        case ast.Unanimous(last=last, disjoint=disjoint):
            return f"unanimous {'window' if disjoint else 'last'} {last.literal}"
        case _:
            assert_never(condition)


def format_expr(expr: ast.Expr, parent: int = 0, right_operand: bool = False) -> str:
    """Minimal parentheses: only where precedence or left-associativity needs them."""
    match expr:
        case ast.Number(literal=literal):
            return literal
        case ast.Ref(name=name):
            return name.text
        case ast.Call(function=function, args=args):
            return f"{function.text}({', '.join(format_expr(a) for a in args)})"
        case ast.Binary(op=op, left=left, right=right):
            own = _PRECEDENCE[op]
            text = f"{format_expr(left, own)} {op} {format_expr(right, own, True)}"
            needs = own < parent or (own == parent and right_operand)
            return f"({text})" if needs else text
        case ast.Negate(operand=operand):
            return "-" + format_expr(operand, 3)
        case _:
            assert_never(expr)
