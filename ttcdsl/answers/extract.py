"""Pull the final answer out of a model's response, per task kind.

``extract`` returns the answer as written (not canonical; see :mod:`ttcdsl.answers.canonical`), or
None when the response states no answer. The rules, in order of precedence:

* ``math``: the last ``\\boxed{...}`` (or ``\\fbox{...}``); else the first ``#### X`` (GSM8K's
  final-answer line: a model that runs on past it into a new question states nothing after it
  that is its answer); else the last "the (final) answer is X" / "Answer: X" (X up to the end of
  its line, a trailing full stop dropped); else the last number in the text (integer, decimal,
  ``a/b``, or ``\\frac{a}{b}``).
* ``multiple_choice``: the last ``\\boxed{X}``; else the last "answer is (X)" / "Answer: X" /
  "option is X" / "choice is X" (markdown bold allowed: ``**C**``); else the last parenthesised
  option letter ``(X)``; else a final line that is a single letter or starts with one and its
  delimiter (``C.``, ``**C**``, ``C) Paris``, ``C: Paris``).
* ``exact`` (CRUXEval-style): the text between the last ``[ANSWER]`` and ``[/ANSWER]``; else the last
  fenced code block; else the whole response, stripped.
* ``code``: the last fenced code block (``` ```python ... ``` ```); else the whole response.

Every kind first sets aside a reasoning block: reasoning models (DeepSeek-R1, QwQ, Qwen3) think
inside ``<think> ... </think>`` and state their answer after it, so only the text after the last
``</think>`` is read (a chat template may open the block in the prompt, leaving only its end in
the response). A block opened and never closed is a response cut off while thinking: it states
no answer (None), whatever numbers its thoughts tried on the way.
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
    r"answer\s*(?:is|:|：)\s*(?:option\s*)?\**\s*[(\[]?\s*([A-Za-z])\s*[)\]]?\**(?![A-Za-z])", re.I
)
# "option is C" / "choice: C" name a capital: "the best option is a mix" is prose, not (A)
_CHOICE_NAMED = re.compile(
    r"(?i:option|choice)\s*(?i:is|:|：)\s*\**\s*[(\[]?\s*([A-Z])\s*[)\]]?\**(?![A-Za-z])"
)
_CHOICE_PAREN = re.compile(r"\(([A-Z])\)")
# a final line that is the letter: "c", "(C)", "C.", "**C**", or "C) Paris", "C: Paris"
_CHOICE_LINE = re.compile(r"\**[(\[]?([A-Za-z])[)\].]?\**|\**[(\[]?([A-Z])[)\].:]\**\s+\S.*")
_GSM8K_FINAL = re.compile(r"####\s*([^\n]*)")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def extract(text: str, kind: str) -> str | None:
    """The final answer stated in ``text`` for a task of ``kind``, as written, or None."""
    check_kind(kind)
    text = after_reasoning(text)
    if text is None:
        return None
    if kind == "math":
        return extract_math(text)
    if kind == "multiple_choice":
        return extract_choice(text)
    if kind == "exact":
        return extract_exact(text)
    return extract_code(text)


def after_reasoning(text: str) -> str | None:
    """The part of a response that states its answer: after the last ``</think>``; None when a
    ``<think>`` block is opened and never closed (module docstring)."""
    close = text.rfind(_THINK_CLOSE)
    if close >= 0:
        return text[close + len(_THINK_CLOSE):]
    return None if _THINK_OPEN in text else text


def extract_math(text: str) -> str | None:
    boxed = last_macro_argument(text, _BOXES)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    final = _GSM8K_FINAL.search(text)
    if final is not None:
        answer = final.group(1).strip().rstrip(".").strip().strip("$").strip()
        if answer:
            return answer
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
    found = [m for m in (_last(_CHOICE_STATED, text), _last(_CHOICE_NAMED, text)) if m is not None]
    if found:
        return max(found, key=lambda m: m.start()).group(1).upper()  # the last one stated
    paren = _CHOICE_PAREN.findall(text)
    if paren:
        return paren[-1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = _CHOICE_LINE.fullmatch(lines[-1]) if lines else None
    if last is not None:
        return (last.group(1) or last.group(2)).upper()
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


def gold_answer(gold: str, kind: str) -> str:
    """A gold answer reduced to the answer where a dataset writes a solution: GSM8K's ends in
    ``#### X``, a MATH solution states X in its last ``\\boxed{}``. A math gold without either,
    and the golds of other kinds, are the answer as written."""
    if kind != "math":
        return gold
    finals = [f.strip() for f in _GSM8K_FINAL.findall(gold) if f.strip()]
    if finals:
        return finals[-1]
    boxed = last_macro_argument(gold, _BOXES)
    return boxed.strip() if boxed is not None and boxed.strip() else gold
