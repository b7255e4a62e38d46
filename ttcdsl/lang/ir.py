"""The checked Policy IR: what the planner, simulator and runtime consume.

No lark objects and no AST nodes inside: names are resolved (a reference is a feature, an
observable or a scorer), every bin has its strategy, sampling parameters and stop rules merged,
and a policy without bins has exactly one bin, `all`. Spans are kept so that later phases (the
planner's feasibility checks, say) can still point at the policy's lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ttcdsl.lang.source import Source, Span

Unit = Literal["samples", "tokens"]
Objective = Literal["accuracy", "coverage"]

# ---- expressions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Const:
    value: float
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureRef:
    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservableRef:
    """A built-in observable or metric of a query's samples (answers, tokens, top_share...)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ScorerRef:
    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Apply:
    function: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Arith:
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Neg:
    operand: Expr
    span: Span


Expr = Const | FeatureRef | ObservableRef | ScorerRef | Apply | Arith | Neg

# ---- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    left: Expr
    op: Literal[">=", "<=", ">", "<", "==", "!="]
    right: Expr
    after: int | None  # evaluated only once the query has at least this many samples
    span: Span
    # `tuned [a, b, ...]`: the candidate thresholds the planner chooses among per bin; ``right``
    # is the first until the plan's choice is applied (ttcdsl.planner.candidates.apply_choice)
    tuned: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UnanimousWindow:
    """`unanimous last k` (sliding: the last ``last`` samples agree, at any count) or, with
    ``disjoint``, `unanimous window k` (some completed window 1..k, k+1..2k, ... agrees: ESC).
    The exact meaning is the contract in :mod:`ttcdsl.features.evaluate`."""

    last: int  # the window size k
    disjoint: bool = False
    span: Span


Condition = Threshold | UnanimousWindow

# ---- declarations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetLimit:
    kind: Literal["mean", "total", "per_query_min", "per_query_max"]
    unit: Unit
    value: float
    bin: str | None  # None: the whole batch
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    limits: tuple[BudgetLimit, ...] = ()
    rounds: int | None = None
    charge_prompt_tokens: bool = False

    def find(self, kind: str, unit: str, bin: str | None = None) -> BudgetLimit | None:
        return next(
            (l for l in self.limits if l.kind == kind and l.unit == unit and l.bin == bin), None
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """Generation parameters; None means the backend's default (max_tokens is never None)."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    logprobs: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Scorer:
    name: str
    kind: Literal["reward_model", "confidence", "gold"]
    model: str | None
    # the reward model's scores are logits: every reading of them (features, stop rules, vote
    # weights, the bandit's signal) sees sigmoid(score) (ttcdsl.features.scorers.as_read)
    logits: bool = False
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Feature:
    name: str
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Strategy:
    kind: Literal["majority_vote", "best_of_n", "weighted_vote", "keep_probe", "single"]
    scorer: str | None = None

    @property
    def label(self) -> str:
        """As the policy writes it: `majority_vote`, `best_of_n(prm)`."""
        return self.kind if self.scorer is None else f"{self.kind}({self.scorer})"


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRule:
    condition: Condition
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Binning:
    key: str  # "difficulty" or a feature name
    method: Literal["quantiles", "thresholds"]
    cuts: tuple[float, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Bin:
    name: str
    strategy: Strategy
    sampling: Sampling  # global parameters with this bin's overrides applied
    stop: tuple[StopRule, ...]  # global rules, then this bin's
    fixed_samples: int | None  # samples per query (probe included) under `allocate fixed`
    # `strategy NAME = one of [...]`: the candidates the planner chooses among; ``strategy`` is
    # the first until the plan's choice is applied (ttcdsl.planner.candidates.apply_choice)
    candidates: tuple[Strategy, ...] = ()

    @property
    def tuned(self) -> bool:
        """The planner still has to choose this bin's strategy or a stop threshold."""
        return bool(self.candidates) or any(
            isinstance(rule.condition, Threshold) and rule.condition.tuned for rule in self.stop
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Optimal:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class PerQuery:
    """`allocate per query`: after the probe, each query's count comes from its own predicted
    response curve (a predictor of the curve from the probe's features, fitted on the
    calibration table, :mod:`ttcdsl.planner.predictor`) through the per-query Lagrangian."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixed:
    pass  # the counts live on the bins (Bin.fixed_samples)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bandit:
    round_samples: int
    explore: Literal["all", "ucb", "gap", "entropy"]
    solved: tuple[Condition, ...]
    bill: Unit


Allocation = Optimal | PerQuery | Fixed | Bandit


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    name: str
    description: str
    offline: bool
    budget: Budget
    sampling: Sampling
    probe: int  # samples spent first on every query (0: none)
    scorers: tuple[Scorer, ...]
    features: tuple[Feature, ...]
    difficulty: Expr | None
    binning: Binning | None  # None: one bin, `all`
    bins: tuple[Bin, ...]
    allocation: Allocation
    objective: Objective
    answer: Strategy  # default aggregation
    source: Source = field(repr=False, compare=False)

    @property
    def source_hash(self) -> str:
        """sha256 of the policy text: plans and runs record it to detect a changed policy."""
        return self.source.sha256

    def bin(self, name: str) -> Bin:
        for candidate in self.bins:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def scorer_kind(self, name: str | None) -> str | None:
        """The kind of the scorer called ``name`` (None for None): what a weighted vote needs
        to turn its values into vote weights."""
        if name is None:
            return None
        for scorer in self.scorers:
            if scorer.name == name:
                return scorer.kind
        raise KeyError(name)
