"""Inputs that look like samples tables but are not, or hold values a table cannot keep: each is a
clear error naming the file (never a crash, never a silent conversion), and ``repair`` never
touches a file that is not a samples table."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttcdsl.cli import main
from ttcdsl.samples import RunMeta, SamplesTable, load, repair, save
from ttcdsl.samples.errors import FileFormatError


def _table(n: int = 6) -> SamplesTable:
    return SamplesTable.from_columns(
        query_id=[f"q{i // 2}" for i in range(n)], sample_index=[i % 2 for i in range(n)],
        answer=[str(i % 3) for i in range(n)], correct=[i % 3 == 0 for i in range(n)],
        completion_tokens=[10 + i for i in range(n)], meta=RunMeta(source="test", notes={"a": 1}),
    )


def _grades(tmp_path: Path, values, kind) -> Path:
    path = tmp_path / "graded.parquet"
    n = len(values)
    pq.write_table(pa.table({
        "query_id": [f"q{i}" for i in range(n)], "sample_index": pa.array([0] * n, pa.int64()),
        "answer": ["1"] * n, "correct": pa.array(values, kind),
    }), path)
    return path


@pytest.mark.parametrize(("values", "kind"), [([0.3, 0.9, 0.0], pa.float64()),
                                              ([2, 0, 1], pa.int64())])
def test_a_parquet_correct_column_that_is_not_bool_is_refused(tmp_path, values, kind):
    """Arrow casts any non-zero number to true: a grader's 0.3 became a correct sample."""
    with pytest.raises(FileFormatError, match=r"column 'correct' has type .*expected bool"):
        load(_grades(tmp_path, values, kind))


def test_a_parquet_correct_column_of_nulls_loads_as_unlabelled(tmp_path):
    table = load(_grades(tmp_path, [None, None], pa.null()))
    assert table.correct.mask.all()


@pytest.mark.parametrize(("make", "what"), [
    (lambda table, path: save(table, path.with_suffix(".parquet")) or
     path.write_bytes(path.with_suffix(".parquet").read_bytes()), "a Parquet file"),
    (lambda table, path: save(table, path.with_suffix(".tmp.jsonl")) or
     path.write_bytes(gzip.compress(path.with_suffix(".tmp.jsonl").read_bytes())), "gzip-compressed"),
])
def test_a_binary_file_named_jsonl_is_named_for_what_it_is(tmp_path, make, what):
    path = tmp_path / "table.jsonl"
    make(_table(), path)
    before = path.read_bytes()
    with pytest.raises(FileFormatError, match=what):
        load(path)
    # the advice of a "torn line" was to repair it, which truncated the file: now refused
    with pytest.raises(FileFormatError, match="not a samples table"):
        repair(path)
    assert path.read_bytes() == before


def test_a_raw_log_without_a_final_line_end_is_not_a_torn_table(tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text('{"idx": 1, "pred": ["2"]}\n{"idx": 2, "pred": ["3"]}')
    with pytest.raises(FileFormatError, match="header") as caught:
        load(path)
    assert "cut off" not in str(caught.value)
    with pytest.raises(FileFormatError, match="not a samples table"):
        repair(path)
    assert path.read_text().endswith('["3"]}')


def test_a_table_whose_last_whole_row_lacks_its_line_end_loads_whole(tmp_path):
    path = tmp_path / "t.jsonl"
    save(_table(), path)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert len(load(path)) == 6  # the last row is whole: nothing was cut off
    # a row cut inside is still torn, and only its fragment is cut by repair
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(FileFormatError, match="cut off"):
        load(path)
    assert repair(path).removed > 0 and len(load(path)) == 5


def test_a_lone_surrogate_is_kept_and_hashed(tmp_path):
    """A JSON escape of half a UTF-16 pair is kept as logged (JSONL round-trips it, as a live
    sample's text must survive); the import wrote the table, then every command crashed
    hashing it (exit 3). It now hashes, so the table plans."""
    log = tmp_path / "log.jsonl"
    log.write_text("".join(
        json.dumps({"qid": f"q{i}", "pred": "x\ud800y" if i == 0 else str(i % 2), "ok": i % 2 == 0})
        + "\n" for i in range(8)))
    out = tmp_path / "t.jsonl"
    assert main(["import", str(log), "-f", "generic", "--query-id-field", "qid", "--answer-field",
                 "pred", "--correct-field", "ok", "-o", str(out)]) == 0
    table = load(out)
    assert table.answer[0] == "x\ud800y"
    from ttcdsl.samples import content_hash

    assert content_hash(table) != content_hash(load(out).where(query_ids=table.query_ids()[1:]))
    policy = Path(__file__).resolve().parents[2] / "policies" / "self_consistency.ttc"
    assert main(["plan", str(policy), "-c", str(out), "-o", str(tmp_path / "p.yaml")]) == 0


def test_a_header_with_nan_is_refused_on_reading(tmp_path, capsys):
    """JSON has no NaN: such a header was read, then every write of the table crashed."""
    path = tmp_path / "t.jsonl"
    save(_table(), path)
    text = path.read_text().replace('"notes":{', '"notes":{"x":NaN,', 1)
    path.write_text(text)
    assert main(["split", str(path), "-o", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 1
    assert "meta.notes.x" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a JSON number"):
        RunMeta(notes={"pass": float("inf")})
