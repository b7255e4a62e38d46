"""bench/allocation.py's README writer and its quality bars' bookkeeping (not the figures: the
benchmark itself measures those, on the shared pools)."""

from __future__ import annotations

import importlib.util

from tests.paths import REPO

spec = importlib.util.spec_from_file_location("allocation", REPO / "bench" / "allocation.py")
allocation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocation)


def test_results_section_inserted_then_replaced(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nintro\n\n## The language in one example\n\nrest\n")
    allocation.write_readme("## Results\n\nfirst\n", readme)
    allocation.write_readme("## Results\n\nsecond\n", readme)
    text = readme.read_text()
    assert text.count(allocation.BEGIN) == 1 and text.count(allocation.END) == 1
    assert "second" in text and "first" not in text
    assert text.index(allocation.END) < text.index("## The language in one example")
    assert text.endswith("rest\n")


def _row(policy, budget, coverage, verdict="no better than uniform at equal spend: +0.0 points"):
    return {"policy": policy, "budget": budget, "coverage": coverage, "ci": [-0.01, 0.01],
            "verdict": verdict}


def test_bars_flag_what_is_missed():
    ref = {"uniform_coverage": {2: 0.401, 3: 0.424, 4: 0.443}, "static_oracle": {2: .475, 3: .475,
           4: .475}, "maj8": 0.925, "stop_rules": [
               {"policy": "a", "accuracy": 0.921, "samples_per_query": 2.7}]}
    coverage = {"budgets": [2.0], "rows": [_row("elimination_gold", 2.0, 0.41),
                                             _row("bandit_ucb_gold", 2.0, 0.40)]}
    builtin = {"rows": [_row("adaptive_vote", 8.0, 0.8, "better than uniform at equal spend"),
                        _row("oracle_coverage", 4.0, 0.8, "better than uniform at equal spend")]}
    for row in builtin["rows"]:
        row["diff"] = 0.01
        row["file"] = str(REPO / "policies" / f"{row['policy']}.ttc")
    results = {"reference": ref, "coverage": {"p": coverage}, "vote": {}, "reward": {},
               "builtin": {"builtin": builtin}}
    passed = {b["bar"].split(" ")[0] + " " + b["bar"].split(" ")[1]: b["passed"]
              for b in allocation.bars(results)}
    assert passed == {"uniform and": False, "no example": True, "the README's": True,
                      "an early-stopping": True, "the bandit": False}
    # the main job compares at 4 and 8; and a policy reading the gold answer is no policy to deploy
    builtin["rows"][0]["budget"] = 2.0
    (main,) = [b for b in allocation.bars(results) if b["bar"].startswith("the README's")]
    assert not main["passed"]
