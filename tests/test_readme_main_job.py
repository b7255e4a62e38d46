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
def test_the_readme_main_job_compares_every_example_policy(tmp_path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    script = "ttc() { \"$PYTHON\" -m ttcdsl \"$@\"; }\nset -e\n" + "\n".join(_main_job()) + "\n"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out" / "compare"
    doc = json.loads((out / "compare.json").read_text())
    names = {row["policy"] for row in doc["rows"]}
    assert names == {p.stem for p in (REPO / "policies").glob("*.ttc")}
    ran = [row for row in doc["rows"] if "error" not in row]
    assert ran and all(row["verdict"] and row["samples_per_query"] > 0 for row in ran)
    assert doc["calibration_queries"] + doc["evaluation_queries"] == 1000
    assert (out / "compare.png").is_file() and (out / "compare.md").is_file()
    assert "verdict" in done.stdout
