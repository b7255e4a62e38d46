"""The append-only JSONL store: round trips, torn last lines, malformed lines named by file:line:field."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from ttcdsl.samples import (
    RunMeta,
    SampleRow,
    FileFormatError,
    SampleStore,
    SamplesTable,
    SchemaError,
    TornLineError,
    load,
    repair,
    save,
)

META = RunMeta(model="m", backend="vllm", seed=7, sampling={"max_tokens": 64}, created_at="t0")


def _round(r: int, queries: int = 3, per: int = 2) -> list[SampleRow]:
    return [
        SampleRow(
            query_id=f"q{q}", sample_index=r * per + k, round=r, completion_tokens=10 + k,
            finish_reason="stop", answer=str(k), correct=k == 0, text="line\nbreak ü",
            scores={"rm": 0.25 * k}, temperature=0.8, seed=100 + k, mean_logprob=-0.5,
        )
        for q in range(queries)
        for k in range(per)
    ]  # fmt: skip


def test_append_rounds_then_load(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    assert store.append(_round(0)) == 6
    assert store.append([]) == 0
    assert store.append(_round(1)) == 6
    table = store.load()
    assert table == SamplesTable.from_rows(_round(0) + _round(1), meta=META)
    assert store.meta() == META
    assert SampleStore.open(store.path).meta() == META
    # every line is complete JSON, the header first
    lines = store.path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["ttc_samples"] == 1 and len(lines) == 13


def test_create_refuses_an_existing_file(tmp_path: Path) -> None:
    SampleStore.create(tmp_path / "run.jsonl", META)
    with pytest.raises(FileFormatError, match="already exists"):
        SampleStore.create(tmp_path / "run.jsonl", META)


def test_a_bad_row_writes_nothing(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    before = store.path.read_bytes()
    with pytest.raises(SchemaError):
        store.append([*_round(0), "not a row"])  # type: ignore[list-item]
    with pytest.raises(SchemaError, match="duplicate"):
        store.append(_round(0) + _round(0)[:1])
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("cut", [1, 17, -1])
def test_a_torn_last_line_is_reported_then_repaired(tmp_path: Path, cut: int) -> None:
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    store.append(_round(0))
    intact = store.path.read_bytes()
    line = json.dumps(_round(1)[0].to_dict()) + "\n"
    with open(store.path, "ab") as handle:  # a crash in the middle of writing line 8
        handle.write(line.encode()[:cut])
    with pytest.raises(TornLineError) as caught:
        store.load()
    error = caught.value
    assert error.line == 8 and error.path == store.path and error.offset == len(intact)
    assert f"{store.path}:8:" in error.render() and "repair" in error.render()
    with pytest.raises(TornLineError):
        store.append(_round(1))  # never glue a new line onto the fragment
    with pytest.raises(TornLineError):
        SampleStore.open(store.path)
    report = repair(store.path)
    assert report.changed and report.line == 8 and report.removed == len(line.encode()[:cut])
    assert store.path.read_bytes() == intact
    assert not repair(store.path).changed  # a clean file is left alone
    store.append(_round(1))
    assert len(store.load()) == 12


def test_a_torn_header_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"ttc_samples": 1, "me')
    with pytest.raises(TornLineError) as caught:
        load(path)
    assert caught.value.line == 1
    assert repair(path).removed == 22 and path.read_bytes() == b""
    with pytest.raises(FileFormatError, match="empty"):
        load(path)


def _store_with(tmp_path: Path, line: str) -> Path:
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    store.append(_round(0))
    with open(store.path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    store.append(_round(1))
    return store.path


GOOD = {"query_id": "x", "sample_index": 0}


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('{"query_id": "x", "sample_index": ', None, "not valid JSON"),
        ("[1, 2]", None, "expected a JSON object"),
        ("", None, "blank line"),
        (json.dumps({**GOOD, "sample_index": "3"}), "sample_index", "non-negative integer"),
        (json.dumps({**GOOD, "sample_index": 1.5}), "sample_index", "non-negative integer"),
        (json.dumps({**GOOD, "correct": "yes"}), "correct", "true, false or null"),
        (json.dumps({**GOOD, "completion_tokens": -3}), "completion_tokens", ">= 0"),
        (json.dumps({**GOOD, "text": 12}), "text", "string"),
        (json.dumps({**GOOD, "temperature": -1}), "temperature", ">= 0"),
        (json.dumps({**GOOD, "mean_logprob": "x"}), "mean_logprob", "number"),
        (json.dumps({**GOOD, "seed": 2**70}), "seed", "64-bit"),
        (json.dumps({**GOOD, "scores": {"rm": "high"}}), "scores.rm", "must be a number"),
        (json.dumps({**GOOD, "scores": [1.0]}), "scores", "mapping"),
        (json.dumps({**GOOD, "answr": "4"}), "answr", "unknown field"),
        (json.dumps({"sample_index": 0}), "query_id", "missing"),
        (json.dumps({**GOOD, "query_id": None}), "query_id", "string"),
        (
            json.dumps({"query_id": "q1", "sample_index": 0}),
            "sample_index",
            "already appears on line 4",
        ),
    ],
)
def test_a_malformed_line_is_named_by_file_line_and_field(
    tmp_path: Path, line: str, field: str | None, words: str
) -> None:
    path = _store_with(tmp_path, line)
    with pytest.raises(FileFormatError) as caught:
        load(path)
    error = caught.value
    assert error.line == 8 and error.field == field and words in error.message
    assert error.message.startswith(f"{path}:8: " + (f"field {field!r}: " if field else ""))


def test_bad_headers(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"query_id": "q", "sample_index": 0}\n')
    with pytest.raises(FileFormatError, match="not a samples header"):
        load(path)
    path.write_text('{"ttc_samples": 9, "meta": {}}\n')
    with pytest.raises(FileFormatError, match="newer"):
        load(path)
    path.write_text('{"ttc_samples": 1, "meta": {"model": 3}}\n')
    with pytest.raises(FileFormatError) as caught:
        load(path)
    assert caught.value.field == "meta.model" and caught.value.line == 1
    path.write_text('{"ttc_samples": 1, "meta": {"schema_version": 2}}\n')
    with pytest.raises(FileFormatError, match="disagrees") as caught:
        load(path)
    assert caught.value.field == "meta.schema_version"
    path.write_text('{"ttc_samples": 1, "meta": {"modle": "x"}}\n')
    with pytest.raises(FileFormatError, match="unknown metadata field") as caught:
        load(path)
    assert caught.value.field == "meta.modle"
    with pytest.raises(FileFormatError, match="no such file"):
        load(tmp_path / "absent.jsonl")


def test_texts_with_lone_surrogates_survive(tmp_path: Path) -> None:
    rows = [SampleRow(query_id="q", sample_index=0, text="broken \ud800 ü", answer="é")]
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    store.append(rows)
    assert list(store.load().rows()) == rows
    with pytest.raises(
        FileFormatError, match="row 1 holds text that is not valid Unicode"
    ) as caught:
        save(store.load(), tmp_path / "t.parquet")
    assert caught.value.field == "text" and not (tmp_path / "t.parquet").exists()


def test_an_empty_store_loads_as_an_empty_table(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    table = store.load()
    assert len(table) == 0 and table.meta == META and table.by_query() == {}


def test_rows_whose_types_need_the_careful_reader_still_load(tmp_path: Path) -> None:
    # integer scores and a long line take the line-by-line path; the result is the same table
    store = SampleStore.create(tmp_path / "run.jsonl", META)
    with open(store.path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({**GOOD, "scores": {"rm": 1}}) + "\n")
        handle.write(json.dumps({**GOOD, "sample_index": 1, "scores": {"rm": 0.5}}) + "\n")
        handle.write(json.dumps({**GOOD, "sample_index": 2, "text": "y" * (5 << 20)}) + "\n")
    table = store.load()
    assert table.scores["rm"].tolist() == [1.0, 0.5, None]
    assert len(table.text[2]) == 5 << 20


JSON_VALUES = st.sampled_from(
    [None, "", "x", 0, 3, -1, 1.5, True, False, 2**70, {}, [], {"rm": 1}, {"rm": "x"},
     {"rm": None}, {"rm": 0.5, "prm": 2}, "stop", -0.25]
)  # fmt: skip


@st.composite
def row_records(draw: st.DrawFn) -> list[dict]:
    """Mostly valid rows, some fields replaced by arbitrary JSON values, some keys dropped."""
    records = []
    for i in range(draw(st.integers(1, 6))):
        record = SampleRow(
            query_id=draw(st.sampled_from(["a", "b", "c"])), sample_index=i, round=0,
            completion_tokens=draw(st.none() | st.integers(0, 99)), answer=draw(st.none() | st.just("4")),
            correct=draw(st.none() | st.booleans()), scores={"rm": draw(st.floats(-2, 2))},
        ).to_dict()  # fmt: skip
        if draw(st.integers(0, 3)) == 0:
            record[draw(st.sampled_from(sorted(record)))] = draw(JSON_VALUES)
        if draw(st.integers(0, 9)) == 0:
            del record[draw(st.sampled_from(sorted(record)))]
        if draw(st.integers(0, 9)) == 0:
            record[draw(st.sampled_from(["extra", "Correct"]))] = 1
        records.append(record)
    return records


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=row_records())
def test_the_fast_reader_agrees_with_the_line_by_line_reader(
    tmp_path: Path, records: list[dict]
) -> None:
    from ttcdsl.samples.jsonl import _read_slow, encode_header

    path = tmp_path / "t.jsonl"
    data = (encode_header(META) + "".join(json.dumps(r) + "\n" for r in records)).encode()
    path.write_bytes(data)
    try:
        expected = _read_slow(data, path, META)
    except FileFormatError as slow_error:
        with pytest.raises(FileFormatError) as caught:
            load(path)
        assert (caught.value.line, caught.value.field, caught.value.message) == (
            slow_error.line, slow_error.field, slow_error.message,
        )  # fmt: skip
    else:
        assert load(path) == expected
