"""Benchmark: `ttc compare` on the shared pools and the built-in workload, issue 14's reference
figures and quality bars, and the README's "Results" section.

    python bench/allocation.py                  # about 2-3 minutes on 2 CPU cores
    python bench/allocation.py --quick          # one sample order, fewer budgets (a smoke run)
    python bench/allocation.py --write-readme   # also rewrite README.md's Results section
    python bench/allocation.py --json out/allocation.json

Every number comes from ttcdsl: uniform allocation and the static oracle from the exact curves
(:mod:`ttcdsl.compare.baselines`), policies from ``ttc compare``'s machinery (planned on one half
of a table's queries, replayed on the other half over R sample orders). Sections:

* ``reference``: the FULL pools, as issue 14's reference figures were measured: CRUXEval-input
  uniform coverage at 2/3/4 samples per query and the static oracle (gold as the scorer);
  elimination with a gold scorer (K=1, one probe) replayed on every query (a bandit has no plan,
  so nothing is fitted on the queries it is scored on); Qwen MATH-100 uniform majority vote at 8;
  the early-stopping majority-vote policies (``allocate fixed``: their plan allocates the same
  count whatever the calibration, so they too are replayed on every query).
* ``coverage``: CRUXEval input and output, coverage with a gold scorer: elimination, the bandit
  exploration rules and ``oracle_coverage`` against uniform and both oracles, budgets 1-6.
* ``vote``: Qwen MATH-100 without gold: stop-rule policies against uniform majority vote.
* ``reward``: Qwen MATH-100 with its logged reward-model scores (``--score prm=rm``).
* ``builtin``: the built-in synthetic workload (1000 questions x 32 samples, split in halves):
  every example policy.

The process exits 1 when a quality bar is missed; the README section says which, and why.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POOLS = REPO.parent / "shared" / "data" / "pools"
BENCH_POLICIES = REPO / "bench" / "policies"
POLICIES = REPO / "policies"
TOL = 0.003
BEGIN, END = "<!-- results:begin (bench/allocation.py --write-readme) -->", "<!-- results:end -->"

# issue 14's reference figures (plain scripts, mean over random orders, the full pools)
REF_UNIFORM_COVERAGE = {2: 0.401, 3: 0.424, 4: 0.439}
REF_STATIC_ORACLE = 0.475
REF_ELIMINATION = {2: 0.416, 3: 0.442, 4: 0.458}
REF_MAJ8 = 0.924
# gap and entropy rank by the answers' contest, which a gold solved rule leaves without signal
# (refused: TTC610), so ucb is the one ranked rule with a gold scorer
GOLD_RULES = ("bandit_ucb_gold",)
STOP_POLICIES = ("adaptive_consistency", "adaptive_consistency_08", "early_stopping_sc")
MAIN_JOB_BUDGETS = (4.0, 8.0)  # the README's main job: ttc compare policies/*.ttc --budgets 4,8
# issue 15's bars
ORACLE_SHARE_BAR = 0.60
ALLOCATION_BAR_BUDGETS = (3.0, 4.0)
BUILTIN_MARGIN = 0.03


def say(message: str) -> None:
    print(f"allocation: {message}", file=sys.stderr, flush=True)


def policy_path(name: str) -> str:
    path = BENCH_POLICIES / f"{name}.ttc"
    return str(path if path.is_file() else POLICIES / f"{name}.ttc")


def tables() -> dict:
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored, import_qwen25math_eval
    from ttcdsl.workloads import builtin_workload

    out = {}
    for name, file in (("cruxeval-input", "cruxeval_input_codellama7b_x10.json"),
                       ("cruxeval-output", "cruxeval_output_codellama7b_x10.json")):
        out[name] = import_cruxeval_scored(POOLS / file, ImportOptions())
    out["qwen-math100"] = import_qwen25math_eval(
        POOLS / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7))
    out["builtin"], _ = builtin_workload(1000, 32, seed=0)
    return out


def split_setup(table, budgets, repeats, score_columns=None):
    from ttcdsl.compare.comparison import Setup
    from ttcdsl.datasets.split import split_ids

    cal, ev = split_ids(table.query_ids(), fraction=0.5, seed=0)
    return Setup(calibration=table.where(query_ids=cal), evaluation=table.where(query_ids=ev),
                 split="split by query, fraction 0.5, seed 0", budgets=tuple(budgets),
                 repeats=repeats, score_columns=dict(score_columns or {}),
                 # the bars read the replays; a bandit's simulated prediction (tens of seconds per
                 # budget) is not among the tables' columns
                 predict_bandits=False)


def compare(table, names, budgets, repeats, score_columns=None) -> dict:
    from ttcdsl.compare.comparison import run_comparison

    setup = split_setup(table, budgets, repeats, score_columns)
    return run_comparison([policy_path(n) for n in names], setup, say)


def full_pool_runs(table, name, budgets, repeats) -> list[dict]:
    """A plan-free policy (bandit, or one-bin fixed) replayed on EVERY query of ``table``."""
    from ttcdsl.compare.runs import at_budget, mean_budget_limit, plan_for, replay
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.build import allocation_mode

    policy = load_policy(policy_path(name))
    mode = allocation_mode(policy)
    if not (mode == "bandit" or (mode == "fixed" and len(policy.bins) == 1)):
        raise ValueError(f"{name}: its plan depends on calibration; compare it on a split")
    out = []
    for budget in budgets if mean_budget_limit(policy) is not None else [None]:
        p = policy if budget is None else at_budget(policy, budget)
        plan = plan_for(p, table, {}, reps=8, progress=lambda m: None)
        runs = replay(p, plan, table, table.query_ids(), {}, range(repeats))
        per = [(r.correct.mean(), r.covered.mean(), r.samples.mean()) for r in runs]
        acc, cov, spend = (sum(x[i] for x in per) / len(per) for i in range(3))
        sd = _sd([x[0] for x in per]), _sd([x[1] for x in per])
        out.append({"policy": name, "budget": budget, "accuracy": acc, "coverage": cov,
                    "samples_per_query": spend, "accuracy_sd": sd[0], "coverage_sd": sd[1],
                    "repeats": repeats})
    return out


def reads_gold(path: str) -> bool:
    """An ``offline evaluation`` policy reads the gold answer: a ceiling, not a policy to deploy."""
    from ttcdsl.lang.api import load_policy

    return load_policy(path).offline


def _sd(values):
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def reference(tabs, repeats) -> dict:
    from ttcdsl.compare.baselines import exact_curves, static_oracle
    from ttcdsl.curves.pool import QueryPool

    crux = exact_curves(QueryPool.from_table(tabs["cruxeval-input"]), "pass_at_k")
    oracle = static_oracle(crux, [2, 3, 4])
    qwen = exact_curves(QueryPool.from_table(tabs["qwen-math100"]), "majority_vote")
    return {
        "uniform_coverage": {b: crux.mean_at(b) for b in (2, 3, 4)},
        "static_oracle": {b: float(o) for b, o in zip((2, 3, 4), oracle)},
        "elimination": full_pool_runs(tabs["cruxeval-input"], "elimination_gold", [2, 3, 4],
                                      max(repeats, 10)),
        "maj8": qwen.mean_at(8),
        "stop_rules": [row for name in STOP_POLICIES
                       for row in full_pool_runs(tabs["qwen-math100"], name, [None], repeats)],
    }


def bars(results) -> list[dict]:
    """Each quality bar of issue 14: name, passed, and the measured figures it rests on."""
    ref = results["reference"]
    out = []
    worst = max(abs(ref["uniform_coverage"][b] - REF_UNIFORM_COVERAGE[b]) for b in (2, 3, 4))
    worst_oracle = max(abs(v - REF_STATIC_ORACLE) for v in ref["static_oracle"].values())
    worst_maj = abs(ref["maj8"] - REF_MAJ8)
    out.append({
        "bar": "uniform and the static oracle reproduce the reference figures within 0.003",
        "passed": max(worst, worst_oracle, worst_maj) <= TOL,
        "figures": (
            "CRUXEval-input uniform coverage at 2/3/4: "
            + "/".join(f"{ref['uniform_coverage'][b]:.3f}" for b in (2, 3, 4))
            + " (reference 0.401/0.424/0.439); static oracle "
            + "/".join(f"{ref['static_oracle'][b]:.3f}" for b in (2, 3, 4))
            + f" (0.475); MATH-100 uniform maj@8 {ref['maj8']:.3f} (0.924)"
        ),
    })
    unsaid = [r for sec in ("coverage", "vote", "reward", "builtin")
              for doc in results[sec].values() for r in doc["rows"]
              if "error" not in r and r["ci"] and r["ci"][1] < 0
              and not r["verdict"].startswith("worse")]
    worse = [f"{r['policy']}@{r['budget']}" for sec in ("builtin",)
             for doc in results[sec].values() for r in doc["rows"]
             if "error" not in r and r["verdict"].startswith("worse")]
    out.append({
        "bar": "no example policy is worse than uniform by more than its CI without its row "
               "saying so",
        "passed": not unsaid,
        "figures": "every row carries its verdict; worse than uniform on the built-in workload: "
                   + (", ".join(worse) or "none"),
    })
    builtin = results["builtin"]["builtin"]["rows"]
    offline = {r["policy"] for r in builtin if "error" not in r and reads_gold(r["file"])}
    main = [r for r in builtin if "error" not in r and r["policy"] not in offline
            and (r["budget"] is None or r["budget"] in MAIN_JOB_BUDGETS)]
    winners = [f"{r['policy']}@{'own' if r['budget'] is None else format(r['budget'], 'g')} "
               f"({r['diff'] * 100:+.1f} pts)"
               for r in main if r["verdict"].startswith("better")]
    out.append({
        "bar": "the README's main job shows a policy that beats uniform on the built-in workload",
        "passed": bool(winners),
        "figures": "rows of the main job (budgets "
                   + "/".join(f"{b:g}" for b in MAIN_JOB_BUDGETS)
                   + ", policies that do not read the gold answer) better than uniform: "
                   + (", ".join(winners) or "none"),
    })
    maj8 = ref["maj8"]
    stop = [r for r in ref["stop_rules"]
            if r["accuracy"] >= maj8 - 0.005 and r["samples_per_query"] <= 0.35 * 8]
    out.append({
        "bar": "an early-stopping majority-vote policy matches uniform maj@8 on MATH-100 within "
               "0.5 points at <= 35% of its mean samples",
        "passed": bool(stop),
        "figures": "; ".join(
            f"{r['policy']}: {r['accuracy']:.3f} with {r['samples_per_query']:.2f} samples"
            for r in ref["stop_rules"]) + f" (maj@8 {maj8:.3f}; <= 2.80 samples needed)",
    })
    short = []
    for pool, doc in results["coverage"].items():
        rows = {(r["policy"], r["budget"]): r for r in doc["rows"] if "error" not in r}
        for rule in GOLD_RULES:
            for budget in doc["budgets"]:
                mine, elim = rows.get((rule, budget)), rows.get(("elimination_gold", budget))
                if mine is None or elim is None or mine["coverage"] < elim["coverage"] - 1e-12:
                    gap = "did not run" if mine is None or elim is None else \
                        f"{mine['coverage']:.3f} < {elim['coverage']:.3f}"
                    short.append(f"{rule} on {pool} at {budget:g} ({gap})")
    out.append({
        "bar": "the bandit policy with a gold scorer is at least as good as plain elimination at "
               "every budget",
        "passed": not short,
        "figures": ("short of elimination: " + "; ".join(short)) if short
                   else "every exploration rule >= elimination at every budget",
    })
    return out


def is_bandit(path: str) -> bool:
    from ttcdsl.lang import ir
    from ttcdsl.lang.api import load_policy

    return isinstance(load_policy(path).allocation, ir.Bandit)


def _ran(doc) -> list[dict]:
    return [r for r in doc["rows"] if "error" not in r]


def allocation_bars(results) -> list[dict]:
    """Issue 15's bars (allocation that wins): name, passed, and the figures they rest on."""
    out = []
    shares, short = [], []
    for pool, doc in results["coverage"].items():
        for budget in ALLOCATION_BAR_BUDGETS:
            # oracle_coverage is the dynamic oracle written as a policy: a ceiling, not a method
            rows = [r for r in _ran(doc) if r["budget"] == budget and r["oracle_share"] is not None
                    and r["policy"] != "oracle_coverage"]
            if not rows:
                short.append(f"{pool}@{budget:g}: no row")
                continue
            best = max(rows, key=lambda r: r["oracle_share"])
            shares.append(f"{pool}@{budget:g} {best['policy']} {best['oracle_share']:.0%}")
            if best["oracle_share"] < ORACLE_SHARE_BAR:
                short.append(f"{pool}@{budget:g} ({best['oracle_share']:.0%})")
    out.append({
        "bar": f"on CRUXEval input and output at mean budgets 3 and 4 the best policy captures >= "
               f"{ORACLE_SHARE_BAR:.0%} of the static oracle's coverage gain over uniform",
        "passed": not short,
        "figures": "best oracle share: " + "; ".join(shares)
                   + ("; short: " + "; ".join(short) + ". Why: with a gold scorer elimination "
                      "IS the dynamic oracle (every query served round-robin until its first "
                      "correct sample; the 'dyn. oracle' column equals it), so it already uses "
                      "all a query's samples say; the static oracle's further gain needs knowing "
                      "in advance which queries are solvable at all, which neither the samples "
                      "nor the learned skip (next-round value per sample count, answer "
                      "agreement and score tier, fitted on the calibration half) can tell here"
                      if short else ""),
    })
    builtin = _ran(results["builtin"]["builtin"])
    deployable = [r for r in builtin if not reads_gold(r["file"])]
    margins, missing = [], []
    for budget in MAIN_JOB_BUDGETS:
        rows = [r for r in deployable if r["budget"] == budget]
        if not rows:
            missing.append(f"{budget:g}: no row")
            continue
        best = max(rows, key=lambda r: r["diff"])
        margins.append(f"{best['policy']}@{budget:g} {100 * best['diff']:+.1f} pts")
        if best["diff"] < BUILTIN_MARGIN:
            missing.append(f"{budget:g} ({100 * best['diff']:+.1f} pts)")
    out.append({
        "bar": f"on the built-in workload the best example policy beats uniform at equal spend by "
               f">= {100 * BUILTIN_MARGIN:.0f} points at mean budgets 4 and 8",
        "passed": not missing,
        "figures": "best: " + ", ".join(margins) + ("; short at " + ", ".join(missing)
                                                    if missing else ""),
    })
    flagship = [r for r in builtin if r["policy"] == "adaptive_vote"
                and r["budget"] in MAIN_JOB_BUDGETS]
    worse = [r for r in flagship if r["verdict"].startswith("worse")]
    out.append({
        "bar": "adaptive_vote is no worse than uniform on the built-in workload at 4 and 8",
        "passed": bool(flagship) and not worse,
        "figures": ", ".join(f"@{r['budget']:g} {100 * r['diff']:+.1f} pts "
                             f"({100 * r['ci'][0]:+.1f}..{100 * r['ci'][1]:+.1f})"
                             for r in flagship) or "no row",
    })
    losing = [f"{r['policy']} on {pool} at {'own' if r['budget'] is None else format(r['budget'], 'g')}"
              f" ({100 * r['diff']:+.1f} pts, CI {100 * r['ci'][0]:+.1f}..{100 * r['ci'][1]:+.1f})"
              for section in ("coverage", "vote", "reward", "builtin")
              for pool, doc in results[section].items() for r in _ran(doc)
              if r["ci"] and r["ci"][1] < 0 and is_bandit(r["file"])]
    out.append({
        "bar": "no exploration rule is worse than uniform by more than its CI on any pool",
        "passed": not losing,
        "figures": ("worse: " + "; ".join(losing)) if losing else "none is",
    })
    return out


def best_rows(results) -> list[dict]:
    """Per pool and compared budget, the row with the largest gain over uniform (policies that
    read the gold answer only where every policy does: the coverage section)."""
    out = []
    for section in ("coverage", "vote", "reward", "builtin"):
        for pool, doc in results[section].items():
            rows = [r for r in _ran(doc) if r["budget"] is not None
                    and r["policy"] != "oracle_coverage"
                    and (section == "coverage" or not reads_gold(r["file"]))]
            for budget in sorted({r["budget"] for r in rows}):
                best = max((r for r in rows if r["budget"] == budget), key=lambda r: r["diff"])
                out.append({"section": section, "pool": pool, **best})
    return out


def run(quick: bool) -> dict:
    repeats = 1 if quick else 3
    gold_budgets = (2, 4) if quick else (1, 2, 3, 4, 5, 6)
    vote_budgets = (4, 8) if quick else (2, 4, 8)
    start = time.perf_counter()
    tabs = tables()
    results = {"repeats": repeats, "reference": reference(tabs, repeats)}
    coverage_policies = ("elimination_gold", *GOLD_RULES, "oracle_coverage")
    results["coverage"] = {
        pool: compare(tabs[pool], coverage_policies, gold_budgets, repeats)
        for pool in ("cruxeval-input", "cruxeval-output")
    }
    results["vote"] = {"qwen-math100": compare(
        tabs["qwen-math100"], (*STOP_POLICIES, "self_consistency"), vote_budgets, repeats)}
    results["reward"] = {"qwen-math100": compare(
        tabs["qwen-math100"],
        ("best_of_n", "compute_optimal", "compute_optimal_orm", "bandit_entropy"), vote_budgets,
        repeats, {"prm": "rm"})}
    examples = sorted(p.stem for p in POLICIES.glob("*.ttc"))
    results["builtin"] = {"builtin": compare(tabs["builtin"], examples, vote_budgets, repeats)}
    results["bars"] = bars(results) + allocation_bars(results)
    results["best"] = best_rows(results)
    results["seconds"] = time.perf_counter() - start
    results["quick"] = quick
    return results


# ------------------------------------------------------------------------------- rendering


def _table(doc) -> list[str]:
    from ttcdsl.compare.render import row_cells

    head = ("policy", "budget", "samples/q (max)", "metric", "value",
            "uniform: exact / same orders", "static oracle",
            "dyn. oracle", "oracle share", "efficiency", "vs uniform (95% CI)", "verdict")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in doc["rows"]:
        c = row_cells(row)
        if "error" in row:
            cells = [c[0], c[1]] + ["-"] * 9 + [c[-1]]
        else:
            cells = [c[0], c[1], c[2], row["metric"], f"{row['value']:.3f}", c[6], c[7], c[8],
                     c[9], c[10], c[11], c[12]]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return lines


def markdown(results) -> str:
    ref = results["reference"]
    r = results["repeats"]
    out = [
        "## Results",
        "",
        "Regenerated by `python bench/allocation.py --write-readme` (every number from ttcdsl; "
        f"{r} sample order(s) per run{', QUICK run' if results['quick'] else ''}). Policies are "
        "planned on one half of a table's queries and replayed on the other half (`ttc compare "
        "POLICY... --samples TABLE --split 0.5`); uniform and the static oracle come from the exact "
        "curves of the evaluation half at the policy's own mean spend and `max_tokens`; the difference "
        "from uniform and its CI are regression-adjusted: each run minus exact uniform, less the "
        "share of uniform's luck on the same sample orders (the run report's baseline) that the "
        "run shares, fitted by least squares (exactly 0 for a policy that is uniform); the dynamic "
        "oracle stops each query at its first correct sample (round-robin), on the same orders. "
        "CIs are 95%. An oracle share above 100% means stop rules adapted within a query and beat "
        "the static oracle, which fixes each query's count in advance. The pools hold 8-10 samples per query, which caps every "
        "budget: '> logged' means uniform never reaches the policy within the logged samples.",
        "",
        "### Quality bars",
        "",
    ]
    for bar in results["bars"]:
        mark = "met" if bar["passed"] else "**MISSED**"
        out.append(f"- {mark}: {bar['bar']}. {bar['figures']}.")
    out += [
        "",
        "### The best policy per pool and budget",
        "",
        "The row with the largest gain over uniform at each compared budget (the gold-scorer "
        "policies only on the coverage pools; `oracle_coverage`, a ceiling, left out). "
        "Efficiency: the smallest mean budget (one sample per query at least) at which uniform "
        "matches it, over the policy's own.",
        "",
        "| pool | budget | policy | metric | value | vs uniform (95% CI) | efficiency |",
        "|---|---|---|---|---|---|---|",
    ]
    from ttcdsl.compare.render import row_cells

    for row in results["best"]:
        c = row_cells(row)
        out.append(f"| {row['pool']} | {row['budget']:g} | {row['policy']} | {row['metric']} | "
                   f"{row['value']:.3f} | {c[11]} | {c[10]} |")
    out += [
        "",
        "### Reference figures (full pools)",
        "",
        "| figure | ttcdsl | reference |",
        "|---|---|---|",
    ]
    for b in (2, 3, 4):
        out.append(f"| CRUXEval-input uniform coverage at {b} | "
                   f"{ref['uniform_coverage'][b]:.3f} | {REF_UNIFORM_COVERAGE[b]:.3f} |")
    for b in (2, 3, 4):
        out.append(f"| CRUXEval-input static oracle coverage at {b} | "
                   f"{ref['static_oracle'][b]:.3f} | {REF_STATIC_ORACLE:.3f} |")
    for row in ref["elimination"]:
        b = int(row["budget"])
        out.append(f"| CRUXEval-input elimination (gold, K=1) at {b} | {row['coverage']:.3f} "
                   f"(sd over {row['repeats']} orders {row['coverage_sd']:.3f}) | "
                   f"{REF_ELIMINATION[b]:.3f} |")
    out.append(f"| MATH-100 uniform majority vote at 8 | {ref['maj8']:.3f} | {REF_MAJ8:.3f} |")
    for row in ref["stop_rules"]:
        reference = " 0.928 at 2.4 samples" if row["policy"] == "adaptive_consistency_08" else " -"
        sd = "" if row["accuracy_sd"] is None else f", sd {row['accuracy_sd']:.3f}"
        out.append(f"| MATH-100 {row['policy']} | {row['accuracy']:.3f} at "
                   f"{row['samples_per_query']:.2f} samples{sd} |{reference} |")
    sections = (
        ("coverage", "Coverage with a gold scorer (CRUXEval, CodeLlama-7B x10)",
         "ttc compare bench/policies/elimination_gold.ttc bench/policies/bandit_*_gold.ttc "
         "policies/oracle_coverage.ttc --samples crux.jsonl --budgets 1,2,3,4,5,6 --repeats 3"),
        ("vote", "Accuracy without gold: stop rules vs uniform majority vote (Qwen2.5-Math, "
         "MATH-100 x8)",
         "ttc compare policies/adaptive_consistency.ttc bench/policies/adaptive_consistency_08.ttc "
         "policies/early_stopping_sc.ttc policies/self_consistency.ttc --samples qwen.jsonl "
         "--repeats 3"),
        ("reward", "Reward-model policies (MATH-100, the pool's logged RM scores)",
         "ttc compare policies/best_of_n.ttc policies/compute_optimal.ttc "
         "bench/policies/compute_optimal_orm.ttc policies/bandit_entropy.ttc --samples qwen.jsonl "
         "--score prm=rm --budgets 2,4,8 "
         "--repeats 3"),
        ("builtin", "The built-in workload (1000 questions x 32 samples, half for planning)",
         "ttc workload -o w.jsonl --queries 1000 --samples 32 && ttc compare policies/*.ttc "
         "--samples w.jsonl --budgets 2,4,8 --repeats 3"),
    )
    for key, title, command in sections:
        for pool, doc in results[key].items():
            out += ["", f"### {title}: {pool}", "",
                    f"{doc['evaluation_queries']} evaluation queries, planned on "
                    f"{doc['calibration_queries']} others. Reproduce: `{command}` (import the "
                    "pools with `ttc import`, see below).", ""]
            out += _table(doc)
    out += [
        "",
        "The pools as tables: `ttc import ../shared/data/pools/cruxeval_input_codellama7b_x10.json "
        "-f cruxeval-scored -o crux.jsonl` (likewise the output pool) and `ttc import "
        "../shared/data/pools/qwen25math_math100_x8.jsonl -f qwen25math-eval -o qwen.jsonl`.",
    ]
    return "\n".join(out) + "\n"


def write_readme(text: str, path: Path = REPO / "README.md") -> None:
    """Put ``text`` between the Results markers (the first time: before the language section)."""
    readme = path.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in readme and END in readme:
        readme = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda m: block, readme,
                        flags=re.S)
    else:
        anchor = "## The language in one example"
        if anchor not in readme:
            raise SystemExit(f"README.md has neither the results markers nor {anchor!r}")
        readme = readme.replace(anchor, block + "\n\n" + anchor, 1)
    path.write_text(readme, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one order, fewer budgets")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--write-readme", action="store_true",
                        help="rewrite README.md's Results section")
    args = parser.parse_args(argv)
    if not POOLS.is_dir():
        print(f"the shared pools are not at {POOLS}", file=sys.stderr)
        return 2
    results = run(args.quick)
    text = markdown(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.write_readme:
        write_readme(text)
        say("README.md: Results section rewritten")
    missed = [b["bar"] for b in results["bars"] if not b["passed"]]
    say(f"{len(results['bars']) - len(missed)} of {len(results['bars'])} quality bars met in "
        f"{results['seconds']:.0f}s")
    for bar in missed:
        say(f"MISSED: {bar}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
