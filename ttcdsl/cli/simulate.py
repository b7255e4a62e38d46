"""`ttc simulate`: dry-run a policy or a plan on a simulated workload.

    ttc simulate policies/adaptive_consistency.ttc                 # built-in workload, 8 seeds
    ttc simulate plan.yaml --fit calib.jsonl --queries 300 --seeds 16 --json
    ttc simulate policies/oracle_coverage.ttc --workload hard --budget 4
    ttc simulate policies/oracle_coverage.ttc --sweep 2..16:2 --sweep-plot sweep.png
    ttc simulate --check plan.yaml --fit calib.jsonl               # exit 1 if they disagree
    ttc simulate plan.yaml --fit calib.jsonl --empirical           # the table's own samples

Prints accuracy, coverage, mean and max samples per query and rounds, each as a mean over seeds
with a 95% interval, next to uniform allocation at the same mean spend (in tokens when the
policy's batch budget is in tokens) and the static oracle
(which knows each question's response process), and the verdict against uniform. A policy is
first planned on a table drawn from the workload (or on the --fit table itself). What the
simulator cannot model (a feature it does not compute from a probe, two reward models) is
refused with the reason (exit 1).

--budget B plans the policy (a plan's policy, on the --fit table or one drawn from the workload)
again with its `mean samples per query <= B`, as `ttc compare` does (a policy without one: its
first batch limit, in its own units, e.g. `total tokens <= B`; B may be written as in a policy,
2M); --sweep LO..HI[:STEP] does so at every budget of the range (`ttc plan --sweep`'s syntax)
and prints the policy, uniform and
the oracle per budget (--sweep-out FILE.json, --sweep-plot FILE.png). --check PLAN simulates the
plan and compares its recorded predictions (accuracy, samples and tokens per query) with the
simulation: exit 1 naming each figure that differs beyond the combined 95% interval.

Workloads (--workload NAME):
{workloads}

With several devices (GPUs, or XLA_FLAGS=--xla_force_host_platform_device_count=N on a CPU) the
questions are sharded across them; the figures do not change. Progress goes to standard error.
"""

from __future__ import annotations

import argparse

from ttcdsl.lang.numbers import format_number


def _workloads_help() -> str:
    from simulator.workloads import WORKLOADS

    return "\n".join(f"  {name:9}{text}" for name, (text, _) in WORKLOADS.items())


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="dry-run a policy or plan on a simulated workload",
        description="Simulate a policy or plan against uniform allocation and the static oracle.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1].replace("{workloads}", _workloads_help()),
    )
    parser.add_argument("target", nargs="?", metavar="POLICY|PLAN",
                        help="a policy (.ttc) or a plan (.yaml); with --check, the plan may be left out")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--workload", default="builtin", metavar="NAME",
                        help="a named parametric workload (listed below; default builtin)")
    source.add_argument("--fit", metavar="SAMPLES", help="fit the workload to a samples table")
    parser.add_argument("--empirical", action="store_true",
                        help="with --fit: replay the table's own logged samples per question in random "
                        "orders, the fitted model only past the logged depth (its share is reported)")
    parser.add_argument("--score", action="append", default=[], metavar="SCORER=COLUMN",
                        help="with --fit: read the policy's reward-model scorer from this score "
                        "column of the table (as ttc plan --score; a plan's own mapping is the default)")
    parser.add_argument("--queries", type=int, default=None, metavar="N",
                        help="questions per draw (default 500; with --check the plan's batch size)")
    parser.add_argument("--seeds", type=int, default=8, metavar="S", help="independent draws (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--budget", metavar="B",
                        help="simulate the policy planned at mean samples per query <= B (without one: "
                        "its first batch limit set to B, e.g. total tokens <= 2M)")
    parser.add_argument("--sweep", metavar="LO..HI[:STEP]",
                        help="simulate at every budget of the range (the limit --budget sets)")
    parser.add_argument("--sweep-out", metavar="FILE.json", help="write the sweep as JSON")
    parser.add_argument("--sweep-plot", metavar="FILE.png",
                        help="draw the sweep (policy, uniform, oracle vs samples per query) as a PNG")
    parser.add_argument("--force", action="store_true",
                        help="replace existing output files (--sweep-out, --sweep-plot)")
    parser.add_argument("--check", metavar="PLAN",
                        help="compare the plan's predictions with the simulation (exit 1 if they differ)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(run=run, exit_at_once=True)  # CTRL-C: ttcdsl.cli.interrupt
    from ttcdsl.cli.usage import remember_parser

    remember_parser(parser)


# Past these a simulation does not fit a machine's memory (10^7 questions of 64 samples hold
# 10^9 samples per draw), and a draw count past 10^6 overflows the simulator's 32-bit keys.
MAX_QUERIES = 10_000_000
MAX_SEEDS = 1_000_000


def run(args: argparse.Namespace) -> int:
    with _Progress() as say:
        return _run(args, say)


def _run(args: argparse.Namespace, say) -> int:
    import json
    import sys
    from pathlib import Path

    from ttcdsl.cli.usage import usage_error
    from ttcdsl.errors import UserError

    if args.queries is not None and args.queries < 2:
        usage_error(args, f"--queries must be at least 2, got {args.queries}")
    if args.queries is not None and args.queries > MAX_QUERIES:
        usage_error(args, f"--queries must be at most {MAX_QUERIES:,}, got {args.queries:,}")
    if args.seeds < 2:
        usage_error(args, f"--seeds must be at least 2 (an interval needs two draws), got {args.seeds}")
    if args.seeds > MAX_SEEDS:
        usage_error(args, f"--seeds must be at most {MAX_SEEDS:,}, got {args.seeds:,}")
    if not 0 <= args.seed < 2**32:  # a random key holds 32 bits: a larger seed would wrap
        usage_error(args, f"--seed must be from 0 to {2**32 - 1}, got {args.seed}")
    if args.empirical and not args.fit:
        usage_error(args, "--empirical resamples a table's logged samples: give the table with --fit SAMPLES")
    # the command line's own mistakes exit 2, as ttc plan's and ttc compare's do
    try:
        target = _target(args)
        budget = _parse_budget(args.budget) if args.budget is not None else None
        budgets = _parse_sweep(args.sweep) if args.sweep is not None else None
    except UserError as error:
        usage_error(args, error.message, hint=error.hint)
    _check_combinations(args, budget, budgets)
    from simulator.workloads import WORKLOADS

    if args.workload not in WORKLOADS:
        usage_error(args, f"--workload {args.workload!r}: no such workload; the workloads are "
                    f"{', '.join(WORKLOADS)}", hint="see ttc simulate --help for what each is")
    from ttcdsl.file_kinds import require_file

    require_file(target, "policy or plan file")

    from ttcdsl.lang.api import load_policy
    from ttcdsl.simulate import Workload, check_supported, fit_table, simulate_plan, unsharded_because

    from ttcdsl.cli.plan import _score_map

    try:
        columns = _score_map(args.score)
    except UserError as error:
        usage_error(args, error.message, hint=error.hint)
    if columns and not args.fit:
        usage_error(args, "--score maps a scorer to a column of the --fit table; give --fit SAMPLES")
    table = None
    if args.fit:
        from ttcdsl.samples import load

        fit_path = Path(args.fit)
        require_file(fit_path, "samples table")
        table = load(fit_path)
        _warn_degenerate(table, fit_path)

    def workload_for(policy):
        # a fitted workload's scores are the policy's reward scorer's column
        if table is None:
            from simulator.workloads import mixture

            return Workload(name=args.workload, mixture=mixture(args.workload))
        from ttcdsl.observables import require

        # what the policy reads must be in the table (tokens, scores, log-probabilities): a fit
        # would otherwise stand in numbers for observables that were never measured
        require(policy, table, score_columns=columns, table_name=f"--fit {args.fit}")
        counts = {"tokens_known": bool(table.completion_tokens.count()),
                  "tokens_counted": table.completion_tokens.count() / max(len(table), 1)}
        if args.empirical:
            fitted, logged = fit_table(table, policy, empirical=True, score_columns=columns)
            return Workload(name=f"empirical:{Path(args.fit).name}", fitted=fitted, logged=logged,
                            **counts)
        return Workload(name=f"fit:{Path(args.fit).name}",
                        fitted=fit_table(table, policy, score_columns=columns), **counts)

    if target.suffix == ".ttc":
        policy = load_policy(target)
        check_supported(policy, {"mode": "bandit"} if _is_bandit(policy) else {})
        workload = workload_for(policy)
        plan = None
    else:
        from ttcdsl.planner.plan import load_plan

        plan = load_plan(target)
        policy_file = plan["policy"].get("file")
        if not isinstance(policy_file, str) or not policy_file or not Path(policy_file).is_file():
            raise UserError(f"{target}: the plan's policy file {policy_file!r} is not there")
        policy = load_policy(policy_file)
        if policy.source_hash != plan["policy"]["source_sha256"]:
            raise UserError(f"{policy_file}: the plan was made from another version of the policy",
                            hint="re-plan with ttc plan")
        from ttcdsl.runtime.plancheck import check_plan_against_policy

        # what ttc run refuses in a hand-edited plan, the simulation refuses too (same check)
        check_plan_against_policy(plan, policy, target)
        check_supported(policy, plan)
        from ttcdsl.planner.plan import plan_score_columns

        columns = {**plan_score_columns(plan), **columns}  # the plan's mapping, unless given
        workload = workload_for(policy)
    if budget is not None or budgets is not None:
        _check_budget_unit(policy, args.budget if budget is not None else args.sweep)
        _at_budget(policy, budget if budget is not None else budgets[0])  # refused before any planning
    queries = args.queries or (int(plan["batch_size"]) if args.check and plan.get("batch_size") else 500)

    def planned(at_policy, step: str):
        """``at_policy`` planned on the --fit table or on a table drawn from the workload."""
        nonlocal table
        if table is None:
            from ttcdsl.simulate import draw_table

            rewards = [s for s in at_policy.scorers if s.kind == "reward_model"]
            table = draw_table(workload, min(queries, 400), _calibration_depth(at_policy),
                               seed=args.seed + 1, scorer=rewards[0] if rewards else None)
        from ttcdsl.planner.build import make_plan

        say(f"{step}planning {at_policy.name} on {len(table.query_ids())} questions")
        # A fitted workload draws every sample from its model, so the plan may ask for counts
        # past the table's depth (extrapolate): cut to the depth, a policy of 8 samples was
        # simulated at the 1 a thin table holds. The empirical mode replays the table's own
        # samples, so its plan stays within them, as ttc plan's does.
        made = make_plan(at_policy, table, policy_file=str(target), reps=32, seed=args.seed,
                         cross_check=False, batch_size=queries,
                         score_columns=columns if args.fit else None,
                         extrapolate=bool(args.fit) and not args.empirical).plan
        for warning in made.get("warnings", []):  # what ttc plan would say of this plan
            say(f"{step}warning: {warning}")
        return made

    def simulate_at(b: float | None, step: str = "") -> dict:
        if b is None:
            at_policy, at_plan = policy, plan if plan is not None else planned(policy, step)
        else:
            at_policy = _at_budget(policy, b)
            at_plan = planned(at_policy, step)
        say(f"{step}simulating {queries} questions x {args.seeds} draws"
            + ("" if b is None else f" at {_limit_name(policy)} <= {format_number(b)}")
            + _sharding_note(queries, unsharded_because(at_policy, at_plan, workload)))
        report = simulate_plan(at_policy, at_plan, workload, n_queries=queries, seeds=args.seeds,
                               seed=args.seed, progress=lambda line: say(f"{step}{line}"))
        if b is not None:
            report["budget"] = b
            report["budget_limit"] = _limit_name(policy)
        return report

    if budgets is not None:
        from ttcdsl.simulate_sweep import render, sweep, write_plot

        doc = sweep(budgets, lambda b: simulate_at(b, _step_prefix(budgets, b)), limit=_limit_name(policy))
        if args.sweep_out:
            from ttcdsl.cli.plan import _write_json

            _write_json(doc, args.sweep_out)
            say(f"sweep written to {args.sweep_out}")
        if args.sweep_plot:
            say(f"sweep plot written to {write_plot(doc, args.sweep_plot)}")
        if args.json:
            from ttcdsl.planner.plan import _plain

            # the document --sweep-out writes (ttc plan's rounding; NaN as null)
            json.dump(_plain(doc), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            render(doc)
        return 0

    report = simulate_at(budget)
    verdict = None
    if args.check:
        from ttcdsl.simulate_check import check

        verdict = check(plan, report)
        report["check"] = verdict
        _note_other_table(plan, table if args.fit else None, args, say)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(report)
    if verdict is not None:
        return _check_exit(verdict, as_json=args.json)
    return 0


def _target(args):
    """The file simulated: POLICY|PLAN, or the --check plan (the two, if both given, agree)."""
    from pathlib import Path

    from ttcdsl.errors import UserError

    if args.check and args.target and Path(args.target) != Path(args.check):
        raise UserError(f"--check {args.check!r} and {args.target!r}: --check simulates the plan it "
                        "checks; give it alone", hint=f"ttc simulate --check {args.check}")
    text = args.check or args.target
    if not text:
        raise UserError("ttc simulate needs a POLICY or PLAN file (or --check PLAN)",
                        hint="e.g. ttc simulate policies/self_consistency.ttc")
    if args.check and Path(text).suffix == ".ttc":
        raise UserError(f"--check {text!r}: a policy has no predictions to check; give its plan",
                        hint=f"ttc plan {text} -c SAMPLES -o PLAN.yaml, then ttc simulate --check PLAN.yaml")
    return Path(text)


def _parse_budget(text: str) -> float:
    from ttcdsl.cli.plan import parse_budget_number
    from ttcdsl.errors import UserError

    value = parse_budget_number(text)
    if value is None:
        raise UserError(f"--budget {text!r}: expected a positive number (samples per query, or the "
                        "policy's budget in its own units), e.g. 8 or 2M")
    return value


def _parse_sweep(text: str) -> list[float]:
    from ttcdsl.cli.plan import _parse_sweep as parse  # one syntax for both commands

    return parse(text)


def _check_combinations(args, budget, budgets) -> None:
    from ttcdsl.cli.usage import usage_error

    if budget is not None and budgets is not None:
        usage_error(args, "--budget and --sweep exclude each other",
                    hint="one budget (--budget B) or a range of them (--sweep LO..HI)")
    if args.check and (budget is not None or budgets is not None):
        usage_error(args, "--check compares the plan as it was made; it takes no --budget or --sweep")
    if args.sweep_out and budgets is None:
        usage_error(args, "--sweep-out needs --sweep", hint="e.g. --sweep 2..16:2 --sweep-out f.json")
    if args.sweep_plot:
        from ttcdsl.cli.plan import _check_sweep_plot

        _check_sweep_plot(args.sweep_plot, budgets)
    from ttcdsl.cli.outputs import check_outputs

    check_outputs([(flag, path) for flag, path in (("--sweep-out", args.sweep_out),
                                                   ("--sweep-plot", args.sweep_plot)) if path],
                  [path for path in (args.target, args.check, args.fit) if path], force=args.force)


def _check_budget_unit(policy, text: str) -> None:
    """A K/M/G suffix writes a token count: on a budget in samples per query `--budget 2M` was
    taken as two million samples per query (the policy then ran at its per-query cap)."""
    import re

    from ttcdsl.compare.runs import describe_limit, varied_limit
    from ttcdsl.errors import UserError

    limit = varied_limit(policy)
    if limit is not None and limit.unit == "samples" and re.search(r"[0-9.][kKmMgG]", text):
        raise UserError(f"{text!r}: a K/M/G suffix writes a token count, but the budget it sets is "
                        f"{describe_limit(limit)}, in samples",
                        hint="write the samples as a plain number, e.g. --budget 4")


def _at_budget(policy, budget: float):
    """The policy with the budget --budget sets (:func:`ttcdsl.compare.runs.varied_limit`) at
    ``budget``; a budget the language refuses (below the probe, say) is its diagnostic."""
    from ttcdsl.compare.runs import describe_limit, varied_limit, with_limit
    from ttcdsl.errors import UserError
    from ttcdsl.lang.diagnostics import DiagnosticError

    limit = varied_limit(policy)
    if limit is None:
        raise UserError(f"policy '{policy.name}' declares no batch budget (`mean samples per query`, "
                        "`total tokens`, ...), so there is no budget to set",
                        hint="simulate it at its own budget (without --budget or --sweep)")
    describe = describe_limit(limit)
    try:
        return with_limit(policy, limit, budget)
    except DiagnosticError as error:  # e.g. a per-query minimum the budget cannot meet
        reasons = "; ".join(d.message for d in error.diagnostics if d.is_error)
        raise UserError(f"budget {budget:g} for policy '{policy.name}' ({describe}): {reasons}") from None


def _limit_name(policy) -> str:
    from ttcdsl.compare.runs import describe_limit, varied_limit

    limit = varied_limit(policy)
    return "mean samples per query" if limit is None else describe_limit(limit)


def _step_prefix(budgets, b) -> str:
    return f"[{budgets.index(b) + 1}/{len(budgets)}] "


def _sharding_note(queries: int, unsharded: str | None) -> str:
    from simulator.shard import question_devices

    n = len(question_devices(queries))
    if n > 1 and unsharded is not None:
        return f" on one of the {n} devices ({unsharded})"
    return f", sharded over {n} devices" if n > 1 else ""


def _note_other_table(plan, table, args, say) -> None:
    """A --check against another population than the plan's calibration table is said aloud:
    the predictions are about that table's questions."""
    if table is None:
        say(f"note: checking against the {args.workload} workload, not the plan's calibration "
            "table (pass it with --fit to check the plan on its own questions)")
        return
    from ttcdsl.samples import content_hash

    if content_hash(table) != plan.get("calibration", {}).get("content_sha256"):
        say(f"note: {args.fit} is not the plan's calibration table; its predictions are about that one")


def _check_exit(verdict: dict, *, as_json: bool) -> int:
    """The check's outcome: a line that the figures agree (exit 0; on standard error under
    --json, which keeps standard output JSON), or each figure that disagrees (exit 1)."""
    import sys

    from ttcdsl.simulate_check import describe

    if not verdict["figures"]:  # an agreement over nothing is no check: say so, and fail
        print("ttc simulate: nothing to check: the plan records no prediction with an error for "
              f"{', '.join(verdict['skipped'])} (a bandit planned with --no-simulate, or a "
              "hand-edited plan)", file=sys.stderr)
        return 1
    checked = ", ".join(r["label"] for r in verdict["figures"])
    skipped = f" (not checked: {', '.join(verdict['skipped'])})" if verdict["skipped"] else ""
    if verdict["agree"]:
        out = sys.stderr if as_json else sys.stdout
        print(f"check: the plan's predictions agree with the simulation within the combined 95% "
              f"intervals ({checked}){skipped}", file=out)
        for row in verdict["figures"]:
            print(f"  {describe(row)}", file=out)
        return 0
    print("ttc simulate: the plan's predictions disagree with the simulation:", file=sys.stderr)
    for row in verdict["figures"]:
        if not row["agree"]:
            print(f"  {describe(row)}", file=sys.stderr)
    return 1


FEW_QUESTIONS = 20  # below this a fitted workload is a handful of questions, said so


def _warn_degenerate(table, path: Path) -> None:
    """A --fit table from which every figure is 0 by construction, or one of a handful of
    questions: say so."""
    import sys

    from ttcdsl.samples.degenerate import degenerate

    reason = degenerate(table)
    if reason is not None:
        print(f"ttc simulate: warning: {path}: {reason}", file=sys.stderr)
    few = len(table.query_ids())
    if few < FEW_QUESTIONS:  # a workload of resampled copies of a handful of questions
        print(f"ttc simulate: warning: {path} holds {few} question(s): every simulated question is "
              "drawn from them, so the figures describe these alone, not a workload like them",
              file=sys.stderr)


class _Progress:
    """Progress lines on standard error with the time so far (``ttc compare``'s format); and
    while a step runs long without a line (one call of the simulator over all draws can take
    minutes: an empirical workload, few draws), every :data:`HEARTBEAT` seconds a line that it
    is still at it, from a thread (JAX computes without holding the interpreter)."""

    def __init__(self) -> None:
        import threading
        import time

        self._clock = time.monotonic
        self._start = self._last = self._clock()
        self._step = "starting"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __call__(self, message: str) -> None:
        import sys

        self._last, self._step = self._clock(), message
        print(f"ttc simulate [{self._last - self._start:6.1f}s] {message}", file=sys.stderr, flush=True)

    def _beat(self) -> None:
        import sys

        while not self._done.wait(HEARTBEAT):
            idle = self._clock() - self._last
            if idle >= HEARTBEAT:
                now = self._clock() - self._start
                print(f"ttc simulate [{now:6.1f}s]   still at it ({idle:.0f}s): {self._step}",
                      file=sys.stderr, flush=True)

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


HEARTBEAT = 30.0  # seconds without a progress line before one says the command is still at it


def _is_bandit(policy) -> bool:
    from ttcdsl.lang import ir

    return isinstance(policy.allocation, ir.Bandit)


def _calibration_depth(policy) -> int:
    """Samples per question of the drawn calibration table: the policy's largest count."""
    depth = 16
    for spec in policy.bins:
        if spec.fixed_samples:
            depth = max(depth, spec.fixed_samples)
    for limit in policy.budget.limits:
        if limit.unit == "samples" and limit.kind == "per_query_max":
            depth = max(depth, int(limit.value))
    return min(depth, 64)


def _print(report: dict) -> None:
    from ttcdsl.verdict import format_interval

    def cell(v: dict, pct: bool, digits: int = 2) -> str:
        return format_interval(v, 100.0, 1) if pct else format_interval(v, 1.0, digits)

    sim, uni, orc = report["simulated"], report["uniform"], report["oracle"]
    print(f"{report['policy']} on {report['workload']}: {report['queries']} questions x "
          f"{report['seeds']} draws (mean ± 95% CI over draws)")
    table = [("", "policy", "uniform", "oracle")]
    metric = "coverage" if report["objective"] == "coverage" else "accuracy"
    rows = [("accuracy", True), ("coverage", True), ("samples", False), ("tokens", False), ("max_samples", False),
            ("rounds", False)]
    for name, pct in rows:
        oracle = ""
        if name == metric:
            oracle = cell(orc["objective"], True)
        elif name == "samples":
            oracle = f"{orc['samples']:.2f}"
        elif name == "max_samples":
            oracle = f"{orc['max_samples']:.1f}"
        label = {"accuracy": "accuracy %", "coverage": "coverage %", "max_samples": "max samples"}.get(name, name)
        digits = 0 if name == "tokens" else 2
        # None: tokens nobody measured (said below the table), never a number standing in
        table.append((label, *("unknown" if side.get(name) is None else cell(side[name], pct, digits)
                               for side in (sim, uni)), oracle))
    # Columns as wide as their widest cell, two spaces apart: a fixed width let a wide interval
    # (76.0 (59.1..100.0)) run into its neighbour as `19.184.5`.
    widths = [max(len(row[c]) for row in table) for c in range(4)]
    for row in table:
        print("  ".join([row[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(row[1:], widths[1:])]).rstrip())
    if report.get("equal_spend") == "tokens":
        print("equal spend is in tokens: the policy's batch budget is in tokens, so uniform and the oracle "
              "spend its mean tokens per question (samples at uniform's tokens per sample)")
    unknown = sim.get("tokens_unknown") or uni.get("tokens_unknown")
    if unknown:
        print(f"tokens: unknown: {unknown}")
    elif sim.get("tokens_counted") is not None:
        print(f"tokens: an estimate: every length is drawn from the {sim['tokens_counted']:.0%} of the "
              "table's samples that logged a count (the rest taken to be like them); a run's ledger "
              "bills a sample without a count at max_tokens")
    if "extrapolated" in sim:
        print(f"extrapolated: {100 * sim['extrapolated']:.1f}% of the policy's simulated samples "
              "came from the fitted model (past a question's logged samples)")
    print(f"verdict: {report['verdict']}")
