"""Number literals: `8`, `0.95`, `4_000_000`, `1e-3`, `8k`, `4M`, `2G`."""

from __future__ import annotations

import math
import re

MAX_MAGNITUDE = 10**15  # far beyond any real budget; keeps every value exact in float64
_SUFFIX = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9}
_UNDERSCORE_OK = re.compile(r"^[0-9]+(_[0-9]+)*$")


class NumberError(ValueError):
    """The literal is malformed or out of range; the message says which."""


_DIGITS = re.compile(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?")


def parse_number(literal: str) -> int | float:
    digits = _DIGITS.match(literal)
    rest = literal[digits.end():] if digits else literal
    if rest and rest not in _SUFFIX:
        # 8m for 8M, 8kk, 2samples: the tail is no suffix; say which suffixes there are
        case = "; 'm' is not 'M' (the suffixes are case-sensitive, except k)" if rest[0] == "m" else ""
        if len(rest) > 2 and rest.isalpha():
            case += f"; a word after a number needs a space before it ('{rest}')"
        raise NumberError(
            f"'{_shown(literal)}' is not a valid number: '{rest}' after the digits is no suffix; "
            f"a number may end in one of k (thousand), M (million), G (billion){case}"
        )
    body, multiplier = literal, 1
    if body and body[-1] in _SUFFIX:
        body, multiplier = body[:-1], _SUFFIX[body[-1]]
    mantissa, _, exponent = body.replace("E", "e").partition("e")
    whole, _, fraction = mantissa.partition(".")
    for part in (whole, fraction) if fraction or "." in mantissa else (whole,):
        if not _UNDERSCORE_OK.match(part):
            raise NumberError(
                f"'{literal}' is not a valid number: '_' may only stand between two digits"
            )
    digits = mantissa.replace("_", "")
    if len(digits.lstrip("0").split(".")[0]) > 16 and not exponent:
        # past 10^15 whatever it is, and Python refuses to read ints over 4300 digits at all
        raise NumberError(f"'{_shown(literal)}' is too large (the largest allowed is 10^15)")
    if "." not in digits and not exponent:
        value: int | float = int(digits) * multiplier
    else:
        try:
            value = float(digits + (f"e{exponent}" if exponent else "")) * multiplier
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise NumberError(f"'{literal}' is not a finite number")
        if value.is_integer() and abs(value) <= MAX_MAGNITUDE and multiplier > 1:
            value = int(value)  # 1.5k is the whole number 1500
    if abs(value) > MAX_MAGNITUDE:
        raise NumberError(f"'{_shown(literal)}' is too large (the largest allowed is 10^15)")
    return value


def _shown(literal: str) -> str:
    """A literal as a message quotes it: a long one shortened, not echoed whole."""
    return literal if len(literal) <= 24 else f"{literal[:10]}...{literal[-6:]} ({len(literal)} characters)"


def format_number(value: int | float) -> str:
    """How the formatter writes a computed value (literals keep their own spelling)."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
