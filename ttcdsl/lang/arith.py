"""The language's four arithmetic operators, in one place: the checker's constant folding and
the feature evaluator both apply them through :func:`arith`, so a constant folds to exactly what
the evaluator would compute. Works on Python floats and on numpy arrays alike (IEEE doubles:
overflow gives inf, never an exception). A zero divisor is each caller's business: the checker
reports it (TTC207), the evaluator gives NaN."""

from __future__ import annotations

from typing import Any


def arith(op: str, a: Any, b: Any) -> Any:
    match op:
        case "+":
            return a + b
        case "-":
            return a - b
        case "*":
            return a * b
        case "/":
            return a / b
    raise ValueError(f"unknown operator {op!r}")
