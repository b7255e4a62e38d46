"""Command-line value errors that only a command's ``run`` can see (a combination of flags, a value
out of range), rejected the way argparse rejects the ones it sees: the usage line, ``ttc CMD: error:
...`` and exit code 2 ("a bad command line"), not 1 (a problem with the input).

A command registers its parser with :func:`remember_parser`; ``run`` then calls :func:`usage_error`.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

_KEY = "_usage_parser"


def remember_parser(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(**{_KEY: parser})


def usage_error(args: argparse.Namespace, message: str, *, hint: str | None = None) -> NoReturn:
    """Print the command's usage and ``message`` (and ``hint``) and exit 2 (SystemExit)."""
    parser = getattr(args, _KEY, None)
    text = message + (f"\n  help: {hint}" if hint else "")
    if parser is None:  # a run() called without its parser: still a command-line error
        import sys

        print(f"error: {text}", file=sys.stderr)
        raise SystemExit(2)
    parser.error(text)
