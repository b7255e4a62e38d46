"""`ttc import` end to end through ttcdsl.cli.main: exit codes, outputs, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcdsl.cli import main
from ttcdsl.samples import content_hash, load

QWEN = "qwen25math_math100_x8.jsonl"
CRUX = "cruxeval_output_codellama7b_x10.json"


def test_import_qwen_pool(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "math100.jsonl"
    code = main(["import", str(shared_data / "pools" / QWEN), "--format", "qwen25math-eval",
                 "-o", str(out), "--temperature", "0.7", "--model", "Qwen/Qwen2.5-Math-7B-Instruct"])  # fmt: skip
    assert code == 0
    table = load(out)
    assert len(table) == 800 and int(table.correct.sum()) == 728
    assert table.meta.model == "Qwen/Qwen2.5-Math-7B-Instruct" and table.meta.sampling == {
        "temperature": 0.7
    }
    printed = capsys.readouterr().out
    assert "imported 800 samples (100 queries, 8 samples each)" in printed
    assert "correct: 728/800" in printed and "scores: rm" in printed
    assert content_hash(table) in printed


def test_the_summary_of_a_one_query_log_is_in_the_singular(tmp_path: Path, capsys) -> None:
    log = tmp_path / "one.csv"  # it said "1 samples (1 queries, 1 samples each)"
    log.write_text("qid,pred\nq1,4\n", encoding="utf-8")
    argv = ["import", str(log), "-f", "generic", "--query-id-field", "qid", "--answer-field", "pred"]
    assert main([*argv, "-o", str(tmp_path / "t.jsonl")]) == 0
    assert "imported 1 sample (1 query, 1 sample each)" in capsys.readouterr().out


def test_import_cruxeval_to_parquet_then_convert(shared_data: Path, tmp_path: Path) -> None:
    parquet, jsonl = tmp_path / "crux.parquet", tmp_path / "crux.jsonl"
    assert (
        main(
            [
                "import",
                str(shared_data / "pools" / CRUX),
                "-f",
                "cruxeval-scored",
                "-o",
                str(parquet),
            ]
        )
        == 0
    )
    assert main(["import", str(parquet), "-f", "samples", "-o", str(jsonl)]) == 0
    table = load(jsonl)
    assert table == load(parquet)
    assert len(table) == 8000 and table.correct.mean() == pytest.approx(0.342125)
    stripped = tmp_path / "crux-notext.parquet"
    assert main(["import", str(jsonl), "-f", "samples", "-o", str(stripped), "--no-text"]) == 0
    assert set(load(stripped).text.tolist()) == {None} and content_hash(
        load(stripped)
    ) != content_hash(table)


def test_import_generic_csv(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("id,pred,ok,reward\nq1,4,1,0.5\nq1,5,0,0.25\nq2,7,,\n", encoding="utf-8")
    out = tmp_path / "t.jsonl"
    code = main(["import", str(log), "-f", "generic", "-o", str(out), "--query-id-field", "id",
                 "--answer-field", "pred", "--correct-field", "ok", "--score-field", "rm=reward"])  # fmt: skip
    assert code == 0
    table = load(out)
    assert table.answer.tolist() == ["4", "5", "7"] and table.correct.tolist() == [
        True,
        False,
        None,
    ]
    assert table.scores["rm"].tolist() == [0.5, 0.25, None] and table.sample_index.tolist() == [
        0,
        1,
        0,
    ]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--format", "generic"], "needs --query-id-field"),
        (
            ["--format", "generic", "--query-id-field", "id", "--score-field", "rm"],
            "expected NAME=FIELD",
        ),
        (
            ["--format", "cruxeval-scored", "--answer-field", "x"],
            "applies only to --format generic",
        ),
        (["--format", "samples", "--model", "m"], "converts a table as it is"),
        (["--format", "generic", "--query-id-field", "id", "--temperature", "-1"], "must be >= 0"),
        (["--format", "generic", "--query-id-field", "id", "--temperature", "nan"], "must be >= 0"),
        (["--format", "generic", "--query-id-field", "id", "--answer-field", ""], "non-empty"),
        (["--format", "generic", "--query-id-field", "id", "-o", "t.csv"], "table format"),
    ],
)
def test_command_line_mistakes_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    # The README: exit 2 is a bad command line (1 is a problem with the input).
    log = tmp_path / "log.csv"
    log.write_text("id\nq\n")
    with pytest.raises(SystemExit) as caught:
        main(["import", str(log), "-o", str(tmp_path / "t.jsonl"), *extra])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "usage: ttc import" in err and "Traceback" not in err
    assert not (tmp_path / "t.jsonl").exists()


def test_output_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"id": "q"}\n')
    args = ["import", str(log), "-f", "generic", "--query-id-field", "id"]
    with pytest.raises(SystemExit) as caught:
        main([*args, "-o", str(tmp_path / "t.csv")])
    assert caught.value.code == 2 and "cannot tell the table format" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "t.jsonl")]) == 0
    assert main([*args, "-o", str(tmp_path / "t.jsonl")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "t.jsonl"), "--force"]) == 0
    assert main([*args, "-o", str(tmp_path / "missing-dir" / "t.jsonl")]) == 1
    assert (
        main(["import", str(tmp_path / "absent.jsonl"), *args[2:], "-o", str(tmp_path / "u.jsonl")])
        == 1
    )
    assert "no such file" in capsys.readouterr().err


def test_a_malformed_line_exits_1_and_writes_nothing(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (shared_data / "pools" / QWEN).read_text(encoding="utf-8").splitlines(keepends=True)
    broken = json.loads(lines[60])
    broken["pred"] = broken["pred"][:5]
    log = tmp_path / "pool.jsonl"
    log.write_text(
        "".join(lines[:60]) + json.dumps(broken) + "\n" + "".join(lines[61:]), encoding="utf-8"
    )
    out = tmp_path / "t.jsonl"
    assert main(["import", str(log), "-f", "qwen25math-eval", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{log}:61: field 'pred': has 5 entries but code has 8" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.jsonl"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_crash_while_writing_leaves_no_table(
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
) -> None:
    import pyarrow.parquet as pq

    import ttcdsl.samples.jsonl as jsonl

    real_lines, real_write = jsonl.iter_table_lines, pq.write_table

    def lines_then_crash(table):  # noqa: ANN001, ANN202
        for number, line in enumerate(real_lines(table)):
            if number == 300:
                raise OSError("disk full")
            yield line

    def write_then_crash(table, where, **kwargs):  # noqa: ANN001, ANN202
        real_write(table.slice(0, 100), where, **kwargs)  # a partial file exists on disk
        raise OSError("disk full")

    monkeypatch.setattr(jsonl, "iter_table_lines", lines_then_crash)
    monkeypatch.setattr(pq, "write_table", write_then_crash)
    out = tmp_path / f"t{suffix}"
    code = main(
        ["import", str(shared_data / "pools" / QWEN), "-f", "qwen25math-eval", "-o", str(out)]
    )
    assert code == 1
    assert f"{out}: cannot write the table (disk full)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the table nor a temporary file

    # an existing table survives a failed --force replacement untouched
    monkeypatch.undo()
    assert (
        main(["import", str(shared_data / "pools" / QWEN), "-f", "qwen25math-eval", "-o", str(out)])
        == 0
    )
    before = out.read_bytes()
    monkeypatch.setattr(jsonl, "iter_table_lines", lines_then_crash)
    monkeypatch.setattr(pq, "write_table", write_then_crash)
    assert main(["import", str(shared_data / "pools" / CRUX), "-f", "cruxeval-scored",
                 "-o", str(out), "--force"]) == 1  # fmt: skip
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_registering_the_command_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    from ttcdsl.answers.kinds import KINDS
    from ttcdsl.cli import import_cmd
    from ttcdsl.importers import FORMATS

    from ttcdsl.importers.labels import EXTRACT_KINDS

    assert import_cmd.FORMATS == FORMATS and import_cmd.ANSWER_KINDS == KINDS
    assert import_cmd.EXTRACT_KINDS == EXTRACT_KINDS
    probe = (
        "import argparse, importlib, sys; sub = argparse.ArgumentParser().add_subparsers(); "
        "[importlib.import_module('ttcdsl.cli.' + n).add_parser(sub) "
        "for n in ('import_cmd', 'queries', 'split')]; "
        "print(sorted(n for n in ('numpy', 'pyarrow', 'ttcdsl.samples', 'ttcdsl.datasets') "
        "if n in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_import_with_a_tokenizer_folder(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizers = pytest.importorskip(
        "tokenizers", reason="the optional 'tokenizers' package is not installed"
    )
    model = tmp_path / "model"
    model.mkdir()
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.train_from_iterator(["f ( x ) = 1"], tokenizers.trainers.WordLevelTrainer())
    tok.save(str(model / "tokenizer.json"))  # no [UNK] in its vocabulary: it fails on new words
    out = tmp_path / "crux.parquet"
    args = ["import", str(shared_data / "pools" / CRUX), "-f", "cruxeval-scored", "-o", str(out)]
    assert main([*args, "--tokenizer", str(model)]) == 1
    assert "cannot encode the logged text" in capsys.readouterr().err and not out.exists()

    trainer = tokenizers.trainers.WordLevelTrainer(special_tokens=["[UNK]"])
    tok.train_from_iterator(["f ( x ) = 1"], trainer)
    tok.save(str(model / "tokenizer.json"))
    assert main([*args, "--tokenizer", str(model), "--no-text"]) == 0
    table = load(out)
    assert table.completion_tokens.count() == 8000 and table.completion_tokens.min() >= 1
    assert table.meta.tokenizer.startswith("model (tokenizer.json sha256 ")
    assert (
        "completion tokens: known for 8000 samples (counted with model (tokenizer.json"
        in capsys.readouterr().out
    )
    assert main([*args, "--force", "--tokenizer", str(tmp_path / "nothing")]) == 1
    assert "no such tokenizer" in capsys.readouterr().err


def test_an_extraction_that_finds_no_answer_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pattern that matches no sample labels every sample wrong ('correct: 0/2'); the summary
    counts the answers extracted, and a warning says that none was."""
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"qid": "q1", "text": f"the answer is {a}", "gt": "4"}) + "\n"
                           for a in (4, 5)))
    base = ["import", str(log), "-f", "generic", "--query-id-field", "qid", "--text-field", "text",
            "--gold-field", "gt", "--answer-kind", "math"]
    assert main([*base, "--extract-regex", r"answer is (\d+)", "-o", str(tmp_path / "a.jsonl")]) == 0
    captured = capsys.readouterr()
    assert "extracted from 2 of 2 samples" in captured.out and "warning" not in captured.err
    assert main([*base, "--extract-regex", "NO MATCH", "-o", str(tmp_path / "b.jsonl")]) == 0
    captured = capsys.readouterr()
    assert "extracted from 0 of 2 samples" in captured.out
    assert "warning: no sample has an answer" in captured.err


def test_a_log_without_an_answer_field_is_told_what_to_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The warning blamed an extraction that was never asked for."""
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"qid": "q1", "text": "4", "ok": True}) + "\n", encoding="utf-8")
    assert main(["import", str(log), "-f", "generic", "--query-id-field", "qid", "--text-field", "text",
                 "--correct-field", "ok", "-o", str(tmp_path / "t.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "no answer is mapped: give --answer-field, or --extract from --text-field" in err
    assert "extraction" not in err.replace("--extract from", "")


def test_a_samples_table_given_as_a_log_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A table ttc wrote, imported as a generic log, failed on its header line: "field
    'query_id': missing on this line (it has: meta, ttc_samples)"."""
    table = tmp_path / "table.jsonl"
    assert main(["workload", "-o", str(table), "--queries", "5", "--samples", "2"]) == 0
    capsys.readouterr()
    out = tmp_path / "imported.jsonl"
    assert main(["import", str(table), "-f", "generic", "--query-id-field", "query_id",
                 "--text-field", "text", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{table}: a samples table, not a log of samples" in err and "needs no import" in err
    assert not out.exists()
    # a log whose records hold an id and a prompt is still a log
    log = tmp_path / "log.jsonl"
    log.write_text('{"id": "q1", "prompt": "1 + 1?", "response": "2"}\n')
    assert main(["import", str(log), "-f", "generic", "--query-id-field", "id", "--text-field",
                 "response", "--extract", "math", "-o", str(out)]) == 0
    assert len(load(out)) == 1
