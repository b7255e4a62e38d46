"""The unweighted final vote counts every answer's votes packed in bit fields of uint32 words
(:func:`simulator.rollout._count_vote`); it must pick the answer the one-hot count picks (the
weighted path's arithmetic, under majority vote) and the runtime's rule: most votes, ties to the
answer seen first, nothing when no sample is answered. Checked on random sequences full of ties,
at lengths on both sides of each field width and with more answer ids than one word holds."""

from __future__ import annotations

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulator.model import Samples
from simulator.rollout import MAJORITY, _count_vote, final_vote


def runtime_vote(row: list[int]) -> int | None:
    """The runtime's majority vote (ttcdsl.runtime.aggregate): ties to the answer seen first."""
    answers = [a for a in row if a >= 0]
    if not answers:
        return None
    counts = Counter(answers)
    top = max(counts.values())
    return next(a for a in answers if counts[a] == top)


@pytest.mark.parametrize("length,n_ids", [(1, 2), (3, 2), (7, 5), (8, 9), (63, 9), (64, 9), (65, 40), (300, 12)])
def test_packed_count_vote_is_the_majority_rule(length, n_ids):
    rng = np.random.default_rng(length * 100 + n_ids)
    q = 400
    # few distinct answers per row, so that ties are common; -1: no answer
    answer = rng.integers(-1, min(n_ids, 4), size=(q, length))
    answer = np.where(rng.random((q, length)) < 0.5, answer, rng.integers(-1, n_ids, size=(q, length)))
    count = rng.integers(0, length + 1, size=q)
    answered = (np.arange(length)[None, :] < count[:, None]) & (answer >= 0)
    got = np.asarray(_count_vote(jnp.asarray(answer, jnp.int32), jnp.asarray(answered), n_ids))
    expected = [runtime_vote([int(a) for a in answer[i, :count[i]]]) for i in range(q)]
    assert [None if g == n_ids else int(g) for g in got] == expected
    assert any(e is None for e in expected) or length > 3  # the unanswered case is exercised somewhere

    # final_vote's packed path (no weights) and its one-hot path (weights on, majority) agree
    obs = Samples(answer=jnp.asarray(answer, jnp.int32), tokens=jnp.ones((q, length)),
                  score=jnp.zeros((q, length)), logprob=jnp.zeros((q, length)))
    correct = jnp.asarray(answer == 0)
    strategy = jnp.full(q, MAJORITY, jnp.int32)
    for n_right in (1, 2):
        packed = final_vote(obs, correct, jnp.asarray(count), strategy, n_ids, False, False, n_right)
        one_hot = final_vote(obs, correct, jnp.asarray(count), strategy, n_ids, True, False, n_right)
        assert np.array_equal(np.asarray(packed[0]), np.asarray(one_hot[0]))
        assert np.array_equal(np.asarray(packed[1]), np.asarray(one_hot[1]))
        assert np.array_equal(np.asarray(packed[0]), np.array([e is not None and e < n_right for e in expected]))


def test_packed_count_vote_under_jit_and_vmap():
    rng = np.random.default_rng(7)
    answer = jnp.asarray(rng.integers(-1, 6, size=(3, 50, 20)), jnp.int32)
    answered = answer >= 0
    batched = jax.jit(jax.vmap(lambda a, m: _count_vote(a, m, 6)))(answer, answered)
    for s in range(3):
        assert np.array_equal(np.asarray(batched[s]), np.asarray(_count_vote(answer[s], answered[s], 6)))
