"""A plain-Python reference for the evaluator: one query at a time, Python lists, no numpy.

Written from the contract in `ttcdsl.features.evaluate`'s docstring, not from the vectorised
code, so that the property tests compare two independent readings of the same semantics.
beta_confidence is computed exactly, with rationals, from the binomial form of the Beta tail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from ttcdsl.lang import ir

NAN = math.nan


@dataclass(frozen=True)
class Row:
    """One query's samples, in generation order (NaN = unknown)."""

    answers: list[Hashable | None]
    tokens: list[float]
    logprob: list[float]
    correct: list[float]
    scores: dict[str, list[float]] = field(default_factory=dict)
    prompt_nll: float = NAN

    def prefix(self, t: int) -> Row:
        return Row(
            answers=self.answers[:t],
            tokens=self.tokens[:t],
            logprob=self.logprob[:t],
            correct=self.correct[:t],
            scores={name: values[:t] for name, values in self.scores.items()},
            prompt_nll=self.prompt_nll,
        )


Features = Mapping[str, "ir.Expr | Sequence[float]"]


def _known(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def beta_confidence_exact(v1: int, v2: int) -> float:
    """P(p > 1/2), p ~ Beta(v1 + 1, v2 + 1) = P(Binomial(v1 + v2 + 1, 1/2) <= v1), exactly."""
    n = v1 + v2 + 1
    return float(Fraction(sum(math.comb(n, i) for i in range(v1 + 1)), 2**n))


def _list(expr: ir.Expr, row: Row) -> list:
    match expr:
        case ir.ObservableRef(name="answers"):
            return row.answers
        case ir.ObservableRef(name="tokens"):
            return row.tokens
        case ir.ObservableRef(name="logprobs"):
            return row.logprob
        case ir.ObservableRef(name="correct"):
            return row.correct
        case ir.Apply(function="scores", args=(ir.ScorerRef(name=name),)):
            return row.scores[name]
    raise TypeError(f"not a list: {expr}")


def number(expr: ir.Expr, rows: Sequence[Row], i: int, features: Features) -> float:
    """The value of a NUMBER expression on row i (the rows are needed for normalize only)."""
    row = rows[i]
    match expr:
        case ir.Const(value=value):
            return float(value)
        case ir.FeatureRef(name=name):
            source = features[name]
            if isinstance(source, ir.Expr):
                return number(source, rows, i, features)
            return float(source[i])
        case ir.ObservableRef(name="prompt_nll"):
            return row.prompt_nll
        case ir.ObservableRef(name="samples"):
            return float(len(row.answers))
        case ir.ObservableRef(name="top_share"):
            return _top_share(row.answers)
        case ir.ObservableRef(name="beta_confidence"):
            votes = sorted(
                Counter(a for a in row.answers if a is not None).values(), reverse=True
            )
            if not votes:
                return 0.0
            return beta_confidence_exact(votes[0], votes[1] if len(votes) > 1 else 0)
        case ir.Apply(function="top_share", args=(arg,)):
            return _top_share(_list(arg, row))
        case ir.Apply(function="distinct", args=(arg,)):
            return float(len({a for a in _list(arg, row) if a is not None}))
        case ir.Apply(function="answer_entropy", args=(arg,)):
            real = [a for a in _list(arg, row) if a is not None]
            if not real:
                return 0.0
            return (
                -sum(
                    c / len(real) * math.log(c / len(real))
                    for c in Counter(real).values()
                )
                + 0.0
            )
        case ir.Apply(function="count", args=(arg,)):
            return float(len(_list(arg, row)))
        case ir.Apply(function="mean", args=(arg,)):
            known = _known(_list(arg, row))
            return sum(known) / len(known) if known else NAN
        case ir.Apply(function="min", args=(arg,)):
            known = _known(_list(arg, row))
            return min(known) if known else NAN
        case ir.Apply(function="max", args=(arg,)):
            known = _known(_list(arg, row))
            return max(known) if known else NAN
        case ir.Apply(function="std", args=(arg,)):
            known = _known(_list(arg, row))
            if not known:
                return NAN
            mean = sum(known) / len(known)
            return math.sqrt(sum((v - mean) ** 2 for v in known) / len(known))
        case ir.Apply(function="score", args=(ir.ScorerRef(name=name),)):
            known = _known(row.scores[name])
            return max(known) if known else NAN
        case ir.Apply(function="clip", args=(x, lo, hi)):
            values = [number(e, rows, i, features) for e in (x, lo, hi)]
            if any(math.isnan(v) for v in values):
                return NAN
            return min(max(values[0], values[1]), values[2])
        case ir.Apply(function="normalize", args=(x,)):
            column = [number(x, rows, j, features) for j in range(len(rows))]
            known = _known(column)
            value = column[i]
            if math.isnan(value):
                return NAN
            lo, hi = min(known), max(known)
            if lo == hi:
                return 0.0
            return _divide(value - lo, hi - lo)
        case ir.Arith(op=op, left=left, right=right):
            a = number(left, rows, i, features)
            b = number(right, rows, i, features)
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            return _divide(a, b)
        case ir.Neg(operand=operand):
            return -number(operand, rows, i, features)
    raise TypeError(f"not a number: {expr}")


def _divide(a: float, b: float) -> float:
    if b == 0:
        return NAN
    return a / b


def _top_share(answers: list) -> float:
    if not answers:
        return 0.0
    real = Counter(a for a in answers if a is not None)
    return max(real.values(), default=0) / len(answers)


def holds(
    condition: ir.Condition, rows: Sequence[Row], i: int, features: Features
) -> bool:
    row = rows[i]
    match condition:
        case ir.UnanimousWindow(last=k, disjoint=True):
            # ESC: windows 1..k, k+1..2k, ... of the query; any completed one all one answer
            windows = [row.answers[j : j + k] for j in range(0, len(row.answers) - k + 1, k)]
            return any(w[0] is not None and len(set(w)) == 1 for w in windows)
        case ir.UnanimousWindow(last=k):
            window = row.answers[-k:]
            return (
                len(row.answers) >= k
                and window[0] is not None
                and len(set(window)) == 1
            )
        case ir.Threshold(left=left, op=op, right=right, after=after):
            if after is not None and len(row.answers) < after:
                return False
            a = number(left, rows, i, features)
            b = number(right, rows, i, features)
            if math.isnan(a) or math.isnan(b):
                return False
            return {
                ">=": a >= b,
                "<=": a <= b,
                ">": a > b,
                "<": a < b,
                "==": a == b,
                "!=": a != b,
            }[op]
    raise TypeError(condition)
