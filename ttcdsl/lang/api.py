"""The Python entry points of the language: file or text in, checked Policy out."""

from __future__ import annotations

import os
from pathlib import Path

from ttcdsl.lang import ast, ir
from ttcdsl.lang.checks import run_checks
from ttcdsl.lang.diagnostics import Diagnostic, DiagnosticError, Diagnostics
from ttcdsl.lang.lower import lower
from ttcdsl.lang.parse import parse_source
from ttcdsl.lang.source import Source

MAX_POLICY_BYTES = 1 << 20


def read_source(path: str | os.PathLike[str]) -> Source:
    """Reads a policy file as UTF-8; raises DiagnosticError (TTC001-003) when it cannot."""
    name = str(path)
    empty = Source(name=name, text="")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_POLICY_BYTES + 1)
    except IsADirectoryError:
        raise _file_error(empty, "TTC001", f"{name} is a directory, not a policy file") from None
    except FileNotFoundError:
        raise _file_error(empty, "TTC001", f"{name} does not exist") from None
    except OSError as error:
        raise _file_error(empty, "TTC001", f"cannot read {name}: {error.strerror}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise _file_error(empty, "TTC003", f"{name} is larger than 1 MiB; is it really a policy?")
    return decode_source(name, data)


def decode_source(name: str, data: bytes) -> Source:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        prefix = Source(name=name, text=data[: error.start].decode("utf-8", errors="replace"))
        offset = len(prefix.text)
        where = Source(name=name, text=prefix.text + "\ufffd")
        raise DiagnosticError(
            [
                Diagnostic(
                    code="TTC002",
                    message=f"byte 0x{data[error.start]:02x} is not valid UTF-8",
                    source=where,
                    span=where.span(offset, offset + 1),
                    label="not UTF-8",
                    help="save the policy as UTF-8 text",
                )
            ]
        ) from None
    source = Source(name=name, text=text.removeprefix("\ufeff"))
    nul = source.text.find("\x00")
    if nul >= 0:
        raise DiagnosticError(
            [
                Diagnostic(
                    code="TTC002",
                    message="the file contains a NUL byte; it looks like a binary file",
                    source=source,
                    span=source.span(nul, nul + 1),
                    label="NUL byte",
                    help="policies are plain UTF-8 text",
                )
            ]
        )
    return source


def _file_error(source: Source, code: str, message: str) -> DiagnosticError:
    return DiagnosticError(
        [Diagnostic(code=code, message=message, source=source, span=None, help="check the path")]
    )


def parse_policy(text: str, *, name: str = "<policy>") -> ir.Policy:
    """Parses and checks policy text; raises DiagnosticError with every problem found."""
    return check_program(parse_source(Source(name=name, text=text)))[0]


def load_policy(path: str | os.PathLike[str]) -> ir.Policy:
    """Reads, parses and checks a policy file; raises DiagnosticError with every problem found."""
    return check_program(parse_source(read_source(Path(path))))[0]


def check_program(program: ast.Program) -> tuple[ir.Policy, tuple[Diagnostic, ...]]:
    """Runs the checks and lowers to IR; returns the policy and any warnings."""
    program, diagnostics = run_checks(program)
    diagnostics.raise_if_errors()
    return lower(program), diagnostics.sorted()


def check_file(path: str | os.PathLike[str]) -> tuple[ir.Policy | None, tuple[Diagnostic, ...]]:
    """For `ttc check`: never raises for user errors; returns the policy (or None) and every
    diagnostic, warnings included."""
    try:
        source = read_source(path)
        program = parse_source(source)
        return check_program(program)
    except DiagnosticError as error:
        return None, error.diagnostics


__all__ = [
    "Diagnostics",
    "check_file",
    "check_program",
    "decode_source",
    "load_policy",
    "parse_policy",
    "read_source",
]
