"""TTC102 for something given twice where one is meant (a bin name, a budget limit, a sampling
or bandit setting, a fixed count, a singleton statement): one diagnostic, on the second, with
the first as a note, so every repeat reads alike."""

from __future__ import annotations

from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.diagnostics import Note
from ttcdsl.lang.source import Span


def given_twice(ctx: CheckContext, message: str, second: Span, first: Span, *, label: str = "second setting",
                help: str = "keep one of them", first_label: str = "first given here") -> None:  # noqa: A002
    ctx.diagnostics.error("TTC102", message, second, label=label, help=help,
                          notes=(Note(span=first, message=first_label),))
