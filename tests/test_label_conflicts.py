"""One canonical answer of a query labelled both right and wrong (a grader that disagrees with
itself): plan and compare credit the answer when any of its samples is right, a replay scores
the sample it drew, so their figures disagree (predicted 1.000, replayed 0.28). Every command
that reads such a table says so, by count with an example, from one check."""

from __future__ import annotations

import json

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.samples import load
from ttcdsl.samples.labels import LabelConflict, label_conflicts

POLICY = REPO / "policies" / "self_consistency.ttc"
HEADER = {"ttc_samples": 1, "meta": {"schema_version": 1, "policy_hash": None, "model": None,
                                      "backend": "import", "seed": None, "sampling": {},
                                      "created_at": "2026-01-01T00:00:00Z", "source": "hand",
                                      "tokenizer": None, "notes": {}}}


def _row(q, j, answer, correct):
    return {"query_id": q, "sample_index": j, "round": 0, "prompt_tokens": None,
            "completion_tokens": None, "finish_reason": None, "text": None, "answer": answer,
            "correct": correct, "mean_logprob": None, "prompt_nll": None, "scores": {},
            "temperature": None, "seed": None}


def _table(tmp_path, contradicted: int, queries: int = 20):
    """``queries`` queries of 4 samples; the first ``contradicted`` answer 'A' labelled
    right once and wrong three times, the rest 'A' right twice and 'B' wrong twice."""
    rows = []
    for i in range(queries):
        if i < contradicted:
            rows += [_row(f"q{i}", j, "A", c) for j, c in enumerate([True, False, False, False])]
        else:
            rows += [_row(f"q{i}", j, a, c) for j, (a, c) in
                     enumerate([("A", True), ("B", False), ("A", True), ("B", False)])]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [HEADER, *rows]) + "\n")
    return path


def test_the_check_finds_answers_labelled_both_ways_per_query(tmp_path):
    found = label_conflicts(load(_table(tmp_path, 3)))
    assert found == [LabelConflict(f"q{i}", "A", 1, 3) for i in range(3)]
    assert label_conflicts(load(_table(tmp_path, 0))) == []


def test_unlabelled_samples_are_not_a_conflict(tmp_path):
    rows = [_row("q0", 0, "A", True), _row("q0", 1, "A", None), _row("q0", 2, None, False)]
    path = tmp_path / "u.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [HEADER, *rows]) + "\n")
    assert label_conflicts(load(path)) == []


def test_plan_compare_and_run_warn(tmp_path, capsys):
    import yaml

    table = _table(tmp_path, 5)
    plan = tmp_path / "p.yaml"
    assert main(["plan", str(POLICY), "-c", str(table), "-o", str(plan), "--reps", "16"]) == 0
    warnings = yaml.safe_load(plan.read_text())["warnings"]
    assert any("in 5 of 20 queries" in w and "'q0': answer 'A'" in w for w in warnings)
    capsys.readouterr()
    assert main(["compare", str(POLICY), "--samples", str(table), "--budgets", "2",
                 "--repeats", "1", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert "ttc compare: warning: in 5 of 20 queries" in err
    # said once, of the whole table: not again by each policy's plan of its calibration part
    assert err.count("labelled both right and wrong") == 1
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"id": f"q{i}", "kind": "exact", "prompt": "p"}) + "\n"
                               for i in range(20)))
    assert main(["run", str(plan), "--queries", str(queries), "--samples", str(table),
                 "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "ttc run: warning: in 5 of 20 queries" in err
    assert "1 sample(s) labelled right, 3 labelled wrong" in err


def test_a_consistent_table_draws_no_warning(tmp_path, capsys):
    import yaml

    plan = tmp_path / "p.yaml"
    assert main(["plan", str(POLICY), "-c", str(_table(tmp_path, 0)), "-o", str(plan), "--reps", "16"]) == 0
    assert not any("labelled both right and wrong" in w
                   for w in yaml.safe_load(plan.read_text()).get("warnings", []))


def test_import_warns(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in [
        {"query_id": "q0", "answer": "A", "correct": True},
        {"query_id": "q0", "answer": "A", "correct": False},
        {"query_id": "q1", "answer": "B", "correct": True}]))
    assert main(["import", str(log), "-f", "generic", "--query-id-field", "query_id",
                 "--answer-field", "answer", "--correct-field", "correct",
                 "-o", str(tmp_path / "t.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "ttc import: warning: in 1 of 2 queries" in err and "'q0': answer 'A'" in err
