"""Gamma, Beta and Dirichlet draws: exact rejection sampling over whole arrays, fast on CPU.

The simulator draws a Dirichlet over every question's wrong answers and, for a policy that reads
a reward model, a Beta score for every sample. ``jax.random.gamma`` (which its Beta and Dirichlet
use) runs each element's rejection loop with its own key splits: about 650 ns an element on 2
CPU cores, 0.7 s for 125,000 questions' wrong answers and seconds for a table of scores.

Here Marsaglia and Tsang's method (2000) runs over the whole array at once. Each element draws
its attempts (a normal and a uniform) in turn, from keys folded with the attempt number, until
its first accepted one. Each element's value is its first accepted attempt, whatever the others
do, so the draw is exact. An attempt is accepted with probability above 0.95 for ``alpha >= 1``;
the first six attempts are unrolled (a loop's body is compiled differently with and without
``vmap``, and the last bit of a log in it can differ: unrolled, a draw does not depend on how it
is batched or sharded), and a loop finishes the elements still pending, one in 10^8.
For ``alpha < 1``, ``Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha)``, kept in log space: at
``alpha = 0.05`` the power underflows float32. Beta and Dirichlet are ratios of the log-space
draws, as ``jax.random`` computes them.

These are not ``jax.random``'s values (its rejection loop consumes keys differently), only the
same distributions. ``tests/simulator/test_gamma.py`` holds them to the exact laws.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from simulator import threefry

UNROLLED = 6  # attempts drawn before the loop (see log_gamma)


def log_gamma(key: jax.Array, alpha: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``log G``, ``G ~ Gamma(alpha, 1)`` (``alpha > 0``, broadcast to ``shape``), float32."""
    shape = tuple(shape)
    alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), shape)
    boost = alpha < 1.0
    a = jnp.where(boost, alpha + 1.0, alpha)
    d = a - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    k_attempt, k_boost = jax.random.split(key)

    def attempt(i, done, value):
        k_normal, k_uniform = jax.random.split(jax.random.fold_in(k_attempt, i))
        x = threefry.normal(k_normal, shape)
        u = 1.0 - threefry.uniform(k_uniform, shape)  # on (0, 1]
        v = (1.0 + c * x) ** 3
        log_v = jnp.log(jnp.where(v > 0, v, 1.0))
        ok = (v > 0) & (jnp.log(u) < 0.5 * x * x + d - d * v + d * log_v)
        return done | ok, jnp.where(~done & ok, jnp.log(d * v), value)

    # an alpha that is not a positive number draws NaN, at once (it would never be accepted)
    invalid = ~(jnp.isfinite(alpha) & (alpha > 0))
    done, value = invalid, jnp.where(invalid, jnp.nan, 0.0).astype(jnp.float32)
    # The first attempts unrolled: XLA compiles a loop's body differently with and without
    # vmap, and the last bit of a log there can differ, so a value drawn in a loop could depend
    # on the batch. Unrolled, the arithmetic is the same however the draw is batched; an element
    # is still pending after them with probability below 0.049^6 (1.4e-8), and the loop
    # finishes those.
    for i in range(UNROLLED):
        done, value = attempt(i, done, value)

    def pending(state):
        _, done, _ = state
        return ~done.all()

    def next_attempt(state):
        i, done, value = state
        return (i + 1, *attempt(i, done, value))

    _, _, value = jax.lax.while_loop(pending, next_attempt, (jnp.int32(UNROLLED), done, value))
    u = 1.0 - threefry.uniform(k_boost, shape)  # on (0, 1]: a finite log
    # times 1 / alpha, not divided by alpha: XLA may turn a division by a broadcast value into
    # such a product in one layout and not in another (the last bit differs)
    return value + jnp.where(boost, jnp.log(u) * (1.0 / alpha), 0.0)


def beta(key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``Beta(a, b)`` draws, shaped as ``a`` and ``b`` broadcast."""
    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
    k_a, k_b = jax.random.split(key)
    log_a, log_b = log_gamma(k_a, a, shape), log_gamma(k_b, b, shape)
    top = jnp.maximum(log_a, log_b)  # scaled, so that tiny draws do not underflow to 0 / 0
    scaled_a, scaled_b = jnp.exp(log_a - top), jnp.exp(log_b - top)
    return scaled_a / (scaled_a + scaled_b)


def dirichlet(key: jax.Array, alpha: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """``Dirichlet(alpha)`` draws: ``shape + alpha.shape[-1:]``, rows summing to 1."""
    alpha = jnp.asarray(alpha, jnp.float32)
    full = tuple(shape) + alpha.shape[-1:] if shape else alpha.shape
    return jax.nn.softmax(log_gamma(key, alpha, full), axis=-1)
