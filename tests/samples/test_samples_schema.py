"""The samples schema: row checks, the columnar table's invariants, grouping and filtering."""

from __future__ import annotations

import numpy as np
import pytest

from ttcdsl.samples import ROW_FIELDS, RunMeta, SampleRow, SamplesTable, SchemaError

META = RunMeta(model="m", backend="replay", seed=1, sampling={"temperature": 0.7}, created_at="t0")


def test_row_fields_are_the_agreed_names() -> None:
    assert ROW_FIELDS == (
        "query_id", "sample_index", "round", "prompt_tokens", "completion_tokens",
        "finish_reason", "text", "answer", "correct", "mean_logprob", "prompt_nll", "scores",
        "temperature", "seed",
    )  # fmt: skip
    assert tuple(SampleRow.__dataclass_fields__) == ROW_FIELDS


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"query_id": ""}, "query_id"),
        ({"query_id": 3}, "query_id"),
        ({"sample_index": -1}, "sample_index"),
        ({"sample_index": 1.0}, "sample_index"),
        ({"sample_index": True}, "sample_index"),
        ({"round": None}, "round"),
        ({"completion_tokens": -5}, "completion_tokens"),
        ({"prompt_tokens": "12"}, "prompt_tokens"),
        ({"correct": 1}, "correct"),
        ({"correct": "true"}, "correct"),
        ({"mean_logprob": float("nan")}, "mean_logprob"),
        ({"mean_logprob": 0.5}, "mean_logprob"),  # a negative log-likelihood, sign not flipped
        ({"prompt_nll": -2.0}, "prompt_nll"),  # a log-probability logged as an NLL
        ({"temperature": -0.1}, "temperature"),
        ({"seed": 2**64}, "seed"),
        ({"scores": {"rm": None}}, "scores.rm"),
        ({"scores": {"rm": "high"}}, "scores.rm"),
        ({"scores": {"": 1.0}}, "scores"),
        ({"answer": 42}, "answer"),
    ],
)
def test_a_bad_value_names_its_field(values: dict, field: str) -> None:
    base = {"query_id": "q", "sample_index": 0}
    with pytest.raises(SchemaError) as caught:
        SampleRow(**{**base, **values})
    assert caught.value.field == field


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(SchemaError) as caught:
        SampleRow.from_dict({"query_id": "q", "sample_index": 0, "corect": True})
    assert caught.value.field == "corect"
    with pytest.raises(SchemaError) as caught:
        SampleRow.from_dict({"query_id": "q"})
    assert caught.value.field == "sample_index"
    # a null score in a file means the scorer did not score the sample
    row = SampleRow.from_dict({"query_id": "q", "sample_index": 0, "scores": {"rm": None, "p": 1}})
    assert dict(row.scores) == {"p": 1.0}


def test_rows_are_frozen_and_normalised() -> None:
    row = SampleRow(
        query_id="q", sample_index=np.int64(2), scores={"rm": 1}, correct=np.bool_(True)
    )
    assert type(row.sample_index) is int and row.correct is True and row.scores["rm"] == 1.0
    with pytest.raises(AttributeError):
        row.answer = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        row.scores["rm"] = 2.0  # type: ignore[index]


def test_meta_rejects_a_newer_schema_version() -> None:
    with pytest.raises(SchemaError, match="newer"):
        RunMeta(schema_version=99)
    assert RunMeta().created_at.endswith("Z")


def _rows() -> list[SampleRow]:
    return [
        SampleRow(query_id="b", sample_index=1, answer="4", correct=True, scores={"rm": 0.5}),
        SampleRow(query_id="a", sample_index=0, answer="3", correct=False, completion_tokens=10),
        SampleRow(query_id="b", sample_index=0, answer=None, correct=None, round=1),
        SampleRow(query_id="a", sample_index=2, completion_tokens=30, scores={"prm": -1.0}),
    ]


def test_table_columns_keep_nulls_apart_from_values() -> None:
    table = SamplesTable.from_rows(_rows(), meta=META)
    assert len(table) == 4
    assert table.query_ids() == ("b", "a")
    assert table.correct.filled(False).tolist() == [True, False, False, False]
    assert np.ma.getmaskarray(table.correct).tolist() == [False, False, True, True]
    assert table.completion_tokens.mean() == 20.0  # unknown counts are skipped, not zero
    assert table.answer.tolist() == ["4", "3", None, None]
    assert set(table.scores) == {"rm", "prm"}
    assert np.ma.getmaskarray(table.scores["rm"]).tolist() == [False, True, True, True]
    assert list(table.rows()) == _rows()


def test_by_query_orders_by_sample_index() -> None:
    table = SamplesTable.from_rows(_rows(), meta=META)
    groups = table.by_query()
    assert list(groups) == ["b", "a"]
    assert groups["b"].tolist() == [2, 0]
    assert groups["a"].tolist() == [1, 3]
    assert table.sample_index[groups["a"]].tolist() == [0, 2]


def test_filtering() -> None:
    table = SamplesTable.from_rows(_rows(), meta=META)
    assert [r.query_id for r in table.where(query_ids=["a"]).rows()] == ["a", "a"]
    assert len(table.where(rounds=[1])) == 1
    assert len(table.where(max_sample_index=0)) == 2
    assert table.filter(np.array([True, False, False, True])).row(1) == _rows()[3]
    assert table.take([3, 0]).query_ids() == ("a", "b")
    assert len(table.where(query_ids=[])) == 0
    with pytest.raises(SchemaError):
        table.filter(np.array([True]))


def test_duplicate_samples_are_refused() -> None:
    rows = [*_rows(), SampleRow(query_id="a", sample_index=2)]
    with pytest.raises(SchemaError, match="query 'a' has sample_index 2 twice") as caught:
        SamplesTable.from_rows(rows, meta=META)
    assert caught.value.field == "sample_index"


def test_columns_are_read_only() -> None:
    table = SamplesTable.from_rows(_rows(), meta=META)
    with pytest.raises(ValueError):
        table.sample_index[0] = 5
    with pytest.raises(ValueError):
        table.correct[0] = False
    with pytest.raises(TypeError):
        table.scores["new"] = table.scores["rm"]  # type: ignore[index]


def test_the_table_does_not_share_the_callers_arrays() -> None:
    answers = np.array(["1", "2"], dtype=object)
    correct = np.ma.MaskedArray([True, False], mask=[False, True])
    index = np.array([0, 1])
    table = SamplesTable.from_columns(
        meta=META, query_id=["q", "q"], sample_index=index, answer=answers, correct=correct
    )
    answers[0], correct[1], index[0] = "changed", True, 7
    assert table.answer.tolist() == ["1", "2"]
    assert table.correct.tolist() == [True, None] and table.sample_index.tolist() == [0, 1]
    same = table.with_meta(META)
    assert same.answer is table.answer  # read-only columns are shared, not copied


def test_from_columns_checks_lengths_and_types() -> None:
    with pytest.raises(SchemaError) as caught:
        SamplesTable.from_columns(meta=META, query_id=["a", "b"], sample_index=[0])
    assert caught.value.field == "sample_index"
    with pytest.raises(SchemaError) as caught:
        SamplesTable.from_columns(meta=META, query_id=["a"], sample_index=[0], answer=[3])
    assert caught.value.field == "answer"
    with pytest.raises(SchemaError):
        SamplesTable.from_columns(meta=META, query_id=[""], sample_index=[0])
    table = SamplesTable.from_columns(
        meta=META, query_id=["a", "a"], sample_index=[0, 1], correct=[True, None]
    )
    assert table.round.tolist() == [0, 0] and table.correct.count() == 1


def test_equality_is_by_content() -> None:
    one = SamplesTable.from_rows(_rows(), meta=META)
    assert one == SamplesTable.from_rows(_rows(), meta=META)
    assert one != one.take([1, 0, 2, 3])
    assert one != one.with_meta(RunMeta(model="other", created_at="t0"))


def test_a_column_of_the_wrong_sign_is_refused_by_name() -> None:
    from ttcdsl.samples import RunMeta, SamplesTable

    def table(**column):
        return SamplesTable.from_columns(meta=RunMeta(), query_id=["q", "q"], sample_index=[0, 1],
                                         **column)

    assert table(mean_logprob=[-0.2, 0.0]).mean_logprob.max() == 0.0  # 0 is a certain token
    with pytest.raises(SchemaError, match="mean_logprob has a positive entry") as caught:
        table(mean_logprob=[-0.2, 0.7])
    assert caught.value.field == "mean_logprob"
    with pytest.raises(SchemaError, match="prompt_nll has a negative entry") as caught:
        table(prompt_nll=[1.5, -1.5])
    assert caught.value.field == "prompt_nll"


def test_an_empty_answer_is_read_as_no_answer() -> None:
    """The canonical rule: "" is no answer, in a table's column and in a run's stored row."""
    from ttcdsl.samples import RunMeta, SampleRow, SamplesTable

    table = SamplesTable.from_columns(query_id=["q", "q", "q"], sample_index=[0, 1, 2],
                                      answer=["", "7", None], meta=RunMeta(source="test"))
    assert table.answer.tolist() == [None, "7", None]
    assert SampleRow(query_id="q", sample_index=0, answer="").answer is None
    assert SampleRow(query_id="q", sample_index=0, answer=" ").answer == " "  # not empty: kept as given
