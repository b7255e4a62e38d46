"""Errors a user can cause outside the policy language (files, tables, plans, servers).

Policy-language problems are :class:`~ttcdsl.lang.diagnostics.Diagnostic` values instead; both end
up as a clear message and the user-error exit code, never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: say what and where, and how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  help: {self.hint}"
        return text


def shown(value: object) -> str:
    """A value as a message quotes it (its repr), a long one shortened: a query id of 100,000
    characters, or an integer of 400 digits, is shown by its start and its length."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:40]}... ({len(text)} characters)"


def out_of_memory(error: BaseException) -> bool:
    """The machine's limit, not a bug: Python's MemoryError, or XLA's failed allocation."""
    text = str(error)
    return isinstance(error, MemoryError) or (
        type(error).__name__ in ("XlaRuntimeError", "JaxRuntimeError")
        and ("RESOURCE_EXHAUSTED" in text or "Out of memory" in text))


def out_of_memory_error(error: BaseException) -> UserError:
    """What :func:`out_of_memory` errors say, wherever they are caught."""
    return UserError(f"out of memory: {type(error).__name__}: {str(error)[:200]}",
                     hint="ask for less at once (--queries, --seeds, --reps, the table's size) or "
                     "use a machine with more memory")
