"""The ledger's random tie order of a batch's queries, and its inverse.

When a round's asks do not fit the budget, the ledger grants samples one at a time to the query
with the fewest, ties in a seeded random order of the queries (the runtime ranks them by a hash of
the run's seed). A rollout draws that order once per seed.

Drawn as the queries sorted by a keyed pseudo-random permutation of their 32-bit indices: a
four-round Feistel network over 16-bit halves whose round function is the Threefry hash
(Luby-Rackoff: a pseudo-random permutation), so the sort keys are distinct (no ties to break by
index) and each sorted key decrypts back to its query. One sort of plain uint32 keys: XLA's CPU
sort runs a single primitive operand several times faster than keys with an index beside them,
and ``jax.random.permutation`` sorts with an index two or three times (its sorts, and a rank by
``argsort``, were 40% of a plain vote's time). The rank, each query's position in the order, is
the inverse permutation, written by a scatter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from simulator import threefry

_ROUNDS = 4
_HALF = jnp.uint32(0xFFFF)


def _round(half: jax.Array, round_key: jax.Array) -> jax.Array:
    """The Feistel round function: 16 bits of Threefry's hash of ``half`` under ``round_key``."""
    high, low = threefry.hash_pair(round_key, jnp.zeros_like(half), half)
    return (high ^ low) & _HALF


def _encrypt(x: jax.Array, round_keys: jax.Array) -> jax.Array:
    left, right = x >> 16, x & _HALF
    for i in range(_ROUNDS):
        left, right = right, left ^ _round(right, round_keys[i])
    return (left << 16) | right


def _decrypt(y: jax.Array, round_keys: jax.Array) -> jax.Array:
    left, right = y >> 16, y & _HALF
    for i in reversed(range(_ROUNDS)):
        left, right = right ^ _round(left, round_keys[i]), left
    return (left << 16) | right


def seeded_order(key: jax.Array, n: int) -> jax.Array:
    """``[n]`` int32: the query ids ``0 .. n-1`` in a random order drawn from ``key`` (first to last)."""
    if n >= 2**32:
        raise ValueError(f"a tie order of {n} queries: at most 2^32 - 1")
    round_keys = jax.random.key_data(jax.random.split(key, _ROUNDS))  # [rounds, 2] uint32
    ids = jnp.arange(n, dtype=jnp.uint32)
    return _decrypt(jnp.sort(_encrypt(ids, round_keys)), round_keys).astype(jnp.int32)


def ranks(order: jax.Array) -> jax.Array:
    """Each query's position in ``order`` (the inverse permutation)."""
    n = order.shape[0]
    return jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
