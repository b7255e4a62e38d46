"""The ``ttc`` command line.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the module is imported
only to register its arguments, and heavy libraries (jax, cvxpy, vllm) are imported inside the
command's ``run`` so that ``ttc check`` stays instant.

Exit codes: 0 ok, 1 user error (bad input, failed check), 2 bad command line, 3 internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

# Subcommand modules, in the order `ttc --help` lists them.
COMMAND_MODULES = (
    "ttcdsl.cli.check",
    "ttcdsl.cli.fmt",
    "ttcdsl.cli.explain",
    "ttcdsl.cli.import_cmd",
    "ttcdsl.cli.queries",
    "ttcdsl.cli.split",
    "ttcdsl.cli.workload",
    "ttcdsl.cli.plan",
    "ttcdsl.cli.run",
    "ttcdsl.cli.model",
    "ttcdsl.cli.report",
    "ttcdsl.cli.compare",
    "ttcdsl.cli.simulate",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="ttc",
        description="Allocate LLM test-time compute across a batch under a budget.",
    )
    parser.add_argument("--version", action="version", version=f"ttc {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ttc``; returns the exit code (the console script passes it to ``sys.exit``)."""
    from ttcdsl.errors import UserError
    from ttcdsl.lang.diagnostics import DiagnosticError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "exit_at_once", False):
            from ttcdsl.cli.interrupt import exit_at_once_on_interrupt

            with exit_at_once_on_interrupt():
                return int(args.run(args))
        return int(args.run(args))
    except DiagnosticError as error:
        from ttcdsl.lang.render import render_text

        print(render_text(error.diagnostics, color=sys.stderr.isatty()), file=sys.stderr)
        return EXIT_USER_ERROR
    except UserError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ttc ... | head`: the reader went away; not an error of ours.
        return EXIT_OK
    except OSError as error:
        if error.filename is None:  # not about a path: reported as a bug below
            return _internal(error)
        # A path the command could not read or write that no command checked by name first
        # (a directory where a file goes, a folder that cannot be made, no permission, a full
        # disk): the machine's or the command line's, not a bug. A rename names its target.
        path = error.filename2 if error.filename2 is not None else error.filename
        print(UserError(f"{path}: {error.strerror or type(error).__name__}",
                        hint="check the path and its permissions").render(), file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as error:  # the last line of defence: never a raw traceback
        from ttcdsl.errors import out_of_memory, out_of_memory_error

        if out_of_memory(error):
            print(out_of_memory_error(error).render(), file=sys.stderr)
            return EXIT_USER_ERROR
        return _internal(error)


def _internal(error: BaseException) -> int:
    """A bug: one line that says so (the traceback with TTC_DEBUG=1), exit 3."""
    if os.environ.get("TTC_DEBUG"):
        traceback.print_exc()
    print(
        f"internal error: {type(error).__name__}: {error}\n"
        "  this is a bug in ttc, not in your input; rerun with TTC_DEBUG=1 for the traceback",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def _version() -> str:
    from ttcdsl import __version__

    return __version__


def entry() -> None:
    try:
        code = main()
    except KeyboardInterrupt:
        # Ctrl-C before a command started (while Python imports the subcommands or parses the
        # command line): the same word and exit code as during one, not a traceback.
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
