"""Shared number checks: whole numbers and ranges (TTC205, TTC204)."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.numbers import format_number


def check_range(
    ctx: CheckContext,
    number: ast.Number,
    *,
    what: str,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> bool:
    """Reports and returns False when the number is not whole (if required) or out of range."""
    value = number.value
    if integer and not number.is_integer:
        ctx.diagnostics.error(
            "TTC205",
            f"{what} must be a whole number, not {number.literal}",
            number.span,
            label="not a whole number",
            help=f"use e.g. {format_number(round(value))}",
        )
        return False
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        ctx.diagnostics.error(
            "TTC204",
            f"{what} {number.literal} is out of range",
            number.span,
            label=f"must be {_describe(low, high, low_open)}",
            help=f"{what} must be {_describe(low, high, low_open)}",
        )
        return False
    return True


def _describe(low: float | None, high: float | None, low_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {format_number(low)}")
    if high is not None:
        parts.append(f"<= {format_number(high)}")
    return " and ".join(parts) if parts else "valid"
