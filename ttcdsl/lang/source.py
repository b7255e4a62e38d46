"""Source text and spans: where in which file a node came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A half-open character range [start, end) with 1-based line/column of both ends."""

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    def cover(self, other: Span) -> Span:
        """The smallest span containing both."""
        first = self if self.start <= other.start else other
        last = self if self.end >= other.end else other
        return Span(
            start=first.start,
            end=last.end,
            line=first.line,
            column=first.column,
            end_line=last.end_line,
            end_column=last.end_column,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """The text of one policy file and the name it is reported under."""

    name: str
    text: str
    _line_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(i + 1 for i, char in enumerate(self.text) if char == "\n")
        object.__setattr__(self, "_line_starts", tuple(starts))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline (a Windows file's ``\r\n`` whole)."""
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        text = self.text[start:] if end < 0 else self.text[start:end]
        return text.removesuffix("\r")

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        from bisect import bisect_right

        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(
            start=start, end=end, line=line, column=column, end_line=end_line, end_column=end_column
        )

    def end_span(self) -> Span:
        """A zero-width span at the end of the text (for 'unexpected end of file')."""
        return self.span(len(self.text), len(self.text))
