"""The README's "From a log to a report" commands run as written, on the shared Qwen pool, and
leave what they promise: a labelled table, disjoint calibration and evaluation parts with their
queries files, a plan and a finished run with its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO


def _section_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## From a log to a report\n", 1)[1].split("\n## ", 1)[0]
    commands = [line[4:] for line in section.splitlines() if line.startswith("    ")]
    assert commands[0] == "mkdir -p out" and commands[-1].startswith("ttc report")
    return commands


@pytest.mark.slow  # about 25 s: import, split, plan, run and report end to end
def test_the_readme_log_to_report_commands_run(shared_data: Path, tmp_path: Path) -> None:
    # The commands name the pool as ../shared/data/... from the repository root: mirror that.
    work = tmp_path / "repo"
    work.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data)
    (work / "policies").symlink_to(REPO / "policies")
    script = 'ttc() { "$PYTHON" -m ttcdsl "$@"; }\nset -e\n' + "\n".join(_section_commands()) + "\n"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "imported 800 samples (100 queries, 8 samples each)" in done.stdout
    assert "calibration: 55 queries" in done.stdout and "evaluation: 45 queries" in done.stdout
    out = work / "out"
    calib = {json.loads(line)["id"] for line in (out / "calib_queries.jsonl").open()}
    evaluation = {json.loads(line)["id"] for line in (out / "eval_queries.jsonl").open()}
    assert len(calib) == 55 and len(evaluation) == 45 and not calib & evaluation
    report = json.loads((out / "runs" / "pool" / "report.json").read_text())
    assert report["queries"] == 45 and report["accuracy"] is not None
    assert all(limit["within"] for limit in report["budget"])
