"""Does a finished run's ``report.json`` agree with its ``samples.jsonl``?

The report's spend is the number of samples the run stored, each (query, sample index) once. Two
processes writing one run directory at once (possible before runs were locked) left files with
the same sample stored twice and more samples than the budget allows, under a report that still
claimed the run was within budget; ``ttc report`` refuses to show such a report as if it were
true.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcdsl.errors import UserError


@dataclass(frozen=True, slots=True)
class SamplesCount:
    rows: int
    duplicates: int  # rows whose (query_id, sample_index) an earlier row already had
    torn: bool = False  # the last line was cut off (a crash while appending)


def count_samples(path: Path) -> SamplesCount:
    """Complete sample lines of a samples JSONL file (the header and a torn last line skipped)."""
    seen: set[tuple[Any, Any]] = set()
    rows = duplicates = 0
    with open(path, "rb") as handle:
        handle.readline()  # the header
        for number, line in enumerate(handle, start=2):
            if not line.endswith(b"\n"):
                return SamplesCount(rows, duplicates, torn=True)  # not a stored sample
            try:
                row = json.loads(line)
                key = (row["query_id"], row["sample_index"])
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path}:{number}: a malformed sample line: {line[:80]!r}") from None
            rows += 1
            if key in seen:
                duplicates += 1
            seen.add(key)
    return SamplesCount(rows, duplicates)


def check_report_against_samples(report_path: Path, report: dict, samples_path: Path) -> None:
    """Refuse a report whose spend the samples file contradicts (module docstring)."""
    try:
        claimed = int(report["spend"]["samples"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{report_path}: not a run report (no spend.samples)") from None
    try:
        counted = count_samples(samples_path)
    except FileNotFoundError:
        raise UserError(f"{samples_path}: missing; the report cannot be checked") from None
    if counted.duplicates or counted.rows != claimed:
        twice = (f", {counted.duplicates} of them a (query_id, sample_index) stored twice"
                 if counted.duplicates else "")
        raise UserError(
            f"{samples_path} contradicts {report_path}: the file holds {counted.rows} samples"
            f"{twice}; the report counts {claimed}. Its spend, budget and accuracy figures are "
            "not those of the samples stored",
            hint=(f"its last line was cut off, as by a crash while it was written: ttc run "
                  f"--resume {samples_path.parent} repairs it and asks for the samples again"
                  if counted.torn and not counted.duplicates and counted.rows < claimed else
                  "the run directory was probably written by two processes at once; run it "
                  "again into a new --out"),
        )


def check_run_files(run_dir: Path) -> None:
    """Refuse a run directory whose plan, policy or samples are not the ones it ran with: a plan
    or policy copy replaced after the run (its hash is not the manifest's), or a samples file of
    another run (its header's seed, policy, backend or model). The report would be read against
    the wrong plan or show another run's samples."""
    from ttcdsl.lang.api import load_policy
    from ttcdsl.lang.diagnostics import DiagnosticError
    from ttcdsl.runtime.rundir import MANIFEST, PLAN, POLICY, SAMPLES, check_samples_header, file_sha256, read_manifest
    from ttcdsl.samples import SampleStore

    manifest = read_manifest(run_dir)
    hint = "put back the run's own file (the manifest keeps its sha256), or run again into a new --out"
    try:
        plan_sha = file_sha256(run_dir / PLAN)
    except FileNotFoundError:
        raise UserError(f"{run_dir / PLAN}: missing; the run's plan is part of its record", hint=hint) from None
    if plan_sha != manifest.plan_sha256:
        raise UserError(f"{run_dir / PLAN} is not the plan {run_dir} ran with (its sha256 is not the one "
                        f"{run_dir / MANIFEST} records): the report would be read against another plan",
                        hint=hint)
    if not (run_dir / POLICY).is_file():
        raise UserError(f"{run_dir / POLICY}: missing; the run's policy is part of its record", hint=hint)
    try:
        policy = load_policy(run_dir / POLICY)
    except DiagnosticError as error:  # it checked when the run began: it was changed since
        raise UserError(f"{run_dir / POLICY} is not the policy {run_dir} ran with: it does not check "
                        f"({error})", hint=hint) from None
    if policy.source_hash != manifest.policy_sha256:
        raise UserError(f"{run_dir / POLICY} is not the policy {run_dir} ran with (its hash is not the one "
                        f"{run_dir / MANIFEST} records)", hint=hint)
    check_samples_header(run_dir, manifest, SampleStore.open(run_dir / SAMPLES).meta())


# (report key, label): the figures a finished report states that its stored samples determine
RECOMPUTED = (("queries", "queries"), ("accuracy", "accuracy"), ("coverage", "coverage"))
SPEND = (("samples", "samples"), ("tokens", "tokens"), ("billed_tokens", "billed tokens"))


def _verdict_mismatches(report: dict) -> list[str]:
    """The verdict's words against its own difference and standard error, and its difference
    against the run's and the baseline's figures where all three cover the same queries."""
    from ttcdsl.verdict import verdict as words

    v = report.get("verdict")
    if isinstance(v, dict) and not isinstance(v.get("text"), str):
        return [f"verdict {json.dumps(v)} has no text"]
    if not isinstance(v, dict) or v.get("diff") is None:
        return []
    out = []
    try:
        expected = words(float(v["diff"]), None if v.get("se") is None else float(v["se"]))
    except (TypeError, ValueError):
        return [f"verdict {json.dumps(v)} is not a verdict"]
    if not str(v.get("text", "")).startswith(expected):
        out.append(f"verdict {json.dumps(v.get('text'))} in the report, {json.dumps(expected)} from its "
                   "own difference")
    metric = v.get("metric")
    base = report.get("baseline") or {}
    same_queries = v.get("queries") == report.get(f"{metric}_over", report.get("accuracy_over")) \
        == base.get(f"{metric}_over", base.get("accuracy_over"))
    if same_queries and isinstance(report.get(metric), int | float) and isinstance(base.get(metric), int | float):
        out += _mismatches([(f"verdict difference (the run's {metric} less uniform's)", v["diff"],
                             report[metric] - base[metric])], "from the two figures")
    return out


def check_report_figures(report_path: Path, report: dict, recomputed: dict) -> None:
    """Refuse a finished report whose accuracy, coverage, query count, spend or budget rows the
    run's own stored samples, replayed through the run's rules again (as a resume would), do not
    give, or whose verdict does not follow from its own figures: the report or the samples'
    labels were changed after the run. (The uniform baseline is not replayed here; its figures
    are held to the verdict's difference where both cover the same queries.)"""
    figures = [(label, report.get(key), recomputed.get(key)) for key, label in RECOMPUTED]
    spend, again = report.get("spend") or {}, recomputed.get("spend") or {}
    figures += [(label, spend.get(key), again.get(key)) for key, label in SPEND]
    rows = {row.get("label"): row for row in recomputed.get("budget") or [] if isinstance(row, dict)}
    for row in report.get("budget") or []:
        mine = rows.get(row.get("label")) if isinstance(row, dict) else None
        if mine is None:
            figures.append(("budget rows", json.dumps(row), "none like it"))
            continue
        figures += [(f"budget '{mine['label']}' {key}", row.get(key), mine.get(key))
                    for key in ("spent", "largest", "within")]
    problems = _mismatches(figures, "from the stored samples")
    if problems and report.get("outcome_rules") != recomputed.get("outcome_rules"):
        # scored by other rules than the samples were just scored by: the figures may differ
        # for that alone, and an honest older run must not be called edited
        raise UserError(
            f"{report_path} does not match the run's stored samples scored by this ttc's rules: "
            + "; ".join(problems) + f". The report was scored by another ttc's rules (outcome "
            f"rules {report.get('outcome_rules') or 'unnumbered, older'}; this ttc's are "
            f"{recomputed.get('outcome_rules')}: since 2 a query without an answer is wrong even "
            "where some of its samples are unlabelled), so its figures need not be this ttc's; "
            "this alone does not mean it was changed after the run",
            hint=f"ttc run --resume {report_path.parent} scores its stored samples again by this "
                 "ttc's rules and rewrites the report (a finished run generates nothing)")
    problems += _verdict_mismatches(report)
    if problems:
        raise UserError(f"{report_path} does not match the run's stored samples: " + "; ".join(problems)
                        + ". The report or the stored samples were changed after the run",
                        hint="run again into a new --out; a report is rebuilt from samples only by a run")


def check_results_file(results_path: Path, report: dict) -> None:
    """Refuse a finished run whose ``results.jsonl`` (one line per query) does not add up to its
    report: another run's results, a truncated file, or answers edited after the run (a resume
    rewrites it; ``ttc report`` reads the report, so nothing else would notice)."""
    from ttcdsl.samples.json_lines import json_objects

    try:
        rows = [row for _, row in json_objects(results_path, what="query result")]
    except FileNotFoundError:
        raise UserError(f"{results_path}: missing from a finished run") from None
    from ttcdsl.runtime.report import known_rate

    def rate(field: str) -> float | None:
        # the report's own rule, each rate over the queries whose value of `field` is known:
        # coverage over the queries with known accuracy called an honest run with unlabelled
        # samples "edited" (a query can have a known answer and an unknown coverage, and back)
        return known_rate([r.get(field) for r in rows])[0]

    problems = _mismatches((
        ("queries", report.get("queries"), len(rows)),
        ("samples", (report.get("spend") or {}).get("samples"),
         sum(int(r.get("samples") or 0) for r in rows)),
        ("accuracy", report.get("accuracy"), rate("correct")),
        ("coverage", report.get("coverage"), rate("covered")),
    ), "from it")
    if problems:
        raise UserError(f"{results_path} does not add up to the run's report: " + "; ".join(problems)
                        + ". It was replaced or edited after the run",
                        hint="ttc run --resume RUN_DIR rewrites it from the stored samples")


def _mismatches(figures, source: str) -> list[str]:
    """``label stated in the report, again SOURCE`` for each figure that differs (numbers
    within 1e-9; an unknown on one side only is a difference)."""
    out = []
    for label, stated, again in figures:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (stated, again))
        same = abs(float(stated) - float(again)) <= 1e-9 if numbers else stated == again
        if not same:
            out.append(f"{label} {json.dumps(stated)} in the report, {json.dumps(again)} {source}")
    return out
