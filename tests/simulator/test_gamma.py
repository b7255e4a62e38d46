"""simulator.gamma draws the exact Gamma, Beta and Dirichlet laws (Kolmogorov-Smirnov and moments)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from simulator import gamma

N = 100_000


@pytest.mark.parametrize("alpha", [0.05, 0.5, 1.0, 2.5, 40.0])
def test_gamma_draws_follow_the_gamma_law(alpha):
    x = np.exp(np.asarray(jax.jit(gamma.log_gamma, static_argnums=2)(jax.random.key(1), alpha, (N,)), np.float64))
    assert np.isfinite(x).all() and (x >= 0).all()
    assert stats.kstest(x, stats.gamma(alpha).cdf).pvalue > 1e-3
    assert abs(x.mean() - alpha) < 5 * np.sqrt(alpha / N)


def test_each_element_draws_its_own_alpha():
    alpha = jnp.asarray([[0.3, 7.0]] * N)
    x = np.exp(np.asarray(gamma.log_gamma(jax.random.key(2), alpha, alpha.shape), np.float64))
    for column, a in enumerate((0.3, 7.0)):
        assert stats.kstest(x[:, column], stats.gamma(a).cdf).pvalue > 1e-3


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (2.0, 5.0), (0.3, 3.0), (300.0, 40.0)])
def test_beta_draws_follow_the_beta_law(a, b):
    x = np.asarray(gamma.beta(jax.random.key(3), jnp.full(N, a), jnp.full(N, b)), np.float64)
    assert ((x >= 0) & (x <= 1)).all()
    assert stats.kstest(x, stats.beta(a, b).cdf).pvalue > 1e-3


def test_tiny_shapes_match_jax_randoms_beta():
    # Beta(0.05, 3) puts about 1% of its mass below float32's smallest number: both draws round
    # those to 0, so the law to compare with is jax.random's float32 one (two-sample test)
    ours = np.asarray(gamma.beta(jax.random.key(8), jnp.full(N, 0.05), jnp.full(N, 3.0)))
    theirs = np.asarray(jax.random.beta(jax.random.key(9), jnp.full(N, 0.05), jnp.full(N, 3.0)))
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.003


def test_dirichlet_rows_sum_to_one_with_the_right_marginals():
    alpha = jnp.asarray([0.3, 0.5, 2.0, 0.3])
    x = np.asarray(gamma.dirichlet(jax.random.key(4), alpha, (N,)), np.float64)
    assert x.shape == (N, 4)
    np.testing.assert_allclose(x.sum(1), 1.0, atol=1e-5)
    total = float(alpha.sum())
    for i, a in enumerate(np.asarray(alpha)):  # a marginal is Beta(a_i, total - a_i)
        assert stats.kstest(x[:, i], stats.beta(a, total - a).cdf).pvalue > 1e-3
    # per-row alphas (a fitted question each): shape [Q, D] in, [Q, D] out
    rows = jnp.asarray([[1.0, 1.0], [50.0, 1.0]])
    assert gamma.dirichlet(jax.random.key(5), rows).shape == (2, 2)


def test_an_invalid_alpha_draws_nan_and_ends():
    x = np.asarray(gamma.log_gamma(jax.random.key(6), jnp.asarray([1.0, 0.0, -2.0, jnp.nan, jnp.inf]), (5,)))
    assert np.isfinite(x[0]) and np.isnan(x[1:]).all()


@pytest.mark.parametrize("shape", [0.05, 0.5, 2.0])
def test_a_draw_is_the_same_batched_or_not(shape):
    # the simulator's seeds are vmapped in batches and its questions sharded: a draw must not
    # depend on either, to the last bit (a rejection loop's body, compiled under vmap, did)
    keys = jax.random.split(jax.random.key(7), 8)

    def draw(key, alpha):
        scores = gamma.beta(key, jnp.full(300, alpha), jnp.full(300, 3.0))
        return scores, gamma.dirichlet(key, jnp.full(8, alpha), (40,))

    alpha = jnp.asarray(shape)
    batched = jax.jit(jax.vmap(draw, in_axes=(0, None)))(keys, alpha)
    for i, key in enumerate(keys):
        one = jax.jit(draw)(key, alpha)
        for b, o in zip(batched, one):
            np.testing.assert_array_equal(np.asarray(b)[i], np.asarray(o))
    assert not np.array_equal(np.asarray(batched[0][0]), np.asarray(batched[0][1]))
