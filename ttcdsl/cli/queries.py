"""`ttc queries`: write a public question set as a queries file (the format `ttc run --queries`
reads), from the published files in a data directory.

    ttc queries math500 --data-dir shared/data -o math500.jsonl
    ttc queries arithmetic --count 30 --seed 0 -o q.jsonl   # built in, for live runs
    ttc queries --list

A queries file is JSONL, one query per line: {"id", "kind", "prompt" or "messages", "gold",
"meta"}; see the README. The ids match what `ttc import` gives the same questions' logged samples
(the Qwen pool's idx, the CRUXEval pools' sample ids).
"""

from __future__ import annotations

import argparse

from ttcdsl.cli.usage import remember_parser, usage_error

BUILTIN = "arithmetic"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "queries",
        help="write a public question set (MATH-500, GSM8K, AIME, AMC23, CRUXEval) as a queries file",
        description="Write a known public question set as a queries file for `ttc run --queries`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("name", nargs="?", help="the question set (see --list)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the data directory holding problems/ and pools/ with the published files",
    )
    parser.add_argument("--output", "-o", metavar="Q.jsonl", help="the queries file to write")
    parser.add_argument("--force", action="store_true", help="replace the output if it exists")
    parser.add_argument("--count", type=int, default=30, help="arithmetic: how many (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="arithmetic: the set's seed (default 0)")
    parser.add_argument("--list", action="store_true", help="list the known question sets")
    parser.set_defaults(run=run)
    remember_parser(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttcdsl.datasets import SOURCES, load_source, write_queries
    from ttcdsl.errors import UserError

    if args.list:
        width = max(len(name) for name in SOURCES)
        for source in SOURCES.values():
            print(f"{source.name:<{width}}  {source.description}  ({source.relative_path})")
        print(f"{BUILTIN:<{width}}  addition questions made here, for live runs (--count, --seed)")
        return 0
    if not args.name:
        usage_error(args, "name a question set", hint="ttc queries --list shows them")
    if args.name not in SOURCES and args.name != BUILTIN:
        usage_error(
            args, f"unknown question set {args.name!r}", hint=f"known: {', '.join(SOURCES)}"
        )
    if args.name == BUILTIN:
        if not args.output:
            usage_error(args, f"ttc queries {BUILTIN} needs -o Q.jsonl")
        if not 1 <= args.count <= 1_000_000:  # a live run's question set, not a data set to mine
            usage_error(args, f"--count must be from 1 to 1000000, got {args.count}")
    elif not args.data_dir or not args.output:
        usage_error(args, "ttc queries NAME needs --data-dir DIR and -o Q.jsonl")
    output = Path(args.output)
    if output.exists() and not args.force:
        raise UserError(f"{output}: already exists", hint="pass --force to replace it")
    if args.name == BUILTIN:
        from ttcdsl.datasets.arithmetic import arithmetic_questions

        dataset = arithmetic_questions(args.count, args.seed)
    else:
        dataset = load_source(args.name, args.data_dir)
    try:
        write_queries(dataset, output)
    except OSError as error:
        raise UserError(f"{output}: cannot write the queries ({error.strerror or error})") from None
    gold = sum(q.gold is not None for q in dataset)
    print(f"wrote {len(dataset)} queries of {args.name} ({gold} with gold answers) to {output}")
    return 0
