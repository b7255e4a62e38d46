"""`ttc fmt FILE... [--check]`: rewrite policies in canonical form."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fmt",
        help="format policy files canonically",
        description="Rewrite policy files in canonical form, keeping every comment. Only the "
        "syntax must be valid; semantic problems are left to `ttc check`.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy files (.ttc)")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any file would change"
    )
    parser.add_argument("--diff", action="store_true", help="print a diff instead of writing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ttcdsl.lang.api import read_source
    from ttcdsl.lang.diagnostics import DiagnosticError
    from ttcdsl.lang.fmt import format_program
    from ttcdsl.lang.parse import parse_source
    from ttcdsl.lang.render import render_text

    status = 0
    for path in args.files:
        try:
            source = read_source(path)
            formatted = format_program(parse_source(source))
        except DiagnosticError as error:
            print(render_text(error.diagnostics, color=sys.stderr.isatty()), file=sys.stderr)
            status = 1
            continue
        if formatted == source.text:
            continue
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    source.text.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    fromfile=path,
                    tofile=path + " (formatted)",
                )
            )
        if args.check or args.diff:
            print(f"would reformat {path}", file=sys.stderr)
            status = 1
        elif not os.stat(path).st_mode & 0o222:
            # a read-only policy is one its owner keeps from changing; the rename replaced it
            print(f"error: {path}: is read-only; not reformatted (ttc fmt --diff shows the change)",
                  file=sys.stderr)
            status = 1
        else:
            _write_atomically(path, formatted)
            print(f"reformatted {path}", file=sys.stderr)
    return status


def _write_atomically(path: str, text: str) -> None:
    """Write beside the file and rename over it, so a crash never leaves half a policy. A
    symbolic link is followed: its target is rewritten and the link kept (the rename replaced
    the link with a plain file and left the policy it points to unformatted)."""
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    mode = os.stat(path).st_mode & 0o777
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".ttc-fmt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
