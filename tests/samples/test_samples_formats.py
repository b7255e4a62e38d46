"""JSONL <-> Parquet round trips (a hypothesis property), Parquet errors, the content hash."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from ttcdsl.errors import UserError
from ttcdsl.samples import (
    RunMeta,
    SampleRow,
    FileFormatError,
    SamplesTable,
    content_hash,
    load,
    save,
)
from ttcdsl.samples.atomic import atomic_writer

META = RunMeta(
    policy_hash="sha256:abc", model="Qwen/Qwen2.5-Math-7B-Instruct", backend="replay", seed=3,
    sampling={"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024}, created_at="2026-01-01T00:00:00Z",
    source="test", tokenizer=None, notes={"why": "a round trip"},
)  # fmt: skip

counts = st.none() | st.integers(0, 2**40)
reals = st.none() | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
logprobs = st.none() | st.floats(-1e6, 0, allow_nan=False, allow_infinity=False)  # never positive
texts = st.none() | st.text(max_size=20)


@st.composite
def tables(draw: st.DrawFn) -> SamplesTable:
    n_queries = draw(st.integers(0, 5))
    scorer_names = draw(st.lists(st.sampled_from(["rm", "prm", "conf"]), unique=True, max_size=3))
    rows = []
    for q in range(n_queries):
        qid = draw(st.text(min_size=1, max_size=8)) + f"#{q}"
        indices = draw(st.lists(st.integers(0, 50), unique=True, max_size=6))
        for k in indices:
            rows.append(
                SampleRow(
                    query_id=qid,
                    sample_index=k,
                    round=draw(st.integers(0, 3)),
                    prompt_tokens=draw(counts),
                    completion_tokens=draw(counts),
                    finish_reason=draw(st.none() | st.sampled_from(["stop", "length"])),
                    text=draw(texts),
                    answer=draw(texts),
                    correct=draw(st.none() | st.booleans()),
                    mean_logprob=draw(logprobs),
                    scores={
                        n: draw(reals.filter(lambda v: v is not None))
                        for n in scorer_names
                        if draw(st.booleans())
                    },
                    temperature=draw(st.none() | st.floats(0, 2)),
                    seed=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
                )
            )
    order = draw(st.permutations(range(len(rows))))
    return SamplesTable.from_rows([rows[i] for i in order], meta=META)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables())
def test_round_trip_jsonl_parquet_jsonl(tmp_path: Path, table: SamplesTable) -> None:
    save(table, tmp_path / "a.jsonl")
    from_jsonl = load(tmp_path / "a.jsonl")
    assert from_jsonl == table
    save(from_jsonl, tmp_path / "a.parquet")
    from_parquet = load(tmp_path / "a.parquet")
    assert from_parquet == table
    save(from_parquet, tmp_path / "b.jsonl")
    assert load(tmp_path / "b.jsonl") == table
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert list(from_parquet.rows()) == list(table.rows())
    for loaded in (from_jsonl, from_parquet):
        assert loaded.query_ids() == table.query_ids()
        assert loaded.query_codes.tolist() == table.query_codes.tolist()
        assert {k: v.tolist() for k, v in loaded.by_query().items()} == {
            k: v.tolist() for k, v in table.by_query().items()
        }
    assert content_hash(from_parquet) == content_hash(table)


@settings(max_examples=30, deadline=None)
@given(table=tables(), data=st.data())
def test_hash_ignores_order_and_metadata_but_not_content(
    table: SamplesTable, data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(table))))
    shuffled = table.take(np.array(order, dtype=np.int64)).with_meta(RunMeta(created_at="other"))
    assert content_hash(shuffled) == content_hash(table)
    if len(table):
        i = data.draw(st.integers(0, len(table) - 1))
        row = table.row(i)
        changed = SampleRow(
            **{**row.to_dict(), "correct": not row.correct if row.correct is not None else True}
        )
        rows = list(table.rows())
        rows[i] = changed
        assert content_hash(SamplesTable.from_rows(rows, meta=META)) != content_hash(table)


def test_hash_is_stable_across_releases() -> None:
    table = SamplesTable.from_rows(
        [
            SampleRow(query_id="q1", sample_index=0, answer="4", correct=True, scores={"rm": 0.5}),
            SampleRow(query_id="q1", sample_index=1, answer=None, completion_tokens=12),
        ],
        meta=META,
    )
    # A recorded value: if it changes, plans that recorded older hashes no longer match their
    # tables, so a change of encoding must come with a new prefix (ttc-samples-v2).
    assert content_hash(table) == (
        "ttc-samples-v1:sha256:9a662560e375076d622c437c94b6ddc33491465a7991df1f706ecd04546eda83"
    )


def test_parquet_without_scores_and_with_foreign_columns(tmp_path: Path) -> None:
    table = SamplesTable.from_rows([SampleRow(query_id="q", sample_index=0)], meta=META)
    save(table, tmp_path / "t.parquet")
    assert "scores" not in pq.read_schema(tmp_path / "t.parquet").names
    assert load(tmp_path / "t.parquet") == table

    foreign = pa.table({"query_id": ["a"], "sample_index": pa.array([0], pa.int32()), "extra": [1]})
    pq.write_table(foreign, tmp_path / "f.parquet")
    with pytest.raises(FileFormatError) as caught:
        load(tmp_path / "f.parquet")
    assert caught.value.field == "extra"

    # another tool's table with the right columns (narrower ints) loads, metadata says from where
    pq.write_table(foreign.drop(["extra"]), tmp_path / "g.parquet")
    loaded = load(tmp_path / "g.parquet")
    assert loaded.sample_index.dtype == np.int64 and loaded.meta.source == "parquet g.parquet"


def test_parquet_row_errors_name_the_row(tmp_path: Path) -> None:
    bad = pa.table({"query_id": ["a", "a", "b"], "sample_index": [0, 0, -2]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(FileFormatError) as caught:
        load(tmp_path / "bad.parquet")
    assert (
        caught.value.field == "sample_index" and "row 2: duplicate sample" in caught.value.message
    )
    pq.write_table(bad.slice(2), tmp_path / "neg.parquet")
    with pytest.raises(FileFormatError, match="row 1: sample_index must be >= 0"):
        load(tmp_path / "neg.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(FileFormatError, match="not a readable Parquet file"):
        load(tmp_path / "junk.parquet")


def test_unknown_extension_is_a_user_error(tmp_path: Path) -> None:
    table = SamplesTable.from_rows([], meta=META)
    with pytest.raises(UserError, match="extension"):
        save(table, tmp_path / "t.csv")


def test_atomic_writes_leave_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("new, half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]  # no temporary left over


def test_atomic_writes_get_ordinary_permissions(tmp_path: Path) -> None:
    table = SamplesTable.from_rows([SampleRow(query_id="q", sample_index=0)], meta=META)
    (tmp_path / "plain.txt").write_text("x")
    for name in ("t.jsonl", "t.parquet"):
        save(table, tmp_path / name)
        assert (tmp_path / name).stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


def test_save_replaces_atomically(tmp_path: Path) -> None:
    table = SamplesTable.from_rows([SampleRow(query_id="q", sample_index=0)], meta=META)
    save(table, tmp_path / "t.jsonl")
    save(table, tmp_path / "t.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]
    header = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert header["meta"]["notes"] == {"why": "a round trip"}


def test_the_benchmark_runs_and_writes_its_numbers(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "bench" / "samples_io.py"
    out = tmp_path / "numbers.json"
    result = subprocess.run(
        [sys.executable, str(script), "--rows", "3000", "--repeat", "1", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    numbers = json.loads(out.read_text())
    assert numbers["rows"] == 3000
    assert set(numbers["speedup_vs_json_loads"]) == {"load_jsonl", "load_parquet"}
    assert "x" in result.stdout and "baseline" in result.stdout
