"""`ttc simulate` reports progress as it simulates the draws, in chunks of seeds, and the
figures do not depend on the chunks: a chunked simulation's report equals the one-call report,
for a stop-rule policy (probe, bins, stop rules), the online bandit and the empirical mode."""

from __future__ import annotations

import json

import pytest

from tests.paths import REPO
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.simulate import Workload, draw_table, fit_table, simulate_plan

SEEDS = 5


@pytest.fixture(scope="module")
def table():
    return draw_table(Workload(name="builtin"), 120, 16, seed=2)


@pytest.mark.parametrize(("name", "empirical"), [
    ("adaptive_vote.ttc", False), ("bandit_entropy.ttc", False), ("early_stopping_sc.ttc", True),
])
def test_a_chunked_simulation_reports_progress_and_the_same_figures(table, name, empirical):
    policy = load_policy(REPO / "policies" / name)
    plan = make_plan(policy, table, reps=16, cross_check=False, batch_size=60).plan
    if empirical:
        fitted, logged = fit_table(table, policy, empirical=True)
        workload = Workload(name="empirical", fitted=fitted, logged=logged)
    else:
        workload = Workload(name="builtin")
    whole = simulate_plan(policy, plan, workload, n_queries=60, seeds=SEEDS, seed=3)
    lines: list[str] = []
    chunked = simulate_plan(policy, plan, workload, n_queries=60, seeds=SEEDS, seed=3,
                            progress=lines.append, seed_chunk=2)
    assert json.dumps(chunked, sort_keys=True) == json.dumps(whole, sort_keys=True)
    for label in ("policy", "uniform", "oracle"):
        done = [line for line in lines if line.startswith(f"{label}: ")]
        if label != "oracle":
            assert done == [f"{label}: {k}/{SEEDS} draws" for k in (2, 4, 5)], lines
        else:
            assert done == [f"oracle: {k}/{SEEDS} draws" for k in range(1, SEEDS + 1)], lines


def test_a_long_step_without_progress_says_it_is_still_at_it(monkeypatch, capsys):
    """One call of the simulator over all draws printed nothing for minutes (an empirical
    workload of 500 questions x 4 draws: over 190 s of silence)."""
    from ttcdsl.cli import main
    from ttcdsl.cli import simulate as simulate_cli

    monkeypatch.setattr(simulate_cli, "HEARTBEAT", 0.25)
    assert main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--queries", "40",
                 "--seeds", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert "still at it" in captured.err, captured.err
    assert json.loads(captured.out)["seeds"] == 2  # stdout holds the JSON alone
