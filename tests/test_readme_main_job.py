"""The README's main job is a promise: its command line, minus the install, runs from a clean
directory holding only the example policies, and leaves the artefacts it promises."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.paths import REPO


def _main_job() -> list[str]:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    (line,) = [x.strip() for x in lines if x.strip().startswith("python -m pip install -e")]
    steps = [step.strip() for step in line.split(" && ")]
    assert steps[0].startswith("python -m pip install")
    return steps[1:]


@pytest.mark.slow
def test_the_readme_main_job_runs_and_leaves_plans_runs_and_plots(tmp_path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    script = "ttc() { \"$PYTHON\" -m ttcdsl \"$@\"; }\nset -e\n" + "\n".join(_main_job()) + "\n"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    assert len(list((out / "plans").glob("*.plan.yaml"))) == len(list((REPO / "policies").glob("*.ttc")))
    for name in ("adaptive_vote", "bandit_entropy"):
        report = json.loads((out / "runs" / name / "report.json").read_text())
        assert report["queries"] == 500 and report["accuracy"] is not None
        assert report["baseline"]["accuracy"] is not None
        assert all(limit["within"] for limit in report["budget"])
    assert (out / "runs" / "adaptive_vote" / "plots" / "bins.png").is_file()
