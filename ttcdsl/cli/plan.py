"""`ttc plan`: compile a policy and a calibration samples table into an optimal, budget-safe plan.

    ttc plan policies/adaptive_vote.ttc --calibration calib.jsonl -o adaptive_vote.plan.yaml
    ttc plan policies/adaptive_vote.ttc --calibration calib.jsonl --explain
    ttc plan policies/adaptive_vote.ttc --calibration calib.jsonl --sweep 1..32 --sweep-out f.json
    ttc plan policies/adaptive_vote.ttc --calibration calib.jsonl --sweep 1..32 --sweep-plot f.png
    ttc plan policies/*.ttc --calibration calib.jsonl -o plans/      # one plan per policy

Without -o the plan's YAML goes to standard output (unless --explain or --sweep print tables).
A bandit's plan predicts its run by simulating it on the calibration table (the JAX simulator's
empirical mode; ``--no-simulate`` skips it).
``--sweep-plot`` draws the frontier (predicted objective vs mean samples per query, the policy
and uniform allocation at equal spend) as a PNG with matplotlib.
Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="compile a policy and calibration samples into a plan",
        description="Estimate each bin's response curves from a calibration samples table and "
        "choose samples per bin to maximize the policy's objective under its budget.",
    )
    parser.add_argument("policies", nargs="+", metavar="POLICY", help="policy files (.ttc)")
    parser.add_argument(
        "--calibration", "-c", required=True, metavar="SAMPLES",
        help="samples table (.jsonl or .parquet) with several samples per query and their "
        "correctness (ttc import, ttc workload, or a previous run)",
    )
    parser.add_argument(
        "-o", "--output", metavar="PATH",
        help="write the plan here (a directory when several policies are given)",
    )
    parser.add_argument("--force", action="store_true",
                        help="replace existing output files (the plan, --sweep-out, --sweep-plot)")
    parser.add_argument(
        "--solver", default="auto", choices=("auto", "frontier", "lagrangian", "lp", "dp"),
        help="auto: for one budget the exact frontier (bins) or the JAX Lagrangian (many "
        "groups); the LP (cvxpy) for several limits",
    )
    parser.add_argument(
        "--queries", type=int, metavar="N",
        help="batch size the plan is for (total budgets are divided by it; default: the "
        "number of calibration queries)",
    )
    parser.add_argument(
        "--score", action="append", default=[], metavar="SCORER=COLUMN",
        help="read the policy's reward-model scorer from this score column of the table",
    )
    parser.add_argument("--explain", action="store_true", help="print a table per bin")
    parser.add_argument(
        "--sweep", metavar="LO..HI[:STEP]",
        help="also solve for every budget in this range (the policy's first batch limit) and "
        "print the accuracy-vs-budget frontier",
    )
    parser.add_argument("--sweep-out", metavar="FILE.json", help="write the frontier as JSON")
    parser.add_argument(
        "--sweep-plot", metavar="FILE.png",
        help="draw the frontier and uniform allocation (objective vs mean samples per query) "
        "as a PNG (needs --sweep and matplotlib)",
    )
    parser.add_argument(
        "--reps", type=int, default=256, metavar="N",
        help="Monte Carlo replications where curves are simulated (default 256)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulations (default 0)")
    parser.add_argument(
        "--extrapolate", action="store_true",
        help="consider sample counts past what the calibration table holds per query, modelled "
        "by the Dirichlet model (the plan records extrapolated_beyond; a replay of the table "
        "cannot serve them); by default counts stop at the table's depth",
    )
    parser.add_argument(
        "--no-cross-check", action="store_true",
        help="skip re-solving with the other solvers (they are cheap for bins)",
    )
    parser.add_argument(
        "--no-simulate", action="store_true",
        help="a bandit policy's plan: skip predicting the run by simulating the bandit on the "
        "calibration table (the JAX simulator: tens of seconds); its plan then predicts nothing",
    )
    parser.set_defaults(run=run, exit_at_once=True)  # CTRL-C: ttcdsl.cli.interrupt
    from ttcdsl.cli.usage import remember_parser

    remember_parser(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttcdsl.errors import UserError

    from ttcdsl.cli.outputs import check_outputs
    from ttcdsl.cli.usage import usage_error

    # Command-line value errors exit 2 (a bad command line), before anything is read.
    if args.queries is not None and args.queries < 1:
        usage_error(args, f"--queries must be at least 1, not {args.queries}")
    check_reps(args)
    if not 0 <= args.seed < 2**32:  # numpy's generators take seeds from 0 to 2^32 - 1 here
        usage_error(args, f"--seed must be from 0 to {2**32 - 1}, not {args.seed}")
    try:
        scores = _score_map(args.score)
        sweep = _parse_sweep(args.sweep) if args.sweep else None
    except UserError as error:
        usage_error(args, error.message, hint=error.hint)
    if args.sweep_out and sweep is None:
        usage_error(args, "--sweep-out needs --sweep")
    if len(args.policies) > 1 and sweep is not None:
        usage_error(args, "--sweep takes one policy")
    if args.sweep_plot:
        _check_sweep_plot(args.sweep_plot, sweep)
    outputs = _outputs(args.policies, args.output)
    check_outputs(
        [("-o", path) for path in outputs if path is not None]
        + [(flag, path) for flag, path in (("--sweep-out", args.sweep_out),
                                            ("--sweep-plot", args.sweep_plot)) if path],
        [*args.policies, args.calibration], force=args.force,
    )
    calibration_path = Path(args.calibration)
    from ttcdsl.file_kinds import require_file

    require_file(calibration_path, "calibration table")  # a directory was "the extension '(none)'"

    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.build import allocation_mode, make_plan
    from ttcdsl.planner.explain import explain, render_sweep
    from ttcdsl.planner.plan import dump_plan, save_plan
    from ttcdsl.samples import content_hash, load

    policies = [(path, load_policy(path)) for path in args.policies]  # all checked first
    if sweep is not None and allocation_mode(policies[0][1]) == "bandit":  # before it is planned
        raise UserError(
            f"{policies[0][0]}: --sweep draws the planned frontier, but a bandit allocates online "
            "and has none",
            hint="ttc simulate POLICY --sweep LO..HI simulates the bandit at each budget",
        )
    from ttcdsl.observables import score_maps

    # One --score mapping serves a batch of policies: each takes the scorers it declares.
    mappings = score_maps([policy for _, policy in policies], scores)
    progress = _progress()
    progress(f"loading {calibration_path}")
    table = load(calibration_path)
    table_hash = content_hash(table)
    for (path, policy), output, mapping in zip(policies, outputs, mappings, strict=True):
        result = make_plan(
            policy,
            table,
            policy_file=str(path),
            table_file=str(calibration_path),
            table_hash=table_hash,
            solver=args.solver,
            batch_size=args.queries,
            score_columns=mapping,
            reps=args.reps,
            seed=args.seed,
            cross_check=not args.no_cross_check,
            extrapolate=args.extrapolate,
            progress=lambda message, name=policy.name: progress(f"{name}: {message}"),
            predict_bandit=not args.no_simulate,
        )
        for warning in result.plan.get("warnings", []):
            progress(f"{policy.name}: warning: {warning}")
        if sweep is not None:
            from ttcdsl.planner.sweep import sweep_budget

            result.plan["sweep"] = sweep_budget(result, sweep)
        if output is not None:
            try:
                save_plan(result.plan, output)
            except OSError as error:  # a full disk, a directory made read-only meanwhile
                raise UserError(f"{output}: cannot write the plan: {error.strerror or error}") from None
            progress(f"{policy.name}: plan written to {output}")
        if args.explain:
            explain(result.plan)
        if sweep is not None:
            render_sweep(result.plan["sweep"])
            if args.sweep_out:
                _write_json(result.plan["sweep"], args.sweep_out)
            if args.sweep_plot:
                from ttcdsl.planner.sweep import write_sweep_plot

                written = write_sweep_plot(
                    result.plan["sweep"], args.sweep_plot, policy=policy.name
                )
                progress(f"{policy.name}: sweep plot written to {written}")
        if output is None and not args.explain and sweep is None:
            sys.stdout.write(dump_plan(result.plan))
    return 0


MAX_REPS = 1_000_000


def check_reps(args: argparse.Namespace) -> None:
    """--reps (the planner's Monte Carlo repetitions; ttc plan, ttc compare): from 2 to
    MAX_REPS, a command-line error otherwise (ttc compare --reps 10^11 ran out of memory in each
    row, reported as a bug)."""
    from ttcdsl.cli.usage import usage_error

    if args.reps < 2:
        usage_error(args, f"--reps must be at least 2, not {args.reps}")
    if args.reps > MAX_REPS:
        usage_error(args, f"--reps must be at most {MAX_REPS}, not {args.reps}")


def _score_map(items: list[str]) -> dict[str, str]:
    from ttcdsl.errors import UserError

    out = {}
    for item in items:
        scorer, sep, column = item.partition("=")
        if not sep or not scorer or not column:
            raise UserError(f"--score {item!r}: expected SCORER=COLUMN, e.g. --score prm=rm")
        out[scorer] = column
    return out


def parse_budget_number(text: str) -> float | None:
    """A positive finite budget written as a number or as a policy writes one (``2M``, ``1.5k``,
    ``64_000``); None otherwise."""
    import math

    from ttcdsl.lang.numbers import NumberError, parse_number

    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            value = float(parse_number(text)) if text else math.nan
        except (NumberError, ValueError):
            value = math.nan
    return value if math.isfinite(value) and value > 0 else None


def _parse_sweep(text: str) -> list[float]:
    from ttcdsl.errors import UserError

    import math

    body, colon, step_text = text.partition(":")
    lo_text, sep, hi_text = body.partition("..")
    lo, hi = parse_budget_number(lo_text), parse_budget_number(hi_text)
    step = parse_budget_number(step_text) if colon else 1.0
    if not sep or lo is None or hi is None or step is None or not lo <= hi:
        raise UserError(
            f"--sweep {text!r}: expected LO..HI or LO..HI:STEP with 0 < LO <= HI, e.g. 1..32"
        )
    # LO, LO + STEP, ... up to HI, never past it (a step that does not divide HI - LO stops
    # short of HI); the tolerance keeps an HI reached by float steps
    span = (hi - lo) / step
    if not math.isfinite(span) or span >= 10_000:
        raise UserError(f"--sweep {text!r} asks for more than 10000 budgets; use a larger step")
    count = math.floor(span + 1e-9) + 1
    return [lo + i * step for i in range(count)]


def _check_sweep_plot(text: str, sweep) -> None:
    """Refuse a --sweep-plot that is not a PNG's name, or that needs a missing matplotlib, before
    the (slow) planning starts; where it may be written is :func:`check_outputs`' rule."""
    from pathlib import Path

    from ttcdsl.errors import UserError
    from ttcdsl.plotting import require_matplotlib

    if sweep is None:
        raise UserError("--sweep-plot needs --sweep", hint="e.g. --sweep 1..32 --sweep-plot f.png")
    path = Path(text)
    if path.is_dir():
        raise UserError(f"--sweep-plot {text!r}: is a directory; give a file name ending .png")
    if path.suffix.lower() != ".png":
        raise UserError(f"--sweep-plot {text!r}: the plot is a PNG; name the file *.png")
    require_matplotlib()


def _outputs(policies: list[str], output: str | None) -> list:
    """The plan file of each policy (None: printed), its directory created where -o names one."""
    from pathlib import Path

    from ttcdsl.errors import UserError

    if output is None:
        if len(policies) > 1:
            raise UserError("several policies need -o DIRECTORY (one plan file per policy)")
        return [None]
    if not output.strip():
        raise UserError("-o '': not a path", hint="name the plan file, or a directory ending in /")
    target = Path(output)
    # `-o plans/` names a directory even before it exists (it was written as a FILE `plans`)
    as_directory = len(policies) > 1 or target.is_dir() or output.endswith(("/", os.sep))
    if as_directory:
        from ttcdsl.output_dir import output_directory

        output_directory(target, "one plan per policy", option="-o")
        paths = [target / f"{Path(p).stem}.plan.yaml" for p in policies]
    else:
        paths = [target]
    from ttcdsl.output_dir import refuse_file_above

    for path in paths:
        if not path.parent.is_dir():
            refuse_file_above(path, path.name, hint="choose another -o")
            raise UserError(
                f"{path}: the directory {path.parent} does not exist",
                hint="create it first, or end -o with / to have ttc create a plan directory",
            )
    return paths


def _progress():
    def say(message: str) -> None:
        print(f"ttc plan: {message}", file=sys.stderr, flush=True)

    return say


def _write_json(data, path: str) -> None:
    import json

    from ttcdsl.planner.plan import _plain
    from ttcdsl.samples.atomic import atomic_writer

    with atomic_writer(path) as handle:
        json.dump(_plain(data), handle, indent=1)
        handle.write("\n")
