"""The simulator's ledger (simulator.ledger) is the runtime's (ttcdsl.runtime.ledger): on random
rounds (token and sample limits, batch and per-query, global and per-bin, prompt tokens in the
worst case, binned or still probing) its grants are the runtime Ledger.fit's, ask for ask; and
its promise, checked inside jit, trips on a ledger that breaks it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulator import ledger as budget
from ttcdsl.runtime.ledger import Ask, Ledger, Limit
from ttcdsl.simulate import limit_arrays

BINS = ["easy", "hard"]


def random_round(rng: np.random.Generator, q: int):
    """Limits, spend so far, bins and one round's asks, scaled so that the caps bind often."""
    max_tokens = {None: 512, "easy": 256, "hard": 1024}
    prompt = rng.integers(20, 300, q)
    have = rng.integers(0, 5, q)
    spent = np.array([int(rng.integers(10, max_tokens["hard"]) * h) for h in have])
    binned = bool(rng.integers(2))
    bins = rng.integers(0, 2, q)
    asks = rng.integers(0, 7, q)
    scale = float(rng.uniform(0.2, 1.2))
    pool = [
        Limit(label="total tokens", kind="batch", unit="tokens",
              cap=float(spent.sum() + scale * 6000 * q / 4)),
        Limit(label="mean samples", kind="batch", unit="samples", cap=float(have.sum() + scale * 2.5 * q),
              value=(have.sum() + scale * 2.5 * q) / q, mean=True),
        Limit(label="tokens per query", kind="per_query", unit="tokens",
              cap=float(spent.max() + scale * 3000)),
        Limit(label="mean tokens in hard", kind="batch", unit="tokens", bin="hard", mean=True,
              value=float(spent.max() * 2 + scale * 4000), cap=0.0),
        Limit(label="total samples in easy", kind="batch", unit="samples", bin="easy",
              cap=float(have.sum() + scale * 8)),
        Limit(label="samples per query in hard", kind="per_query", unit="samples", bin="hard",
              cap=float(have.max() + int(scale * 5))),
    ]
    chosen = [lim for lim in pool if rng.uniform() < 0.6] or pool[:1]
    return chosen, prompt, have, spent, binned, bins, asks, max_tokens


@pytest.mark.parametrize("seed", range(30))
def test_grants_are_the_runtime_ledgers(seed):
    rng = np.random.default_rng(seed)
    q = 12  # one shape: one compilation
    limits, prompt, have, spent, binned, bins, asks, max_tokens = random_round(rng, q)
    ids = [f"q{i}" for i in range(q)]
    ranks = rng.permutation(q)

    runtime = Ledger(limits, ids)
    for i, qid in enumerate(ids):
        runtime.charge(qid, int(have[i]), int(spent[i]))
    if binned:
        runtime.set_bins({qid: BINS[b] for qid, b in zip(ids, bins)})
    bin_of = [BINS[b] if binned else None for b in bins]
    expected = runtime.fit([
        Ask(query_id=qid, n=int(asks[i]), max_tokens=max_tokens[bin_of[i]], prompt_tokens=int(prompt[i]),
            bin=bin_of[i], have=int(have[i]), rank=int(ranks[i]))
        for i, qid in enumerate(ids)
    ])

    length = 12  # above every have + ask
    arrays = limit_arrays(limits, BINS, q, length)
    cost = np.array([max_tokens[b] for b in bin_of]) + prompt
    order = np.argsort(ranks)
    granted = budget.fit(jnp.asarray(asks, jnp.int32), jnp.asarray(have, jnp.int32),
                         jnp.asarray(spent, jnp.int32), jnp.asarray(cost, jnp.int32), jnp.asarray(binned),
                         jnp.asarray(bins, jnp.int32), arrays, jnp.asarray(order), jnp.asarray(ranks),
                         length)
    assert np.asarray(granted).tolist() == expected, (limits, asks.tolist())


def test_a_broken_ledger_trips_the_check_inside_jit(monkeypatch):
    """A ledger that grants every ask in full spends past `total tokens <= T`: simulate raises
    LedgerBreach naming the limit's spend and cap; the real ledger keeps it on the same draws."""
    from simulator.model import default_mixture, draw_questions
    from simulator.rollout import Config, simple_plan, simulate
    from ttcdsl.runtime.ledger import Limit

    q, seeds = 40, 2
    keys = jax.random.split(jax.random.key(3), seeds)
    questions = jax.vmap(lambda k: draw_questions(k, default_mixture(), q))(keys)
    cap = 40 * 8 * 300  # well below 8 samples x ~600 tokens for every question
    limits = limit_arrays([Limit(label="total tokens", kind="batch", unit="tokens", cap=cap)], ["all"], q, 8)
    plan = simple_plan(1, 8, [8], [1.0], cap=1024)._replace(limits=limits)
    config = Config(8, 0, 1, stops=False, weighted=False, charge_prompt=True)

    out = simulate(keys, questions, plan, config)
    assert (np.asarray(out.tokens).sum(1) <= cap).all()
    assert (np.asarray(out.samples) < 8).any(), "the cap should bind"

    jax.clear_caches()
    monkeypatch.setattr(budget, "fit", lambda ask, *args, **kwargs: ask)
    try:
        with pytest.raises(budget.LedgerBreach, match=f"broke its promise.*over its cap {cap}"):
            simulate(keys, questions, plan, config)
    finally:
        jax.clear_caches()  # no trace of the broken ledger outlives the test


def test_a_broken_ledger_trips_the_bandits_check_inside_jit(monkeypatch, tmp_path):
    """The same for the online bandit under `total tokens <= T` with prompts charged: the real
    ledger keeps the total on every draw; one that grants every ask breaks it, and the bandit's
    simulation raises LedgerBreach."""
    from simulator.bandit import simulate_bandit
    from tests.paths import REPO
    from ttcdsl.lang.api import load_policy
    from ttcdsl.simulate import Workload, lower_bandit

    q, seeds, cap = 40, 2, 100_000  # about 2,500 tokens per question: well below 8 samples' worth
    text = (REPO / "policies" / "bandit_entropy.ttc").read_text()
    anchor = "  samples per query in 2..32\n"
    path = tmp_path / "bandit_tokens.ttc"
    path.write_text(text.replace(anchor, anchor + f"  total tokens <= {cap}\n  charge prompt tokens\n"))
    lowered = lower_bandit(load_policy(path), {}, q)
    keys = jax.random.split(jax.random.key(3), seeds)
    questions = Workload(name="builtin").draw(keys, q)

    out = simulate_bandit(keys, questions, lowered.arrays, lowered.config)
    assert (np.asarray(out.tokens).sum(1) <= cap).all()
    assert np.asarray(out.samples).mean() < 8, "the total should bind"

    jax.clear_caches()
    monkeypatch.setattr(budget, "fit", lambda ask, *args, **kwargs: ask)
    try:
        # granting everything breaks the mean-samples limit (limit 0, 8 x 40) and the total
        with pytest.raises(budget.LedgerBreach, match=r"broke its promise: limit 0 .* over its cap 320"):
            simulate_bandit(keys, questions, lowered.arrays, lowered.config)
    finally:
        jax.clear_caches()
