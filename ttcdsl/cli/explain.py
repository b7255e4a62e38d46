"""`ttc explain CODE`: the long explanation of a diagnostic code."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain a diagnostic code",
        description="Print the long explanation of a diagnostic code, e.g. `ttc explain TTC101`.",
    )
    parser.add_argument("code", nargs="?", help="a code such as TTC101 (omit with --list)")
    parser.add_argument("--list", action="store_true", help="list every code with its title")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ttcdsl.errors import UserError
    from ttcdsl.lang.codes import CODES, explain

    if args.list and args.code is not None:
        from ttcdsl.cli.usage import usage_error

        usage_error(args, f"--list lists every code; it takes no code (got {args.code!r})",
                    hint=f"ttc explain {args.code} explains that one")
    if args.list or args.code is None:
        for entry in CODES.values():
            print(f"{entry.code}  {entry.title}")
        return 0
    code = args.code.strip().upper()
    if code.isdigit():
        code = f"TTC{int(code):03d}"
    text = explain(code)
    if text is None:
        from pathlib import Path

        if args.code.strip() and (args.code.endswith(".ttc") or Path(args.code).is_file()):  # a policy
            raise UserError(f"'{args.code}' names a file, not a diagnostic code: ttc explain explains a code "
                            "such as TTC011", hint=f"ttc check {args.code} lists its diagnostics, each with its code")
        raise UserError(f"unknown diagnostic code '{args.code}'", hint="`ttc explain --list` lists them all")
    print(text, end="")
    return 0
