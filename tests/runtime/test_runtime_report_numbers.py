"""The run report's numbers, each recomputed from what the run stored: measured tokens apart
from billed ones, stop savings the table could have served, the shortfall in words, the spend
z-score, a uniform baseline that says what it drew, queries without an answer counted wrong, and
the verdict against uniform."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from tests.runtime.runs import hand_plan, results, run_args, ttc, workload_files, write_policy
from tests.runtime.tables import forget_tokens, keep_first, stored_samples
from ttcdsl.lang import ir
from ttcdsl.lang.api import load_policy
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.runtime.replay import ReplayBackend
from ttcdsl.runtime.report import uniform_baseline
from ttcdsl.samples import load
from ttcdsl.verdict import verdict

ONE_BIN = """\
policy one_bin "one bin, a stop rule"
budget {{
  {budget}
  samples per query in 1..12
}}
sampling {{ max_tokens 4096 }}
probe 2 samples
stop {{ when unanimous last 3 }}
allocate optimal maximize accuracy
"""


def _run(tmp_path: Path, budget: str, target: int, *, n=30, m=16, table=None, seed=0,
         predicted=None, drop_digest=False) -> tuple[Path, dict]:
    policy = write_policy(tmp_path, ONE_BIN.format(budget=budget))
    plan = hand_plan(policy, {"all": [{"samples": target, "share": 1.0}]}, edges=None)
    if predicted is not None or drop_digest:
        data = yaml.safe_load(plan.read_text())
        data["predicted"].update(predicted or {})
        if drop_digest:
            del data["plan_sha256"]
        plan.write_text(yaml.safe_dump(data))
    samples, queries = workload_files(tmp_path, n=n, m=m)
    if table is not None:
        table(samples)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=seed)) == 0
    return out, json.loads((out / "report.json").read_text())


def test_unknown_token_counts_are_reported_unknown_not_measured(tmp_path, capsys) -> None:
    out, report = _run(tmp_path, "total tokens <= 400000", 8, table=forget_tokens)
    rows = stored_samples(out)
    assert all(r["completion_tokens"] is None for r in rows)
    for r in results(out):
        assert r["tokens"] is None
        assert r["billed_tokens"] == 4096 * r["samples"]  # the worst case, as billed
    spend = report["spend"]
    assert spend["tokens"] is None and spend["tokens_per_query"] is None
    assert spend["billed_tokens"] == 4096 * len(rows)
    assert f"{len(rows)} of {len(rows)} samples have no token count" in spend["tokens_note"]
    assert report["baseline"]["completion_tokens"] is None  # unknown, not 0
    (limit,) = [b for b in report["budget"] if b["unit"] == "tokens"]
    assert limit["basis"] == "worst-case bound (token counts unknown)"
    assert limit["spent"] == 4096 * len(rows) <= 400000
    capsys.readouterr()
    assert ttc("report", str(out)) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "worst-case bound (token counts unknown)" in text
    assert "unknown (billed" in text


def test_measured_tokens_are_the_stored_counts(tmp_path) -> None:
    out, report = _run(tmp_path, "mean samples per query <= 6", 8)
    rows = stored_samples(out)
    for r in results(out):
        mine = [s["completion_tokens"] for s in rows if s["query_id"] == r["query_id"]]
        assert r["tokens"] == r["billed_tokens"] == sum(mine)
    assert report["spend"]["tokens"] == sum(s["completion_tokens"] for s in rows)
    assert report["spend"]["tokens_note"] is None
    assert all(b["basis"] == "measured" for b in report["budget"])


def test_stop_savings_count_only_samples_the_table_holds(tmp_path) -> None:
    """Targets of 12 against a table of 8 samples per query: a stopped query saved at most
    what the table could still have served; the rest is unverifiable."""
    out, report = _run(tmp_path, "mean samples per query <= 12", 12, m=8)
    done = results(out)
    stopped = [r for r in done if r["stopped"]]
    assert stopped
    assert report["stop_savings"]["samples_saved"] == sum(8 - r["samples"] for r in stopped)
    assert report["stop_savings"]["unverifiable_samples"] == 4 * len(stopped)
    short = [r for r in done if r["exhausted"]]
    assert short and report["exhausted_queries"] == len(short)
    assert report["shortfall"]["how"] == (
        f"{len(short)} queries ran out of logged samples: the plan asked for up to 12, the table "
        "holds 8 per query"
    )


def test_the_spend_z_score_combines_both_errors(tmp_path) -> None:
    out, report = _run(tmp_path, "mean samples per query <= 6", 8,
                       predicted={"samples": 5.0, "samples_se": 0.2})
    counts = [r["samples"] for r in results(out)]
    n = len(counts)
    mean = sum(counts) / n
    sd = math.sqrt(sum((c - mean) ** 2 for c in counts) / (n - 1))
    expected = (mean - 5.0) / math.sqrt(sd**2 / n + 0.2**2)
    assert report["predicted"]["samples_z"] == pytest.approx(expected)


def test_no_spend_z_without_the_plans_standard_error(tmp_path) -> None:
    _, report = _run(tmp_path, "mean samples per query <= 6", 8)
    assert report["predicted"]["samples_z"] is None


class Counting:
    """Replay, counting the samples it actually serves (the baseline's real draw)."""

    def __init__(self, backend: ReplayBackend) -> None:
        self.backend, self.served = backend, 0
        self.capabilities = backend.capabilities

    def generate(self, requests):
        out = self.backend.generate(requests)
        self.served += sum(len(r.samples) for r in out)
        return out


def test_the_baseline_reports_what_it_drew_and_reaches_equal_spend(tmp_path) -> None:
    samples, queries = workload_files(tmp_path, n=20, m=16)
    keep_first(samples, lambda q: 2 if int(q.split("-")[1]) % 3 == 0 else 16)
    table = load(samples)
    policy = load_policy(write_policy(tmp_path, ONE_BIN.format(budget="mean samples per query <= 8")))
    ids = sorted({r.query_id for r in table.rows()})
    backend = Counting(ReplayBackend(table, seed=0))
    base = uniform_baseline(backend, policy, ids, 160, 0)
    assert backend.served == base["samples"] == 160  # 7 queries hold 2: their rest went elsewhere
    assert base["equal_spend"] and "went to the other queries" in base["how"]
    backend = Counting(ReplayBackend(table, seed=0))
    logged = 7 * 2 + 13 * 16
    base = uniform_baseline(backend, policy, ids, logged + 5, 0)
    assert backend.served == base["samples"] == logged
    assert not base["equal_spend"] and "NOT at equal spend" in base["how"]


STARVED = """\
policy starved "fewer samples than queries"
budget {
  total samples <= 10
  samples per query in 0..1
}
sampling { max_tokens 4096 }
allocate optimal maximize accuracy
"""


def test_queries_without_a_sample_count_as_wrong(tmp_path) -> None:
    policy = write_policy(tmp_path, STARVED)
    plan = hand_plan(policy, {"all": [{"samples": 1, "share": 1.0}]}, edges=None)
    samples, queries = workload_files(tmp_path, n=30, m=4)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    report = json.loads((out / "report.json").read_text())
    done = results(out)
    assert sum(r["samples"] == 0 for r in done) == 20
    assert all(r["correct"] is False for r in done if r["samples"] == 0)
    assert report["accuracy_over"] == 30
    assert report["accuracy"] == pytest.approx(sum(r["correct"] is True for r in done) / 30)


def test_no_answer_is_wrong_where_the_source_is_labelled() -> None:
    vote = ir.Strategy(kind="majority_vote")
    assert aggregate(vote, [], labelled=True).correct is False
    assert aggregate(vote, [], labelled=True).covered is False
    assert aggregate(vote, []).correct is None


def test_the_verdict_words_the_interval() -> None:
    assert verdict(0.05, 0.01) == "better than uniform at equal spend: +5.0 points (95% CI +3.0..+7.0)"
    assert verdict(-0.05, 0.01).startswith("worse than uniform at equal spend: -5.0 points")
    assert verdict(0.01, 0.02).startswith("no better than uniform at equal spend: +1.0 points")
    assert verdict(0.0, None).startswith("no better than")


def test_the_run_report_ends_with_the_paired_verdict(tmp_path, capsys) -> None:
    out, report = _run(tmp_path, "mean samples per query <= 6", 8)
    v = report["verdict"]
    # every query is labelled in run and baseline: the paired mean is the gap of the accuracies
    assert v["queries"] == 30
    assert v["diff"] == pytest.approx(report["accuracy"] - report["baseline"]["accuracy"])
    assert v["text"] == verdict(v["diff"], v["se"])
    capsys.readouterr()
    assert ttc("report", str(out)) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("verdict: ") and "uniform at equal spend" in last


def test_a_truncation_rate_without_finish_reasons_is_unknown_not_zero(tmp_path, capsys) -> None:
    """A log without token counts or finish reasons cannot say which samples were cut: the rate
    is unknown (it read 0). Where only some queries lack them it is unknown too: over the others
    it read 1 when a replay's cuts at max_tokens were the only reasons known (a query whose every
    sample was cut is the one whose reasons are all known). The truncations seen are a floor."""
    from tests.runtime.tables import rewrite_rows

    def forget_reasons(path: Path, every: int = 1) -> None:
        def change(row: dict) -> dict:
            if int(row["query_id"][-1]) % every == 0:
                row["finish_reason"] = None
                row["completion_tokens"] = None
            return row

        rewrite_rows(path, change)

    for name in ("none", "some"):
        (tmp_path / name).mkdir()
    out, report = _run(tmp_path / "none", "total tokens <= 400000", 8, table=forget_reasons)
    assert report["truncation_rate"] is None and report["truncated_at_least"] == 0
    capsys.readouterr()
    assert ttc("report", str(out)) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "truncation rate" in text and "unknown (some samples have no finish reason)" in text

    out, report = _run(tmp_path / "some", "total tokens <= 400000", 8,
                       table=lambda path: forget_reasons(path, every=2))
    known = [r for r in results(out) if int(r["query_id"][-1]) % 2]
    assert report["truncation_rate"] is None
    assert report["truncated_at_least"] == sum(r["truncated"] for r in known)
    assert all(r["truncated"] is None for r in results(out) if not int(r["query_id"][-1]) % 2)


def test_a_token_budget_run_is_compared_with_uniform_at_equal_tokens(tmp_path) -> None:
    """Under a token budget the run's uniform baseline spends the run's measured tokens: drawn
    again from the same replay table at the samples that bill them (within one sample's tokens),
    recomputed here from the stored results and the baseline's own draw. A sample budget: the
    run's samples."""
    for d in ("tokens", "samples", "unknown"):
        (tmp_path / d).mkdir()
    out, report = _run(tmp_path / "tokens", "total tokens <= 10M", 4)
    base = report["baseline"]
    run_tokens = sum(r["tokens"] for r in results(out))
    assert base["matched"] == "tokens" and base["budget_unit"] == "tokens"
    assert base["tokens"] == pytest.approx(run_tokens, abs=2 * base["tokens"] / base["samples"])
    assert "the budget is in tokens, so uniform draws the samples that bill the run's" in base["how"]
    assert "equal samples" not in report["verdict"]["text"]

    _, report = _run(tmp_path / "samples", "mean samples per query <= 4", 4)
    assert report["baseline"]["budget_unit"] == "samples"
    assert report["baseline"]["samples"] == report["spend"]["samples"]

    # token counts the log never had: no token match, and the verdict says it was at equal samples
    _, report = _run(tmp_path / "unknown", "total tokens <= 10M", 4, table=forget_tokens)
    base = report["baseline"]
    assert base["matched"] == "samples" and "NOT its tokens" in base["how"]
    assert report["verdict"]["text"].endswith("at equal samples, not the equal tokens the budget is in")


def test_replayed_samples_keep_the_logged_temperature(tmp_path) -> None:
    """A replayed sample was drawn when the log was made, at the log's temperature: its stored
    row says that temperature, or unknown where the log kept none; never the plan's (1.0 here,
    the policy's default), which it was not drawn at."""
    from tests.runtime.tables import rewrite_rows

    def logged_at(row: dict) -> dict:
        row["temperature"] = 0.55 if row["sample_index"] % 2 else None
        return row

    out, _ = _run(tmp_path, "mean samples per query <= 4", 4, table=lambda p: rewrite_rows(p, logged_at))
    rows = stored_samples(out)
    assert rows and {r["temperature"] for r in rows} <= {0.55, None}
    assert {r["temperature"] for r in rows} == {0.55, None}


def test_a_coverage_policys_verdict_is_in_coverage(tmp_path) -> None:
    """A policy that maximizes coverage is judged in coverage, as its plan and `ttc compare`
    judge it (the report paired accuracy: "no better" beside a coverage gain of 10 points)."""
    policy = write_policy(tmp_path, ONE_BIN.format(budget="mean samples per query <= 6")
                          .replace("maximize accuracy", "maximize coverage"))
    plan = hand_plan(policy, {"all": [{"samples": 8, "share": 1.0}]}, edges=None)
    data = yaml.safe_load(plan.read_text())
    data["objective"] = "coverage"
    plan.write_text(yaml.safe_dump(data))
    samples, queries = workload_files(tmp_path, n=30, m=16)
    out = tmp_path / "run"
    assert ttc(*run_args(plan, queries, samples, out)) == 0
    report = json.loads((out / "report.json").read_text())
    v = report["verdict"]
    assert v["metric"] == "coverage" and v["queries"] == 30
    assert v["diff"] == pytest.approx(report["coverage"] - report["baseline"]["coverage"])
    assert v["text"] == verdict(v["diff"], v["se"]) + " - in coverage, the policy's objective"


def test_the_baselines_bill_charges_prompts_as_the_runs_does(tmp_path) -> None:
    """Under `charge prompt tokens` uniform's billed tokens include each sample's prompt bound,
    as the run's ledger bills (they left them out: 2.9M billed beside 3.3M measured)."""
    samples, _ = workload_files(tmp_path, n=12, m=8)
    table = load(samples)
    text = ONE_BIN.format(budget="total tokens <= 10M\n  charge prompt tokens")
    policy = load_policy(write_policy(tmp_path, text))
    ids = sorted(table.query_ids())
    base = uniform_baseline(ReplayBackend(table, seed=0), policy, ids, 48, 0)
    by_query = table.by_query()
    prompt = sum(4 * int(table.prompt_tokens[by_query[q]].max()) for q in ids)
    assert base["billed_tokens"] == base["completion_tokens"] + prompt
    assert base["tokens"] == base["billed_tokens"]  # every count known: billed is measured


def test_a_plan_edited_after_planning_is_said_beside_its_prediction(tmp_path, capsys) -> None:
    """A run of a plan whose values changed after it was written runs as written, warns, and
    its report says the prediction was the planner's for the plan as made."""
    out, report = _run(tmp_path, "mean samples per query <= 6", 8, predicted={"accuracy": 0.42})
    assert "was edited after ttc plan wrote it" in capsys.readouterr().err
    assert report["predicted"]["plan_edited"] is True
    assert ttc("report", str(out)) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the plan was edited after planning" in text

    (tmp_path / "clean").mkdir()
    _, report = _run(tmp_path / "clean", "mean samples per query <= 6", 8)
    assert report["predicted"]["plan_edited"] is False
    capsys.readouterr()

    # a plan whose digest was removed (with or without other edits) is not taken for unedited
    (tmp_path / "no_digest").mkdir()
    out, report = _run(tmp_path / "no_digest", "mean samples per query <= 6", 8,
                       predicted={"accuracy": 0.42}, drop_digest=True)
    assert "has no plan_sha256" in capsys.readouterr().err
    assert report["predicted"]["plan_edited"] is None
    assert ttc("report", str(out)) == 0
    assert "the plan has no plan_sha256" in " ".join(capsys.readouterr().out.split())


def test_a_plans_recorded_policy_is_found_beside_the_plan(tmp_path, monkeypatch, capsys) -> None:
    """A plan records its policy file as `ttc plan` was given it (relative to where it ran):
    run from elsewhere, it was looked for only from there ('no such policy file')."""
    proj = tmp_path / "proj"
    proj.mkdir()
    policy = write_policy(proj, ONE_BIN.format(budget="mean samples per query <= 6"))
    plan = hand_plan(policy, {"all": [{"samples": 4, "share": 1.0}]}, edges=None)
    data = yaml.safe_load(plan.read_text())
    data["policy"]["file"] = policy.name  # as `ttc plan` records a path given relative to proj
    from ttcdsl.planner.plan import save_plan

    save_plan(data, plan)
    samples, queries = workload_files(tmp_path, n=10, m=8)
    monkeypatch.chdir(tmp_path)  # not proj: the recorded name is not here
    assert ttc(*run_args(plan.relative_to(tmp_path), queries, samples, tmp_path / "run")) == 0
    # a different policy of the same name here does not shadow the plan's own
    (tmp_path / policy.name).write_text(ONE_BIN.format(budget="mean samples per query <= 5"))
    assert ttc(*run_args(plan.relative_to(tmp_path), queries, samples, tmp_path / "run2")) == 0
    policy.unlink()
    capsys.readouterr()
    assert ttc(*run_args(plan.relative_to(tmp_path), queries, samples, tmp_path / "run3")) == 1
    assert "another version of the policy" in capsys.readouterr().err
    # recorded as an absolute path that is gone, or a directory: said once, not 'X is not at X'
    (tmp_path / policy.name).unlink()
    for recorded, said in ((tmp_path / "gone.ttc", "is not there"), (tmp_path, "is not a file")):
        data["policy"]["file"] = str(recorded)
        save_plan(data, plan)
        assert ttc(*run_args(plan, queries, samples, tmp_path / "run4")) == 1
        err = capsys.readouterr().err
        assert f"the policy file it records, {recorded}, {said}\n" in err, err


def test_a_rate_every_query_agrees_on_has_an_error_bar() -> None:
    """Wald's standard error is 0 where every query agrees: one right query read "accuracy
    1 ± 0" and, against a batch prediction of 0.79 ± 0.04, z = 5.1. Wilson's is not 0, and it
    is Wald's for many queries."""
    import math

    from ttcdsl.runtime.report import known_rate

    p, se, n = known_rate([True])
    assert (p, n) == (1.0, 1) and 0.15 < se < 0.25
    assert abs((p - 0.79) / math.hypot(se, 0.041)) < 2
    p, se, n = known_rate([True] * 650 + [False] * 350 + [None] * 5)
    assert n == 1000 and se == pytest.approx(math.sqrt(0.65 * 0.35 / 1000), rel=0.01)
    assert known_rate([None, None]) == (None, None, 0)
