"""Pull the final answer out of a model's response, per task kind.

``extract`` returns the answer as written (not canonical; see :mod:`ttcdsl.answers.canonical`), or
None when the response states no answer. The rules, in order of precedence:

* ``math``: the last ``\\boxed{...}`` (or ``\\fbox{...}``); else the last "the (final) answer is X" /
  "Answer: X" (X up to the end of its line, a trailing full stop dropped); else the last number in the
  text (integer, decimal, ``a/b``, or ``\\frac{a}{b}``).
* ``multiple_choice``: the last ``\\boxed{X}``; else the last "answer is (X)" / "Answer: X"; else the
  last parenthesised option letter ``(X)``; else a final line that is a single letter.
* ``exact`` (CRUXEval-style): the text between the last ``[ANSWER]`` and ``[/ANSWER]``; else the last
  fenced code block; else the whole response, stripped.
* ``code``: the last fenced code block (``` ```python ... ``` ```); else the whole response.
"""

from __future__ import annotations

import re

from ttcdsl.answers.kinds import check_kind
from ttcdsl.answers.latex import last_macro_argument

_BOXES = ("\\boxed", "\\fbox")
_STATED = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*[:：]|answer\s*[:：])\s*[:：]?\s*(.+)",
    re.I,
)
_LAST_NUMBER = re.compile(
    r"-?\\frac\{\d+\}\{\d+\}|-?\d[\d,]*(?:\.\d+)?\s*/\s*\d+|-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
)
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)```", re.S)
_ANSWER_TAG = re.compile(r"\[ANSWER\](.*?)\[/ANSWER\]", re.S)
_CHOICE_STATED = re.compile(
    r"answer\s*(?:is|:|：)\s*(?:option\s*)?[(\[]?\s*([A-Za-z])\s*[)\]]?(?![A-Za-z])", re.I
)
_CHOICE_PAREN = re.compile(r"\(([A-Z])\)")


def extract(text: str, kind: str) -> str | None:
    """The final answer stated in ``text`` for a task of ``kind``, as written, or None."""
    check_kind(kind)
    if kind == "math":
        return extract_math(text)
    if kind == "multiple_choice":
        return extract_choice(text)
    if kind == "exact":
        return extract_exact(text)
    return extract_code(text)


def extract_math(text: str) -> str | None:
    boxed = last_macro_argument(text, _BOXES)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    stated = _last(_STATED, text)
    if stated is not None:
        answer = stated.group(1).strip()
        answer = re.split(r"\n", answer)[0].strip().rstrip(".").strip()
        answer = answer.strip("$").strip()
        if answer:
            return answer
    numbers = _LAST_NUMBER.findall(text)
    if numbers:
        return numbers[-1].rstrip(",").strip() or None
    return None


def extract_choice(text: str) -> str | None:
    boxed = last_macro_argument(text, _BOXES)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    stated = _last(_CHOICE_STATED, text)
    if stated is not None:
        return stated.group(1).upper()
    paren = _CHOICE_PAREN.findall(text)
    if paren:
        return paren[-1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and re.fullmatch(r"[(\[]?[A-Za-z][)\].]?", lines[-1]):
        return lines[-1].strip("()[].").upper()
    return None


def extract_exact(text: str) -> str | None:
    tags = _ANSWER_TAG.findall(text)
    if tags:
        answer = tags[-1].strip()
    else:
        fences = _FENCE.findall(text)
        answer = (fences[-1] if fences else text).strip()
    return answer or None


def extract_code(text: str) -> str | None:
    fences = _FENCE.findall(text)
    answer = fences[-1] if fences else text
    return answer if answer.strip() else None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None
