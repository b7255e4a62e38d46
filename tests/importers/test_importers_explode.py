"""`--format generic` on logs with one line per query and lists of samples: list explosion,
answers extracted from the text and labelled against a gold field at import."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ttcdsl.cli import main
from ttcdsl.datasets import read_queries
from ttcdsl.samples import load

QWEN = "qwen25math_math100_x8.jsonl"
EXPLODE_QWEN = ["-f", "generic", "--explode", "--query-id-field", "idx", "--text-field", "code",
                "--extract", "math", "--gold-field", "gt", "--prompt-field", "question",
                "--score-field", "rm=pred_score"]  # fmt: skip


def _majority_correct(answers: list, correct: list) -> bool:
    """Whether the most frequent non-null answer (first seen wins a tie) is a correct one."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    top = votes.most_common(1)[0][0]
    return any(c for a, c in zip(answers, correct, strict=True) if a == top)


def test_qwen_pool_exploded_extracted_and_labelled(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = shared_data / "pools" / QWEN
    out, queries = tmp_path / "t.jsonl", tmp_path / "q.jsonl"
    assert main(["import", str(log_path), *EXPLODE_QWEN, "-o", str(out), "--queries-out", str(queries)]) == 0  # fmt: skip
    table = load(out)
    log = {str(r["idx"]): r for r in map(json.loads, log_path.read_text().splitlines())}
    assert len(table) == 800 and set(table.query_ids()) == set(log)

    # Every sample against the log's own grading: our math extraction and is_correct agree on
    # all samples but one, where the log's grader is wrong (it rejects 10000 for gold 10{,}000).
    disagree = [
        (table.query_id[i], int(table.sample_index[i]))
        for i in range(len(table))
        if bool(table.correct[i]) != log[table.query_id[i]]["score"][table.sample_index[i]]
    ]
    assert disagree == [("72", 7)]
    assert log["72"]["gt"] == "10{,}000" and table.answer[table.by_query()["72"]][7] == "10000"
    assert table.scores["rm"][0] == log["0"]["pred_score"][0][0]

    # maj@8 and any-of-8, recomputed from the log's lists and from the table. The log gives the
    # known 93/100 and 96/100; the table agrees on maj@8 and finds the one more solved query above.
    log_maj = sum(_majority_correct(r["pred"], r["score"]) for r in log.values())
    log_any = sum(any(r["score"]) for r in log.values())
    assert (log_maj, log_any) == (93, 96)
    rows = table.by_query()
    ours_maj = sum(
        _majority_correct(table.answer[r].tolist(), table.correct[r].tolist()) for r in rows.values()
    )
    ours_any = sum(bool(table.correct[r].any()) for r in rows.values())
    assert (ours_maj, ours_any) == (93, 97)

    notes = table.meta.notes
    assert notes["extractor"] == "ttcdsl.answers.extract(kind='math') of field 'code'"
    assert "is_correct(kind='math')" in notes["correct"] and notes["equivalence_timeouts"] == 0
    dataset = read_queries(queries)
    assert dataset.ids() == tuple(str(i) for i in range(100))
    assert dataset.by_id()["1"].gold == "\\frac{1}{9}" and dataset.by_id()["1"].kind == "math"
    assert "answers: ttcdsl.answers.extract(kind='math')" in capsys.readouterr().out


def _log(tmp_path: Path, *records: dict) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_explode_with_a_regex_extractor(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        {"q": "a", "out": ["... ANSWER: (B)", "ANSWER: (C) no, ANSWER: (B)", "none"], "gold": "B",
         "t": 0.5},
        {"q": "b", "out": ["ANSWER: (D)"], "gold": "A", "t": 0.5},
    )  # fmt: skip
    out = tmp_path / "t.jsonl"
    assert main(["import", str(log), "-f", "generic", "--explode", "--query-id-field", "q",
                 "--text-field", "out", "--extract-regex", r"ANSWER: \((\w)\)", "--gold-field",
                 "gold", "--answer-kind", "multiple_choice", "--temperature-field", "t",
                 "-o", str(out)]) == 0  # fmt: skip
    table = load(out)
    assert table.query_id.tolist() == ["a", "a", "a", "b"]
    assert table.sample_index.tolist() == [0, 1, 2, 0]
    assert table.answer.tolist() == ["B", "B", None, "D"]
    assert table.correct.tolist() == [True, True, False, False]
    assert table.temperature.tolist() == [0.5] * 4
    assert "regex" in table.meta.notes["extractor"]


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"q": "a", "out": ["x", "y"], "ok": [True]}, "field 'out': has 2 entries but 'ok' has 1"),
        ({"q": "a", "out": "x", "ok": [True]}, "field 'out': must be a list"),
        ({"q": "a", "out": [], "ok": []}, "field 'ok': no samples"),
        ({"q": "a", "out": ["x"], "ok": ["maybe"]}, "field 'ok[0]': expected true/false"),
    ],
)
def test_explode_errors_name_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict, words: str
) -> None:
    log = _log(tmp_path, {"q": "z", "out": ["x"], "ok": [False]}, record)
    argv = ["import", str(log), "-f", "generic", "--explode", "--query-id-field", "q",
            "--text-field", "out", "--correct-field", "ok", "-o", str(tmp_path / "t.jsonl")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{log}:2: {words}" in err and "Traceback" not in err


def test_lm_eval_resps_mapped_whole_is_told_to_map_its_inner_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # lm-evaluation-harness writes one list per request: resps [[8 responses]]
    log = _log(tmp_path, {"doc_id": 0, "target": "4", "resps": [["so 4", "so 5"]]})
    argv = ["import", str(log), "-f", "generic", "--explode", "--query-id-field", "doc_id",
            "--text-field", "resps", "--extract", "math", "--gold-field", "target",
            "-o", str(tmp_path / "t.jsonl")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{log}:1: field 'resps[0]': expected a string, got list" in err
    assert "map resps.0: 'resps' holds one entry, a list of 2" in err
    argv[argv.index("resps")] = "resps.0"
    assert main(argv) == 0 and load(tmp_path / "t.jsonl").correct.tolist() == [True, False]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--explode", "--text-field", "out", "--input-format", "csv"], "explode needs JSONL"),
        (["--explode"], "explode needs a per-sample field"),
        (["--extract", "math"], "needs the text field"),
        (["--text-field", "out", "--extract", "math", "--answer-field", "a"], "not both"),
        (["--text-field", "out", "--extract", "math", "--answer-kind", "exact"], "cannot be canonicalised"),
        (["--text-field", "out", "--extract-regex", "(", "--answer-kind", "exact"], "bad regular expression"),
        (["--answer-field", "a", "--gold-field", "g"], "needs an answer kind"),
        (["--answer-field", "a", "--gold-field", "g", "--correct-field", "c", "--answer-kind", "math"], "not both"),
        (["--answer-field", "a", "--queries-out", "q.jsonl"], "needs --prompt-field"),
        (["--answer-field", "a", "--prompt-field", "p", "--queries-out", "q.jsonl"], "answer kind"),
    ],
)  # fmt: skip
def test_extraction_and_labelling_flag_mistakes_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    log = _log(tmp_path, {"q": "a", "out": ["x"], "a": "1", "g": "1", "c": True, "p": "?"})
    with pytest.raises(SystemExit) as caught:
        main(["import", str(log), "-f", "generic", "--query-id-field", "q",
              "-o", str(tmp_path / "t.jsonl"), *extra])  # fmt: skip
    assert caught.value.code == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_queries_out_of_other_formats(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, queries = tmp_path / "t.jsonl", tmp_path / "q.jsonl"
    argv = ["import", str(shared_data / "pools" / QWEN), "-f", "qwen25math-eval", "-o", str(out),
            "--queries-out", str(queries)]  # fmt: skip
    assert main(argv) == 0
    assert set(read_queries(queries).ids()) == set(load(out).query_ids())
    assert main(argv) == 1 and "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["import", str(shared_data / "pools" / "cruxeval_output_codellama7b_x10.json"),
              "-f", "cruxeval-scored", "-o", str(tmp_path / "c.jsonl"), "--queries-out",
              str(tmp_path / "cq.jsonl")])  # fmt: skip
    assert caught.value.code == 2 and "ttc queries cruxeval-output" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["missing-dir/q.jsonl", "/proc/no-such/q.jsonl"])
def test_an_import_whose_queries_cannot_be_written_leaves_no_table(shared_data, tmp_path, capsys, where):
    """The table is written first; when its queries then cannot be, the new table is removed
    again (a rerun is not refused as 'already exists'), and nothing claims it was imported."""
    out = tmp_path / "t.jsonl"
    queries = where if where.startswith("/") else str(tmp_path / where)
    code = main(["import", str(shared_data / "pools" / QWEN), *EXPLODE_QWEN, "-o", str(out),
                 "--queries-out", queries])
    captured = capsys.readouterr()
    assert code == 1 and not out.exists(), captured.err
    assert "imported" not in captured.out and queries in captured.err
