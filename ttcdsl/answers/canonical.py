"""Canonical forms of answers, so that a vote counts equivalent answers together.

What is merged, per kind (and, as importantly, what is not):

``math`` (LaTeX), applied in this order:

* presentation is dropped: surrounding ``$``/``\\(``/``\\[`` delimiters, a ``\\boxed{}``/``\\fbox{}``
  wrapping the whole answer, ``\\left``/``\\right``, ``\\displaystyle``, LaTeX spacing
  (``\\,`` ``\\;`` ``\\!`` ``\\quad`` ``~``), ``\\dfrac``/``\\tfrac`` (→ ``\\frac``), degree marks
  (``^\\circ``), percent signs, dollar signs, a trailing full stop, and all whitespace except what
  separates a control word from a following letter (``\\pi r``);
* text wrappers: an answer that is entirely ``\\text{X}`` (``\\textbf``, ``\\mathrm``, ``\\mbox``)
  becomes ``X``; a unit in ``\\text{...}`` after a plain number is dropped (``5\\text{ cm}`` → ``5``);
  other ``\\text{X}`` become ``X``;
* a lone variable assignment loses its left side (``x = 5`` → ``5``);
* thousands separators are removed only where unambiguous (``10{,}000``, ``3,250`` → the integer;
  ``1,2`` stays a pair);
* single-character groups lose their braces (``x^{2}`` → ``x^2``, ``\\frac12`` → ``\\frac{1}{2}``);
* **exact rational numbers are merged by value**: integers, terminating decimals with at most six
  decimals, ``a/b``, ``\\frac{a}{b}`` and mixed numbers ``N\\frac{a}{b}`` (read as N + a/b, as the MATH
  answers and ``math-verify`` read them) all become ``7`` or ``\\frac{p}{q}`` in lowest terms with the
  sign in front: ``7.``, ``7.0``, ``07``, ``\\boxed{ 7 }`` → ``7``; ``0.5``, ``1/2``, ``\\frac{2}{4}``,
  ``\\dfrac12`` → ``\\frac{1}{2}``; ``37.50`` → ``\\frac{75}{2}``.

Not merged: approximations (``0.33`` vs ``\\frac{1}{3}``), long decimals (kept as written, trailing zeros
dropped), a percentage and its fraction (``50\\%`` → ``50``, not ``\\frac{1}{2}``), symbolic forms
(``\\sqrt{2}/2`` vs ``\\frac{\\sqrt{2}}{2}``), reordered sums. Those are left to :func:`equivalent`
(``math-verify``), which is a semantic check and far slower; canonical strings are for counting votes.

``multiple_choice``: the option letter, upper case (``(b)``, ``\\text{(B)}``, ``Option B``, ``B) 42``
→ ``B``); anything else is whitespace-normalised text.

``exact`` (CRUXEval-style Python literals or calls): a string that parses as a Python expression is
re-printed by ``ast.unparse``, which normalises quotes, spacing and redundant parentheses
(``"a"`` → ``'a'``, ``[1,2]`` → ``[1, 2]``); values are not evaluated, so ``1`` and ``1.0`` stay apart,
as do sets written in different orders. Other strings are stripped with whitespace runs collapsed.

``code``: line endings normalised, trailing whitespace and surrounding blank lines dropped, common
indentation removed.
"""

from __future__ import annotations

import ast
import re
import textwrap
from decimal import Decimal
from fractions import Fraction

from ttcdsl.answers.kinds import check_kind
from ttcdsl.answers.latex import strip_outer, unwrap_macro

_MAX_DECIMALS = 6

_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_BOX = ("\\boxed", "\\fbox")
_TEXT = ("\\text", "\\textbf", "\\textrm", "\\mathrm", "\\mbox", "\\textit", "\\mathbf")
_DROP_WORDS = re.compile(
    r"\\(?:displaystyle|left|right|bigl|bigr|Bigl|Bigr|qquad|quad)(?![A-Za-z])"
)
_MINUS_SIGNS = ("\u2212", "\ufe63", "\uff0d")  # minus sign, small and fullwidth hyphen-minus
_DROP_SYMBOLS = ("\\!", "\\,", "\\;", "\\:", "\\ ")
_RENAME = (
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"),
    ("\\le ", "\\leq "),
    ("\\ge ", "\\geq "),
)
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree|°")
_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")
_ASSIGN = re.compile(r"[A-Za-z]\s*=\s*([^=<>]+)")
_UNIT = re.compile(r"(.*?)\\(?:text|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\d)?")
_SHORT_ARGS = re.compile(r"\\(frac|binom)\s*(\d|\{[^{}]*\})\s*(\d|\{[^{}]*\})")
_SHORT_SQRT = re.compile(r"\\sqrt\s*(\d)")
_SINGLE_BRACE = re.compile(r"([\^_])\{(\w)\}")
_SPACE_KEEP = re.compile(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])")
_INT = r"\d+"
_DEC = r"(?:\d+\.?\d*|\.\d+)"
_NUMBER = re.compile(rf"([+-]?)({_DEC})")
_SLASH = re.compile(rf"([+-]?)({_INT})/({_INT})")
_FRAC = re.compile(rf"([+-]?)(?:({_INT}))?\\frac\{{({_INT})\}}\{{({_INT})\}}")
_LETTER = re.compile(r"[A-Za-z]")


def number_text(value: int | float) -> str:
    """A number read from a log (JSON parses ``0.00001`` to a float) as the answer text it was:
    positional digits, never Python's exponent form (``1e-05``, which no answer is written as and
    which a gold compared as text would miss), and an integral float without its ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # the shortest digits that read back as value
    return str(value)


def canonicalize(answer: str, kind: str) -> str:
    """The canonical form of an already extracted ``answer`` of the given kind (see module doc)."""
    check_kind(kind)
    if kind == "math":
        return canonical_math(answer)
    if kind == "multiple_choice":
        return canonical_choice(answer)
    if kind == "exact":
        return canonical_exact(answer)
    return canonical_code(answer)


def canonical_vote(answer: str, kind: str) -> str | None:
    """The answer a sample votes for: its canonical form, or None where that is empty (``"  "``,
    ``\\boxed{}``, ``\\text{}``, ``$$``): nothing was answered, and an empty string would be
    one more answer, the empty samples of a query all voting for it."""
    return canonicalize(answer, kind) or None


def canonical_math(answer: str) -> str:
    """Apply the normalisation pass until nothing changes (it is idempotent by construction)."""
    s = answer
    for _ in range(8):
        t = _math_pass(s)
        if t == s:
            break
        s = t
    return s


def _math_pass(answer: str) -> str:
    s = answer.strip()
    s = _strip_delimiters(s)
    s = strip_outer(s, _BOX)
    s = _DROP_WORDS.sub(" ", s)
    for macro in _DROP_SYMBOLS:
        s = s.replace(macro, " ")
    s = s.replace("~", "")
    for minus in _MINUS_SIGNS:  # typeset minus signs are the ASCII one, as is_correct reads them
        s = s.replace(minus, "-")
    for old, new in _RENAME:
        s = s.replace(old, new)
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = s.strip()
    s = _strip_text(s)
    s = s.strip().rstrip(".").strip()
    assign = _ASSIGN.fullmatch(s)
    if assign:
        s = assign.group(1).strip()
    s = s.replace("{,}", ",")
    compact = re.sub(r"\s+", "", s)
    if _THOUSANDS.fullmatch(compact):
        s = compact.replace(",", "")
    s = _SHORT_ARGS.sub(lambda m: f"\\{m[1]}{_brace(m[2])}{_brace(m[3])}", s)
    s = _SHORT_SQRT.sub(r"\\sqrt{\1}", s)
    s = _SPACE_KEEP.sub(lambda m: m[1] + "\x00", s)
    s = re.sub(r"\s+", "", s).replace("\x00", " ")
    s = _SINGLE_BRACE.sub(r"\1\2", s)
    value = _rational(s)
    return s if value is None else value


def canonical_choice(answer: str) -> str:
    s = _strip_delimiters(answer.strip())
    s = strip_outer(s, _BOX + _TEXT)
    s = re.sub(r"^(?:the\s+)?(?:answer|option|choice)\s*(?:is)?\s*[:.]?\s*", "", s, flags=re.I)
    s = s.strip()
    m = re.fullmatch(r"[(\[]?\s*([A-Za-z])\s*[)\].:]?", s)
    if m is None:
        m = re.match(r"[(\[]\s*([A-Za-z])\s*[)\]]", s) or re.match(r"([A-Z])[).:]\s", s)
    if m is not None:
        return m.group(1).upper()
    return re.sub(r"\s+", " ", s)


def canonical_exact(answer: str) -> str:
    s = answer.strip()
    try:
        return ast.unparse(ast.parse(s, mode="eval"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return re.sub(r"\s+", " ", s)


def canonical_code(answer: str) -> str:
    lines = [line.rstrip() for line in answer.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return textwrap.dedent("\n".join(lines))


def _strip_delimiters(s: str) -> str:
    changed = True
    while changed:
        changed = False
        for left, right in _DELIMS:
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)].strip()
                changed = True
    return s


def _strip_text(s: str) -> str:
    whole = strip_outer(s, _TEXT)
    if whole != s:
        return whole
    unit = _UNIT.fullmatch(s)
    if unit and _is_quantity(unit.group(1)):
        s = unit.group(1)
    for macro in _TEXT:
        s = unwrap_macro(s, macro)
    return s


def _is_quantity(s: str) -> bool:
    """A number-like expression (digits, ``.,:/``, ``\\frac``, ``\\sqrt``, ``\\pi``), no letters."""
    bare = re.sub(r"\\(?:frac|sqrt|pi)(?![A-Za-z])", "", s)
    return bool(re.search(r"\d", bare)) and not re.search(r"[A-Za-z\\=]", bare)


def _brace(arg: str) -> str:
    return arg if arg.startswith("{") else "{" + arg + "}"


def _rational(s: str) -> str | None:
    """The canonical string of ``s`` if it is an exact rational in a recognised form, else None."""
    value: Fraction | None = None
    if m := _NUMBER.fullmatch(s):
        digits = m.group(2)
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        if decimals > _MAX_DECIMALS:
            whole, frac = digits.split(".")
            frac = frac.rstrip("0")
            return m.group(1).replace("+", "") + (whole or "0") + ("." + frac if frac else "")
        value = Fraction(digits)
        if m.group(1) == "-":
            value = -value
    elif m := _SLASH.fullmatch(s):
        if int(m.group(3)) == 0:
            return None
        value = Fraction(int(m.group(2)), int(m.group(3)))
        if m.group(1) == "-":
            value = -value
    elif m := _FRAC.fullmatch(s):
        if int(m.group(4)) == 0:
            return None
        value = Fraction(int(m.group(3)), int(m.group(4))) + int(m.group(2) or 0)
        if m.group(1) == "-":
            value = -value
    if value is None:
        return None
    return format_rational(value)


def format_rational(value: Fraction) -> str:
    """``7``, ``-3`` or ``\\frac{p}{q}`` / ``-\\frac{p}{q}`` in lowest terms."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"
