"""simulator.threefry draws jax.random's bits: a rollout's outcomes do not depend on which one draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulator import threefry

SHAPES = [(1,), (5,), (3, 7), (2, 3, 5), (1000, 64)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey], ids=["typed", "raw"])
def test_uniform_and_normal_are_jax_randoms_bits(shape, make_key):
    for seed in (0, 1, 2**31 + 5):
        key = make_key(seed)
        assert np.array_equal(jax.jit(threefry.uniform, static_argnums=1)(key, shape),
                              jax.random.uniform(key, shape))
        assert np.array_equal(jax.jit(threefry.normal, static_argnums=1)(key, shape),
                              jax.random.normal(key, shape))
        assert np.array_equal(jax.jit(threefry.bits, static_argnums=1)(key, shape),
                              jax.random.bits(key, shape, jnp.uint32))


def test_vmapped_over_keys_is_each_keys_draw():
    keys = jax.random.split(jax.random.key(11), 6)
    ours = jax.jit(jax.vmap(lambda k: threefry.uniform(k, (50, 9))))(keys)
    theirs = jax.vmap(lambda k: jax.random.uniform(k, (50, 9)))(keys)
    assert np.array_equal(ours, theirs)
    # and the draws differ between keys (a vmap that broadcast one key would pass the check above
    # only if jax.random did the same)
    assert len({row.tobytes() for row in np.asarray(ours)}) == 6


def test_other_generators_fall_back_to_jax_random():
    key = jax.random.key(4, impl="rbg")
    assert np.array_equal(threefry.uniform(key, (8, 3)), jax.random.uniform(key, (8, 3)))
    assert np.array_equal(threefry.normal(key, (8, 3)), jax.random.normal(key, (8, 3)))


def test_the_draws_are_uniform_and_normal():
    u = np.asarray(threefry.uniform(jax.random.key(5), (200_000,)), np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    z = np.asarray(threefry.normal(jax.random.key(6), (200_000,)), np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert jnp.isfinite(z).all()
