"""Candidates per bin (`one of [...]`, `tuned [...]`): the planner's choice against brute force on a
real pool, the plan's record of the choice and the runner-up, candidates the table cannot serve,
the plan check, and a replay that runs the chosen strategy."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from ttcdsl.errors import UserError
from ttcdsl.importers import ImportOptions, import_qwen25math_eval
from ttcdsl.lang.api import parse_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.runtime.plancheck import check_plan_against_policy
from ttcdsl.samples.errors import FileFormatError

STRATEGIES = ("majority_vote", "best_of_n(prm)")
THRESHOLDS = (0.8, 0.95)


def policy_text(strategy: str, threshold: str, *, budget: float = 4) -> str:
    return f"""
policy cands "candidates per bin"
budget {{
  mean samples per query <= {budget}
  samples per query in 1..8
}}
sampling {{ temperature 0.7  max_tokens 4096 }}
probe 2 samples
scorer prm = reward_model "rm"
feature agreement = top_share(answers)
bins by agreement thresholds [0.75] as split, agreed
strategy split = {strategy}
strategy agreed = {strategy}
stop {{ when beta_confidence >= {threshold} }}
allocate optimal maximize accuracy
"""


TUNED = policy_text(f"one of [{', '.join(STRATEGIES)}]", f"tuned [{', '.join(map(str, THRESHOLDS))}]")
COLUMNS = {"prm": "rm"}


@pytest.fixture(scope="module")
def qwen(shared_data: Path):
    return import_qwen25math_eval(
        shared_data / "pools" / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7)
    )


@pytest.fixture(scope="module")
def tuned(qwen):
    return make_plan(parse_policy(TUNED), qwen, score_columns=COLUMNS, reps=64, cross_check=False)


@pytest.fixture(scope="module")
def literal(qwen):
    """Each choice written out as a plain policy (no candidates), planned the ordinary way: its
    curves are what the brute force enumerates."""
    out = {}
    for strategy, threshold in itertools.product(STRATEGIES, THRESHOLDS):
        policy = parse_policy(policy_text(strategy, str(threshold)))
        out[(strategy, threshold)] = make_plan(
            policy, qwen, score_columns=COLUMNS, reps=64, cross_check=False
        ).problem
    return out


def _lp(problems, bound: float) -> float:
    """max Σ_b w_b v_b·x_b s.t. Σ_b w_b c_b·x_b <= bound, Σ_k x_b = 1, x >= 0 (scipy's HiGHS)."""
    values, costs, eq_rows, weights = [], [], [], []
    for b, problem in enumerate(problems):
        ok = problem.allowed[b]
        w = problem.weight[b]
        values.append(w * problem.value[b, ok])
        costs.append(w * problem.cost[0, b, ok])
        eq_rows.append(ok.sum())
        weights.append(w)
    n = sum(eq_rows)
    a_eq = np.zeros((len(problems), n))
    start = 0
    for b, width in enumerate(eq_rows):
        a_eq[b, start:start + width] = 1
        start += width
    result = linprog(
        -np.concatenate(values), A_ub=np.concatenate(costs)[None], b_ub=[bound],
        A_eq=a_eq, b_eq=np.ones(len(problems)), bounds=(0, None), method="highs",
    )
    return -result.fun if result.status == 0 else -np.inf


def test_the_choice_is_the_brute_force_argmax_over_one_choice_per_bin(tuned, literal):
    choices = list(literal)
    best, best_value = None, -np.inf
    for combo in itertools.product(choices, repeat=2):
        # bin b takes its curve from the plain policy of its choice
        value = _lp([literal[combo[0]], literal[combo[1]]], 4.0)
        if value > best_value + 1e-9:
            best, best_value = combo, value
    plan = tuned.plan
    got = tuple(
        (b["strategy"] + (f"({b['scorer']})" if b["scorer"] else ""), b["tuned"][0])
        for b in plan["bins"]
    )
    assert plan["candidate_search"] == {"method": "enumeration", "assignments": 16}
    # the planner's objective (its relaxation) equals the best one-choice-per-bin relaxation
    assert tuned.solution.objective == pytest.approx(best_value, abs=1e-9)
    tie = _lp([literal[got[0]], literal[got[1]]], 4.0)
    assert tie == pytest.approx(best_value, abs=1e-9), (got, best)


def test_the_plan_records_the_choice_and_the_runner_up_at_the_same_spend(tuned, literal):
    for b, doc in enumerate(tuned.plan["bins"]):
        record = doc["candidates"]
        chosen = record["chosen"]
        assert chosen["strategy"] == doc["strategy"] + (f"({doc['scorer']})" if doc["scorer"] else "")
        assert chosen["thresholds"] == doc["tuned"]
        assert record["considered"] == 4
        spend = record["spend"]
        x = np.zeros(tuned.problem.n_options)
        for option in doc["allocation"]:
            x[list(tuned.curves.levels).index(option["samples"])] = option["share"]
        assert spend == pytest.approx(x @ tuned.problem.cost[0, b])
        assert chosen["value"] == pytest.approx(x @ tuned.problem.value[b])
        # runner-up: the best other choice's value at mean samples <= spend in this bin alone
        mine = (chosen["strategy"], chosen["thresholds"][0])
        others = {}
        for key, problem in literal.items():
            if key == mine:
                continue
            ok = problem.allowed[b]
            v, c = problem.value[b, ok], problem.cost[0, b, ok]
            r = linprog(-v, A_ub=c[None], b_ub=[spend + 1e-12], A_eq=np.ones((1, len(v))), b_eq=[1],
                        bounds=(0, None), method="highs")
            if r.status == 0:
                others[key] = -r.fun
        key, value = max(others.items(), key=lambda kv: kv[1])
        runner = record["runner_up"]
        assert runner["value"] == pytest.approx(value, abs=1e-9)
        assert others[(runner["strategy"], runner["thresholds"][0])] == pytest.approx(value, abs=1e-9)


def test_the_plan_file_keeps_the_choice_and_a_run_reads_it_back(tuned, tmp_path):
    from ttcdsl.planner.candidates import plan_choices
    from ttcdsl.planner.plan import load_plan, save_plan

    save_plan(tuned.plan, tmp_path / "p.yaml")
    again = load_plan(tmp_path / "p.yaml")
    choices = plan_choices(parse_policy(TUNED), again)
    for choice, doc in zip(choices, tuned.plan["bins"], strict=True):
        assert choice.strategy.label == doc["candidates"]["chosen"]["strategy"]
        assert list(choice.thresholds) == doc["tuned"]


def test_a_candidate_the_table_cannot_serve_is_dropped_with_a_warning_naming_it(qwen):
    # weighted_vote over the pool's reward-model logits is no vote (the weights rule refuses it),
    # and a scorer mapped to no column has nothing to read
    text = policy_text("one of [majority_vote, weighted_vote(prm), best_of_n(other)]", "0.9")
    text = text.replace('scorer prm = reward_model "rm"',
                        'scorer prm = reward_model "rm"\nscorer other = reward_model "x"')
    result = make_plan(parse_policy(text), qwen, score_columns=COLUMNS, reps=16, cross_check=False)
    warnings = " | ".join(result.plan["warnings"])
    assert "TTC502" in warnings
    assert "weighted_vote(prm)" in warnings and "best_of_n(other)" in warnings
    for doc in result.plan["bins"]:
        assert doc["strategy"] == "majority_vote"
        assert len(doc["candidates"]["dropped"]) == 2


def test_no_candidate_left_is_refused_naming_them(qwen):
    text = policy_text("one of [weighted_vote(prm), best_of_n(other)]", "0.9")
    text = text.replace('scorer prm = reward_model "rm"',
                        'scorer prm = reward_model "rm"\nscorer other = reward_model "x"')
    with pytest.raises(UserError) as error:
        make_plan(parse_policy(text), qwen, score_columns=COLUMNS, reps=16, cross_check=False)
    message = str(error.value)
    assert "TTC502" in message and "weighted_vote(prm)" in message and "best_of_n(other)" in message


def test_the_plan_check_refuses_a_choice_the_policy_does_not_list(tuned):
    import copy

    policy = parse_policy(TUNED)
    check_plan_against_policy(tuned.plan, policy, "p.yaml")  # the planner's own choice passes
    edited = copy.deepcopy(tuned.plan)
    edited["bins"][0]["strategy"], edited["bins"][0]["scorer"] = "weighted_vote", "prm"
    with pytest.raises(FileFormatError, match="bins\\[0\\].strategy"):
        check_plan_against_policy(edited, policy, "p.yaml")
    edited = copy.deepcopy(tuned.plan)
    edited["bins"][1]["tuned"] = [0.9]
    with pytest.raises(FileFormatError, match="bins\\[1\\].tuned"):
        check_plan_against_policy(edited, policy, "p.yaml")


ORACLE = """
policy pick "an oracle among the candidates"
offline evaluation
budget { mean samples per query <= 6  samples per query in 1..8 }
sampling { temperature 0.7  max_tokens 4096 }
probe 2 samples
scorer g = gold
feature agreement = top_share(answers)
bins by agreement thresholds [0.75] as split, agreed
strategy split = one of [majority_vote, best_of_n(g)]
strategy agreed = one of [majority_vote, best_of_n(g)]
allocate optimal maximize accuracy
"""


def test_a_replay_runs_the_strategy_the_plan_chose(qwen):
    # best_of_n over gold labels answers correctly whenever a served sample is correct: the
    # planner must choose it, and a replay of the plan must answer every covered query correctly
    # (majority vote, the first candidate, misses some on this pool).
    from ttcdsl.compare.runs import replay

    policy = parse_policy(ORACLE)
    plan = make_plan(policy, qwen, reps=16, cross_check=False).plan
    assert [(b["strategy"], b["scorer"]) for b in plan["bins"]] == [("best_of_n", "g")] * 2
    ids = tuple(qwen.query_ids())
    (run,) = replay(policy, plan, qwen, ids, {}, seeds=[0])
    assert run.covered.sum() > 0 and np.array_equal(run.correct, run.covered)
    first = dict(plan)
    first["bins"] = [dict(b, strategy="majority_vote", scorer=None) for b in plan["bins"]]
    (voted,) = replay(policy, first, qwen, ids, {}, seeds=[0])
    assert voted.correct.sum() < voted.covered.sum()


def test_ttc_plan_explain_shows_each_bins_choice_and_runner_up(tuned):
    from rich.console import Console

    from ttcdsl.planner.explain import explain

    console = Console(record=True, width=250)
    explain(tuned.plan, console)
    text = console.export_text()
    assert "candidates (chosen vs the best other at the same spend)" in text
    for doc in tuned.plan["bins"]:
        chosen, runner = doc["candidates"]["chosen"], doc["candidates"]["runner_up"]
        assert f"{chosen['strategy']}, stop at {chosen['thresholds'][0]:g}" in text
        assert f"{runner['strategy']}, stop at {runner['thresholds'][0]:g}" in text


def test_with_a_per_bin_limit_the_widened_solution_chooses_and_the_plan_says_so(qwen, literal):
    # a limit on one bin takes the problem off the single-limit frontier: the widened LP's
    # solution chooses (exact when it puts each bin on one choice), and the plan says so
    text = TUNED.replace("  samples per query in 1..8\n", "  samples per query in 1..8\n"
                         "  mean samples per query <= 3 for agreed\n")
    result = make_plan(parse_policy(text), qwen, score_columns=COLUMNS, reps=64, cross_check=False)
    assert result.plan["candidate_search"]["method"] == "widened relaxation"
    assert result.plan["budget"]  # the per-bin limit is planned
    got = tuple(
        (b["strategy"] + (f"({b['scorer']})" if b["scorer"] else ""), b["tuned"][0])
        for b in result.plan["bins"]
    )
    assert all(choice in literal for choice in got)
