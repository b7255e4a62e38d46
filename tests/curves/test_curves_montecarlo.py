"""The JAX Monte Carlo applies the runtime's rules to random orders; it must agree with the exact
estimators within its standard error, and its extrapolation must follow the fitted model."""

from __future__ import annotations

import numpy as np
import pytest

from ttcdsl.curves import QueryPool, exact, simulate
from ttcdsl.curves.extrapolate import Extrapolation, fit_dirichlet

REPS = 384


@pytest.fixture(scope="module")
def pool() -> QueryPool:
    rng = np.random.default_rng(7)
    answers, correct, scores = [], [], []
    for _ in range(24):
        m = int(rng.integers(3, 7))
        n_answers = int(rng.integers(1, 5))
        probs = rng.dirichlet(np.ones(n_answers + 1))
        draw = rng.choice(n_answers + 1, size=m, p=probs)
        row = [None if a == n_answers else int(a) for a in draw]
        right = int(rng.integers(0, n_answers + 1))  # == n_answers: no answer is right
        answers.append(row)
        correct.append([a == right for a in row])
        scores.append([float(v) for v in rng.choice([0.0, 0.25, 0.5, 1.0], size=m)])
    return QueryPool.from_lists(answers, correct, scores={"s": scores})


EXACT = {
    "majority_vote": lambda p, n: exact.majority_vote(p, n),
    "best_of_n": lambda p, n: exact.best_of_n(p, n, p.score("s")),
    "weighted_vote": lambda p, n: exact.weighted_vote(p, n, p.score("s"))[0],
    "pass_at_k": exact.coverage,
    "single": exact.single,
}


@pytest.mark.parametrize("strategy", list(EXACT))
def test_monte_carlo_agrees_with_exact(pool: QueryPool, strategy: str) -> None:
    levels = int(pool.n_samples.max())
    mc = simulate(pool, strategy, levels, key=11, reps=REPS, score=pool.score("s"))
    want = EXACT[strategy](pool, levels)
    inside = ~np.isnan(want)
    assert (np.isnan(mc.mean) == ~inside).all()  # n > m is NaN without a model
    p = want[inside]
    sd = np.sqrt(p * (1 - p) / REPS)  # the true standard error of a mean of REPS Bernoullis
    diff = np.abs(mc.mean[inside] - p)
    assert (diff <= 5 * sd + 3 / REPS).all(), diff.max()  # + a few counts: rare events are Poisson
    # The reported standard errors estimate that spread.
    assert np.allclose(mc.stderr[inside], sd, atol=0.01)
    z = (mc.mean[inside].sum() - p.sum()) / np.sqrt((sd**2).sum())
    assert abs(z) < 4


def test_first_sample_beyond_m_follows_the_polya_urn(pool: QueryPool) -> None:
    """With all m logged samples plus e new ones in random order, the first is correct with
    probability (c + e * q) / (m + e), q the posterior predictive chance a new sample is right."""
    model = Extrapolation(answer_prior=0.5, unseen_mass=0.5)
    alpha = fit_dirichlet(pool, model)
    levels = int(pool.n_samples.max()) + 4
    mc = simulate(pool, "single", levels, key=3, reps=REPS, alpha=alpha)
    m = pool.n_samples[:, None]
    n = np.arange(1, levels + 1)[None, :]
    right = np.concatenate([pool.answer_correct, np.zeros((pool.n_queries, 1), bool)], axis=1)
    q = (alpha * right).sum(1, keepdims=True) / alpha.sum(1, keepdims=True)
    e = np.maximum(n - m, 0)
    want = np.where(
        n <= m, pool.n_correct[:, None] / m, (pool.n_correct[:, None] + e * q) / (m + e)
    )
    sd = np.sqrt(want * (1 - want) / REPS)
    assert (np.abs(mc.mean - want) <= 5 * sd + 3 / REPS).all()
    z = (mc.mean - want).sum() / np.sqrt((sd**2).sum())
    assert abs(z) < 4


def test_extrapolated_votes_keep_settled_queries_settled() -> None:
    unanimous = QueryPool.from_lists([[0] * 6, [1] * 6], [[True] * 6, [False] * 6])
    alpha = fit_dirichlet(unanimous)
    mc = simulate(unanimous, "majority_vote", 12, key=5, reps=64, alpha=alpha)
    assert (mc.mean[0] == 1).all() and (mc.mean[1] == 0).all()


def test_invalid_requests() -> None:
    tiny = QueryPool.from_lists([[0, 1]], [[True, False]])
    with pytest.raises(ValueError, match="unknown strategy"):
        simulate(tiny, "vote_harder", 2)
    with pytest.raises(ValueError, match="needs a score"):
        simulate(tiny, "best_of_n", 2)


def test_extrapolated_majority_vote_simulation_matches_the_model_dp(pool: QueryPool) -> None:
    """Two implementations of the same model: the Polya-urn simulation and the exact DP."""
    from ttcdsl.curves.extrapolate import majority_vote_beyond

    model = Extrapolation()
    levels = int(pool.n_samples.max()) + 3
    mc = simulate(pool, "majority_vote", levels, key=9, reps=REPS, alpha=fit_dirichlet(pool, model))
    want = majority_vote_beyond(pool, levels, model)
    beyond = ~np.isnan(want)
    p = want[beyond]
    sd = np.sqrt(np.clip(p * (1 - p), 0, None) / REPS)
    assert (np.abs(mc.mean[beyond] - p) <= 5 * sd + 3 / REPS).all()
    z = (mc.mean[beyond].sum() - p.sum()) / np.sqrt((sd**2).sum())
    assert abs(z) < 4
    # and below m the simulation still matches the exact estimator
    inside = ~beyond & (np.arange(1, levels + 1)[None, :] <= pool.n_samples[:, None])
    q = exact.majority_vote(pool, levels)[inside]
    sd_in = np.sqrt(q * (1 - q) / REPS)
    assert (np.abs(mc.mean[inside] - q) <= 5 * sd_in + 3 / REPS).all()


def test_threefry_is_the_jax_random_hash() -> None:
    """The written-out hash is bit for bit the one behind ``jax.random``."""
    import jax
    import jax.extend.random as jex
    import jax.numpy as jnp

    from ttcdsl.curves.montecarlo import _threefry2x32

    key = jnp.array([0x13198A2E, 0x03707344], dtype=jnp.uint32)
    count = jnp.arange(64, dtype=jnp.uint32) * jnp.uint32(2654435761)
    want = jex.threefry_2x32(key, count)
    x0, x1 = jax.jit(_threefry2x32)(key[0], key[1], count[:32], count[32:])
    assert (np.asarray(jnp.concatenate([x0, x1])) == np.asarray(want)).all()


@pytest.mark.parametrize("strategy", ["weighted_vote", "best_of_n"])  # the two loop bodies
def test_padding_and_batching_do_not_change_results(pool: QueryPool, strategy: str) -> None:
    """A row's draws depend only on the key, its row and the replication: padding the query and
    new-sample axes to buckets, the replication batch, and the other rows leave it unchanged."""
    levels = int(pool.n_samples.max()) + 3  # beyond m: 6..9 new samples, padded to 8 or 16
    alpha = fit_dirichlet(pool)
    score = pool.score("s")

    def run(p: QueryPool, **kw):
        rows = slice(0, p.n_queries)
        return simulate(
            p, strategy, levels, key=4, reps=64, score=score[rows], alpha=alpha[rows], **kw
        )

    plain = run(pool, bucket=False)
    padded = run(pool)  # 24 rows -> 32
    assert np.array_equal(plain.mean, padded.mean) and np.array_equal(plain.stderr, padded.stderr)
    assert np.array_equal(plain.mean, run(pool, batch=8).mean)
    head = run(pool.take(np.arange(5)))  # 5 rows -> 8, a different compiled shape
    assert np.array_equal(head.mean, plain.mean[:5])
