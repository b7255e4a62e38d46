"""`ttc simulate`: dry-run a policy or a plan on a simulated workload.

    ttc simulate policies/adaptive_consistency.ttc                 # built-in workload, 8 seeds
    ttc simulate plan.yaml --fit calib.jsonl --queries 300 --seeds 16 --json
    ttc simulate plan.yaml --fit calib.jsonl --empirical           # the table's own samples

Prints accuracy, coverage, mean and max samples per query and rounds, each as a mean over seeds
with a 95% interval, next to uniform allocation at the same mean spend and the static oracle
(which knows each question's response process), and the verdict against uniform. A policy is
first planned on a table drawn from the workload (or on the --fit table itself). Policies the
simulator cannot model yet (the bandit, token limits) are refused with the reason (exit 1).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="dry-run a policy or plan on a simulated workload",
        description="Simulate a policy or plan against uniform allocation and the static oracle.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("target", metavar="POLICY|PLAN", help="a policy (.ttc) or a plan (.yaml)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--workload", default="builtin", choices=["builtin"],
                        help="the parametric workload (default builtin)")
    source.add_argument("--fit", metavar="SAMPLES", help="fit the workload to a samples table")
    parser.add_argument("--empirical", action="store_true",
                        help="with --fit: replay the table's own logged samples per question in random "
                        "orders, the fitted model only past the logged depth (its share is reported)")
    parser.add_argument("--queries", type=int, default=500, metavar="N", help="questions per draw (default 500)")
    parser.add_argument("--seeds", type=int, default=8, metavar="S", help="independent draws (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(run=run)
    from ttcdsl.cli.usage import remember_parser

    remember_parser(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from ttcdsl.cli.usage import usage_error
    from ttcdsl.errors import UserError

    if args.queries < 2:
        usage_error(args, f"--queries must be at least 2, got {args.queries}")
    if args.seeds < 2:
        usage_error(args, f"--seeds must be at least 2 (an interval needs two draws), got {args.seeds}")
    if args.seed < 0:
        usage_error(args, f"--seed must be >= 0, got {args.seed}")
    if args.empirical and not args.fit:
        usage_error(args, "--empirical resamples a table's logged samples: give the table with --fit SAMPLES")
    target = Path(args.target)
    if not target.is_file():
        raise UserError(f"{target}: no such file")

    from ttcdsl.lang.api import load_policy
    from ttcdsl.simulate import Workload, check_supported, draw_table, fit_table, simulate_plan

    table = None
    if args.fit:
        from ttcdsl.samples import load

        fit_path = Path(args.fit)
        if not fit_path.is_file():
            raise UserError(f"{fit_path}: no such samples table")
        table = load(fit_path)

    def workload_for(policy):
        # a fitted workload's scores are the policy's reward scorer's column
        if table is None:
            return Workload(name=args.workload)
        if args.empirical:
            fitted, logged = fit_table(table, policy, empirical=True)
            return Workload(name=f"empirical:{Path(args.fit).name}", fitted=fitted, logged=logged)
        return Workload(name=f"fit:{Path(args.fit).name}", fitted=fit_table(table, policy))

    if target.suffix == ".ttc":
        policy = load_policy(target)
        check_supported(policy, {"mode": "bandit"} if _is_bandit(policy) else {})
        workload = workload_for(policy)
        if table is None:
            rewards = [s for s in policy.scorers if s.kind == "reward_model"]
            table = draw_table(workload, min(args.queries, 400), _calibration_depth(policy), seed=args.seed + 1,
                               scorer=rewards[0] if rewards else None)
        from ttcdsl.planner.build import make_plan

        say = (lambda m: None) if args.json else (lambda m: print(f"ttc simulate: {m}", file=sys.stderr))
        say(f"planning {policy.name} on {len(table.query_ids())} questions of the workload")
        plan = make_plan(policy, table, policy_file=str(target), reps=32, seed=args.seed,
                         cross_check=False, batch_size=args.queries).plan
    else:
        from ttcdsl.planner.plan import load_plan

        plan = load_plan(target)
        policy_file = plan["policy"].get("file")
        if not policy_file or not Path(policy_file).is_file():
            raise UserError(f"{target}: the plan's policy file {policy_file!r} is not there")
        policy = load_policy(policy_file)
        if policy.source_hash != plan["policy"]["source_sha256"]:
            raise UserError(f"{policy_file}: the plan was made from another version of the policy",
                            hint="re-plan with ttc plan")
        check_supported(policy, plan)
        workload = workload_for(policy)

    report = simulate_plan(policy, plan, workload, n_queries=args.queries, seeds=args.seeds, seed=args.seed)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(report)
    return 0


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
    def cell(v: dict, pct: bool) -> str:
        scale = 100 if pct else 1
        return f"{scale * v['mean']:.1f} ± {scale * 1.96 * v['se']:.1f}" if pct else \
            f"{v['mean']:.2f} ± {1.96 * v['se']:.2f}"

    sim, uni, orc = report["simulated"], report["uniform"], report["oracle"]
    print(f"{report['policy']} on {report['workload']}: {report['queries']} questions x "
          f"{report['seeds']} draws (mean ± 95% CI over draws)")
    print(f"{'':14}{'policy':>16}{'uniform':>16}{'oracle':>16}")
    metric = "coverage" if report["objective"] == "coverage" else "accuracy"
    for name, pct in (("accuracy", True), ("coverage", True), ("samples", False),
                      ("max_samples", False), ("rounds", False)):
        oracle = ""
        if name == metric:
            oracle = cell(orc["objective"], True)
        elif name == "samples":
            oracle = f"{orc['samples']:.2f}"
        elif name == "max_samples":
            oracle = f"{orc['max_samples']:.1f}"
        label = {"accuracy": "accuracy %", "coverage": "coverage %", "max_samples": "max samples"}.get(name, name)
        print(f"{label:14}{cell(sim[name], pct):>16}{cell(uni[name], pct):>16}{oracle:>16}")
    if "extrapolated" in sim:
        print(f"extrapolated: {100 * sim['extrapolated']:.1f}% of the policy's simulated samples "
              "came from the fitted model (past a question's logged samples)")
    print(f"verdict: {report['verdict']}")
