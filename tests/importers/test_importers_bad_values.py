"""Values a log may hold that a table cannot: each is refused with the file, line and field (the
importer used to crash with exit 3, or drop a question without a word)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcdsl.cli import main

QWEN = "qwen25math_math100_x8.jsonl"


def _qwen_lines(shared_data: Path, n: int) -> list[dict]:
    with open(shared_data / "pools" / QWEN, encoding="utf-8") as handle:
        return [json.loads(next(handle)) for _ in range(n)]


def _import(argv: list[str], capsys) -> str:
    assert main(["import", *argv]) == 1
    return capsys.readouterr().err


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_qwen_question_without_samples_is_refused(shared_data, tmp_path, capsys):
    records = _qwen_lines(shared_data, 4)
    for key in ("code", "pred", "score", "pred_score"):
        records[2][key] = []
    log = _write(tmp_path / "empty.jsonl", records)
    err = _import([str(log), "-f", "qwen25math-eval", "-o", str(tmp_path / "t.jsonl")], capsys)
    assert f"{log}:3: field 'code': no samples" in err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 10**400])
def test_a_qwen_score_that_is_not_a_finite_number_is_refused(shared_data, tmp_path, capsys, bad):
    records = _qwen_lines(shared_data, 3)
    records[1]["pred_score"][4] = [bad]
    log = _write(tmp_path / "scores.jsonl", records)
    err = _import([str(log), "-f", "qwen25math-eval", "-o", str(tmp_path / "t.jsonl")], capsys)
    assert f"{log}:2: field 'pred_score': [4] must be finite" in err


@pytest.mark.parametrize(("flag", "message"), [("--score-field", "must be finite"),
                                               ("--completion-tokens-field", "out of range")])
def test_an_integer_past_every_range_is_refused_by_field(tmp_path, capsys, flag, message):
    log = tmp_path / "huge.jsonl"
    log.write_text('{"qid": "a", "v": 1' + "0" * 400 + "}\n")
    value = "rm=v" if flag == "--score-field" else "v"
    err = _import([str(log), "-f", "generic", "--query-id-field", "qid", flag, value,
                   "-o", str(tmp_path / "t.jsonl")], capsys)
    assert f"{log}:1: field 'v': {message}" in err and "(401 characters)" in err


def test_a_cruxeval_log_with_a_nan_figure_imports_without_it(shared_data, tmp_path):
    document = json.loads((shared_data / "pools" / "cruxeval_output_codellama7b_x10.json").read_text())
    document["pass_at_1"] = float("nan")
    log = tmp_path / "crux.json"
    log.write_text(json.dumps(document))
    out = tmp_path / "t.jsonl"
    assert main(["import", str(log), "-f", "cruxeval-scored", "-o", str(out)]) == 0
    from ttcdsl.samples import load

    notes = load(out).meta.notes
    assert "logged_pass_at_1" not in notes and notes["logged_pass_at_5"] == document["pass_at_5"]
