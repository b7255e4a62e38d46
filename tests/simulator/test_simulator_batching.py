"""What the simulator's speed work must not change: :func:`simulate` loops over batches of seeds
(each seed's rollout is the same whatever the batch, remainder included), and
:func:`draw_latent` picks each sample's per-class parameters by selects; both are checked here
against direct recomputations (a vmap of :func:`rollout`; the parameters gathered by class in
NumPy)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import betainc, ndtr, ndtri

from simulator.model import CORRECT, NONE, WRONG, default_mixture, draw_latent, draw_questions
from simulator.rollout import Config, Rules, rollout, seed_batch, simple_plan, simulate

N, Q, SEEDS = 12, 200, 5


def policy():
    """Probe 3, two bins by top_share, stop rules (a Beta table and unanimous last 3), and a
    sample cap that cuts rounds (the ledger's water-filling)."""
    n, first, second = np.meshgrid(*[np.arange(N + 1)] * 3, indexing="ij")
    conf = np.where(first > 0, 1.0 - betainc(first + 1.0, second + 1.0, 0.5), 0.0) >= 0.9
    rules = Rules(votes=jnp.asarray(np.broadcast_to(conf, (2, *conf.shape))), window=jnp.zeros(2, jnp.int32),
                  last=jnp.full(2, 3, jnp.int32), first_check=jnp.full(2, 3, jnp.int32), any=jnp.ones(2, bool))
    plan = simple_plan(2, N, [0], [1.0], sample_cap=6.5, rules=rules, edges=[-0.7], cap=1500.0)
    plan = plan._replace(options=jnp.asarray([[6], [N]], jnp.int32))
    return plan, Config(N, 3, 2, key_fn=lambda s: -s.top_share, weighted=False)


def workload():
    keys = jax.random.split(jax.random.key(11), SEEDS)
    return keys, jax.vmap(lambda k: draw_questions(k, default_mixture(), Q))(keys)


@pytest.mark.parametrize("batch", [None, 1, 2, SEEDS])
def test_simulate_is_each_seeds_rollout_whatever_the_batch(batch):
    keys, questions = workload()
    plan, config = policy()
    got = simulate(keys, questions, plan, config, batch=batch)
    want = jax.vmap(rollout, in_axes=(0, 0, None, None))(keys, questions, plan, config)
    for name, a, b in zip(got._fields, got, want):
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
    assert (np.asarray(got.samples).sum(1) <= int(6.5 * Q)).all()  # the cap bound: the cut ran
    assert np.asarray(got.samples).sum(1).max() == int(6.5 * Q)


def test_seed_batch_bounds_the_vmapped_samples():
    assert seed_batch(16, 1_000_000, 64) == 1
    assert seed_batch(4, 2000, 32) == 4
    assert seed_batch(100, 1000, 64) * 1000 * 64 <= 1 << 19 < (seed_batch(100, 1000, 64) + 1) * 1000 * 64


def test_latent_parameters_by_class():
    """Each sample's token length, log-probability and score come from its own class's
    parameters: recomputed from the same normal / beta draws with the parameters gathered by
    class here."""
    key = jax.random.key(3)
    questions = draw_questions(jax.random.key(4), default_mixture(), 300)
    latent = draw_latent(key, questions, 16)
    _, k_len, k_score, k_lp = jax.random.split(key, 4)
    answer = np.asarray(latent.answer)
    kind = np.where(answer < 0, NONE, np.where(answer == 0, CORRECT, WRONG))
    assert {CORRECT, WRONG, NONE} <= set(kind.ravel())
    rows = np.arange(answer.shape[0])[:, None]
    c = np.minimum(kind, 1)  # the verifier's two classes: correct, other
    loc = np.asarray(questions.tokens_loc, np.float64)[rows, kind]
    scale = np.asarray(questions.tokens_scale, np.float64)[:, None]
    # the built-in population generates under a cap: an answered sample's length is drawn below
    # it (inverse CDF of its class's log-normal), an answerless one's is not
    cap = np.asarray(questions.max_tokens, np.float64)[:, None]
    below = np.where(kind == NONE, 1.0, ndtr((np.log(cap) - loc) / scale))
    u = np.asarray(jax.random.uniform(k_len, answer.shape), np.float64)
    length = np.exp(loc + scale * ndtri(np.maximum(u * below, 1e-12)))
    length = np.where(kind == NONE, length, np.minimum(length, cap - 1.0))
    assert (length[kind != NONE] < cap.repeat(16, 1)[kind != NONE]).all()
    np.testing.assert_allclose(np.asarray(latent.length), length, rtol=1e-4)
    lp = -np.exp(np.asarray(questions.logprob_loc)[rows, kind]  # three classes: correct, wrong, none
                 + np.asarray(questions.logprob_scale)[:, None] * np.asarray(jax.random.normal(k_lp, answer.shape)))
    np.testing.assert_allclose(np.asarray(latent.logprob), lp, rtol=2e-6)
    a = jnp.asarray(np.asarray(questions.score_a)[rows, c])
    b = jnp.asarray(np.asarray(questions.score_b)[rows, c])
    np.testing.assert_array_equal(np.asarray(latent.score), np.asarray(jax.random.beta(k_score, a, b)))
