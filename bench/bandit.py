"""Benchmark: the online bandit's exploration rules against uniform allocation at equal spend.

    python bench/bandit.py                 # default: ~2-3 minutes on 2 CPU cores
    python bench/bandit.py --quick         # fewer seeds and queries: ~10 seconds
    python bench/bandit.py --json out/bandit.json

Every run is ``ttc run POLICY.ttc`` on a replay table with an ``allocate bandit`` policy (Zuo &
Zhu elimination, :mod:`ttcdsl.runtime.bandit`): ``round 2 samples``, ``samples per query in
2..32``, a budget ``mean samples per query <= B``, one exploration rule out of all / ucb / gap /
entropy, and one of two variants:

* ``vote``: ``solved when top_share >= 0.75 after 4``, ``answer majority_vote``;
* ``vote+<score>`` (tables with a verifier score only): adds ``solved when score(S) >= 0.7`` and
  answers ``best_of_n(S)``.

The comparison is the run's own report: ``baseline`` is uniform allocation at the SAME total
spend on the same replay table and seed, aggregated with the same answer rule. Per setting the
table shows the mean run accuracy and mean uniform accuracy over seeds, the paired difference
(run - uniform) with its standard error across seeds, the ratio run / uniform, and the samples per
query actually spent. Wall-clock times are printed (median per run) for information only.

Workloads:

* ``builtin``: the built-in synthetic workload (:func:`ttcdsl.workloads.builtin_workload`,
  easy / medium / hard / hopeless questions, a ``prm`` score), 500 queries x 32 samples, one
  workload per seed (workload seed = run seed);
* ``qwen-math100``: the real Qwen2.5-Math MATH-100 x 8 pool (``../shared/data/pools``). Its
  reward-model score (Qwen2.5-Math-RM-72B) is unbounded, so it enters as ``rm`` = the score's
  percentile rank within the pool, in [0, 1] (monotone: best-of-n picks the same sample;
  ``score(rm) >= 0.7`` means "among the top 30% of the pool's samples by RM score");
* ``crux-output``: the real CRUXEval-output x 10 CodeLlama-7B pool (no score: ``vote`` only).

On the real pools the workload is fixed and the seeds only change the replay order, so the
standard error there is the spread over replay orders, not over question sets. The pools hold 8
or 10 samples per query, so their budgets are small; a query whose pool runs dry retires
(``short`` counts them).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttcdsl.cli import main as ttc_main

POOLS = REPO.parent / "shared" / "data" / "pools"
RULES = ("all", "ucb", "gap", "entropy")

POLICY = """\
policy bench_bandit_{rule} "bench: online bandit, explore {rule}"

budget {{
  mean samples per query <= {budget}
  samples per query in 2..32
}}

sampling {{ temperature 0.8  max_tokens 1024 }}
{scorer}
allocate bandit {{
  round 2 samples
  explore {rule}
{solved}}} maximize accuracy

answer {answer}
"""


@dataclasses.dataclass
class Workload:
    name: str
    samples: Path
    queries: Path
    score: str | None  # the verifier score's name in the table, if any
    budgets: tuple[float, ...]
    seed: int  # the run seed (for builtin also the workload seed)


def write_policy(directory: Path, rule: str, budget: float, score: str | None) -> Path:
    solved = "  solved when top_share >= 0.75 after 4\n"
    if score is None:
        scorer, answer = "", "majority_vote"
    else:
        scorer = f'\nscorer {score} = reward_model "bench/{score}"\n'
        solved = f"  solved when score({score}) >= 0.7\n" + solved
        answer = f"best_of_n({score})"
    variant = "vote" if score is None else f"vote+{score}"
    path = directory / f"{variant}-{rule}-{budget:g}.ttc"
    path.write_text(
        POLICY.format(rule=rule, budget=f"{budget:g}", scorer=scorer, solved=solved, answer=answer),
        encoding="utf-8",
    )
    return path


# ------------------------------------------------------------------------------- workloads


def builtin(directory: Path, n_queries: int, n_samples: int, seed: int,
            budgets: tuple[float, ...]) -> Workload:
    from ttcdsl.workloads import builtin_workload, write_workload

    table, dataset = builtin_workload(n_queries, n_samples, seed=seed)
    samples, queries = directory / f"builtin-{seed}.jsonl", directory / f"builtin-{seed}.queries.jsonl"
    write_workload(table, dataset, samples, queries)
    return Workload("builtin", samples, queries, "prm", budgets, seed)


def _queries(table, kind: str, label: str, path: Path) -> None:
    from ttcdsl.datasets import Dataset, Query, write_queries

    write_queries(
        Dataset(name=label, queries=tuple(
            Query(id=q, kind=kind, prompt=f"{label} problem {q}") for q in table.query_ids()
        )),
        path,
    )


def qwen_math100(directory: Path) -> tuple[Path, Path] | str:
    """The Qwen MATH-100 x 8 pool as a table (``rm`` as its percentile rank), or why not."""
    path = POOLS / "qwen25math_math100_x8.jsonl"
    if not path.is_file():
        return f"{path.name} not found under the shared data pools"
    import numpy as np

    from ttcdsl.importers import ImportOptions, import_qwen25math_eval
    from ttcdsl.samples import SamplesTable, save

    table = import_qwen25math_eval(path, ImportOptions(temperature=0.7))
    rows = list(table.rows())
    raw = np.array([r.scores["rm"] for r in rows], dtype=float)
    order = raw.argsort(kind="stable")
    pct = np.empty(len(raw))
    pct[order] = (np.arange(len(raw)) + 0.5) / len(raw)
    # ties share the mean rank, so equal scores stay equal
    for value in np.unique(raw):
        tied = raw == value
        if tied.sum() > 1:
            pct[tied] = pct[tied].mean()
    rows = [dataclasses.replace(r, scores={"rm": float(p)}) for r, p in zip(rows, pct)]
    table = SamplesTable.from_rows(rows, meta=table.meta)
    samples, queries = directory / "qwen.jsonl", directory / "qwen.queries.jsonl"
    save(table, samples)
    _queries(table, "math", "qwen-math100", queries)
    return samples, queries


def crux_output(directory: Path) -> tuple[Path, Path] | str:
    path = POOLS / "cruxeval_output_codellama7b_x10.json"
    if not path.is_file():
        return f"{path.name} not found under the shared data pools"
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored
    from ttcdsl.samples import save

    table = import_cruxeval_scored(path, ImportOptions())
    samples, queries = directory / "crux.jsonl", directory / "crux.queries.jsonl"
    save(table, samples)
    _queries(table, "exact", "crux-output", queries)
    return samples, queries


# ------------------------------------------------------------------------------------ runs


class RunFailed(RuntimeError):
    pass


def run_one(policy: Path, work: Workload, out: Path) -> tuple[dict, float]:
    args = ["run", str(policy), "--queries", str(work.queries), "--samples", str(work.samples),
            "--out", str(out), "--seed", str(work.seed), "--quiet"]
    captured = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            code = ttc_main(args)
    except SystemExit as exit_:  # argparse and friends
        code = exit_.code
    except Exception:  # noqa: BLE001 - report any failure with its context
        raise RunFailed(f"`ttc {' '.join(args)}` raised:\n{traceback.format_exc()}"
                        f"{captured.getvalue()}") from None
    wall = time.perf_counter() - start
    report_path = out / "report.json"
    if code != 0 or not report_path.is_file():
        raise RunFailed(f"`ttc {' '.join(args)}` returned {code!r}"
                        f"{'' if report_path.is_file() else ' and wrote no report.json'}:\n"
                        f"{captured.getvalue()[-4000:]}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    if not report.get("baseline"):
        raise RunFailed(f"{out.name}: the report has no uniform baseline")
    return report, wall


def record(work: Workload, rule: str, budget: float, report: dict, wall: float) -> dict:
    base = report["baseline"]
    return {
        "workload": work.name, "variant": "vote" if work.score is None else f"vote+{work.score}",
        "budget": budget, "rule": rule, "seed": work.seed,
        "accuracy": report["accuracy"], "accuracy_se": report["accuracy_se"],
        "coverage": report["coverage"],
        "uniform_accuracy": base["accuracy"], "uniform_accuracy_se": base["accuracy_se"],
        "uniform_coverage": base["coverage"],
        "samples_per_query": report["spend"]["samples_per_query"],
        "end": report["end"], "exhausted_queries": report["exhausted_queries"],
        "solved_queries": (report.get("bandit") or {}).get("solved_queries"),
        "wall_s": wall,
    }


def run_workload(work: Workload, directory: Path, results: list[dict], walls: list[float],
                 failures: list[str]) -> None:
    variants = [None] if work.score is None else [None, work.score]
    for budget in work.budgets:
        for score in variants:
            for rule in RULES:
                policy = write_policy(directory, rule, budget, score)
                out = Path(tempfile.mkdtemp(prefix="run-", dir=directory))
                shutil.rmtree(out)  # `ttc run` creates it
                variant = "vote" if score is None else f"vote+{score}"
                try:
                    report, wall = run_one(policy, dataclasses.replace(work, score=score), out)
                except RunFailed as error:
                    failures.append(f"{work.name} seed {work.seed} B={budget:g} {variant} "
                                    f"{rule}: {error}")
                    print(f"FAILED: {failures[-1]}", file=sys.stderr)
                    continue
                finally:
                    shutil.rmtree(out, ignore_errors=True)
                results.append(record(dataclasses.replace(work, score=score), rule, budget,
                                      report, wall))
                walls.append(wall)


# --------------------------------------------------------------------------------- summary


def summarize(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["workload"], r["budget"], r["variant"], r["rule"]), []).append(r)
    rows = []
    for (workload, budget, variant, rule), rs in groups.items():
        k = len(rs)
        acc = statistics.fmean(r["accuracy"] for r in rs)
        uni = statistics.fmean(r["uniform_accuracy"] for r in rs)
        diffs = [r["accuracy"] - r["uniform_accuracy"] for r in rs]
        diff = statistics.fmean(diffs)
        se = statistics.stdev(diffs) / math.sqrt(k) if k > 1 else math.nan
        rows.append({
            "workload": workload, "budget": budget, "variant": variant, "rule": rule, "seeds": k,
            "accuracy": acc, "uniform_accuracy": uni, "diff": diff, "diff_se": se,
            "z": diff / se if se > 1e-9 else math.nan,  # identical diffs: no spread to scale
            "ratio": acc / uni if uni > 0 else math.nan,
            "samples_per_query": statistics.fmean(r["samples_per_query"] for r in rs),
            "coverage": statistics.fmean(r["coverage"] for r in rs),
            "uniform_coverage": statistics.fmean(r["uniform_coverage"] for r in rs),
            "short": statistics.fmean(r["exhausted_queries"] for r in rs),
            "solved": statistics.fmean(r["solved_queries"] or 0 for r in rs),
            "median_wall_s": statistics.median(r["wall_s"] for r in rs),
        })
    return rows


def _z(z: float) -> str:
    return "-" if math.isnan(z) else f"{z:.1f}"


def print_table(rows: list[dict]) -> None:
    head = (f"{'workload':<13} {'B':>3} {'variant':<8} {'rule':<8} {'seeds':>5} {'run':>7} "
            f"{'uniform':>7} {'diff':>8} {'± se':>7} {'z':>6} {'ratio':>6} {'smp/q':>6} "
            f"{'short':>6} {'solved':>7} {'wall':>6}")
    print(head)
    print("-" * len(head))
    last = None
    for r in rows:
        key = (r["workload"], r["budget"], r["variant"])
        if last is not None and key != last:
            print()
        last = key
        print(f"{r['workload']:<13} {r['budget']:>3g} {r['variant']:<8} {r['rule']:<8} "
              f"{r['seeds']:>5} {r['accuracy']:>7.4f} {r['uniform_accuracy']:>7.4f} "
              f"{r['diff']:>+8.4f} {r['diff_se']:>7.4f} {_z(r['z']):>6} {r['ratio']:>6.3f} "
              f"{r['samples_per_query']:>6.2f} {r['short']:>6.1f} {r['solved']:>7.1f} "
              f"{r['median_wall_s']:>5.2f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 200 built-in queries, one budget per workload")
    parser.add_argument("--seeds", type=int, help="seeds for the built-in workload "
                        "(default 10, quick 2); the real pools get twice as many")
    parser.add_argument("--json", metavar="OUT", help="write the raw per-run results here")
    args = parser.parse_args(argv)

    if args.quick:
        n_seeds, n_queries, builtin_budgets, pool_budgets = 2, 200, (6,), (3,)
    else:
        n_seeds, n_queries, builtin_budgets, pool_budgets = 10, 500, (4, 8), (3, 4)
    n_seeds = args.seeds or n_seeds
    seeds = tuple(range(n_seeds))
    # The pools are one fixed workload whose seeds only reorder the replay: more of them.
    pool_seeds = seeds if args.quick else tuple(range(2 * n_seeds))

    results: list[dict] = []
    walls: list[float] = []
    failures: list[str] = []
    skipped: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ttcdsl-bench-bandit-") as tmp:
        directory = Path(tmp)
        for seed in seeds:
            work = builtin(directory, n_queries, 32, seed, builtin_budgets)
            run_workload(work, directory, results, walls, failures)
        for name, make, score in (("qwen-math100", qwen_math100, "rm"),
                                  ("crux-output", crux_output, None)):
            try:
                made = make(directory)
            except Exception as error:  # noqa: BLE001 - a bad pool skips, with its reason
                made = f"import failed: {type(error).__name__}: {error}"
            if isinstance(made, str):
                skipped.append(f"{name}: skipped, {made}")
                print(skipped[-1], file=sys.stderr)
                continue
            samples, queries = made
            for seed in pool_seeds:
                run_workload(Workload(name, samples, queries, score, pool_budgets, seed),
                             directory, results, walls, failures)
    total = time.perf_counter() - started

    rows = summarize(results)
    print(f"online bandit (round 2, cap 32, solved top_share >= 0.75 after 4 [+ score >= 0.7]) vs "
          f"uniform at equal spend, paired over seeds 0..{seeds[-1]} (builtin: {n_queries} "
          f"queries x 32 samples, a fresh workload per seed), 0..{pool_seeds[-1]} (real pools)")
    print("run / uniform: mean accuracy over seeds; diff = mean(run - uniform) ± its SE across "
          "seeds; ratio = run / uniform;")
    print("smp/q = samples per query spent (uniform spends the same); short = queries whose pool "
          "ran dry; solved = queries retired by the solved rules; wall = median per run (info)")
    print()
    print_table(rows)
    print()
    if walls:
        print(f"{len(walls)} runs, median wall clock {statistics.median(walls):.2f} s per run "
              f"(information only), total {total:.1f} s")
    for line in skipped:
        print(line)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"seeds": list(seeds), "pool_seeds": list(pool_seeds), "quick": args.quick, "runs": results,
                                   "summary": rows, "skipped": skipped, "failures": failures},
                                  indent=2), encoding="utf-8")
        print(f"raw results: {out}")
    if failures:
        print(f"{len(failures)} run(s) FAILED (details above on standard error):", file=sys.stderr)
        for line in failures:
            print("  " + line.splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
