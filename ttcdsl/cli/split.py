"""`ttc split`: split a samples table by query into a calibration part and an evaluation part,
so that `ttc plan` and `ttc run` never see the same queries.

    ttc split pool.jsonl --fraction 0.5 --seed 0 -o calib.jsonl eval.jsonl \\
        --queries q.jsonl --queries-out q_calib.jsonl q_eval.jsonl

A query goes to calibration when a hash of (seed, query id) falls below the fraction: the split is
deterministic, every query lands in exactly one part with all its samples, and a query keeps its
side when queries are added to the table. The queries file, if given, is split the same way. Each
part's metadata notes record the split.
"""

from __future__ import annotations

import argparse
import sys

from ttcdsl.cli.usage import remember_parser, usage_error


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split",
        help="split a samples table (and its queries) by query into calibration and evaluation",
        description="Split a samples table by query into calibration and evaluation parts.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("table", help="the samples table (.jsonl or .parquet)")
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        help="the share of queries for calibration, strictly between 0 and 1 (default 0.5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (default 0)")
    parser.add_argument(
        "--output",
        "-o",
        nargs=2,
        required=True,
        metavar=("CALIB", "EVAL"),
        help="the two tables to write (.jsonl or .parquet)",
    )
    parser.add_argument("--queries", metavar="Q.jsonl", help="the table's queries file")
    parser.add_argument(
        "--queries-out",
        nargs=2,
        metavar=("Q_CALIB", "Q_EVAL"),
        help="where the two parts of --queries go",
    )
    parser.add_argument("--force", action="store_true", help="replace outputs that exist")
    parser.set_defaults(run=run)
    remember_parser(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from ttcdsl.datasets import read_queries, write_queries
    from ttcdsl.datasets.split import split_ids
    from ttcdsl.errors import UserError, shown
    from ttcdsl.samples import content_hash, load, save
    from ttcdsl.samples.io import table_format

    if not 0.0 < args.fraction < 1.0:
        usage_error(args, f"--fraction must be strictly between 0 and 1, got {args.fraction}")
    if bool(args.queries) != bool(args.queries_out):
        usage_error(args, "--queries and --queries-out go together")
    source = Path(args.table)
    outputs = [Path(p) for p in args.output]
    query_outputs = [Path(p) for p in args.queries_out or ()]
    for path in outputs:
        try:
            table_format(path)
        except UserError as error:
            if path.is_dir():  # what is on disk, not the command line: exit 1
                raise
            usage_error(args, error.message, hint=error.hint)
    inputs = [source] + ([Path(args.queries)] if args.queries else [])
    # checked before anything is written, writability included: a split half-written (the
    # calibration part replaced, the evaluation part refused) left two parts that overlap
    from ttcdsl.cli.outputs import check_outputs

    check_outputs([*(("-o", p) for p in outputs), *(("--queries-out", p) for p in query_outputs)],
                  inputs, force=args.force)

    table = load(source)
    dataset = read_queries(args.queries) if args.queries else None
    ids = table.query_ids()
    parts = split_ids(ids, fraction=args.fraction, seed=args.seed)
    names = ("calibration", "evaluation")
    for name, part in zip(names, parts, strict=True):
        if not part:
            raise UserError(
                f"the {name} part would be empty ({len(ids)} queries in {source})",
                hint="split a table with more queries, or change --fraction or --seed",
            )
    if dataset is not None and not len(dataset):
        raise UserError(f"{args.queries}: the file has no queries",
                        hint="pass the queries file the table was made from")
    if dataset is not None:
        # a queries file of another table would split into parts that match nothing: refused
        # before anything is written; a partial match is said
        shared = set(ids) & set(dataset.ids())
        if not shared:
            raise UserError(
                f"{args.queries}: none of its {len(dataset)} queries is in {source} (e.g. "
                f"{shown(dataset.ids()[0])} is not; the table has {shown(ids[0])}): it is another table's queries file",
                hint="pass the queries file the table was made from",
            )
        if len(shared) < len(ids):
            print(f"ttc split: warning: {len(ids) - len(shared)} of the table's {len(ids)} queries are "
                  f"not in {args.queries} (e.g. {shown(next(q for q in ids if q not in shared))})",
                  file=sys.stderr)
    origin = content_hash(table)
    print(f"split {source} ({len(ids)} queries) with fraction {args.fraction}, seed {args.seed}:")
    for name, part, path in zip(names, parts, outputs, strict=True):
        notes = dict(table.meta.notes)
        notes["split"] = {
            "part": name, "fraction": args.fraction, "seed": args.seed, "of": origin,
            "queries": len(part), "rule": "ttcdsl.datasets.split: sha256(seed, query id) < fraction",
        }  # fmt: skip
        part_table = table.where(query_ids=part).with_meta(replace(table.meta, notes=notes))
        save(part_table, path)
        print(f"  {name}: {len(part)} queries, {len(part_table)} samples -> {path}")
    if dataset is not None:
        in_table = set(ids)
        chosen = split_ids(dataset.ids(), fraction=args.fraction, seed=args.seed)
        for name, part, path in zip(names, chosen, query_outputs, strict=True):
            subset = dataset.subset(part)
            write_queries(subset, path)
            missing = sum(q not in in_table for q in subset.ids())
            extra = f" ({missing} without samples in {source})" if missing else ""
            print(f"  {name} queries: {len(subset)}{extra} -> {path}")
    return 0
