"""`ttc run` of a policy with candidates runs the strategy the plan chose, also when resumed."""

from __future__ import annotations

import signal

import pytest

from tests.runtime.runs import results, run_args, ttc, ttc_subprocess, workload_files, write_policy
from ttcdsl.planner.plan import load_plan

# best_of_n over gold labels answers correctly whenever a served sample is correct, so the planner
# chooses it over majority vote (the first candidate), and every covered query of a run that
# executes the choice is answered correctly.
ORACLE = """\
policy pick "an oracle among the candidates"
offline evaluation
budget { mean samples per query <= 6  samples per query in 1..12 }
sampling { temperature 0.7  max_tokens 4096 }
probe 2 samples
scorer g = gold
feature agreement = top_share(answers)
bins by agreement thresholds [0.75] as split, agreed
strategy split = one of [majority_vote, best_of_n(g)]
strategy agreed = one of [majority_vote, best_of_n(g)]
stop { when beta_confidence >= tuned [0.9, 0.99] }
allocate optimal maximize accuracy
"""


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    d = tmp_path_factory.mktemp("candidates")
    policy = write_policy(d, ORACLE)
    samples, queries = workload_files(d, n=60, m=16)
    plan = d / "plan.yaml"
    assert ttc("plan", str(policy), "-c", str(samples), "-o", str(plan), "--reps", "16") == 0
    return d, plan, queries, samples


def _answers_like_the_choice(run_dir):
    rows = results(run_dir)
    assert any(r["covered"] for r in rows)
    assert all(r["correct"] == r["covered"] for r in rows), [
        (r["query_id"], r["correct"], r["covered"]) for r in rows if r["correct"] != r["covered"]
    ]
    assert any(r["samples"] > 2 for r in rows)


def test_the_plan_chooses_the_oracle_and_a_run_executes_it(planned, tmp_path):
    d, plan, queries, samples = planned
    loaded = load_plan(plan)
    assert [(b["strategy"], b["scorer"]) for b in loaded["bins"]] == [("best_of_n", "g")] * 2
    assert all(len(b["tuned"]) == 1 for b in loaded["bins"])
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=3)) == 0
    _answers_like_the_choice(out)


def test_a_resumed_run_executes_the_choice_too(planned, tmp_path):
    d, plan, queries, samples = planned
    out = tmp_path / "run"
    killed = ttc_subprocess(run_args(plan, queries, samples, out, seed=3),
                            env={"TTC_RUN_CRASH": "appended:1"})
    assert killed.returncode == -signal.SIGKILL
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    _answers_like_the_choice(out)
    reference = tmp_path / "reference"
    assert ttc(*run_args(plan, queries, samples, reference, seed=3)) == 0
    assert results(out) == results(reference)
