"""Answers and correctness made at import, from response texts and a gold answer.

Both go through :mod:`ttcdsl.answers` (one extraction and one notion of correctness everywhere);
this module only chooses which rule, remembers verdicts already computed, and says in the table's
metadata what was done: the extractor alone can move a pool's accuracy by several points, so a
table must record which one made its answers.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from ttcdsl.errors import UserError

EXTRACT_KINDS: tuple[str, ...] = ("math", "multiple_choice", "exact")


@dataclass(frozen=True, slots=True, kw_only=True)
class Extractor:
    """Pulls the answer out of a response text: ``ttcdsl.answers.extract(text, kind)`` for a
    ``kind``, or the last match of ``pattern`` (its first group when it has one)."""

    kind: str | None = None
    pattern: str | None = None
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.kind is None) == (self.pattern is None):
            raise UserError("an extractor is either a kind or a regular expression")
        if self.kind is not None and self.kind not in EXTRACT_KINDS:
            raise UserError(
                f"unknown extractor {self.kind!r}",
                hint=f"use {', '.join(EXTRACT_KINDS)} or a regex",
            )
        if self.pattern is not None:
            try:
                regex = re.compile(self.pattern)
            except re.error as error:
                raise UserError(f"bad regular expression {self.pattern!r}: {error}") from None
            object.__setattr__(self, "_regex", regex)

    def __call__(self, text: str) -> str | None:
        if self._regex is None:
            from ttcdsl.answers import extract

            return extract(text, self.kind or "")
        matches = list(self._regex.finditer(text))
        if not matches:
            return None
        last = matches[-1]
        if not self._regex.groups:
            return last.group(0).strip() or None
        # the first group that took part in the match: with alternatives such as
        # `Answer: (\d+)|Final: (\d+)`, group 1 is None when the second alternative matched
        answer = next((g for g in last.groups() if g is not None), None)
        return (answer or "").strip() or None

    def describe(self, text_field: str) -> str:
        if self.pattern is not None:
            return f"the last match of the regex {self.pattern!r} in field {text_field!r}"
        return f"ttcdsl.answers.extract(kind={self.kind!r}) of field {text_field!r}"


class GoldLabeller:
    """``correct`` from an answer and a gold answer with ``ttcdsl.answers.is_correct``; no gold
    means unknown (null), no answer means wrong. Verdicts are cached per (answer, gold) pair."""

    def __init__(self, kind: str) -> None:
        from ttcdsl.answers.kinds import check_kind

        try:
            check_kind(kind)
        except ValueError as error:
            raise UserError(str(error)) from None
        self.kind = kind
        self.timeouts = 0
        self._verdicts: dict[tuple[str, str], bool] = {}

    def __call__(self, answer: str | None, gold: str | None) -> bool | None:
        if gold is None:
            return None
        if self.kind == "multiple_choice" and gold.strip().isdigit():
            # Hugging Face's MMLU writes the option's index (2 for C): against letters every
            # sample was labelled wrong, accuracy 0, without a word
            raise UserError(
                f"the multiple-choice gold {gold.strip()!r} is a number, not an option letter "
                "(A, B, C, ...)",
                hint="if it is the option's index, map it to its letter first (0-based: 0 is A, "
                "2 is C), or give --gold-field the field that holds the letter",
            )
        if answer is None:
            return False
        key = (answer, gold)
        if key not in self._verdicts:
            from ttcdsl.answers import EquivalenceTimeout, is_correct

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", EquivalenceTimeout)
                verdict = is_correct(answer, gold, self.kind)
            # A timed-out comparison counts as wrong; the metadata says how many there were.
            self.timeouts += sum(issubclass(w.category, EquivalenceTimeout) for w in caught)
            self._verdicts[key] = verdict
        return self._verdicts[key]

    def note(self, gold_field: str) -> dict[str, Any]:
        return {
            "correct": f"labelled at import against field {gold_field!r} with "
            f"ttcdsl.answers.is_correct(kind={self.kind!r}); no answer counts as wrong",
            "equivalence_timeouts": self.timeouts,
        }
