"""The syntax tree: what the user wrote, with a source span on every node.

Nodes are frozen, slotted, keyword-only dataclasses; children are tuples; the kinds of statement,
expression and condition form closed unions walked with ``match`` and ``assert_never``.
Names the language gives meaning to (functions, units, strategies) are still plain ``Name``s here;
the checks resolve them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttcdsl.lang.source import Source, Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    text: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Number:
    value: int | float  # int when written without a decimal point or exponent
    literal: str  # as written (the formatter keeps `4M` as `4M`)
    span: Span

    @property
    def is_integer(self) -> bool:
        return float(self.value).is_integer()


@dataclass(frozen=True, slots=True, kw_only=True)
class String:
    value: str
    literal: str  # with quotes and escapes, as written
    span: Span


# ---- expressions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ref:
    name: Name
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    function: Name
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary:
    op: str  # one of + - * /
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Negate:
    operand: Expr
    span: Span


Expr = Number | Ref | Call | Binary | Negate


# ---- conditions (stop rules, bandit solved rules) ---------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Tuned:
    """`tuned [0.8, 0.9, 0.95]`: candidate thresholds; the planner picks one per bin."""

    values: tuple[Number, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    left: Expr
    op: str  # one of >= <= > < == !=
    right: Expr | Tuned
    after: Number | None  # only checked once the query has at least this many samples
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Unanimous:
    last: Number  # the window size k
    # False: `unanimous last k`, the last k samples agree (sliding, checked at every count);
    # True: `unanimous window k`, a completed disjoint window 1..k, k+1..2k, ... agrees (ESC)
    disjoint: bool
    span: Span


Condition = Comparison | Unanimous


# ---- statements -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecl:
    name: Name
    description: String | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineDecl:
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class MeanLimit:
    unit: Name
    value: Number
    bin: Name | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TotalLimit:
    unit: Name
    value: Number
    bin: Name | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeLimit:
    unit: Name
    low: Number
    high: Number
    bin: Name | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class CapLimit:
    unit: Name
    value: Number
    bin: Name | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundsLimit:
    value: Number
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargePrompt:
    span: Span


BudgetItem = MeanLimit | TotalLimit | RangeLimit | CapLimit | RoundsLimit | ChargePrompt


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetBlock:
    items: tuple[BudgetItem, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    name: Name
    value: Number | String
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingBlock:
    bin: Name | None
    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeDecl:
    count: Number
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureDecl:
    name: Name
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class DifficultyDecl:
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BinsDecl:
    key: Name  # `difficulty` or a feature name
    method: Name  # `quantiles` or `thresholds`
    cuts: tuple[Number, ...]
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """`majority_vote`, `best_of_n(prm)`: a strategy or aggregation with its arguments."""

    name: Name
    args: tuple[Name | Number | String, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class OneOf:
    """`one of [majority_vote, best_of_n(prm)]`: candidate strategies; the planner picks one."""

    options: tuple[Invocation, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyDecl:
    bin: Name
    strategy: Invocation | OneOf
    span: Span

    @property
    def options(self) -> tuple[Invocation, ...]:
        """The strategy, or the candidates of `one of [...]`."""
        return self.strategy.options if isinstance(self.strategy, OneOf) else (self.strategy,)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScorerDecl:
    name: Name
    kind: Name
    model: String | None
    logits: Span | None = None  # `logits`: read sigmoid(score)
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRule:
    condition: Condition
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class StopBlock:
    bin: Name | None
    rules: tuple[StopRule, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Optimal:
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PerQuery:
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedUniform:
    count: Number
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedItem:
    bin: Name
    count: Number
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedPerBin:
    items: tuple[FixedItem, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BanditRound:
    count: Number
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BanditExplore:
    rule: Name
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BanditSolved:
    condition: Condition
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BanditBill:
    unit: Name
    span: Span


BanditItem = BanditRound | BanditExplore | BanditSolved | BanditBill


@dataclass(frozen=True, slots=True, kw_only=True)
class Bandit:
    items: tuple[BanditItem, ...]
    span: Span


Allocation = Optimal | PerQuery | FixedUniform | FixedPerBin | Bandit


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocateDecl:
    allocation: Allocation
    objective: Name | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerDecl:
    aggregation: Invocation
    span: Span


Statement = (
    PolicyDecl
    | OfflineDecl
    | BudgetBlock
    | SamplingBlock
    | ProbeDecl
    | FeatureDecl
    | DifficultyDecl
    | BinsDecl
    | StrategyDecl
    | ScorerDecl
    | StopBlock
    | AllocateDecl
    | AnswerDecl
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    text: str  # including the leading '#'
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Program:
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...]
    source: Source
