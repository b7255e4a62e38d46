"""The task kinds an answer can belong to, and the check that a kind is known."""

from __future__ import annotations

from typing import Literal

Kind = Literal["math", "multiple_choice", "exact", "code"]

KINDS: tuple[str, ...] = ("math", "multiple_choice", "exact", "code")


def check_kind(kind: str) -> str:
    """Return ``kind`` unchanged, or raise ``ValueError`` naming the known kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind
