"""The loop a user with no logs runs, on live generation: the built-in arithmetic questions, a
uniform calibration pass (`ttc run policies/live/calibrate.ttc`), whose samples.jsonl `ttc plan -c`
reads as it is, the quickstart policy planned on it and run on OTHER questions; the run's accuracy
agrees with the plan's prediction within the report's own standard errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.live.test_live_run import ttc
from tests.paths import REPO

pytestmark = pytest.mark.slow

# Shorter generations than the shipped policies (32 tokens), same everything else: CI time.
MAX_TOKENS = 16


def _policy(name: str, directory):
    text = (REPO / "policies" / "live" / name).read_text()
    assert "max_tokens 32" in text
    path = directory / name
    path.write_text(text.replace("max_tokens 32", f"max_tokens {MAX_TOKENS}"))
    return path


def test_calibrate_plan_run_on_live_generation(server, tmp_path) -> None:
    calib_q, eval_q = tmp_path / "calib_q.jsonl", tmp_path / "eval_q.jsonl"
    for path, count, seed in ((calib_q, 15, 0), (eval_q, 12, 1)):
        made = ttc(["queries", "arithmetic", "--count", str(count), "--seed", str(seed),
                    "-o", str(path)])
        assert made.returncode == 0, made.stderr
    live = ["--backend", "openai", "--endpoint", server, "--quiet"]
    calibration = tmp_path / "calibration"
    run = ttc(["run", str(_policy("calibrate.ttc", tmp_path)), "--queries", str(calib_q),
               "--out", str(calibration), *live])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(x) for x in (calibration / "samples.jsonl").read_text().splitlines()[1:]]
    assert Counter(r["query_id"] for r in rows) == {f"arith-s0-{i:03d}": 8 for i in range(15)}
    rates = [sum(r["correct"] for r in rows if r["query_id"] == q) / 8
             for q in {r["query_id"] for r in rows}]
    assert max(rates) > min(rates), "no spread of success rates: nothing to allocate"

    plan = tmp_path / "quickstart.plan.yaml"
    planned = ttc(["plan", str(_policy("quickstart.ttc", tmp_path)), "-c",
                   str(calibration / "samples.jsonl"), "-o", str(plan)])
    assert planned.returncode == 0, planned.stderr[-3000:]
    out = tmp_path / "quickstart"
    run = ttc(["run", str(plan), "--queries", str(eval_q), "--out", str(out), *live])
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    predicted = report["predicted"]
    spread = (predicted["accuracy_se"] ** 2 + report["accuracy_se"] ** 2) ** 0.5
    # 3 standard errors: a 1-in-370 false alarm for a right prediction on these few questions.
    assert abs(report["accuracy"] - predicted["accuracy"]) <= 3 * spread, (report, predicted)
    assert report["queries"] == 12 and report["exhausted_queries"] == 0
