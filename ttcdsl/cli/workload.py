"""`ttc workload`: write the built-in synthetic workload as a samples table (and its questions).

    ttc workload -o calib.jsonl                                  # 500 questions x 16 samples
    ttc workload -o calib.parquet --dataset queries.jsonl --queries 2000 --samples 32 --seed 7

A stand-in for a logged pool on a machine with no model and no data: questions drawn from a
difficulty mixture (easy, medium, hard, hopeless), each with its own response process (correct
rate, a few dominant wrong answers, long-tailed token counts cut at 4096 tokens, an imperfect
verifier score stored as the scorer ``prm``, a mean token log-probability). The same seed gives the
same rows on every machine. The table's format follows the output's extension (.jsonl or
.parquet); --dataset writes the questions with their gold answers as JSONL. Outputs appear
atomically, after both are complete; an existing output is refused unless --force is given.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "workload",
        help="write the built-in synthetic workload as a samples table",
        description=(
            "Write the built-in synthetic workload (a stand-in for a logged pool: per-question "
            "response processes from a difficulty mixture) as a samples table."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--output", "-o", required=True, help="the table to write (.jsonl or .parquet)"
    )
    parser.add_argument(
        "--dataset", metavar="PATH", help="also write the questions and gold answers (JSONL)"
    )
    parser.add_argument(
        "--queries", type=int, default=500, metavar="N", help="questions (default 500)"
    )
    parser.add_argument(
        "--samples", type=int, default=16, metavar="M", help="samples per question (default 16)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace outputs that exist")
    parser.set_defaults(run=run)
    from ttcdsl.cli.usage import remember_parser

    remember_parser(parser)


# The whole table is drawn in memory, then written: 10^6 samples take some 15 s, 0.35 GB of memory
# and 0.3 GB of JSONL, so 10^8 would take half an hour, 35 GB and 30 GB, past any stand-in pool.
# --samples 10^11 was taken and ran on without end.
MAX_SAMPLES = 100_000_000


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttcdsl.errors import UserError
    from ttcdsl.samples import content_hash
    from ttcdsl.samples.io import table_format

    output = Path(args.output)
    dataset_path = Path(args.dataset) if args.dataset else None
    table_format(output)  # an unknown extension fails before any work
    from ttcdsl.cli.usage import usage_error

    for flag, value in (("--queries", args.queries), ("--samples", args.samples)):
        if value < 1:  # a bad command line: exit 2, as argparse does
            usage_error(args, f"{flag} must be at least 1, got {value}")
    if args.queries * args.samples > MAX_SAMPLES:
        usage_error(args, f"--queries {args.queries} x --samples {args.samples} is "
                    f"{args.queries * args.samples:,} samples; a workload holds at most {MAX_SAMPLES:,}",
                    hint="ask for fewer --queries or --samples")
    if args.seed < 0:
        usage_error(args, f"--seed must be >= 0, got {args.seed}")
    if dataset_path is not None and dataset_path.suffix.lower() != ".jsonl":
        raise UserError(
            f"{dataset_path}: a dataset is written as JSONL", hint="name it with .jsonl"
        )
    from ttcdsl.output_dir import refuse_file_above

    for path in (output, dataset_path):
        if path is not None and path.exists() and not args.force:
            raise UserError(f"{path}: already exists", hint="pass --force to replace it")
        if path is not None:  # its missing directories are made, but not under a file
            refuse_file_above(path, path.name, hint="choose another output path")

    from ttcdsl.workloads import builtin_workload, write_workload

    table, dataset = builtin_workload(args.queries, args.samples, seed=args.seed)
    try:
        # Like any output command: missing parent directories are created (not the files).
        for path in (output, dataset_path):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        write_workload(table, dataset, output, dataset_path)
    except OSError as error:
        raise UserError(
            f"{error.filename or output}: cannot write ({error.strerror or error})",
            hint="nothing was written; check the directory's space and permissions",
        ) from None
    _summary(table, output, dataset_path, content_hash(table))
    return 0


def _summary(table, output, dataset_path, digest: str) -> None:
    queries = len(table.query_ids())
    each = len(table) // max(queries, 1)
    lines = [
        f"wrote {len(table)} synthetic samples ({queries} queries, {each} samples each) to {output}",
        f"  correct: {int(table.correct.sum())}/{len(table)}",
        f"  cut at the token cap: {int((table.finish_reason == 'length').sum())}",
        "  scores: prm; confidence: mean_logprob",
    ]
    if dataset_path is not None:
        lines.append(f"  questions and gold answers: {dataset_path}")
    lines.append(f"  content hash: {digest}")
    print("\n".join(lines))
