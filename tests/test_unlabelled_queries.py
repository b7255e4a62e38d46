"""Queries with samples of unknown correctness (a log whose gold answer is missing for some
questions) are left out of every rate, never counted wrong: the planner's curves and predictions,
`ttc compare`'s rows and baselines, and a run's coverage. Counted wrong, a third of unlabelled
queries read as a drop of a third in accuracy (0.69 reported for a true 0.96)."""

from __future__ import annotations

import json

import pytest

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.runtime.aggregate import aggregate
from ttcdsl.lang import ir

POLICY = REPO / "policies" / "self_consistency.ttc"


def _tables(tmp_path):
    """The built-in workload (120 queries x 12 samples); a copy with the labels of every third
    query removed; and the labelled queries alone."""
    full = tmp_path / "full.jsonl"
    assert main(["workload", "-o", str(full), "--queries", "120", "--samples", "12", "--seed", "3"]) == 0
    header, *rows = full.read_text().splitlines()
    rows = [json.loads(r) for r in rows]
    ids = sorted({r["query_id"] for r in rows})
    unlabelled = set(ids[::3])
    partly, labelled = tmp_path / "partly.jsonl", tmp_path / "labelled.jsonl"
    partly.write_text("\n".join([header, *(json.dumps({**r, "correct": None}) if r["query_id"] in unlabelled
                                           else json.dumps(r) for r in rows)]) + "\n")
    labelled.write_text("\n".join([header, *(json.dumps(r) for r in rows
                                             if r["query_id"] not in unlabelled)]) + "\n")
    return partly, labelled, len(unlabelled)


def test_the_plan_leaves_unlabelled_queries_out_and_says_so(tmp_path):
    import yaml

    partly, labelled, n = _tables(tmp_path)
    plans = {}
    for name, table in (("partly", partly), ("labelled", labelled)):
        out = tmp_path / f"{name}.plan.yaml"
        assert main(["plan", str(POLICY), "-c", str(table), "-o", str(out), "--reps", "16"]) == 0
        plans[name] = yaml.safe_load(out.read_text())
    assert plans["partly"]["calibration"]["unlabelled"] == n
    assert plans["partly"]["calibration"]["queries"] == plans["labelled"]["calibration"]["queries"]
    assert any("without a correctness label" in w for w in plans["partly"]["warnings"])
    for figure in ("accuracy", "coverage", "samples"):
        assert plans["partly"]["predicted"][figure] == pytest.approx(plans["labelled"]["predicted"][figure])


def test_compare_leaves_unlabelled_queries_out_and_says_so(tmp_path, capsys):
    partly, labelled, n = _tables(tmp_path)
    capsys.readouterr()  # the workload's own lines
    docs = {}
    for name, table in (("partly", partly), ("labelled", labelled)):
        assert main(["compare", str(POLICY), "--samples", str(table), "--budgets", "2",
                     "--repeats", "1", "--format", "json"]) == 0
        captured = capsys.readouterr()
        docs[name] = json.loads(captured.out)
        if name == "partly":
            assert "without a correctness label" in captured.err
    assert docs["partly"]["unlabelled_left_out"] == n
    assert docs["partly"]["evaluation_queries"] + docs["partly"]["calibration_queries"] == 120 - n
    for a, b in zip(docs["partly"]["rows"], docs["labelled"]["rows"], strict=True):
        for key in ("value", "uniform", "static_oracle"):
            assert a[key] == pytest.approx(b[key]), key


def test_coverage_is_unknown_while_a_sample_has_no_label():
    from types import SimpleNamespace

    vote = ir.Strategy(kind="majority_vote")

    def rows(*labels):
        return [SimpleNamespace(answer=str(i), correct=c, scores={}, mean_logprob=None)
                for i, c in enumerate(labels)]

    assert aggregate(vote, rows(False, None), labelled=True).covered is None
    assert aggregate(vote, rows(False, False), labelled=True).covered is False
    assert aggregate(vote, rows(None, True), labelled=True).covered is True
    assert aggregate(vote, [], labelled=True).covered is False  # a starved query of a labelled source
    assert aggregate(vote, [], labelled=False).covered is None


def _replay_with_unlabelled_samples(tmp_path):
    """A replay of a built-in workload (40 queries x 8 samples, every sample served: fixed 8)
    in which two queries lose some labels: ``mixed``, all of whose samples answer, majority "A"
    labelled wrong and one "B" unlabelled (its answer is known to be wrong, its coverage is not);
    and ``cut``, all of whose samples run past max_tokens (the replay serves them without an
    answer), one of them unlabelled. Returns the run directory and the two query ids."""
    from ttcdsl.lang.api import load_policy

    table, queries = tmp_path / "wl.jsonl", tmp_path / "wl_q.jsonl"
    assert main(["workload", "-o", str(table), "--dataset", str(queries), "--queries", "40",
                 "--samples", "8", "--seed", "3"]) == 0
    plan = tmp_path / "plan.yaml"
    assert main(["plan", str(POLICY), "-c", str(table), "-o", str(plan), "--reps", "16"]) == 0
    max_tokens = load_policy(POLICY).sampling.max_tokens
    header, *rows = table.read_text().splitlines()
    rows = [json.loads(r) for r in rows]
    mixed, cut = sorted({r["query_id"] for r in rows})[:2]
    for r in rows:
        if r["query_id"] == mixed:
            last = r["sample_index"] == 7
            r.update(answer="B" if last else "A", correct=None if last else False,
                     completion_tokens=100, finish_reason="stop")
        elif r["query_id"] == cut:
            r.update(completion_tokens=max_tokens + 1000, finish_reason="stop",
                     **({"correct": None} if r["sample_index"] == 0 else {}))
    edited = tmp_path / "unlabelled.jsonl"
    edited.write_text("\n".join([header, *map(json.dumps, rows)]) + "\n")
    out = tmp_path / "run"
    assert main(["run", str(plan), "--queries", str(queries), "--samples", str(edited),
                 "--out", str(out), "--quiet"]) == 0
    return out, mixed, cut


def test_a_fresh_run_with_unlabelled_samples_is_reported_not_called_edited(tmp_path, capsys):
    """Accuracy is over the queries whose correctness is known, coverage over those whose
    coverage is known; the audit of results.jsonl took both over the first and called an honest
    run "replaced or edited after the run"."""
    out, mixed, _ = _replay_with_unlabelled_samples(tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert report["coverage_over"] < report["accuracy_over"]  # the two rates are over different queries
    capsys.readouterr()
    assert main(["report", str(out)]) == 0, capsys.readouterr().err
    assert "coverage" in capsys.readouterr().out


def test_a_query_with_no_answer_is_wrong_though_a_sample_is_unlabelled(tmp_path):
    """No answer counts as wrong, as the report says: a sample cut at max_tokens has no answer,
    so it cannot be the right one whatever its missing label; the query read "unknown"."""
    out, mixed, cut = _replay_with_unlabelled_samples(tmp_path)
    by_id = {r["query_id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert by_id[cut]["answer"] is None and by_id[cut]["samples"] == 8
    assert (by_id[cut]["correct"], by_id[cut]["covered"]) == (False, False)
    assert (by_id[mixed]["correct"], by_id[mixed]["covered"]) == (False, None)  # "B" may be right


def test_an_answerless_sample_never_makes_a_query_unknown():
    from types import SimpleNamespace

    vote = ir.Strategy(kind="majority_vote")

    def row(answer, correct):
        return SimpleNamespace(answer=answer, correct=correct, scores={}, mean_logprob=None)

    nothing = [row(None, False), row(None, None)]
    assert (aggregate(vote, nothing, labelled=True).correct, aggregate(vote, nothing, labelled=True).covered) \
        == (False, False)
    assert aggregate(vote, [row(None, None)], labelled=False).correct is None  # no labels at all
    assert aggregate(vote, [row("1", False), row(None, None)], labelled=True).covered is False
    assert aggregate(vote, [row("1", False), row("2", None)], labelled=True).covered is None


def test_a_run_scored_by_older_rules_is_not_called_edited(tmp_path, capsys):
    """A report written before a query without an answer was wrong whatever its labels (no
    ``outcome_rules``) states other figures than its samples scored today: `ttc report` says
    the rules changed, not that the run was edited, and a resume rescores it. A report of
    today's rules whose figures differ is still called changed."""
    import shutil

    out, _, _ = _replay_with_unlabelled_samples(tmp_path)
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    report = json.loads((out / "report.json").read_text())
    assert report["outcome_rules"] >= 2
    report["accuracy"] += 0.01  # as an older scoring would differ; results.jsonl is checked after
    (edited / "report.json").write_text(json.dumps(report))
    del report["outcome_rules"]
    (out / "report.json").write_text(json.dumps(report))
    capsys.readouterr()
    assert main(["report", str(edited)]) == 1
    edited_words = "The report or the stored samples were changed after the run"
    assert edited_words in capsys.readouterr().err
    assert main(["report", str(out)]) == 1
    err = capsys.readouterr().err
    assert "another ttc's rules" in err and edited_words not in err
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert main(["report", str(out)]) == 0


def test_answerless_unlabelled_queries_count_wrong_in_the_plan_and_compare_as_in_the_run(tmp_path, capsys):
    """A query whose samples have no answer and no label is wrong in a run (no answer counts as
    wrong); the planner and `ttc compare` left it out as unlabelled, and predicted 1.000 where
    the run of the same plan on the same samples measured 0.500."""
    import yaml

    table, queries = tmp_path / "t.jsonl", tmp_path / "q.jsonl"
    header = {"ttc_samples": 1, "meta": {"schema_version": 1, "model": "m", "backend": "import"}}
    rows, ids = [], [f"right{i}" for i in range(6)] + [f"none{i}" for i in range(6)]
    for qid in ids:
        for s in range(4):
            right = qid.startswith("right")
            rows.append({"query_id": qid, "sample_index": s, "completion_tokens": 100, "finish_reason": "stop",
                         "answer": "1" if right else None, "correct": True if right else None})
    table.write_text("\n".join(json.dumps(r) for r in [header, *rows]) + "\n")
    queries.write_text("".join(json.dumps({"id": q, "kind": "math", "prompt": q}) + "\n" for q in ids))
    plan, out = tmp_path / "plan.yaml", tmp_path / "run"
    assert main(["plan", str(POLICY), "-c", str(table), "-o", str(plan), "--reps", "16"]) == 0
    planned = yaml.safe_load(plan.read_text())
    assert planned["calibration"]["queries"] == 12 and planned["calibration"]["unlabelled"] == 0
    assert planned["predicted"]["accuracy"] == pytest.approx(0.5)
    assert main(["run", str(plan), "--queries", str(queries), "--samples", str(table),
                 "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text())["accuracy"] == pytest.approx(0.5)
    capsys.readouterr()
    assert main(["compare", str(POLICY), "--samples", str(table), "--repeats", "1", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["unlabelled_left_out"] == 0
    assert doc["evaluation_queries"] + doc["calibration_queries"] == 12
    evaluation = doc["evaluation_queries"]
    (row,) = doc["rows"]
    answerless = round(evaluation * (1 - row["value"]))
    assert 0 < answerless < evaluation and row["value"] == pytest.approx(1 - answerless / evaluation)
