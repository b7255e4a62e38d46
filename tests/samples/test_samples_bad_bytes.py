"""Bytes that are not UTF-8, and JSON/YAML nested past the parsers' recursion limit, in every file
ttc reads: each is a user error naming the file and the line of the bad byte, never exit 3."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttcdsl.cli import main
from ttcdsl.datasets import read_queries
from ttcdsl.samples import RunMeta, SamplesTable, load, save
from ttcdsl.samples.errors import FileFormatError

DEEP = "[" * 100_000 + "]" * 100_000


def _table_file(tmp_path: Path, rows: int = 120) -> Path:
    table = SamplesTable.from_columns(
        query_id=[f"q{i}" for i in range(rows)],
        sample_index=[0] * rows,
        finish_reason=["stop"] * rows,
        answer=[str(i) for i in range(rows)],
        meta=RunMeta(),
    )
    path = tmp_path / "t.jsonl"
    save(table, path)
    return path


def _replace_line(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    return capsys.readouterr().err


def test_non_utf8_in_a_samples_table_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _table_file(tmp_path)
    _replace_line(path, 100, b'"stop"', b'"st\xff\xfeop"')
    with pytest.raises(FileFormatError) as caught:
        load(path)
    assert caught.value.line == 100 and "UTF-8" in caught.value.detail
    err = _cli_error(["import", str(path), "-f", "samples", "-o", str(tmp_path / "o.parquet")], capsys)
    assert f"{path}:100: not valid UTF-8" in err


def test_non_utf8_in_a_parquet_table_names_the_row_and_column(tmp_path: Path) -> None:
    # Arrow does not validate UTF-8 when it reads; a view of raw bytes as strings writes them.
    answers = pa.array([b"1", b"\xfe", b"3"], pa.binary()).view(pa.string())
    arrow = pa.table({"query_id": ["a", "b", "c"], "sample_index": [0, 0, 0], "answer": answers})
    pq.write_table(arrow, tmp_path / "t.parquet")
    with pytest.raises(FileFormatError) as caught:
        load(tmp_path / "t.parquet")
    assert caught.value.field == "answer" and "row 2: not valid UTF-8" in caught.value.detail


def test_deeply_nested_parquet_metadata_is_a_user_error(tmp_path: Path) -> None:
    arrow = pa.table({"query_id": ["a"], "sample_index": [0]})
    arrow = arrow.replace_schema_metadata({b"ttcdsl.meta": DEEP.encode()})
    pq.write_table(arrow, tmp_path / "t.parquet")
    with pytest.raises(FileFormatError, match="nested too deeply"):
        load(tmp_path / "t.parquet")


def test_deeply_nested_json_in_a_samples_row_is_a_user_error(tmp_path: Path) -> None:
    path = _table_file(tmp_path)
    _replace_line(path, 51, b'"scores":{}', b'"scores":' + DEEP.encode())
    with pytest.raises(FileFormatError) as caught:
        load(path)
    assert caught.value.line == 51 and "nested too deeply" in caught.value.detail


def test_queries_file_errors_name_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    # A text-mode reader decodes ahead in blocks: the byte on line 100 used to be blamed on :77.
    lines = [f'{{"id": "q{i}", "kind": "math", "prompt": "{"x" * 80}"}}' for i in range(150)]
    path = tmp_path / "q.jsonl"
    path.write_bytes("\n".join(lines).encode().replace(b'"q99"', b'"q\xff99"') + b"\n")
    with pytest.raises(FileFormatError) as caught:
        read_queries(path)
    assert caught.value.line == 100 and "byte 0xff at column 10" in caught.value.detail
    lines[10] = f'{{"id": "d", "kind": "math", "prompt": "x", "meta": {DEEP}}}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as caught:
        read_queries(path)
    assert caught.value.line == 11 and "nested too deeply" in caught.value.detail
    # Deep enough to pass the JSON parser, too deep for the checks that walk `meta`.
    lines[10] = '{"id": "d", "kind": "math", "prompt": "x", "meta": {"k": ' + "[" * 500 + "]" * 500 + "}}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as caught:
        read_queries(path)
    assert caught.value.line == 11 and caught.value.field == "meta"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_generic_import_names_the_line_of_the_bad_byte(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if suffix == ".csv":
        text = "id,pred\n" + "".join(f"q{i},{i}\n" for i in range(200))
    else:
        text = "".join(f'{{"id": "q{i}", "pred": "{i}"}}\n' for i in range(200))
    path = tmp_path / f"log{suffix}"
    path.write_bytes(text.encode().replace(b"q150", b"q\xff150"))
    argv = ["import", str(path), "-f", "generic", "--query-id-field", "id", "-o", str(tmp_path / "t.jsonl")]  # fmt: skip
    err = _cli_error(argv, capsys)
    line = 152 if suffix == ".csv" else 151
    assert f"{path}:{line}: not valid UTF-8 text" in err
    if suffix == ".jsonl":
        path.write_text('{"id": "q", "pred": ' + DEEP + "}\n")
        assert f"{path}:1: JSON nested too deeply" in _cli_error(argv, capsys)


def test_cruxeval_document_errors_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scored.json"
    path.write_bytes(b'{"raw_generations": {\n"a": ["x"],\n"b": ["\xff"]}}')
    argv = ["import", str(path), "-f", "cruxeval-scored", "-o", str(tmp_path / "t.jsonl")]
    assert f"{path}:3: not valid UTF-8 text" in _cli_error(argv, capsys)
    path.write_text('{"raw_generations": ' + DEEP + "}")
    assert "nested too deeply" in _cli_error(argv, capsys)


def test_a_deeply_nested_plan_is_a_user_error(tmp_path: Path) -> None:
    from ttcdsl.planner.plan import load_plan

    path = tmp_path / "deep.plan.yaml"
    path.write_text("ttcdsl_plan: 1\nbins: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(FileFormatError, match="nested too deeply"):
        load_plan(path)
