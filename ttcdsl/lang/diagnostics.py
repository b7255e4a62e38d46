"""Diagnostics: problems a user can cause, as values.

A phase collects every problem it finds in a :class:`Diagnostics` bag and raises them together at
its boundary as one :class:`DiagnosticError`. Creating a diagnostic and rendering it are separate
(``render.py``); every code has a long explanation in ``codes.py`` (``ttc explain CODE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from ttcdsl.lang.codes import CODES
from ttcdsl.lang.source import Source, Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """A secondary labelled span, e.g. 'first defined here'."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    code: str
    message: str  # one line: what is wrong
    source: Source
    span: Span | None  # the smallest offending span; None when the whole file is at fault
    label: str = ""  # short text printed under the underline
    help: str | None = None  # one line: how to fix it
    severity: Severity = "error"
    notes: tuple[Note, ...] = ()

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"diagnostic code {self.code} is not in the catalogue (codes.py)")

    @property
    def location(self) -> str:
        if self.span is None:
            return self.source.name
        return f"{self.source.name}:{self.span.line}:{self.span.column}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class DiagnosticError(Exception):
    """Raised at the end of a phase that found errors; carries all of them (and any warnings)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0] if errors else self.diagnostics[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.location}: {first.code}: {first.message}{more}")


class Diagnostics:
    """The bag a phase reports into. `raise_if_errors` is the phase boundary."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._items: list[Diagnostic] = []

    def error(
        self,
        code: str,
        message: str,
        span: Span | None,
        *,
        label: str = "",
        help: str | None = None,
        notes: tuple[Note, ...] = (),
    ) -> None:
        self._add("error", code, message, span, label, help, notes)

    def warning(
        self, code: str, message: str, span: Span | None, *, label: str = "", help: str | None = None
    ) -> None:
        self._add("warning", code, message, span, label, help, ())

    def _add(self, severity: Severity, code: str, message: str, span: Span | None, label: str,
             help: str | None, notes: tuple[Note, ...]) -> None:
        self._items.append(
            Diagnostic(code=code, message=message, source=self.source, span=span, label=label,
                       help=help, severity=severity, notes=notes)
        )

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.extend(diagnostics)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self._items)

    def sorted(self) -> tuple[Diagnostic, ...]:
        """In source order, so a reader meets them top to bottom."""
        return tuple(
            sorted(self._items, key=lambda d: (d.span.start if d.span else -1, d.code))
        )

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise DiagnosticError(self.sorted())


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint, or None when nothing is close."""
    import difflib

    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
