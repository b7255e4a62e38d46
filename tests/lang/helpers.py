"""Small helpers for the language tests."""

from __future__ import annotations

from ttcdsl.lang.api import check_program
from ttcdsl.lang.diagnostics import Diagnostic, DiagnosticError
from ttcdsl.lang.parse import parse_source
from ttcdsl.lang.source import Source


def diagnostics_of(text: str, name: str = "case.ttc") -> tuple[Diagnostic, ...]:
    """Every diagnostic (errors and warnings) the front end reports for `text`."""
    try:
        _, warnings = check_program(parse_source(Source(name=name, text=text)))
    except DiagnosticError as error:
        return error.diagnostics
    return warnings


def underlined(diagnostic: Diagnostic) -> str:
    span = diagnostic.span
    assert span is not None, f"{diagnostic.code} has no span"
    return diagnostic.source.text[span.start : span.end]
