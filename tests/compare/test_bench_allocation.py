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


def _full(policy, budget, diff, share, ci=None, folder="policies", verdict=None):
    ci = ci or [diff - 0.01, diff + 0.01]
    word = verdict or ("better" if ci[0] > 0 else "worse" if ci[1] < 0 else "no better")
    return {"policy": policy, "budget": budget, "diff": diff, "ci": ci, "oracle_share": share,
            "verdict": f"{word} than uniform at equal spend", "metric": "accuracy", "value": 0.5,
            "file": str(REPO / folder / f"{policy}.ttc"), "coverage": 0.5}


def test_allocation_bars_read_the_best_row_and_name_what_is_short():
    coverage = {pool: {"rows": [_full("elimination_gold", b, 0.02, 0.55, folder="bench/policies")
                                for b in (3.0, 4.0)]
                       + [_full("oracle_coverage", b, 0.03, 1.0) for b in (3.0, 4.0)]}
                for pool in ("cruxeval-input", "cruxeval-output")}
    builtin = {"rows": [_full("adaptive_vote", 4.0, 0.035, 0.6), _full("adaptive_vote", 8.0, 0.01, 0.2),
                        _full("bandit_entropy", 8.0, -0.02, -0.1),
                        _full("oracle_coverage", 8.0, 0.10, 1.5)]}
    results = {"coverage": coverage, "vote": {}, "reward": {}, "builtin": {"builtin": builtin}}
    bars = {b["bar"].split(" ")[0] + " " + b["bar"].split(" ")[2]: b
            for b in allocation.allocation_bars(results)}
    share, margin, flagship, rules = bars.values()
    # 55% < 60%: the oracle policy (a ceiling) does not count
    assert not share["passed"] and "elimination_gold 55%" in share["figures"]
    # +3.5 at 4 but +1.0 at 8; the gold-reading oracle_coverage (+10) is no deployable policy
    assert not margin["passed"] and "short at 8 (+1.0 pts)" in margin["figures"]
    assert flagship["passed"]
    assert not rules["passed"] and "bandit_entropy on builtin at 8" in rules["figures"]
    for pool in coverage.values():
        for row in pool["rows"]:
            row["oracle_share"] = 0.7
    builtin["rows"][1]["diff"] = 0.031
    builtin["rows"][2]["ci"] = [-0.03, 0.01]
    assert all(b["passed"] for b in allocation.allocation_bars(results))
    best = allocation.best_rows(results)
    assert [(r["pool"], r["budget"], r["policy"]) for r in best] == [
        ("cruxeval-input", 3.0, "elimination_gold"), ("cruxeval-input", 4.0, "elimination_gold"),
        ("cruxeval-output", 3.0, "elimination_gold"), ("cruxeval-output", 4.0, "elimination_gold"),
        ("builtin", 4.0, "adaptive_vote"), ("builtin", 8.0, "adaptive_vote")]
