"""`ttc simulate` on the example policies: the ones it models run on a fresh install (no data),
the others are refused by name with exit 1, never guessed."""

from __future__ import annotations

import json

import pytest

from tests.paths import REPO
from ttcdsl.cli import main


def test_self_consistency_equals_uniform_at_its_own_spend(capsys):
    """Self-consistency IS uniform allocation: on the same draws the difference is exactly 0."""
    code = main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--queries", "60",
                 "--seeds", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["samples"]["mean"] == 8.0
    assert report["simulated"]["max_samples"]["mean"] == 8.0
    assert report["difference"]["mean"] == 0.0
    assert report["simulated"]["accuracy"] == report["uniform"]["accuracy"]
    assert report["verdict"].startswith("no better than uniform")
    assert 0.0 < report["oracle"]["objective"]["mean"] <= 1.0


def test_best_of_n_equals_uniform_best_of_n_at_its_own_spend(capsys):
    """best_of_n IS uniform allocation answered by the reward model: uniform answers as the
    policy does, so on the same draws the difference is exactly 0."""
    code = main(["simulate", str(REPO / "policies" / "best_of_n.ttc"), "--queries", "60",
                 "--seeds", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["samples"]["mean"] == 8.0
    assert report["difference"]["mean"] == 0.0
    assert report["simulated"]["accuracy"] == report["uniform"]["accuracy"]


@pytest.mark.parametrize("name", ["compute_optimal", "oracle_coverage"])
def test_scored_and_offline_policies_run_on_a_fresh_install(name, capsys):
    """A reward-model difficulty with best-of-n and score-weighted bins; an offline stop rule on
    max(correct): simulated, with a verdict."""
    code = main(["simulate", str(REPO / "policies" / f"{name}.ttc"), "--queries", "60",
                 "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated"]["samples"]["mean"] > 1.0
    assert 0.0 < report["simulated"]["coverage"]["mean"] <= 1.0
    assert report["verdict"]


def test_per_query_allocation_runs_on_a_fresh_install(capsys):
    """policies/per_query_vote.ttc (refused before the simulator modelled per-query allocation):
    planned on a drawn table, each simulated batch allocated by the plan's predictor and
    Lagrangian after its probe; the spend keeps the budget (mean 8, at most 32 per query) and
    the targets differ between queries (some keep only the probe, some get far more)."""
    code = main(["simulate", str(REPO / "policies" / "per_query_vote.ttc"), "--queries", "80",
                 "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    sim = report["simulated"]
    assert 2.0 <= sim["samples"]["mean"] <= 8.0 + 1e-9
    assert 8.0 < sim["max_samples"]["mean"] <= 32
    assert 0.0 < sim["accuracy"]["mean"] <= sim["coverage"]["mean"] <= 1.0
    assert report["verdict"]


def test_a_per_query_feature_the_simulator_cannot_read_is_refused_by_name(tmp_path, capsys):
    """The predictor reads every feature of the policy: one the simulator does not compute from
    a probe is named in the refusal (exit 1), not guessed."""
    text = (REPO / "policies" / "per_query_vote.ttc").read_text()
    changed = text.replace("feature answers_seen = distinct(answers)",
                           "feature answers_seen = distinct(answers)\nfeature longest = max(tokens)")
    assert changed != text
    policy = tmp_path / "longest.ttc"
    policy.write_text(changed)
    code = main(["simulate", str(policy), "--queries", "20", "--seeds", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "does not support policy 'per_query_vote' yet" in err, err
    assert "a feature the per-query predictor uses reads ['max()', 'tokens']" in err, err


def test_token_budget_runs_on_a_fresh_install(capsys):
    """policies/token_budget.ttc (total and per-query token limits, prompt tokens charged): no
    data, simulated; the billed tokens (prompts included) keep both limits in every seed."""
    code = main(["simulate", str(REPO / "policies" / "token_budget.ttc"), "--queries", "60",
                 "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    simulated = report["simulated"]
    assert simulated["samples"]["mean"] >= 2.0
    assert 0.0 < simulated["max_tokens"]["mean"] <= 64_000
    assert 60 * simulated["tokens"]["mean"] <= 4_000_000
    # every sample bills its prompt (at least 16 tokens) on top of its completion tokens
    assert simulated["tokens"]["mean"] > 16 * simulated["samples"]["mean"]
    assert report["verdict"]


def test_bad_counts_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--seeds", "1"])
    assert exit_info.value.code == 2
    assert "--seeds must be at least 2" in capsys.readouterr().err


def test_a_plan_simulated_on_a_workload_fitted_to_its_table(tmp_path, capsys):
    """PLAN + --fit: the plan's own calibration table, fitted; the simulated spend and accuracy
    agree with the plan's predictions within their combined errors."""
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "calibration.jsonl"
    save(draw_table(Workload(name="builtin"), 240, 32, seed=4), table)
    plan = tmp_path / "esc.plan.yaml"
    assert main(["plan", str(REPO / "policies" / "early_stopping_sc.ttc"), "-c", str(table), "-o",
                 str(plan), "--reps", "32", "--no-cross-check"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(plan), "--fit", str(table), "--queries", "240", "--seeds", "8",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    import yaml

    predicted = yaml.safe_load(plan.read_text())["predicted"]
    for name in ("samples", "accuracy"):
        sim = report["simulated"][name]
        combined = (sim["se"] ** 2 + predicted[f"{name}_se"] ** 2) ** 0.5
        assert abs(sim["mean"] - predicted[name]) <= 3 * combined, (name, sim, predicted)
    assert report["workload"] == "fit:calibration.jsonl"


def test_a_table_without_token_counts_simulates_unknown_tokens(tmp_path, capsys):
    """Fitted to a table that logged no token counts, the simulation has no lengths anybody
    measured: its token figures are unknown (they read one token per sample)."""
    from ttcdsl.samples import load, save
    from ttcdsl.simulate import Workload, draw_table

    drawn = draw_table(Workload(name="builtin"), 60, 8, seed=5)
    table = tmp_path / "no_tokens.jsonl"
    save(drawn, table)
    lines = table.read_text().splitlines()
    table.write_text("\n".join([lines[0], *(json.dumps({**json.loads(line), "completion_tokens": None})
                                            for line in lines[1:])]) + "\n")
    assert not load(table).completion_tokens.count()
    capsys.readouterr()
    assert main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--fit", str(table),
                 "--queries", "30", "--seeds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for side in ("simulated", "uniform"):
        assert report[side]["tokens"] is None and report[side]["max_tokens"] is None
    assert report["simulated"]["samples"]["mean"] == pytest.approx(8.0)


def test_a_table_with_some_token_counts_says_what_its_token_figures_are(tmp_path, capsys):
    """A third of the samples without a count: the fit draws every length from the counts there
    are, and says the figure is that estimate; the empirical mode, which serves logged samples
    as they are, shows tokens as unknown (it printed nan); --check leaves tokens out, since the
    plan bills the uncounted samples at max_tokens (an upper bound), and says why."""
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "some_tokens.jsonl"
    save(draw_table(Workload(name="builtin"), 60, 8, seed=5), table)
    lines = table.read_text().splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    for i, row in enumerate(rows):
        if i % 3 == 0:
            row["completion_tokens"] = None
    table.write_text("\n".join([lines[0], *map(json.dumps, rows)]) + "\n")
    policy = str(REPO / "policies" / "self_consistency.ttc")
    capsys.readouterr()
    assert main(["simulate", policy, "--fit", str(table), "--queries", "30", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "tokens: an estimate: every length is drawn from the 67% of the table's samples" in out
    assert main(["simulate", policy, "--fit", str(table), "--empirical", "--queries", "30", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out
    assert [line.split() for line in out.splitlines() if line.startswith("tokens ")] == [
        ["tokens", "unknown", "unknown"]]
    assert "tokens: unknown: 33% of the table's samples logged no completion token count" in out
    plan = tmp_path / "plan.yaml"
    assert main(["plan", policy, "--calibration", str(table), "-o", str(plan)]) == 0
    capsys.readouterr()
    assert main(["simulate", str(plan), "--fit", str(table), "--queries", "30", "--seeds", "2",
                 "--check", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "not checked: tokens per query, where the plan bills the 33% of samples without a count" in out
    assert "tokens per query: the plan predicts" not in out


def test_a_fitted_workload_reads_the_policys_scorer_column(tmp_path, capsys):
    """--fit fits the scores of the policy's reward scorer: a table whose only score column is
    another scorer's is refused by name (it used to be fitted as if it were the policy's)."""
    from types import SimpleNamespace

    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "other.jsonl"
    save(draw_table(Workload(name="builtin"), 40, 8, seed=2, scorer=SimpleNamespace(name="orm", logits=False)),
         table)
    code = main(["simulate", str(REPO / "policies" / "best_of_n.ttc"), "--fit", str(table),
                 "--queries", "40", "--seeds", "2"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"--fit {table} cannot serve policy 'best_of_n': it lacks the score column 'prm'" in err, err
    assert "its score columns: orm" in err, err
    # the hint's --score is simulate's own option (it named one only ttc plan had)
    code = main(["simulate", str(REPO / "policies" / "best_of_n.ttc"), "--fit", str(table),
                 "--score", "prm=orm", "--queries", "40", "--seeds", "2", "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["simulated"]["accuracy"]["mean"] > 0
    with pytest.raises(SystemExit) as caught:  # a mapping without a table to map
        main(["simulate", str(REPO / "policies" / "best_of_n.ttc"), "--score", "prm=orm"])
    assert caught.value.code == 2 and "give --fit SAMPLES" in capsys.readouterr().err


def test_the_bandit_runs_on_a_fresh_install(capsys):
    """`ttc simulate policies/bandit_entropy.ttc` (refused before the simulator modelled the
    bandit): planned on a drawn table (with the learned skip), simulated, printed with a verdict;
    the spend keeps the budget (mean 8, at most 32 per query) and rounds are the bandit's."""
    code = main(["simulate", str(REPO / "policies" / "bandit_entropy.ttc"), "--queries", "60",
                 "--seeds", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "bandit_entropy on builtin" in out
    assert out.splitlines()[-1].startswith("verdict: ")
    code = main(["simulate", str(REPO / "policies" / "bandit_entropy.ttc"), "--queries", "60",
                 "--seeds", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    sim = report["simulated"]
    assert 2.0 <= sim["samples"]["mean"] <= 8.0 + 1e-9
    assert sim["max_samples"]["mean"] <= 32
    assert sim["rounds"]["mean"] > 2  # a first round of 2, then rounds of 2 samples
    assert 0.0 < sim["accuracy"]["mean"] <= sim["coverage"]["mean"] <= 1.0


def test_a_bandit_without_a_per_query_cap_draws_as_far_as_a_question_goes(tmp_path, capsys):
    """bandit_entropy without its per-query cap, at a mean budget of 16 on 12 questions (refused
    before: the simulator needed a bound on each question's samples): the questions the solved
    rule does not retire take the batch's budget, one of them past the first stand-in length
    (64 samples), so the simulation is drawn again with room for twice as many and says so; the
    spend keeps the budget."""
    policy = tmp_path / "uncapped.ttc"
    text = (REPO / "policies" / "bandit_entropy.ttc").read_text()
    policy.write_text(text.replace("  samples per query in 2..32\n", "").replace(
        "mean samples per query <= 8", "mean samples per query <= 16"))
    code = main(["simulate", str(policy), "--queries", "12", "--seeds", "4", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "(the policy caps none): simulating again with room for" in captured.err, captured.err
    sim = json.loads(captured.out)["simulated"]
    assert sim["samples"]["mean"] <= 16 + 1e-9
    assert sim["max_samples"]["mean"] > 32, sim["max_samples"]  # the capped policy's most


# --------------------------------------------------------------------------- --budget, --sweep


def test_budget_replans_the_policy_at_that_budget(capsys):
    """--budget 3: the policy planned at `mean samples per query <= 3` (its 8 rewritten), so the
    simulated spend keeps the new budget (the ledger never exceeds it) where the policy's own
    budget of 8 would spend more."""
    code = main(["simulate", str(REPO / "policies" / "oracle_coverage.ttc"), "--budget", "3",
                 "--queries", "60", "--seeds", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["budget"] == 3.0
    assert 2.0 < report["simulated"]["samples"]["mean"] <= 3.0 + 1e-9
    assert "planning oracle_coverage" in captured.err


def test_sweep_prints_writes_json_and_draws_the_three_lines(tmp_path, capsys):
    """--sweep LO..HI:STEP (ttc plan's syntax) on a named workload: one point per budget with
    the policy, uniform at the policy's spend and the oracle, the verdict; the JSON file is the
    document printed; the PNG is written; progress lines count the budgets."""
    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    code = main(["simulate", str(REPO / "policies" / "oracle_coverage.ttc"), "--workload", "hard",
                 "--sweep", "2..4:2", "--queries", "60", "--seeds", "2", "--json",
                 "--sweep-out", str(out), "--sweep-plot", str(png)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc == json.loads(out.read_text())
    assert doc["workload"] == "hard" and doc["objective"] == "coverage"
    assert [p["budget"] for p in doc["points"]] == [2.0, 4.0]
    for point in doc["points"]:
        assert point["samples"]["mean"] <= point["budget"] + 1e-9
        for line in ("policy", "uniform", "oracle"):
            assert 0.0 < point[line]["mean"] <= 1.0
        # the difference is the policy's against uniform's, on the same draws (JSON: 6 digits)
        assert point["difference"]["mean"] == pytest.approx(point["policy"]["mean"] - point["uniform"]["mean"],
                                                            abs=1e-5)
        assert point["verdict"]
    assert doc["points"][1]["samples"]["mean"] > doc["points"][0]["samples"]["mean"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[1/2]" in captured.err and "[2/2]" in captured.err


def test_sweep_renders_a_table(capsys):
    code = main(["simulate", str(REPO / "policies" / "oracle_coverage.ttc"), "--sweep", "3..3",
                 "--queries", "40", "--seeds", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "budget" in out and "oracle %" in out and "than uniform" in out


@pytest.mark.parametrize("argv, message", [
    (["--budget", "lots"], "--budget 'lots': expected a positive number"),
    (["--budget", "-2"], "--budget '-2': expected a positive number"),
    (["--sweep", "8..2"], "--sweep '8..2': expected LO..HI"),
    (["--sweep", "2-8"], "--sweep '2-8': expected LO..HI"),
    (["--sweep", "2..8", "--budget", "4"], "--budget and --sweep exclude each other"),
    (["--sweep-out", "x.json"], "--sweep-out needs --sweep"),
    (["--workload", "nightmare"], "no such workload; the workloads are builtin, easy, hard, trap"),
])
def test_bad_flags_are_clear_messages_exit_2(argv, message, capsys):
    """Command-line mistakes: exit 2, as ttc plan's and ttc compare's (they were exit 1)."""
    with pytest.raises(SystemExit) as caught:
        main(["simulate", str(REPO / "policies" / "oracle_coverage.ttc"), *argv])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert message in err and "Traceback" not in err


def test_an_output_that_is_an_input_or_exists_is_refused_before_simulating(tmp_path, capsys):
    """--sweep-out and --sweep-plot replaced any file, the simulated policy's own included."""
    policy = tmp_path / "p.ttc"
    policy.write_bytes((REPO / "policies" / "adaptive_vote.ttc").read_bytes())
    before = policy.read_bytes()
    code = main(["simulate", str(policy), "--sweep", "4..6", "--sweep-out", str(policy), "--force"])
    assert code == 1 and "is an input of this command" in capsys.readouterr().err
    assert policy.read_bytes() == before
    existing = tmp_path / "f.json"
    existing.write_text("keep")
    code = main(["simulate", str(policy), "--sweep", "4..6", "--sweep-out", str(existing)])
    err = capsys.readouterr().err
    assert code == 1 and "already exists" in err and "--force" in err
    assert existing.read_text() == "keep" and "simulating" not in err


def test_budget_of_a_policy_without_a_batch_budget_is_refused(capsys):
    code = main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--budget", "4"])
    assert code == 1
    assert "declares no batch budget (`mean samples per query`, `total tokens`, ...)" in capsys.readouterr().err


def test_budget_sets_a_token_budget_in_its_own_units(capsys):
    """token_budget declares `total tokens <= 4M` and no samples budget: --budget 300k plans it at
    `total tokens <= 300000` (written as a policy writes numbers) and the simulated bill keeps
    it (7,500 per question: binding), where 3M lets it spend more."""
    reports = {}
    for text in ("300k", "3M"):
        code = main(["simulate", str(REPO / "policies" / "token_budget.ttc"), "--budget", text,
                     "--queries", "40", "--seeds", "2", "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        reports[text] = json.loads(captured.out)
    low, high = reports["300k"], reports["3M"]
    assert low["budget"] == 3e5 and low["budget_limit"] == "total tokens"
    # every draw's bill is kept inside the simulation (a breach is an error); the mean shows it
    assert low["simulated"]["tokens"]["mean"] * 40 <= 3e5
    assert high["simulated"]["samples"]["mean"] > low["simulated"]["samples"]["mean"]


def test_sweep_of_a_token_budget_names_its_limit(capsys):
    code = main(["simulate", str(REPO / "policies" / "token_budget.ttc"), "--sweep", "1M..2M:1M",
                 "--queries", "40", "--seeds", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["limit"] == "total tokens"
    assert [p["budget"] for p in doc["points"]] == [1e6, 2e6]


def test_a_budget_the_policy_cannot_take_is_a_message(capsys):
    """A samples budget below the policy's per-query minimum: the language's own check, said
    about the budget asked for (not a traceback, not the rewritten source)."""
    code = main(["simulate", str(REPO / "policies" / "oracle_coverage.ttc"), "--budget", "0.5"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "budget 0.5 for policy 'oracle_coverage'" in err
    # a token suffix on a budget in samples (it was read as 2,000,000 samples per query)
    for flag, value in (("--budget", "2M"), ("--sweep", "1..2k")):
        assert main(["simulate", str(REPO / "policies" / "compute_optimal.ttc"), flag, value]) == 1
        assert "a K/M/G suffix writes a token count" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("just: yaml\n", "not a ttcdsl plan"),
    ("{{{{\n", "not valid YAML"),
])
def test_a_file_that_is_not_a_plan_is_refused(tmp_path, text, message, capsys):
    plan = tmp_path / "nope.yaml"
    plan.write_text(text)
    for argv in (["simulate", str(plan)], ["simulate", "--check", str(plan)]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1 and message in err and "Traceback" not in err


# --------------------------------------------------------------------------- --check


@pytest.fixture(scope="module")
def esc_plan(tmp_path_factory):
    """early_stopping_sc planned on a table drawn from the built-in workload (the table kept)."""
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    root = tmp_path_factory.mktemp("check")
    table = root / "calibration.jsonl"
    save(draw_table(Workload(name="builtin"), 240, 32, seed=4), table)
    plan = root / "esc.plan.yaml"
    assert main(["plan", str(REPO / "policies" / "early_stopping_sc.ttc"), "-c", str(table), "-o",
                 str(plan), "--reps", "32", "--no-cross-check"]) == 0
    return plan, table


def test_check_passes_when_the_plan_and_the_simulation_agree(esc_plan, capsys):
    plan, table = esc_plan
    capsys.readouterr()
    code = main(["simulate", "--check", str(plan), "--fit", str(table), "--seeds", "8"])
    out = capsys.readouterr().out
    assert code == 0
    assert "check: the plan's predictions agree with the simulation" in out
    assert "accuracy, samples per query" in out


def test_check_names_the_figure_that_disagrees(esc_plan, tmp_path, capsys):
    """A plan whose recorded accuracy is 25 points too high: exit 1 naming accuracy (not the
    samples, which still agree), with the difference and the interval recomputed here."""
    import yaml

    from scipy.stats import t

    plan, table = esc_plan
    doc = yaml.safe_load(plan.read_text())
    doc["predicted"]["accuracy"] = min(1.0, doc["predicted"]["accuracy"] + 0.25)
    wrong = tmp_path / "wrong.plan.yaml"
    wrong.write_text(yaml.safe_dump(doc, sort_keys=False))
    capsys.readouterr()
    code = main(["simulate", "--check", str(wrong), "--fit", str(table), "--seeds", "8", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    report = json.loads(captured.out)
    assert "the plan's predictions disagree with the simulation" in captured.err
    assert "accuracy: the plan predicts" in captured.err
    assert "samples per query:" not in captured.err
    sim = report["simulated"]["accuracy"]
    row = next(r for r in report["check"]["figures"] if r["figure"] == "accuracy")
    difference = sim["mean"] - doc["predicted"]["accuracy"]
    # Student's t at the Welch-Satterthwaite degrees of freedom: the plan's side has infinitely
    # many, the simulation's side 8 draws - 1
    a, b = doc["predicted"]["accuracy_se"] ** 2, sim["se"] ** 2
    interval = t.ppf(0.975, (a + b) ** 2 / (b**2 / 7)) * (a + b) ** 0.5
    assert abs(difference) > interval
    assert row["difference"] == pytest.approx(difference) and row["interval"] == pytest.approx(interval)
    assert f"{100 * abs(difference):.1f} points lower in simulation" in captured.err
    assert f"combined 95% interval of ±{100 * interval:.1f} points" in captured.err


def test_check_refuses_a_policy_and_a_second_file(esc_plan, capsys):
    plan, _ = esc_plan
    policy = str(REPO / "policies" / "early_stopping_sc.ttc")
    for argv, said in ((["--check", policy], "a policy has no predictions to check"),
                       ([policy, "--check", str(plan)], "give it alone"),
                       (["--check", str(plan), "--budget", "4"], "takes no --budget or --sweep")):
        with pytest.raises(SystemExit) as caught:
            main(["simulate", *argv])
        assert caught.value.code == 2 and said in capsys.readouterr().err


# --------------------------------------------------------------------------- workloads, sharding


def test_named_workloads_differ_as_named():
    """easy is easier than builtin, hard harder (and mostly unsolvable questions), trap's wrong
    answers gather on one distractor; each reaches the draws through ttcdsl's Workload."""
    import jax
    import numpy as np

    from simulator.workloads import WORKLOADS, mixture
    from ttcdsl.simulate import Workload

    keys = jax.random.split(jax.random.key(0), 2)
    drawn = {name: Workload(name=name, mixture=mixture(name)).draw(keys, 2000) for name in WORKLOADS}
    p = {name: float(np.asarray(q.p_correct).mean()) for name, q in drawn.items()}
    assert p["easy"] > p["builtin"] + 0.1 > p["hard"] + 0.2
    assert float((np.asarray(drawn["hard"].p_correct) < 0.05).mean()) > 0.3
    top = {name: float(np.asarray(q.wrong)[..., 0].mean()) for name, q in drawn.items()}
    assert top["trap"] > top["builtin"] + 0.2
    # builtin is the default mixture: the same draws as a Workload without one
    assert np.array_equal(np.asarray(drawn["builtin"].p_correct),
                          np.asarray(Workload(name="builtin").draw(keys, 2000).p_correct))


# on two forced CPU devices: `ttc simulate` reports on two devices and on one are the same, and
# the two-device run prints NOTE
_REPORTS = r"""
def report():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["simulate", sys.argv[1], "--queries", "64", "--seeds", "2", "--json"]) == 0
    return json.loads(out.getvalue()), err.getvalue()
two, err = report()
assert NOTE in err, err
shard.question_devices = lambda n, devices=None: jax.devices()[:1]
one, err = report()
assert "devices" not in err, err
assert one == two, (one, two)
print("equal")
"""

_HEADER = r"""
import contextlib, io, json, sys
import jax, numpy as np
assert len(jax.devices()) == 2, jax.devices()
from simulator import shard
from ttcdsl.cli import main
"""

_SHARDED = _HEADER + r"""
from simulator.rollout import simulate
from ttcdsl.lang.api import load_policy
from ttcdsl.planner.build import make_plan
from ttcdsl.simulate import Workload, draw_table, lower

# the rollout itself: the questions split over both devices, every outcome equal
policy = load_policy(sys.argv[1])
workload = Workload(name="builtin")
plan = make_plan(policy, draw_table(workload, 60, 16, seed=1), reps=8, cross_check=False, batch_size=64).plan
low = lower(policy, plan, 64)
keys = jax.random.split(jax.random.key(0), 3)
questions = workload.draw(keys, 64)
sharded = shard.shard_questions(questions, 64)
assert len(sharded.p_correct.sharding.device_set) == 2
a = simulate(keys, questions, low.arrays, low.config)
b = simulate(keys, sharded, low.arrays, low.config)
assert len(b.samples.sharding.device_set) == 2
for field in a._fields:
    assert np.array_equal(np.asarray(getattr(a, field)), np.asarray(getattr(b, field))), field

NOTE = "sharded over 2 devices"
""" + _REPORTS

_PER_QUERY_DEVICES = _HEADER + r"""
NOTE = "on one of the 2 devices (the per-query rule reads the whole batch's probes)"
""" + _REPORTS


def _on_two_devices(tmp_path, script: str, policy: str) -> None:
    """Run ``script`` on the example ``policy`` with two forced CPU devices; it prints "equal"."""
    import os
    import subprocess
    import sys

    path = tmp_path / "two_devices.py"
    path.write_text(script)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, str(path), str(REPO / "policies" / f"{policy}.ttc")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("equal")


def test_sharded_and_unsharded_rollouts_are_equal(tmp_path):
    """On two (forced) CPU devices the questions are sharded across both, in the simulator and
    in `ttc simulate`; the outcomes and the report equal the unsharded ones."""
    _on_two_devices(tmp_path, _SHARDED, "early_stopping_sc")


def test_per_query_allocation_on_several_devices_runs_on_one(tmp_path):
    """With two (forced) CPU devices, a per-query policy is simulated on one of them (its rule
    is a host callback over the whole batch's probes, which GSPMD cannot partition around: a
    sharded run deadlocked), says so, and reports what a one-device machine reports."""
    _on_two_devices(tmp_path, _PER_QUERY_DEVICES, "per_query_vote")


def test_a_token_limited_bandit_keeps_its_total(tmp_path, capsys):
    """policies/bandit_entropy.ttc with `total tokens <= 300k` and prompts charged (refused
    before the simulator's bandit had the token ledger): simulated on 60 questions, every draw
    bills at most 300k tokens (5,000 per question on average), and the limit binds."""
    text = (REPO / "policies" / "bandit_entropy.ttc").read_text()
    anchor = "  samples per query in 2..32\n"
    policy = tmp_path / "bandit_tokens.ttc"
    policy.write_text(text.replace(anchor, anchor + "  total tokens <= 300k\n  charge prompt tokens\n"))
    code = main(["simulate", str(policy), "--queries", "60", "--seeds", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    tokens = report["simulated"]["tokens"]
    assert 4000 < tokens["mean"] <= 300_000 / 60 + 1e-6, tokens
    assert report["verdict"]


def test_a_gold_bandit_runs_with_uniform_and_the_oracle(capsys):
    """bench/policies/elimination_gold.ttc (an offline evaluation: solved at the first correct
    sample, answer best-of-n by the gold label; refused before, as neither uniform nor the oracle
    had a gold best-of-n): best-of-n by the label is right whenever a sample is, so every column's
    accuracy is its coverage; elimination serves round-robin up to each question's first correct
    sample, the dynamic oracle for coverage, which beats uniform at equal spend."""
    code = main(["simulate", str(REPO / "bench" / "policies" / "elimination_gold.ttc"),
                 "--queries", "60", "--seeds", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for column in ("simulated", "uniform"):
        assert report[column]["accuracy"] == report[column]["coverage"], column
    assert report["simulated"]["samples"]["mean"] <= 4 + 1e-9
    assert report["verdict"].startswith("better than uniform"), report["verdict"]


def _self_consistency_plan(tmp_path, queries: int) -> dict:
    """self_consistency's plan (as a document) on a table of ``queries`` built-in questions."""
    import yaml

    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "calibration.jsonl"
    save(draw_table(Workload(name="builtin"), queries, 8, seed=4), table)
    plan = tmp_path / "sc.plan.yaml"
    assert main(["plan", str(REPO / "policies" / "self_consistency.ttc"), "-c", str(table), "-o",
                 str(plan), "--reps", "8", "--no-cross-check"]) == 0
    return yaml.safe_load(plan.read_text())


def test_a_hand_edited_plan_is_refused_as_ttc_run_refuses_it(tmp_path, capsys):
    """The runtime's plan check: a plan whose mode or strategy no longer matches its policy
    crashed the simulator (or was simulated as if nothing were wrong)."""
    import yaml

    data = _self_consistency_plan(tmp_path, 60)
    for field, value in (("mode", "bandit"), ("objective", "coverage")):
        edited = tmp_path / f"{field}.plan.yaml"
        edited.write_text(yaml.safe_dump({**data, field: value}, sort_keys=False))
        capsys.readouterr()
        assert main(["simulate", str(edited), "--queries", "20", "--seeds", "2"]) == 1
        err = capsys.readouterr().err
        assert f"{edited}: field {field!r}" in err and "internal error" not in err, err


def test_a_check_with_nothing_to_check_fails(tmp_path, capsys):
    """A plan that records no prediction (here, emptied by hand) cannot agree with anything:
    the check said 'agree (nothing)' and passed."""
    import yaml

    data = _self_consistency_plan(tmp_path, 40)
    plan = tmp_path / "emptied.plan.yaml"
    plan.write_text(yaml.safe_dump({**data, "predicted": {}}, sort_keys=False))
    capsys.readouterr()
    assert main(["simulate", "--check", str(plan), "--seeds", "2"]) == 1
    assert "nothing to check" in capsys.readouterr().err


def test_the_planners_warnings_are_said_when_simulate_plans(tmp_path, capsys):
    """A fixed-8 policy fitted to a table of 1 sample per question: the plan's warnings reached
    ttc plan's user, not ttc simulate's. The fitted model draws past the table's depth, so the
    policy runs at its 8 (it was cut to the 1 logged, with a hint at an option simulate lacks),
    and the warning says those counts are the model's."""
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "one.jsonl"
    save(draw_table(Workload(name="builtin"), 40, 1, seed=4), table)
    capsys.readouterr()
    assert main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--fit", str(table),
                 "--queries", "20", "--seeds", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: bin 'all': counts from 8 on exceed some queries' logged samples" in captured.err
    assert json.loads(captured.out)["simulated"]["samples"]["mean"] == 8.0


def test_a_workload_fitted_to_a_handful_of_questions_says_so(tmp_path, capsys):
    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = tmp_path / "five.jsonl"
    save(draw_table(Workload(name="builtin"), 5, 8, seed=4), table)
    capsys.readouterr()
    assert main(["simulate", str(REPO / "policies" / "self_consistency.ttc"), "--fit", str(table),
                 "--queries", "20", "--seeds", "2"]) == 0
    assert f"{table} holds 5 question(s)" in capsys.readouterr().err


def test_a_table_with_nothing_to_fit_is_refused_by_name(tmp_path, capsys):
    """An empty table crashed the fit (exit 3, "zero-size array"); one whose samples carry no
    answer was fitted from its labels alone and simulated at 79% accuracy, where ttc plan on
    the same table predicts 0."""
    import dataclasses

    import numpy as np

    from ttcdsl.samples import save
    from ttcdsl.simulate import Workload, draw_table

    table = draw_table(Workload(name="builtin"), 40, 8, seed=1)
    empty, unanswered = tmp_path / "empty.jsonl", tmp_path / "unanswered.jsonl"
    save(table.take([]), empty)
    save(dataclasses.replace(table, answer=np.full(len(table), None, dtype=object)), unanswered)
    policy = str(REPO / "policies" / "self_consistency.ttc")
    for path, message in ((empty, "the samples table has no samples to fit"),
                          (unanswered, "no sample of the table carries an answer")):
        assert main(["simulate", policy, "--fit", str(path), "--queries", "20", "--seeds", "2"]) == 1
        err = capsys.readouterr().err
        assert message in err and "internal error" not in err
    assert main(["plan", str(REPO / "policies" / "adaptive_vote.ttc"), "-c", str(empty)]) == 1
    assert "the calibration table has no samples" in capsys.readouterr().err
