"""The budget ledger over arrays: the runtime's rule (``ttcdsl.runtime.ledger``) for a batch of
simulated queries, one round at a time, and its promise checked inside jit.

What is charged
    Every sample served, probes included: one sample, and its tokens: the completion tokens as
    served (a sample cut at ``max_tokens`` bills ``max_tokens``: ``simulator.model.serve``), plus
    the question's prompt tokens where the policy charges them. The simulator knows every count,
    so what it bills is what it measured (the runtime bills ``max_tokens`` for an unknown count;
    a simulated count is never unknown).

Limits (:class:`Limits`, ``K`` of them)
    ``tokens[k]``: the unit (tokens, else samples); ``per_query[k]``: a cap on each covered query,
    else on the sum over them; ``bin[k]``: the bin it is scoped to (``-1``: every query);
    ``cap[k, c]``: the cap when the limit's bin holds ``c`` queries (a ``mean`` limit scoped to a
    bin caps ``value x c``; every other cap is the same for all ``c``), as an integer: spend and
    worst cases are whole numbers, so ``spend <= cap + 1e-9`` (the runtime's test) is
    ``spend <= floor(cap + 1e-9)``. A bin-scoped limit covers a query from its binning on; before
    that a query may end in any bin, so every bin's per-query caps cover it (the runtime's rule).

The round (:func:`fit`)
    A query's worst case per sample is the ``max_tokens`` it is served under plus its prompt
    bound (where prompts are charged). The round's grants are the runtime's water-filling: one
    sample at a time to the asking query with the fewest samples (counting this round's
    grants), ties by the ledger's rank; a query whose next sample's worst case would break one
    of its limits takes nothing more this round. Per-query caps only ever stop their own query,
    so they shorten its ask up front; the batch caps are a greedy pass over the round's sample
    slots in (level, rank) order: every slot up to the first that does not fit is granted, that
    slot's query is dropped, and so is every query whose worst case no longer fits some room
    (rooms only shrink); repeat from the next slot. Each pass drops a query, so it ends.

The promise (:func:`check_within`)
    After every round the spend of every covered query and every batch is compared with the caps,
    with :func:`jax.experimental.checkify.check`: a rollout that breaks a limit raises
    :class:`LedgerBreach` (``simulator.rollout`` functionalises the checks). The check reads the
    spend, not the ledger's bookkeeping, so a broken :func:`fit` trips it.

Integers are int32; a cap must stay below :data:`SATURATE` (the lowering refuses larger token
caps) and sums of worst cases saturate there, so nothing overflows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import checkify

SATURATE = (1 << 30) - 1  # sums saturate here; a + b of two saturated values still fits int32
_BIG = jnp.iinfo(jnp.int32).max


class LedgerBreach(RuntimeError):
    """A simulated run spent beyond a declared limit: the ledger broke its promise."""


class Limits(NamedTuple):
    """The policy's limits as arrays (module docstring)."""

    tokens: jax.Array  # [K] bool: the unit is tokens (else samples)
    per_query: jax.Array  # [K] bool: caps each covered query (else the covered batch)
    bin: jax.Array  # [K] int32: the bin it is scoped to, -1 for all queries
    cap: jax.Array  # [K, Q + 1] int32: the cap when the limit's bin holds c queries


def covers(limits: Limits, binned: jax.Array, bins: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``[Q, K]`` masks: which batch limits count a query's spend and asks, and which per-query
    limits cap it (module docstring)."""
    scoped = limits.bin[None, :] >= 0
    in_bin = binned & (bins[:, None] == limits.bin[None, :])
    batch = (~scoped | in_bin) & ~limits.per_query[None, :]
    per_query = (~scoped | in_bin | ~binned) & limits.per_query[None, :]
    return batch, per_query


def caps(limits: Limits, binned: jax.Array, bins: jax.Array) -> jax.Array:
    """``[K]`` each limit's cap now (a bin-scoped mean cap grows with the bin's count)."""
    in_bin = binned & (bins[:, None] == limits.bin[None, :])
    count = in_bin.sum(0)
    return jnp.take_along_axis(limits.cap, count[:, None], 1)[:, 0]


def bills(tokens: jax.Array, prompt: jax.Array | None, charge_prompt: bool) -> tuple[jax.Array, jax.Array]:
    """What each served sample (``tokens``: ``[Q, L]`` as served) bills, as the runtime's ledger:
    its tokens plus, where the policy charges prompts, its question's ``prompt`` tokens. Returns
    each question's charged prompt (``[Q]`` int32, zeros when uncharged) and the running bill
    (``[Q, L + 1]`` int32: tokens billed by the first ``j`` samples)."""
    q = tokens.shape[0]
    if charge_prompt and prompt is None:
        raise ValueError("the policy charges prompt tokens, but the questions have no prompt token counts")
    charged = jnp.asarray(prompt, jnp.int32) if charge_prompt else jnp.zeros(q, jnp.int32)
    bill = tokens.astype(jnp.int32) + charged[:, None]
    return charged, jnp.concatenate([jnp.zeros((q, 1), jnp.int32), jnp.cumsum(bill, 1)], 1)


def _spend(limits: Limits, have: jax.Array, tokens: jax.Array) -> jax.Array:
    """``[Q, K]`` each query's spend in each limit's unit."""
    return jnp.where(limits.tokens[None, :], tokens[:, None], have[:, None])


def _saturating_cumsum(x: jax.Array) -> jax.Array:
    return jax.lax.associative_scan(lambda a, b: jnp.minimum(a + b, SATURATE), x, axis=0)


def fit(ask: jax.Array, have: jax.Array, spent_tokens: jax.Array, cost: jax.Array, binned: jax.Array,
        bins: jax.Array, limits: Limits, order: jax.Array, rank: jax.Array, levels: int,
        start: jax.Array | None = None) -> jax.Array:
    """Grants ``[Q]`` for ``ask`` (module docstring). ``have``: samples so far; ``spent_tokens``:
    tokens billed so far; ``cost``: each query's worst case per sample (int32); ``order``: query
    ids first to last in the ledger's tie order, ``rank`` its inverse; ``levels``: the most
    samples a query can reach (static); ``start``: the count each query's asks start at in the
    water-filling (default ``have``; the bandit's asks all start at 0, in its rule's order)."""
    q = ask.shape[0]
    level_from = have if start is None else start
    cover_batch, cover_query = covers(limits, binned, bins)
    cap = caps(limits, binned, bins)
    unit = jnp.where(limits.tokens[None, :], cost[:, None], 1)  # [Q, K] worst case per sample
    spend = _spend(limits, have, spent_tokens)
    # per-query caps: how many more samples each query's worst case fits
    fits = jnp.where(cover_query, (cap[None, :] - spend) // unit, _BIG).min(1)
    ask = jnp.clip(ask, 0, jnp.maximum(fits, 0))
    room0 = jnp.where(limits.per_query, _BIG, cap - jnp.where(cover_batch, spend, 0).sum(0))

    # the round's sample slots: level l (the query's count before the sample), rank position p
    a, h = ask[order], level_from[order]
    c = jnp.where(cover_batch, unit, 0)[order]  # [Q, K] what a slot takes from each room
    level = jnp.arange(levels)[:, None]
    exists = ((level >= h[None, :]) & (level < (h + a)[None, :])).reshape(-1)  # [L * Q]
    slot_p = jnp.tile(jnp.arange(q), levels)
    slot_cost = jnp.broadcast_to(c[None], (levels, q, c.shape[1])).reshape(levels * q, -1)
    n_slots = levels * q
    index = jnp.arange(n_slots)

    def body(state):
        start, alive, room, granted, _ = state
        active = exists & alive[slot_p] & (index >= start)
        prefix = _saturating_cumsum(jnp.where(active[:, None], slot_cost, 0))
        fail = active & (prefix > room[None, :]).any(1)
        failed = fail.any()
        first = jnp.where(failed, jnp.argmax(fail), n_slots)
        taken = active & (index < first)
        granted = granted + jnp.zeros(q, jnp.int32).at[slot_p].add(taken.astype(jnp.int32))
        used = jnp.where(first > 0, prefix[jnp.maximum(first - 1, 0)], 0)
        room = room - used
        alive = alive & ~(failed & (jnp.arange(q) == slot_p[jnp.minimum(first, n_slots - 1)]))
        alive = alive & ~(c > room[None, :]).any(1)  # rooms only shrink: never again
        return first + 1, alive, room, granted, failed

    init = (jnp.int32(0), jnp.ones(q, bool), room0, jnp.zeros(q, jnp.int32), jnp.bool_(True))
    *_, granted, _ = jax.lax.while_loop(lambda s: s[-1], body, init)
    return granted[rank]


def check_within(limits: Limits, have: jax.Array, spent_tokens: jax.Array, binned: jax.Array,
                 bins: jax.Array) -> None:
    """Assert, inside jit, that no declared limit is exceeded (module docstring)."""
    cover_batch, cover_query = covers(limits, binned, bins)
    cap = caps(limits, binned, bins)
    spend = _spend(limits, have, spent_tokens)
    batch = jnp.where(cover_batch, spend, 0).sum(0)
    largest = jnp.where(cover_query, spend, 0).max(0)
    worst = jnp.where(limits.per_query, largest, batch)
    over = worst > cap
    k = jnp.argmax(over)
    checkify.check(~over.any(), "the simulated ledger broke its promise: limit {k} (in tokens: "
                   "{tokens}; per query: {per_query}) spent {spent} over its cap {cap}", k=k,
                   tokens=limits.tokens[k], per_query=limits.per_query[k], spent=worst[k], cap=cap[k])


class Spend(NamedTuple):
    """What a rollout spent, per query (``[Q]``): at the end of the probe and of the run."""

    probe: jax.Array  # samples when the probe ended (the most a query had before binning)
    probe_tokens: jax.Array  # tokens billed then (int32; zeros without Limits)
    samples: jax.Array
    tokens: jax.Array
    binned: jax.Array  # bool scalar: the run binned its queries
    bins: jax.Array


def check_spend(limits: Limits | None, sample_cap: jax.Array, spend: Spend) -> None:
    """Assert, inside jit, that the rollout kept every limit (module docstring): without
    :class:`Limits`, the batch sample cap (``floor(sample_cap x Q)``, the rollout's room).
    Spend only grows and caps change only at binning, so the spend at the end of the probe
    (when every bin's per-query caps cover an unbinned query) and at the end of the run are the
    largest any limit saw: checking these two checks every round."""
    if limits is None:
        room = jnp.floor(sample_cap * spend.samples.shape[0] + 1e-6)
        spent = spend.samples.sum().astype(jnp.float32)
        checkify.check(spent <= room, "the simulated ledger broke its promise: {spent} samples "
                       "spent over the cap {room}", spent=spent, room=room)
        return
    check_within(limits, spend.probe, spend.probe_tokens, jnp.asarray(False), spend.bins)
    check_within(limits, spend.samples, spend.tokens, spend.binned, spend.bins)


def raise_breach(error) -> None:
    """Raise :class:`LedgerBreach` for a checkify error from a rollout (nothing when none)."""
    message = error.get()
    if message is not None:
        raise LedgerBreach(message)
