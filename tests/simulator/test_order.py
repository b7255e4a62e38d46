"""simulator.order: the ledger's seeded tie order is a uniformly random permutation, and ranks invert it."""

import itertools
from collections import Counter

import jax
import numpy as np
import pytest

from simulator.order import ranks, seeded_order


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 65537])
def test_the_order_is_a_permutation_and_ranks_invert_it(n):
    order = np.asarray(jax.jit(seeded_order, static_argnums=1)(jax.random.key(n), n))
    assert order.dtype == np.int32
    assert np.array_equal(np.sort(order), np.arange(n))
    rank = np.asarray(ranks(order))
    assert np.array_equal(rank[order], np.arange(n))
    assert np.array_equal(order[rank], np.arange(n))


def test_every_order_of_three_is_about_equally_likely():
    keys = jax.random.split(jax.random.key(0), 6000)
    orders = np.asarray(jax.jit(jax.vmap(lambda k: seeded_order(k, 3)))(keys))
    seen = Counter(map(tuple, orders))
    assert set(seen) == set(itertools.permutations(range(3)))
    # 1000 expected each; the standard deviation is about 29
    assert all(880 < c < 1120 for c in seen.values()), seen


def test_positions_are_uniform_in_a_large_batch():
    # where query 0 lands, over many seeds: uniform over the n positions
    n, seeds = 50, 5000
    keys = jax.random.split(jax.random.key(1), seeds)
    rank = np.asarray(jax.jit(jax.vmap(lambda k: ranks(seeded_order(k, n))))(keys))
    counts = np.bincount(rank[:, 0], minlength=n)
    chi2 = ((counts - seeds / n) ** 2 / (seeds / n)).sum()
    assert chi2 < 100, chi2  # 49 degrees of freedom: 100 is far in the tail
    # and neighbours are not ordered alike (a hash of nearby indices that leaked order would)
    assert 0.45 < (rank[:, 0] < rank[:, 1]).mean() < 0.55


def test_the_order_depends_on_the_key_and_only_on_it():
    a = np.asarray(seeded_order(jax.random.key(5), 200))
    assert np.array_equal(a, np.asarray(seeded_order(jax.random.key(5), 200)))
    assert not np.array_equal(a, np.asarray(seeded_order(jax.random.key(6), 200)))
    keys = jax.random.split(jax.random.key(9), 4)
    batched = np.asarray(jax.vmap(lambda k: seeded_order(k, 200))(keys))
    for key, row in zip(keys, batched):
        assert np.array_equal(row, np.asarray(seeded_order(key, 200)))
