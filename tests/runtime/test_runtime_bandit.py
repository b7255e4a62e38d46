"""The online bandit (`allocate bandit`): elimination by the solved rules, the per-query cap, the
exploration rules' order and width, token billing, the budget, resume after SIGKILL, and
`ttc run POLICY.ttc` without a plan. Scripted replay tables make every decision checkable by
hand; the built-in workload checks whole runs."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest
import yaml

from tests.runtime.runs import results, sample_keys, ttc, ttc_subprocess, workload_files
from ttcdsl.runtime.assignment import rank_key
from ttcdsl.samples import RunMeta, SampleRow, SamplesTable, save

BANDIT = """\
policy scripted_bandit "bandit on a scripted table"

budget {{
  {budget}
  samples per query in 2..{cap}
}}

sampling {{ temperature 0.8  max_tokens 2000 }}

scorer prm = reward_model "test/prm"

allocate bandit {{
  round 2 samples
  explore {explore}
  {solved}
  {bill}
}} maximize accuracy

answer majority_vote
"""


def _policy(directory: Path, *, explore="all", cap=10, budget="mean samples per query <= 20",
            solved="solved when score(prm) >= 0.7\n  solved when top_share >= 0.75 after 4",
            bill="", name="bandit.ttc") -> Path:
    path = directory / name
    path.write_text(
        BANDIT.format(explore=explore, cap=cap, budget=budget, solved=solved, bill=bill),
        encoding="utf-8",
    )
    return path


def _table(directory: Path, scripts: dict[str, dict]) -> tuple[Path, Path]:
    """A replay table and dataset: per query, ``answers`` (a list, or ``"distinct"``), a
    ``score`` for every sample and ``tokens`` per sample; 12 samples each."""
    rows = []
    for qid, script in scripts.items():
        for i in range(12):
            answer = f"{qid}-{i}" if script["answers"] == "distinct" else script["answers"]
            rows.append(
                SampleRow(
                    query_id=qid, sample_index=i, answer=answer, correct=answer == "7",
                    completion_tokens=script.get("tokens", 100), finish_reason="stop",
                    scores={"prm": script.get("score", 0.1)},
                )
            )
    samples = directory / "scripted.jsonl"
    save(SamplesTable.from_rows(rows, meta=RunMeta()), samples)
    queries = directory / "queries.jsonl"
    queries.write_text(
        "".join(json.dumps({"id": q, "kind": "math", "prompt": f"question {q}", "gold": "7"}) + "\n" for q in scripts),
        encoding="utf-8",
    )
    return samples, queries


def _run(policy: Path, samples: Path, queries: Path, out: Path, seed: int = 0) -> dict[str, dict]:
    code = ttc("run", str(policy), "--queries", str(queries), "--samples", str(samples),
               "--out", str(out), "--seed", str(seed), "--quiet")
    assert code == 0
    return {r["query_id"]: r for r in results(out)}


def _rounds(out: Path) -> dict[int, set[str]]:
    lines = (out / "samples.jsonl").read_text().splitlines()[1:]
    by_round: dict[int, set[str]] = {}
    for row in map(json.loads, lines):
        by_round.setdefault(row["round"], set()).add(row["query_id"])
    return by_round


def test_solved_rules_retire_queries_and_the_cap_stops_the_rest(tmp_path) -> None:
    samples, queries = _table(tmp_path, {
        "agree": {"answers": "7"},               # top_share 1.0, but only `after 4`
        "scatter": {"answers": "distinct"},      # never solved
        "reward": {"answers": "distinct", "score": 0.9},  # solved by the reward model at once
    })
    got = _run(_policy(tmp_path), samples, queries, tmp_path / "run")
    assert {q: r["samples"] for q, r in got.items()} == {"agree": 4, "scatter": 10, "reward": 2}
    assert {q: r["stopped"] for q, r in got.items()} == {"agree": True, "scatter": False, "reward": True}
    assert not any(r["budget_cut"] for r in got.values())  # scatter hit its cap, not the budget
    assert got["agree"]["answer"] == "7" and got["agree"]["correct"] is True
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["mode"] == "bandit"
    assert report["bandit"]["solved_queries"] == 2
    assert report["bandit"]["explore"] == "all"


@pytest.mark.parametrize("explore, served", [("entropy", "A"), ("gap", "A"), ("ucb", "B")])
def test_a_cut_round_goes_where_the_rule_ranks_first(tmp_path, explore, served) -> None:
    """Two never-solved queries, a budget for the first round and one more sample: A's answers
    are all different (entropy ln 2, gap index 1, top share 1/2), B's all the same (entropy 0,
    gap index 0). UCB's signal is the score the solved rule reads: B's 0.5 beats A's 0.1 at an
    equal bonus (same counts), so UCB picks B. The cut round goes one sample at a time in the
    rule's order, so the one sample left goes to the query the rule ranks first."""
    samples, queries = _table(
        tmp_path, {"A": {"answers": "distinct"}, "B": {"answers": "5", "score": 0.5}}
    )
    policy = _policy(tmp_path, explore=explore, budget="total samples <= 5",
                     solved="solved when score(prm) >= 0.7")
    got = _run(policy, samples, queries, tmp_path / "run")
    other = "B" if served == "A" else "A"
    assert got[served]["samples"] == 3 and got[other]["samples"] == 2
    assert got[served]["budget_cut"] and got[other]["budget_cut"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["end"] == "budget" and report["spend"]["samples"] == 5


@pytest.mark.parametrize("budget, last", [("total samples <= 5", "budget spent"), (None, "done")])
def test_the_last_progress_line_says_why_nothing_more_is_generated(tmp_path, capsys, budget, last) -> None:
    """The last round's progress line said "done" where the sample budget had run out with
    queries still active, beside a report that says "ended: budget"."""
    samples, queries = _table(tmp_path, {"A": {"answers": "distinct"}, "B": {"answers": "distinct"}})
    policy = _policy(tmp_path, cap=4, budget=budget or "mean samples per query <= 20",
                     solved="solved when score(prm) >= 0.7")
    code = ttc("run", str(policy), "--queries", str(queries), "--samples", str(samples),
               "--out", str(tmp_path / "run"))
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ttc run: round")]
    assert lines[-1].endswith(f"; {last}")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["end"] == ("budget" if budget else "done")


@pytest.mark.parametrize("explore", ["all", "ucb", "gap", "entropy"])
def test_every_rule_serves_every_active_query_while_the_budget_lasts(tmp_path, explore) -> None:
    """Issue 15: the ranked rules served the better-ranked half of the active queries each
    round, starving queries that a sample would have solved. Without a learned skip in the plan
    every rule serves every active query each round; the rule only orders it."""
    scripts = {f"q{i}": {"answers": "distinct"} for i in range(7)}
    samples, queries = _table(tmp_path, scripts)
    policy = _policy(tmp_path, explore=explore, cap=6, solved="solved when score(prm) >= 0.7")
    got = _run(policy, samples, queries, tmp_path / "run")
    assert all(r["samples"] == 6 for r in got.values())  # no budget binds: everyone reaches the cap
    assert _rounds(tmp_path / "run") == {r: set(scripts) for r in range(3)}


def test_bill_tokens_ranks_by_value_per_token(tmp_path) -> None:
    """Equal entropy; A costs 100 tokens a sample, B 1000. By samples the seeded rank breaks the
    tie (a seed where B ranks first); billed in tokens, the cheaper A goes first."""
    seed = next(s for s in range(100) if rank_key(s, "B") < rank_key(s, "A"))
    samples, queries = _table(tmp_path, {
        "A": {"answers": "distinct", "tokens": 100}, "B": {"answers": "distinct", "tokens": 1000},
    })
    common = dict(explore="entropy", budget="total samples <= 5", solved="solved when score(prm) >= 0.7")
    by_samples = _run(_policy(tmp_path, **common, name="s.ttc"), samples, queries, tmp_path / "s", seed)
    by_tokens = _run(_policy(tmp_path, **common, bill="bill tokens", name="t.ttc"), samples, queries,
                     tmp_path / "t", seed)
    assert (by_samples["A"]["samples"], by_samples["B"]["samples"]) == (2, 3)
    assert (by_tokens["A"]["samples"], by_tokens["B"]["samples"]) == (3, 2)


def test_a_token_budget_is_never_exceeded(tmp_path) -> None:
    samples, queries = workload_files(tmp_path, n=40, m=16)
    cap = 60_000
    policy = _policy(tmp_path, explore="ucb", cap=16, budget=f"total tokens <= {cap}",
                     solved="solved when top_share >= 0.75 after 4")
    _run(policy, samples, queries, tmp_path / "run")
    lines = (tmp_path / "run" / "samples.jsonl").read_text().splitlines()[1:]
    spent = sum(json.loads(line)["completion_tokens"] for line in lines)
    assert 0 < spent <= cap
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["end"] == "budget"
    assert all(limit["within"] for limit in report["budget"])


def test_a_plan_from_ttc_plan_runs_the_same_as_the_policy_file(tmp_path) -> None:
    samples, queries = workload_files(tmp_path, n=30, m=16)
    policy = _policy(tmp_path, explore="gap", cap=12, budget="mean samples per query <= 5",
                     solved="solved when top_share >= 0.75 after 4")
    planned = tmp_path / "bandit.plan.yaml"
    assert ttc("plan", "--no-simulate", str(policy), "--calibration", str(samples), "-o", str(planned)) == 0
    # `ttc plan` adds the learned skip; without it the plan holds the policy's settings only
    document = yaml.safe_load(planned.read_text())
    assert set(document["bandit"]["gain"]["states"])
    del document["bandit"]["gain"]
    plan = tmp_path / "settings.plan.yaml"
    plan.write_text(yaml.safe_dump(document))
    from_policy = _run(policy, samples, queries, tmp_path / "a", seed=3)
    from_plan = _run(plan, samples, queries, tmp_path / "b", seed=3)
    assert from_policy == from_plan
    assert sum(r["samples"] for r in from_plan.values()) <= 5 * 30
    learned = _run(planned, samples, queries, tmp_path / "c", seed=3)
    assert sum(r["samples"] for r in learned.values()) <= 5 * 30


def test_only_a_bandit_policy_runs_without_a_plan(tmp_path, capsys) -> None:
    samples, queries = workload_files(tmp_path, n=5, m=4)
    repo_policy = Path(__file__).resolve().parents[2] / "policies" / "self_consistency.ttc"
    code = ttc("run", str(repo_policy), "--queries", str(queries), "--samples", str(samples),
               "--out", str(tmp_path / "run"), "--quiet")
    assert code != 0
    err = capsys.readouterr().err
    assert "only a bandit policy runs without a plan" in err and "ttc plan" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def killed_setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("bandit_resume")
    samples, queries = workload_files(d, n=24, m=16)
    policy = _policy(d, explore="entropy", cap=12, budget="mean samples per query <= 6",
                     solved="solved when top_share >= 0.75 after 4")
    reference = d / "reference"
    _run(policy, samples, queries, reference, seed=7)
    return policy, samples, queries, reference


@pytest.mark.parametrize("crash", ["append:0", "appended:1", "append:3", "appended:5"])
def test_a_killed_bandit_run_resumes_to_the_same_results(killed_setup, tmp_path, crash) -> None:
    policy, samples, queries, reference = killed_setup
    out = tmp_path / "run"
    args = ["run", str(policy), "--queries", str(queries), "--samples", str(samples),
            "--out", str(out), "--seed", "7", "--quiet"]
    killed = ttc_subprocess(args, env={"TTC_RUN_CRASH": crash})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert results(out) == results(reference)
    keys = sample_keys(out)
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(sample_keys(reference))


def test_resume_refuses_another_seed(killed_setup, tmp_path, capsys) -> None:
    policy, samples, queries, _ = killed_setup
    out = tmp_path / "run"
    _run(policy, samples, queries, out, seed=7)
    assert ttc("run", "--resume", str(out), "--seed", "8", "--quiet") != 0
    assert "runs with seed 7, not 8" in capsys.readouterr().err
    assert ttc("run", "--resume", str(out), "--seed", "7", "--quiet") == 0


def test_ucb_without_a_scorer_reads_the_top_share(tmp_path) -> None:
    """No solved rule reads a scorer: a sample's UCB signal is agreeing with the leading answer.
    B (one answer, top share 1) beats A (all different, 1/2) for the one sample left."""
    samples, queries = _table(tmp_path, {"A": {"answers": "distinct"}, "B": {"answers": "5"}})
    policy = _policy(tmp_path, explore="ucb", budget="total samples <= 5",
                     solved="solved when top_share >= 0.75 after 4")
    got = _run(policy, samples, queries, tmp_path / "run")
    assert (got["A"]["samples"], got["B"]["samples"]) == (2, 3)


@pytest.fixture(scope="module")
def killed_learned_setup(tmp_path_factory):
    """A bandit plan with the learned skip (ttc plan on the same workload) whose run skips."""
    d = tmp_path_factory.mktemp("bandit_learned_resume")
    samples, queries = workload_files(d, n=60, m=16)
    policy = _policy(d, explore="entropy", cap=12, budget="mean samples per query <= 4")
    plan = d / "bandit.plan.yaml"
    assert ttc("plan", "--no-simulate", str(policy), "--calibration", str(samples), "-o", str(plan)) == 0
    reference = d / "reference"
    learned = _run(plan, samples, queries, reference, seed=7)
    plain = _run(policy, samples, queries, d / "plain", seed=7)
    assert learned != plain  # the skip changed some decision
    return plan, samples, queries, reference


@pytest.mark.parametrize("crash", ["appended:1", "append:3"])
def test_a_killed_learned_skip_run_resumes_to_the_same_results(killed_learned_setup, tmp_path,
                                                               crash) -> None:
    plan, samples, queries, reference = killed_learned_setup
    out = tmp_path / "run"
    args = ["run", str(plan), "--queries", str(queries), "--samples", str(samples),
            "--out", str(out), "--seed", "7", "--quiet"]
    killed = ttc_subprocess(args, env={"TTC_RUN_CRASH": crash})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = ttc_subprocess(["run", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert results(out) == results(reference)


@pytest.mark.parametrize("explore", ["gap", "entropy"])
def test_a_contest_rule_is_refused_on_answers_that_never_repeat(tmp_path, capsys, explore) -> None:
    """Issue 15: on a calibration table where no query repeats an answer, gap and entropy have
    nothing to rank by; `ttc plan` and `ttc compare` refuse them (TTC611) instead of planning a
    rule without signal. `explore ucb` plans on the same table."""
    samples, _ = _table(tmp_path, {f"q{i}": {"answers": "distinct"} for i in range(4)})
    policy = _policy(tmp_path, explore=explore, solved="solved when score(prm) >= 0.7")
    assert ttc("plan", "--no-simulate", str(policy), "--calibration", str(samples), "-o",
               str(tmp_path / "p.yaml")) == 1
    err = capsys.readouterr().err
    assert "TTC611" in err and f"explore {explore}" in err and "4 queries, 48 samples" in err
    assert "Traceback" not in err and not (tmp_path / "p.yaml").exists()
    ucb = _policy(tmp_path, explore="ucb", solved="solved when score(prm) >= 0.7", name="u.ttc")
    assert ttc("plan", "--no-simulate", str(ucb), "--calibration", str(samples), "-o",
               str(tmp_path / "u.yaml")) == 0
    # compare reports a policy it cannot plan in its row and goes on with the others
    assert ttc("compare", str(policy), str(ucb), "--samples", str(samples), "--budgets", "4",
               "--no-simulate", "--out", str(tmp_path / "cmp")) == 0
    refused, ran = json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
    assert "no calibration query repeats an answer" in refused["error"]
    assert not ran.get("error") and ran["value"] is not None
    # a comparison where nothing could run is exit 1 (each row says why)
    assert ttc("compare", str(policy), "--samples", str(samples), "--budgets", "4",
               "--no-simulate") == 1
    assert "no policy could run on this table" in capsys.readouterr().err


def test_explain_says_the_plan_carries_a_learned_skip(tmp_path, capsys) -> None:
    samples, _ = workload_files(tmp_path, n=20, m=8)
    policy = _policy(tmp_path, explore="entropy", cap=8)
    assert ttc("plan", "--no-simulate", str(policy), "--calibration", str(samples), "-o",
               str(tmp_path / "p.yaml"), "--explain") == 0
    plan = yaml.safe_load((tmp_path / "p.yaml").read_text())
    out = capsys.readouterr().out
    assert f"learned skip: {len(plan['bandit']['gain']['states'])} query states" in out


def test_a_hand_edited_gain_table_is_a_clear_error(tmp_path, capsys) -> None:
    samples, queries = workload_files(tmp_path, n=20, m=8)
    policy = _policy(tmp_path, explore="entropy", cap=8)
    planned = tmp_path / "p.yaml"
    assert ttc("plan", "--no-simulate", str(policy), "--calibration", str(samples), "-o", str(planned)) == 0
    document = yaml.safe_load(planned.read_text())
    key = next(iter(document["bandit"]["gain"]["states"]))
    document["bandit"]["gain"]["states"][key] = [0.1, 0.2]  # two of four fields
    planned.write_text(yaml.safe_dump(document))
    capsys.readouterr()
    code = ttc("run", str(planned), "--queries", str(queries), "--samples", str(samples),
               "--out", str(tmp_path / "run"), "--quiet")
    err = capsys.readouterr().err
    assert code == 1 and "bandit.gain table is malformed" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_run_whose_plan_predicts_nothing_says_so_in_words(tmp_path, capsys) -> None:
    """A bandit run from its .ttc file has no plan to predict it: the report showed
    "plan predicted - ± - (z = -)" and "(plan -" beside the samples per query."""
    samples, queries = _table(tmp_path, {"agree": {"answers": "7"}, "scatter": {"answers": "distinct"}})
    capsys.readouterr()
    assert ttc("run", str(_policy(tmp_path)), "--queries", str(queries), "--samples", str(samples),
               "--out", str(tmp_path / "run")) == 0
    shown = capsys.readouterr().out
    assert "none: the plan made no prediction" in shown
    assert "- ± -" not in shown and "(plan -" not in shown
