"""No input, however broken, gets anything but a clear user error out of the readers."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from ttcdsl.datasets import read_queries
from ttcdsl.errors import UserError
from ttcdsl.importers import (
    FieldMapping,
    import_cruxeval_scored,
    import_generic,
    import_qwen25math_eval,
)
from ttcdsl.samples import load

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    ["idx", "code", "pred", "score", "pred_score", "qid", "a", "ok", "raw_generations",
     "raw_scored_generations", "query_id", "sample_index", "scores", "id", "kind", "prompt",
     "messages", "gold", "meta", "ttc_samples"]
)  # fmt: skip
records = st.dictionaries(keys, json_values, max_size=6)
lines = st.lists(records.map(json.dumps) | st.text(max_size=30), min_size=0, max_size=4)

READERS = {
    "qwen": lambda p: import_qwen25math_eval(p),
    "cruxeval": lambda p: import_cruxeval_scored(p),
    "generic": lambda p: import_generic(
        p, FieldMapping(query_id="qid", answer="a", correct="ok", scores=(("rm", "score"),)),
        file_format="jsonl",
    ),
    "samples": lambda p: load(p),
    "dataset": lambda p: read_queries(p),
}  # fmt: skip


@pytest.mark.parametrize("reader", sorted(READERS))
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=lines, header=st.booleans())
def test_readers_raise_only_user_errors(
    tmp_path: Path, reader: str, content: list[str], header: bool
) -> None:
    path = tmp_path / "input.jsonl"
    prefix = '{"ttc_samples": 1, "meta": {}}\n' if header else ""
    path.write_text(prefix + "\n".join(content) + ("\n" if content else ""), encoding="utf-8")
    try:
        READERS[reader](path)
    except UserError as error:
        assert str(path) in error.render()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(keys, json_values, max_size=4) | json_values)
def test_cruxeval_documents_raise_only_user_errors(tmp_path: Path, document: object) -> None:
    path = tmp_path / "scored.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        import_cruxeval_scored(path)
    except UserError as error:
        assert str(path) in error.render()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(st.text(max_size=6), min_size=1, max_size=4), max_size=5))
def test_csv_raises_only_user_errors(tmp_path: Path, rows: list[list[str]]) -> None:
    import csv

    path = tmp_path / "log.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["qid", "a", "ok"], *rows])
    try:
        import_generic(path, FieldMapping(query_id="qid", answer="a", correct="ok"))
    except UserError as error:
        assert str(path) in error.render()
