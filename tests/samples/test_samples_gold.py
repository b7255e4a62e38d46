"""A table's labels held to its queries' gold answers (``ttcdsl.samples.gold``): replay scores by
the labels and never reads the gold, so a queries file of another task, or a log whose grader
erred, changed the reported accuracy without a word."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.runtime.runs import ADAPTIVE, hand_plan, run_args, ttc, workload_files, write_policy
from ttcdsl.datasets import Query
from ttcdsl.samples import RunMeta, SampleRow, SamplesTable
from ttcdsl.samples.gold import gold_conflicts
from ttcdsl.workloads import builtin_workload


def _table(*samples: tuple[str, str | None, bool | None]) -> SamplesTable:
    return SamplesTable.from_rows(
        [SampleRow(query_id=q, sample_index=i, answer=a, correct=c)
         for i, (q, a, c) in enumerate(samples)],
        meta=RunMeta(),
    )


def _query(id: str, gold: str | None, kind: str = "math") -> Query:
    return Query(id=id, kind=kind, prompt="?", gold=gold)


def test_a_sample_answering_the_gold_labelled_wrong_contradicts_it() -> None:
    table = _table(("a", "\\frac{1}{2}", False), ("a", "3", False), ("b", "7", True))
    conflicts = gold_conflicts(table, [_query("a", "1/2"), _query("b", "7")])[0]
    assert [q for q, _ in conflicts] == ["a"]
    assert "labelled wrong" in conflicts[0][1] and "1/2" in conflicts[0][1]


def test_a_right_label_on_another_answer_counts_only_where_the_form_is_the_whole_rule() -> None:
    # a math grader may rule 0.5 equal to 1/2; a letter is a letter
    table = _table(("m", "0.5", True), ("c", "B", True))
    queries = [_query("m", "1/2"), _query("c", "C", kind="multiple_choice")]
    assert [q for q, _ in gold_conflicts(table, queries)[0]] == ["c"]


def test_unlabelled_unanswered_and_goldless_are_not_compared() -> None:
    table = _table(("a", "2", None), ("a", None, False), ("b", "2", False))
    assert gold_conflicts(table, [_query("a", "2"), _query("b", None), _query("z", "1")])[0] == []


def test_the_builtin_workload_agrees_with_its_own_gold() -> None:
    table, dataset = builtin_workload(200, 16, seed=1)
    assert gold_conflicts(table, dataset.queries)[0] == []


def test_a_queries_file_of_another_task_is_warned_about_at_run(tmp_path, capsys) -> None:
    samples, queries = workload_files(tmp_path, n=12, m=8)
    table_rows = [json.loads(line) for line in samples.read_text().splitlines()[1:]]
    wrong = {}  # a wrong answer each query logged: the "gold" of another task's file
    for row in table_rows:
        if row["correct"] is False and row["answer"] is not None:
            wrong.setdefault(row["query_id"], row["answer"])
    rows = [json.loads(line) for line in queries.read_text().splitlines()]
    original = [dict(r) for r in rows]
    changed = [row for row in rows if row["id"] in wrong][:3]
    for row in changed:
        row["gold"] = wrong[row["id"]]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy = write_policy(tmp_path, ADAPTIVE)
    plan = hand_plan(policy, {b: [{"samples": 4, "share": 1.0}] for b in ("split", "agree")})
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run")) == 0
    err = capsys.readouterr().err
    assert f"3 of 12 queries of {queries}" in err and "contradict" in err, err
    # the same run with the file's own gold says nothing
    queries.write_text("".join(json.dumps(r) + "\n" for r in original))
    assert ttc(*run_args(plan, queries, samples, tmp_path / "run2")) == 0
    assert "contradict" not in capsys.readouterr().err


def test_the_qwen_math_log_whose_grader_marked_the_gold_wrong_is_warned_about(
    shared_data, tmp_path, capsys
) -> None:
    """Qwen2.5-Math's grader marks "10000" wrong against the gold "10{,}000" (query 72)."""
    log = tmp_path / "math100.jsonl"
    shutil.copy(shared_data / "pools" / "qwen25math_math100_x8.jsonl", log)
    from ttcdsl.cli import main

    assert main(["import", "-f", "qwen25math-eval", str(log), "-o", str(tmp_path / "t.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "in 1 of 100 queries" in err and "'72'" in err and "10{,}000" in err, err


@pytest.mark.parametrize("gold", ["7", "B"])
def test_a_table_that_agrees_says_nothing(gold, tmp_path) -> None:
    kind = "math" if gold == "7" else "multiple_choice"
    table = _table(("q", gold, True), ("q", "A", False))
    assert gold_conflicts(table, [_query("q", gold, kind=kind)])[0] == []


def test_a_math_answer_labelled_right_is_held_to_the_gold_by_the_math_checker() -> None:
    # 0.5 is 1/2 (no conflict); 7 is not 99999 (a queries file of another task)
    table = _table(("m", "0.5", True), ("x", "7", True))
    conflicts = gold_conflicts(table, [_query("m", "\\frac{1}{2}"), _query("x", "99999")])[0]
    assert [q for q, _ in conflicts] == ["x"] and "labelled right" in conflicts[0][1]


def test_math_checks_are_bounded_and_say_when_they_ran_out() -> None:
    from ttcdsl.samples.gold import MATH_CHECKS

    n = MATH_CHECKS + 5
    table = _table(*((f"q{i}", "7", True) for i in range(n)))
    conflicts, complete = gold_conflicts(table, [_query(f"q{i}", "99999") for i in range(n)])
    assert len(conflicts) == MATH_CHECKS and not complete
