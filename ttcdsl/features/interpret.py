"""The interpreter: one batch, one feature mapping, every node evaluated for all rows at once.

An :class:`Evaluation` memoises every node it evaluates (the IR nodes are frozen and hashable),
so a feature read by several expressions, or the vote counts read by top_share, beta_confidence
and a unanimous window, are computed once per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

import numpy as np

from ttcdsl.features.batch import SampleBatch
from ttcdsl.features.values import Answers, Numbers, Value, normalize
from ttcdsl.features.votes import Votes, unanimous_last, unanimous_window
from ttcdsl.lang import ir
from ttcdsl.lang.arith import arith

FeatureSource = np.ndarray | ir.Expr


class Evaluation:
    """Evaluates expressions and conditions of one batch; create one per batch (cheap).

    ``votes`` and ``lengths``, when the caller already has them (first_stop keeps them running
    across prefixes), must be those of ``batch``; they are computed on first use otherwise.
    """

    def __init__(
        self,
        batch: SampleBatch,
        features: Mapping[str, FeatureSource],
        *,
        votes: Votes | None = None,
        lengths: np.ndarray | None = None,
    ) -> None:
        self.batch = batch
        self.features = features
        self._memo: dict[ir.Expr, Value] = {}
        self._features: dict[str, np.ndarray] = {}
        self._resolving: set[str] = set()
        self._answers: Answers | None = None
        self._votes = votes
        self._lengths = lengths

    # ------------------------------------------------------------------------------ shared

    @property
    def n_rows(self) -> int:
        return self.batch.n_rows

    @property
    def lengths(self) -> np.ndarray:
        if self._lengths is None:
            self._lengths = self.batch.lengths
        return self._lengths

    @property
    def answers(self) -> Answers:
        if self._answers is None:
            self._answers = Answers(self.batch.answer, self.batch.valid, self._votes)
        return self._answers

    # ------------------------------------------------------------------------------ expressions

    def number(self, expr: ir.Expr) -> np.ndarray:
        value = self.value(expr)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"expected a number, got a list at {_where(expr)}")
        return value

    def value(self, expr: ir.Expr) -> Value:
        cached = self._memo.get(expr)
        if cached is None:
            cached = self._memo[expr] = self._compute(expr)
        return cached

    def _compute(self, expr: ir.Expr) -> Value:
        match expr:
            case ir.Const(value=value):
                return np.full(self.n_rows, float(value))
            case ir.FeatureRef(name=name):
                return self._feature(name)
            case ir.ObservableRef(name=name):
                return self._observable(name)
            case ir.ScorerRef(name=name):
                raise TypeError(
                    f"scorer '{name}' is not a value; read it with score() or scores()"
                )
            case ir.Apply(function=function, args=args):
                return self._apply(function, args, expr)
            case ir.Arith(op=op, left=left, right=right):
                a, b = self.number(left), self.number(right)
                with np.errstate(all="ignore"):
                    value = arith(op, a, b)  # the checker folds constants with the same rule
                return np.where(b == 0, np.nan, value) if op == "/" else value
            case ir.Neg(operand=operand):
                return -self.number(operand)
            case _:
                assert_never(expr)

    def _feature(self, name: str) -> np.ndarray:
        if name in self._features:
            return self._features[name]
        if name not in self.features:
            raise KeyError(
                f"feature '{name}' has no value: pass it, or its expression, in `features`"
            )
        source = self.features[name]
        if isinstance(source, ir.Expr):
            if name in self._resolving:
                raise ValueError(f"feature '{name}' is defined in terms of itself")
            self._resolving.add(name)
            try:
                value = self.number(source)
            finally:
                self._resolving.discard(name)
        else:
            value = np.asarray(source, dtype=np.float64)
            if value.shape != (self.n_rows,):
                raise ValueError(
                    f"feature '{name}' has shape {value.shape}, expected ({self.n_rows},)"
                )
        self._features[name] = value
        return value

    def _observable(self, name: str) -> Value:
        batch = self.batch
        match name:
            case "answers":
                return self.answers
            case "tokens":
                return Numbers(batch.tokens, batch.valid)
            case "logprobs":
                return Numbers(batch.logprob, batch.valid)
            case "correct":
                return Numbers(batch.correct, batch.valid)
            case "prompt_nll":
                return np.array(batch.prompt_nll, dtype=np.float64)
            case "top_share":
                return self.answers.votes.top_share
            case "beta_confidence":
                return self.answers.votes.beta_confidence
            case "samples":
                return self.lengths.astype(np.float64)
        raise ValueError(f"unknown observable '{name}'")

    def _scorer(self, args: tuple[ir.Expr, ...], expr: ir.Expr) -> Numbers:
        if len(args) != 1 or not isinstance(args[0], ir.ScorerRef):
            raise TypeError(
                f"{_where(expr)}: score() and scores() take one scorer name"
            )
        name = args[0].name
        if name not in self.batch.scores:
            raise KeyError(
                f"scorer '{name}' has no scores in this batch (resolve it with resolve_scorers)"
            )
        return Numbers(self.batch.scores[name], self.batch.valid)

    def _apply(self, function: str, args: tuple[ir.Expr, ...], expr: ir.Expr) -> Value:
        if function in ("score", "scores"):
            scores = self._scorer(args, expr)
            return scores.max() if function == "score" else scores
        values = [self.value(arg) for arg in args]
        expected = {"clip": 3}.get(function, 1)
        if len(values) != expected:
            raise TypeError(
                f"{function}() takes {expected} argument(s), got {len(values)} at {_where(expr)}"
            )
        match function:
            case "top_share":
                return _answers(values[0], expr).votes.top_share
            case "answer_entropy":
                return _answers(values[0], expr).votes.entropy
            case "distinct":
                return _answers(values[0], expr).votes.distinct
            case "mean":
                return _numbers(values[0], expr).mean()
            case "min":
                return _numbers(values[0], expr).min()
            case "max":
                return _numbers(values[0], expr).max()
            case "std":
                return _numbers(values[0], expr).std()
            case "count":
                listed = values[0]
                if not isinstance(listed, Numbers | Answers):
                    raise TypeError(f"count() takes a list at {_where(expr)}")
                return listed.count()
            case "clip":
                x, lo, hi = (_number(v, expr) for v in values)
                return np.minimum(np.maximum(x, lo), hi)
            case "normalize":
                return normalize(_number(values[0], expr))
        raise ValueError(f"unknown function '{function}' at {_where(expr)}")

    # ------------------------------------------------------------------------------ conditions

    def holds(self, condition: ir.Condition) -> np.ndarray:
        match condition:
            case ir.Threshold(left=left, op=op, right=right, after=after):
                a, b = self.number(left), self.number(right)
                match op:
                    case ">=":
                        result = a >= b
                    case "<=":
                        result = a <= b
                    case ">":
                        result = a > b
                    case "<":
                        result = a < b
                    case "==":
                        result = a == b
                    case "!=":
                        result = (a != b) & ~np.isnan(a) & ~np.isnan(b)
                    case _:
                        assert_never(op)
                if after is not None:
                    result = result & (self.lengths >= after)
                return result
            case ir.UnanimousWindow(last=size, disjoint=True):
                return unanimous_window(
                    self.batch.answer, self.batch.valid, size, self.lengths
                )
            case ir.UnanimousWindow(last=last):
                return unanimous_last(
                    self.batch.answer, self.batch.valid, last, self.lengths
                )
            case _:
                assert_never(condition)


def _where(expr: ir.Expr) -> str:
    return f"line {expr.span.line}, column {expr.span.column}"


def _number(value: Value, expr: ir.Expr) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"expected a number at {_where(expr)}")
    return value


def _numbers(value: Value, expr: ir.Expr) -> Numbers:
    if not isinstance(value, Numbers):
        raise TypeError(f"expected a list of numbers at {_where(expr)}")
    return value


def _answers(value: Value, expr: ir.Expr) -> Answers:
    if not isinstance(value, Answers):
        raise TypeError(f"expected the answers at {_where(expr)}")
    return value
