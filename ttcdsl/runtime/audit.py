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


def count_samples(path: Path) -> SamplesCount:
    """Complete sample lines of a samples JSONL file (the header and a torn last line skipped)."""
    seen: set[tuple[Any, Any]] = set()
    rows = duplicates = 0
    with open(path, "rb") as handle:
        handle.readline()  # the header
        for line in handle:
            if not line.endswith(b"\n"):
                break  # a torn last line: not a stored sample
            try:
                row = json.loads(line)
                key = (row["query_id"], row["sample_index"])
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path}: a malformed sample line: {line[:80]!r}") from None
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
            hint="the run directory was probably written by two processes at once; run it "
            "again into a new --out",
        )
