from __future__ import annotations

import numpy as np
import pytest

from ttcdsl.curves import QueryPool


def test_from_lists_pads_and_numbers_answers_by_first_appearance() -> None:
    pool = QueryPool.from_lists(
        [["b", "a", "b", None], ["x"]],
        [[False, True, False, False], [True]],
        scores={"rm": [[0.1, 0.2, 0.3, None], [0.9]]},
        tokens=[[10, 20, 30, 40], [7]],
        query_ids=["q1", "q2"],
    )
    assert pool.answer.tolist() == [[0, 1, 0, -1], [0, -1, -1, -1]]
    assert pool.valid.tolist() == [[True] * 4, [True, False, False, False]]
    assert pool.answer_correct.tolist() == [[False, True], [True, False]]
    assert pool.answer_counts().tolist() == [[2, 1], [1, 0]]
    assert pool.n_samples.tolist() == [4, 1] and pool.n_correct.tolist() == [1, 1]
    assert pool.mean_tokens().tolist() == [25.0, 7.0]
    assert np.isnan(pool.score("rm")[0, 3]) and np.isnan(pool.score("rm")[1, 1:]).all()
    assert pool.inconsistent == 0
    sub = pool.take([1])
    assert sub.query_ids == ("q2",) and sub.answer.tolist() == [[0, -1, -1, -1]]
    with pytest.raises(KeyError, match="no scorer 'prm'"):
        pool.score("prm")


def test_inconsistent_labels_are_counted() -> None:
    pool = QueryPool.from_lists([["a", "a"]], [[True, False]])
    assert pool.inconsistent == 1 and pool.answer_correct.tolist() == [[True]]


def test_ragged_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="2 answers but 1 labels"):
        QueryPool.from_lists([["a", "b"]], [[True]])
    with pytest.raises(ValueError, match="tokens"):
        QueryPool.from_lists([["a", "b"]], [[True, False]], tokens=[[1]])


def test_from_table_matches_from_lists() -> None:
    from ttcdsl.samples import schema
    rows = [
        # (query, sample_index, answer, correct, tokens, rm) in a shuffled order
        ("q2", 1, "7", True, 12, 0.5),
        ("q1", 2, None, None, 9, None),
        ("q1", 0, "3", False, 10, 0.1),
        ("q2", 0, "5", False, 11, 0.2),
        ("q1", 1, "4", True, None, 0.9),
        ("q1", 3, "3", False, 13, 0.4),
    ]
    table = schema.SamplesTable.from_rows(
        [
            schema.SampleRow(
                query_id=q,
                sample_index=i,
                answer=a,
                correct=c,
                completion_tokens=t,
                scores={} if s is None else {"rm": s},
            )
            for q, i, a, c, t, s in rows
        ],
        meta=schema.RunMeta(source="test"),
    )
    pool = QueryPool.from_table(table)
    want = QueryPool.from_lists(
        [["5", "7"], ["3", "4", None, "3"]],
        [[False, True], [False, True, False, False]],
        scores={"rm": [[0.2, 0.5], [0.1, 0.9, None, 0.4]]},
        tokens=[[11, 12], [10, None, 9, 13]],
        query_ids=["q2", "q1"],
    )
    assert pool.query_ids == want.query_ids
    for name in ("answer", "valid", "correct", "answer_correct"):
        assert np.array_equal(getattr(pool, name), getattr(want, name)), name
    np.testing.assert_array_equal(pool.tokens, want.tokens)
    np.testing.assert_array_equal(pool.score("rm"), want.score("rm"))
