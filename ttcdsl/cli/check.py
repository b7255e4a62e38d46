"""`ttc check FILE...`: parse and check policies, report every problem."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="parse and check policy files",
        description="Parse and check policy files; print every problem with its location.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy files (.ttc)")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--queries",
        type=int,
        metavar="N",
        help="also check that total budgets can serve a batch of N queries",
    )
    parser.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1 on any warning)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ttcdsl.errors import UserError
    from ttcdsl.lang.api import check_file

    if args.queries is not None and args.queries < 1:
        raise UserError(f"--queries must be at least 1, not {args.queries}")
    from ttcdsl.lang.render import render_text, to_json

    results = []
    failed = False
    for path in args.files:
        policy, diagnostics = check_file(path)
        if policy is not None and args.queries is not None:
            from ttcdsl.lang.feasibility import check_batch_budget

            batch = check_batch_budget(policy, args.queries)
            diagnostics = diagnostics + batch
            if any(d.is_error for d in batch):
                policy = None
        errors = [d for d in diagnostics if d.is_error]
        ok = policy is not None and not (args.strict and diagnostics)
        failed |= not ok
        results.append((path, policy, diagnostics, errors, ok))

    if args.format == "json":
        payload = {
            "ok": not failed,
            "files": [
                {
                    "file": path,
                    "ok": ok,
                    "policy": policy.name if policy else None,
                    "diagnostics": [to_json(d) for d in diagnostics],
                }
                for path, policy, diagnostics, _, ok in results
            ],
        }
        print(json.dumps(payload, indent=2))
        return 1 if failed else 0

    color = sys.stderr.isatty()
    for path, policy, diagnostics, errors, ok in results:
        if diagnostics:
            # the count is said once, on the file's own summary line below
            print(render_text(diagnostics, color=color, count=False), file=sys.stderr)
        if policy is not None:
            bins = len(policy.bins)
            mode = {"PerQuery": "per query"}.get(
                type(policy.allocation).__name__, type(policy.allocation).__name__.lower()
            )
            warnings = len(diagnostics)
            note = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
            print(f"{path}: ok (policy {policy.name}: {bins} bin{'s' if bins != 1 else ''}, "
                  f"allocate {mode}{note})")
        else:
            print(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}")
    return 1 if failed else 0
