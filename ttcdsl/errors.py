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
