"""`ttc compare`: several policies side by side against uniform and the oracles, on logged samples.

    ttc compare POLICY... --samples TABLE [--calibration TABLE | --split 0.5] [--budgets 1,2,4,8]
                [--repeats R] [--out DIR] [--format table|md|json] [--score SCORER=COLUMN]

Each policy is planned on the calibration queries and replayed on the evaluation queries, never
the same ones: with --calibration the two tables must share no query; otherwise TABLE is split by
query (``ttc split``'s rule, --split FRACTION for calibration, --split-seed). A policy with a
``mean samples per query`` budget runs at each of --budgets; others run once at their own budget.
Each run is repeated over R sample orders (replay seeds 0..R-1). Uniform allocation and the
static oracle come from the exact curves of the evaluation queries; see ttcdsl.compare.

--out DIR writes compare.json, compare.md and compare.png there. Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import sys

from ttcdsl.cli.usage import remember_parser, usage_error

FORMATS = ("table", "md", "json")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare policies against uniform allocation and the oracles on logged samples",
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("policies", nargs="+", metavar="POLICY", help="policy files (.ttc)")
    parser.add_argument("--samples", required=True, metavar="TABLE",
                        help="the logged samples table the policies are replayed on")
    parser.add_argument("--calibration", metavar="TABLE",
                        help="plan on this table (its queries must not be in --samples)")
    parser.add_argument("--split", type=float, default=None, metavar="FRACTION",
                        help="plan on this share of TABLE's queries, evaluate on the rest "
                        "(default 0.5 without --calibration)")
    parser.add_argument("--split-seed", type=int, default=0, help="the split's seed (default 0)")
    parser.add_argument("--budgets", default="1,2,4,8", metavar="B,B,...",
                        help="mean samples per query to compare at (default 1,2,4,8)")
    parser.add_argument("--repeats", type=int, default=3, metavar="R",
                        help="sample orders each run is repeated over (default 3)")
    parser.add_argument("--score", action="append", default=[], metavar="SCORER=COLUMN",
                        help="read a reward-model scorer from this score column of the tables")
    parser.add_argument("--reps", type=int, default=64,
                        help="Monte Carlo repetitions of the planner's curves (default 64)")
    parser.add_argument("--no-simulate", action="store_true",
                        help="do not simulate bandit policies to predict their runs (as ttc plan "
                        "--no-simulate; their rows then carry no planned figure)")
    parser.add_argument("--out", metavar="DIR", help="write compare.json, .md and .png here")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="standard output: a rich table, markdown or JSON (default table)")
    parser.set_defaults(run=run, exit_at_once=True)  # CTRL-C: ttcdsl.cli.interrupt
    remember_parser(parser)


def parse_budgets(args: argparse.Namespace) -> tuple[float, ...]:
    import math

    values = []
    for part in args.budgets.split(","):
        try:
            value = float(part)
        except ValueError:
            usage_error(args, f"--budgets {args.budgets!r}: {part.strip()!r} is not a number",
                        hint="e.g. --budgets 1,2,4,8")
        if not math.isfinite(value) or value <= 0:
            usage_error(args, f"--budgets {args.budgets!r}: {part.strip()} is not a positive "
                        "number of samples per query")
        values.append(value)
    if len(set(values)) != len(values):
        usage_error(args, f"--budgets {args.budgets!r}: a budget is repeated")
    return tuple(sorted(values))


# Each repeat replays every policy at every budget once more, and the rows are means over the
# sample orders, whose spread shrinks as 1/sqrt(R): a few dozen orders settle them, and a thousand
# is far past any use. --repeats 10^8 was taken and ran on without end.
MAX_REPEATS = 1000


def check_repeats(args: argparse.Namespace) -> None:
    """--repeats: from 1 to MAX_REPEATS, a command-line error otherwise (as --reps,
    :func:`ttcdsl.cli.plan.check_reps`)."""
    if args.repeats < 1:
        usage_error(args, f"--repeats must be at least 1, not {args.repeats}")
    if args.repeats > MAX_REPEATS:
        usage_error(args, f"--repeats must be at most {MAX_REPEATS}, not {args.repeats}")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ttcdsl.errors import UserError

    budgets = parse_budgets(args)
    check_repeats(args)
    from ttcdsl.cli.plan import check_reps

    check_reps(args)
    if args.calibration and args.split is not None:
        usage_error(args, "--calibration and --split exclude each other",
                    hint="plan on another table (--calibration) or on a share of --samples (--split)")
    fraction = 0.5 if args.split is None else args.split
    if not args.calibration and not 0.0 < fraction < 1.0:
        usage_error(args, f"--split must be strictly between 0 and 1, got {fraction}")
    from ttcdsl.cli.plan import _score_map

    scores = _score_map(args.score)
    from ttcdsl.file_kinds import require_file

    for path in args.policies:
        require_file(path, "policy file")
    seen: set[Path] = set()
    unique, repeated = [], []
    for path in args.policies:  # the same file twice: one set of rows, said so
        key = Path(path).resolve()
        (repeated if key in seen else unique).append(path)
        seen.add(key)
    if repeated:
        print(f"ttc compare: {', '.join(repeated)}: given more than once; compared once",
              file=sys.stderr)
        args.policies = unique
    if args.out:  # made before the comparison, which can take an hour, not after it
        from ttcdsl.output_dir import output_directory

        output_directory(args.out, "the comparison", option="--out")
    say = _progress()
    setup = _setup(args, budgets, fraction, scores, say)
    from ttcdsl.compare.comparison import run_comparison

    doc = run_comparison(args.policies, setup, say)
    doc["samples"] = str(args.samples)
    from ttcdsl.compare.render import render_markdown, render_rich, write_plot

    if args.out:
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
            (out / "compare.md").write_text(render_markdown(doc))
            write_plot(doc, out / "compare.png", title=f"ttc compare on {Path(args.samples).name}")
        except OSError as error:
            raise UserError(f"{out}: cannot write the comparison: {error.strerror}") from None
        say(f"wrote {out / 'compare.json'}, compare.md and compare.png")
    if args.format == "json":
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.format == "md":
        sys.stdout.write(render_markdown(doc))
    else:
        render_rich(doc)
    invalid = [row for row in doc["rows"] if row.get("diagnostics")]
    for row in invalid:  # each with its file and line, as ttc check shows them
        print(row["diagnostics"], file=sys.stderr)
    broken = [row for row in doc["rows"] if row.get("internal")]
    if broken:
        # the other rows stand; the exit code still says that ttcdsl has a bug to fix
        print(f"ttc compare: {len(broken)} row(s) hit an internal error (a bug in ttc, not in "
              "your input); rerun with TTC_DEBUG=1 for the traceback", file=sys.stderr)
        from ttcdsl.cli import EXIT_INTERNAL

        return EXIT_INTERNAL
    if invalid:
        # the other rows stand; a file that is not a valid policy is the command line's mistake
        print(f"ttc compare: {len(invalid)} file(s) are not valid policies (ttc check says why)",
              file=sys.stderr)
        from ttcdsl.cli import EXIT_USER_ERROR

        return EXIT_USER_ERROR
    if doc["rows"] and all(row.get("error") for row in doc["rows"]):
        # every row says "cannot run": a comparison of nothing is not a success
        print("ttc compare: no policy could run on this table (each row says why)", file=sys.stderr)
        from ttcdsl.cli import EXIT_USER_ERROR

        return EXIT_USER_ERROR
    return 0


def _warn_label_conflicts(table, path) -> None:  # noqa: ANN001
    from ttcdsl.samples.labels import label_conflict_warning

    # the curves and a replay score an answer labelled both ways by different rules: said
    conflict = label_conflict_warning(table, str(path))
    if conflict:
        print(f"ttc compare: warning: {conflict}", file=sys.stderr)


def _setup(args, budgets, fraction, scores, say):
    from pathlib import Path

    from ttcdsl.compare.comparison import Setup
    from ttcdsl.errors import UserError
    from ttcdsl.samples import load

    from ttcdsl.file_kinds import require_file

    for path in filter(None, (args.samples, args.calibration)):
        require_file(path, "samples table")
    say(f"loading {args.samples}")
    table = load(args.samples)
    if not len(table):
        raise UserError(f"{args.samples}: the samples table has no samples")
    import numpy as np

    if np.ma.getmaskarray(table.correct).all():
        # accuracy and coverage need gold labels; without them every number would read 0
        raise UserError(
            f"{args.samples}: no sample is labelled correct or wrong: a comparison needs gold "
            "labels",
            hint="import the log with its gold answers (ttc import --gold-field ...)",
        )
    table, left_out = _labelled_only(table, args.samples, say)
    _warn_label_conflicts(table, args.samples)
    if args.calibration:
        calibration, left = _labelled_only(load(args.calibration), args.calibration, say)
        _warn_label_conflicts(calibration, args.calibration)
        left_out += left
        shared = set(calibration.query_ids()) & set(table.query_ids())
        if shared:
            example = sorted(shared)[0]
            raise UserError(
                f"{len(shared)} queries are in both {args.calibration} and {args.samples} "
                f"(e.g. {example!r}): a policy is never planned and evaluated on the same queries",
                hint="split one table with --split FRACTION, or pass disjoint tables (ttc split)",
            )
        return Setup(calibration=calibration, evaluation=table,
                     split=f"calibration table {Path(args.calibration).name}",
                     budgets=budgets, repeats=args.repeats, score_columns=scores, reps=args.reps,
                     unlabelled=left_out, predict_bandits=not args.no_simulate)
    from ttcdsl.datasets.split import split_ids

    ids = table.query_ids()
    cal, ev = split_ids(ids, fraction=fraction, seed=args.split_seed)
    if not cal or not ev:
        raise UserError(
            f"splitting {len(ids)} queries with --split {fraction} leaves one side empty",
            hint="compare on a table with more queries, or change --split or --split-seed",
        )
    return Setup(
        calibration=table.where(query_ids=cal), evaluation=table.where(query_ids=ev),
        split=f"split by query, fraction {fraction:g}, seed {args.split_seed}",
        budgets=budgets, repeats=args.repeats, score_columns=scores, reps=args.reps,
        unlabelled=left_out, predict_bandits=not args.no_simulate,
    )


def _labelled_only(table, path, say):
    """The table without its queries that have a sample of unknown correctness, and how many
    were left out: counted wrong they would pull every rate down (accuracy, coverage, both
    baselines and both oracles), and with a sample unknown neither rate can be measured."""
    from ttcdsl.errors import UserError

    unknown = set(table.unlabelled_query_ids())
    if not unknown:
        return table, 0
    keep = [q for q in table.query_ids() if q not in unknown]
    example = next(q for q in table.query_ids() if q in unknown)
    if not keep:
        raise UserError(
            f"{path}: every query has a sample without a correctness label: a comparison needs "
            "gold labels",
            hint="import the log with its gold answers (ttc import --gold-field ...)",
        )
    say(f"{path}: {len(unknown)} of {len(table.query_ids())} queries have samples without a "
        f"correctness label (e.g. {example!r}): left out, every rate is over the labelled queries")
    return table.where(query_ids=keep), len(unknown)


def _progress():
    """Progress lines on standard error: which policy of how many, what it does, time so far."""
    import time

    start = time.monotonic()

    def say(message: str) -> None:
        elapsed = time.monotonic() - start
        print(f"ttc compare [{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    return say
