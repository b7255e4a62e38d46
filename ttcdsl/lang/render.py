"""Rendering diagnostics: for people (source line, underline, help) and for machines (JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ttcdsl.lang.diagnostics import Diagnostic
from ttcdsl.lang.source import Source, Span

_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "note": "\x1b[1;36m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"
_GUTTER = "     "  # line numbers right-aligned in the first four columns


def render_text(diagnostics: Iterable[Diagnostic], *, color: bool = False, count: bool = True) -> str:
    """The diagnostics for people; ``count`` adds "N errors" after several (off where the caller
    prints its own per-file summary, as ``ttc check`` does)."""
    diagnostics = tuple(diagnostics)
    errors = sum(1 for d in diagnostics if d.is_error)
    text = "\n\n".join(render_one(d, color=color) for d in diagnostics)
    if count and errors > 1:
        text += f"\n\n{errors} errors"
    return text


def render_one(diagnostic: Diagnostic, *, color: bool = False) -> str:
    def paint(kind: str, text: str) -> str:
        return f"{_COLORS[kind]}{text}{_RESET}" if color else text

    lines = [
        paint(diagnostic.severity, f"{diagnostic.severity}[{diagnostic.code}]")
        + paint("bold", f": {diagnostic.message}"),
        f"{_GUTTER[:-2]}--> {diagnostic.location}",
    ]
    if diagnostic.span is not None:
        lines.extend(_snippet(diagnostic.source, diagnostic.span, diagnostic.label, paint, diagnostic.severity))
    for note in diagnostic.notes:
        lines.append(f"{_GUTTER}= {paint('note', 'note')}: {note.message} at "
                     f"{diagnostic.source.name}:{note.span.line}:{note.span.column}")
        lines.extend(_snippet(diagnostic.source, note.span, "", paint, "note"))
    if diagnostic.help:
        lines.append(f"{_GUTTER}= help: {diagnostic.help}")
    return "\n".join(lines)


SNIPPET_WIDTH = 100
"""The most characters of a source line a snippet shows: a longer line (a generated policy's
20,000-term sum) is cut to a window from a little before the span, marked with ellipses."""

_CONTEXT_BEFORE = 20


def _snippet(source: Source, span: Span, label: str, paint: Any, kind: str) -> list[str]:
    text = _printable(source.line_text(span.line))
    number = f"{span.line:>{len(_GUTTER) - 1}}"
    start = max(span.column - 1, 0)
    # Underline to the end of the span, or of the line when the span runs over several lines.
    end = span.end_column - 1 if span.end_line == span.line else len(text.rstrip())
    if len(text) > SNIPPET_WIDTH:
        text, start, end = _window(text, start, end)
    width = max(end - start, 1)
    underline = " " * start + paint(kind, "^" * width + (f" {label}" if label else ""))
    return [f"{_GUTTER}|", f"{number} | {text}", f"{_GUTTER}| {underline}"]


def _window(text: str, start: int, end: int) -> tuple[str, int, int]:
    """``text`` cut to SNIPPET_WIDTH characters from a little before ``start``, with "..." where
    it was cut, and the span's columns moved (and clipped) to match."""
    lo = max(0, min(start - _CONTEXT_BEFORE, len(text) - SNIPPET_WIDTH))
    hi = lo + SNIPPET_WIDTH
    before = "..." if lo > 0 else ""
    after = "..." if hi < len(text) else ""
    shift = len(before) - lo
    return before + text[lo:hi] + after, start + shift, min(end, hi) + shift


def _printable(line: str) -> str:
    # One character in, one character out, so columns still line up with the underline.
    return "".join(c if c.isprintable() else (" " if c == "\t" else "\ufffd") for c in line)


def to_json(diagnostic: Diagnostic) -> dict[str, Any]:
    span = diagnostic.span
    return {
        "file": diagnostic.source.name,
        "severity": diagnostic.severity,
        "code": diagnostic.code,
        "message": diagnostic.message,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "end_line": span.end_line if span else None,
        "end_column": span.end_column if span else None,
        "label": diagnostic.label,
        "help": diagnostic.help,
        "notes": [
            {"message": n.message, "line": n.span.line, "column": n.span.column} for n in diagnostic.notes
        ],
    }
