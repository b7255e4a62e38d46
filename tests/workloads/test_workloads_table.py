"""ttcdsl.workloads: the synthetic workload as a samples table and dataset, usable by the curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ttcdsl.curves import QueryPool, response_curve
from ttcdsl.datasets import read_queries
from ttcdsl.samples import content_hash, load
from ttcdsl.workloads import builtin_workload, write_workload


@pytest.fixture(scope="module")
def default() -> tuple:
    return builtin_workload()


def test_table_shape_columns_and_meta(default: tuple) -> None:
    table, dataset = default
    assert len(table) == 500 * 16 and len(dataset) == 500
    assert table.query_ids()[:2] == ("synth-0000", "synth-0001") == dataset.ids()[:2]
    assert table.meta.model == "synthetic" and table.meta.seed == 0
    assert table.meta.notes["synthetic"] is True and table.meta.sampling["max_tokens"] == 4096
    assert table.score_names == ("prm",)
    for column in (table.correct, table.completion_tokens, table.prompt_tokens, table.mean_logprob,
                   table.scores["prm"]):  # fmt: skip
        assert column.count() == len(table)  # nothing unknown
    assert set(table.finish_reason.tolist()) == {"stop", "length"}


def test_answers_are_number_strings_consistent_with_gold(default: tuple) -> None:
    table, dataset = default
    gold = dataset.by_id()
    answered = np.array([a is not None for a in table.answer])
    assert all(int(a) == float(a) for a in table.answer[answered])  # integer strings
    is_gold = np.array(
        [
            a is not None and a == gold[q].gold
            for q, a in zip(table.query_id, table.answer, strict=True)
        ]
    )
    assert np.array_equal(is_gold, table.correct.filled(False))
    # cut samples carry no answer
    assert not answered[table.finish_reason == "length"].any()
    # several distinct wrong answers per question exist, and the gold strings differ by question
    wrong = table.filter(answered & ~table.correct.filled(False))
    per_query = {q: set() for q in wrong.query_ids()}
    for q, a in zip(wrong.query_id, wrong.answer, strict=True):
        per_query[q].add(a)
    assert max(len(s) for s in per_query.values()) >= 4
    assert len({q.gold for q in dataset}) > 300
    assert {q.meta["tier"] for q in dataset} == {"easy", "medium", "hard", "hopeless"}


def test_rows_are_deterministic_and_more_samples_extend_fewer() -> None:
    small, _ = builtin_workload(40, 4, seed=11)
    again, _ = builtin_workload(40, 4, seed=11)
    large, _ = builtin_workload(40, 9, seed=11)
    assert content_hash(small) == content_hash(again)
    assert content_hash(large.where(max_sample_index=3)) == content_hash(small)
    assert content_hash(builtin_workload(40, 4, seed=12)[0]) != content_hash(small)


def test_curves_show_the_intended_ordering(default: tuple) -> None:
    table, _ = default
    pool = QueryPool.from_table(table)
    assert pool.inconsistent == 0
    single = response_curve(pool, "single", [8]).mean_accuracy[0]
    majority = response_curve(pool, "majority_vote", [8]).mean_accuracy[0]
    coverage = response_curve(pool, "pass_at_k", [8]).mean_accuracy[0]
    best = response_curve(pool, "best_of_n", [8], score="prm").mean_accuracy[0]
    assert single + 0.05 < majority < coverage - 0.08
    assert 0.6 <= majority <= 0.9  # the range of MATH-style pools
    assert single < best < coverage


def test_curves_on_2000_questions_match_the_mixture() -> None:
    table, dataset = builtin_workload(2000, 8, seed=1)
    pool = QueryPool.from_table(table)
    tiers = np.array([q.meta["tier"] for q in dataset])
    assert np.mean(tiers == "hopeless") == pytest.approx(0.10, abs=0.002)
    assert np.mean(tiers == "easy") == pytest.approx(0.50, abs=0.002)
    coverage = response_curve(pool, "pass_at_k", [8]).accuracy[:, 0]
    assert np.all(coverage[tiers == "hopeless"] == 0)
    majority = response_curve(pool, "majority_vote", [8]).accuracy[:, 0]
    assert majority[tiers == "easy"].mean() > 0.97
    assert majority[tiers == "hard"].mean() < 0.35 < coverage[tiers == "hard"].mean()
    best = response_curve(pool, "best_of_n", [8], score="prm").accuracy[:, 0]
    assert best[tiers == "hard"].mean() > majority[tiers == "hard"].mean()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip_through_files(tmp_path: Path, suffix: str) -> None:
    table, dataset = builtin_workload(30, 5, seed=2)
    out, queries = tmp_path / f"calib{suffix}", tmp_path / "queries.jsonl"
    write_workload(table, dataset, out, queries)
    assert load(out) == table
    back = read_queries(queries)
    assert back.queries == dataset.queries
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, queries.name])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_samples"):
        builtin_workload(5, -1)
    with pytest.raises(ValueError, match="seed"):
        builtin_workload(5, 2, seed=-3)
