"""Uniform and the two oracles of `ttc compare`, against figures measured with plain scripts on the
shared pools (issue 14's reference figures: mean over random orders, gold as the scorer, the FULL
pool) and against brute force written here, independently of the estimators and solvers."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from ttcdsl.compare.baselines import dynamic_oracle, exact_curves, static_oracle
from ttcdsl.curves.pool import QueryPool
from ttcdsl.importers import ImportOptions, import_cruxeval_scored, import_qwen25math_eval

TOL = 0.003


@pytest.fixture(scope="module")
def crux_input(shared_data: Path) -> QueryPool:
    table = import_cruxeval_scored(
        shared_data / "pools" / "cruxeval_input_codellama7b_x10.json", ImportOptions()
    )
    return QueryPool.from_table(table)


@pytest.fixture(scope="module")
def qwen(shared_data: Path) -> QueryPool:
    table = import_qwen25math_eval(
        shared_data / "pools" / "qwen25math_math100_x8.jsonl", ImportOptions(temperature=0.7)
    )
    return QueryPool.from_table(table)


@pytest.mark.parametrize("budget, expected", [(2, 0.401), (3, 0.424), (4, 0.439)])
def test_uniform_coverage_cruxeval_input(crux_input, budget, expected):
    curves = exact_curves(crux_input, "pass_at_k")
    assert abs(curves.mean_at(budget) - expected) <= TOL


@pytest.mark.parametrize("budget", [2, 3, 4])
def test_static_oracle_cruxeval_input(crux_input, budget):
    """0.475 is the pool's pass@10: with every query's true curve the oracle gives the solvable
    queries enough samples, and the hopeless ones none, from 2 samples per query on."""
    curves = exact_curves(crux_input, "pass_at_k")
    (value,) = static_oracle(curves, [budget])
    assert abs(value - 0.475) <= TOL


def test_uniform_majority_vote_qwen_math100(qwen):
    assert abs(exact_curves(qwen, "majority_vote").mean_at(8) - 0.924) <= TOL


def test_dynamic_oracle_is_gold_elimination_cruxeval_input(crux_input):
    """Stop at the first correct sample, round-robin: the elimination rule with a gold scorer
    (K=1, one probe), whose reference figures are 0.416/0.442/0.458 at 2/3/4 samples per query."""
    rng = np.random.default_rng(0)
    labels = [crux_input.correct[q, : crux_input.n_samples[q]] for q in range(crux_input.n_queries)]
    totals = {2: [], 3: [], 4: []}
    for _ in range(40):
        orders = [c[rng.permutation(len(c))] for c in labels]
        ranks = rng.random(len(labels))
        for budget in totals:
            covered, spent = dynamic_oracle(orders, ranks, budget)
            assert spent.sum() <= budget * len(labels)
            totals[budget].append(covered.mean())
    for budget, expected in ((2, 0.416), (3, 0.442), (4, 0.458)):
        assert abs(np.mean(totals[budget]) - expected) <= TOL


# ------------------------------------------------------------------- brute force, small pools


def _small_pool(seed: int, queries: int = 7, m: int = 5) -> QueryPool:
    rng = np.random.default_rng(seed)
    answers = rng.integers(0, 3, size=(queries, m)).tolist()
    correct = [[a == 0 for a in row] for row in answers]
    return QueryPool.from_lists([[str(a) for a in row] for row in answers], correct)


def _brute_coverage(labels, n):
    subsets = list(itertools.combinations(range(len(labels)), n))
    return sum(any(labels[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("seed", range(3))
def test_uniform_interpolates_exact_coverage(seed):
    pool = _small_pool(seed)
    curves = exact_curves(pool, "pass_at_k")
    for q in range(pool.n_queries):
        labels = list(pool.correct[q, : pool.n_samples[q]])
        lo, hi = _brute_coverage(labels, 2), _brute_coverage(labels, 3)
        assert curves.per_query_at(2.25)[q] == pytest.approx(0.75 * lo + 0.25 * hi)
        assert curves.per_query_at(99)[q] == pytest.approx(_brute_coverage(labels, len(labels)))
    reach = curves.spend_to_reach(curves.mean_at(2.6))
    assert reach == pytest.approx(2.6)


@pytest.mark.parametrize("seed", range(3))
def test_static_oracle_against_brute_force_allocation(seed):
    """Every integer allocation of the total budget, enumerated: the oracle (a relaxation with
    at most one query split) is never below the best and above it by at most one query's step."""
    pool = _small_pool(seed, queries=5, m=4)
    curves = exact_curves(pool, "pass_at_k")
    q = pool.n_queries
    value = [[0.0] + [
        _brute_coverage(list(pool.correct[i, :4]), n) for n in range(1, 5)] for i in range(q)]
    for budget in (1, 2, 3):
        best = max(
            sum(value[i][n] for i, n in enumerate(counts)) / q
            for counts in itertools.product(range(5), repeat=q)
            if sum(counts) <= budget * q
        )
        (oracle,) = static_oracle(curves, [budget])
        assert best - 1e-12 <= oracle <= best + 1.0 / q + 1e-12


def test_dynamic_oracle_round_robin_by_hand():
    """Three queries, budget 5 samples: rounds serve 0, 1, 2, then 1 and 2 (0 is solved) in rank
    order; query 1 (rank first) gets its second sample, query 2 does not."""
    correct = [np.array([True, False]), np.array([False, True]), np.array([False, True, True])]
    ranks = [2.0, 0.0, 1.0]
    covered, got = dynamic_oracle(correct, ranks, 5 / 3)
    assert got.tolist() == [1, 2, 2]
    assert covered.tolist() == [True, True, True]
    covered, got = dynamic_oracle(correct, ranks, 4 / 3)
    assert got.tolist() == [1, 2, 1] and covered.tolist() == [True, True, False]
    assert math.isclose(dynamic_oracle(correct, ranks, 100)[1].sum(), 1 + 2 + 2)
