"""The static oracle of the empirical mode draws each question's logged samples before the
model, as the policy does: on a table with one question right 0 of 8 times and one 8 of 8, no
allocation of up to 8 logged samples per question beats 50%, yet an oracle that drew fresh
samples from the fitted posterior (which gives the 0-of-8 question a chance) printed 58%."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from simulator.empirical import logged_samples, posterior
from simulator.fit import fit
from simulator.oracle import static_oracle


def _two_questions():
    q, m = 2, 8
    answer = np.where(np.arange(q)[:, None] == 0, 1, 0) * np.ones((q, m), int)  # row 0 answers "1", row 1 "0"
    correct = np.zeros((q, m), bool)
    correct[1] = True
    valid = np.ones((q, m), bool)
    tokens = np.full((q, m), 100.0)
    fitted = fit(answer, correct, valid, tokens, np.zeros((q, m), bool), 4096.0)
    return fitted, logged_samples(answer, correct, valid, tokens, fitted)


@pytest.mark.parametrize("objective", ["accuracy", "coverage"])
def test_the_empirical_oracle_is_bounded_by_the_logged_samples(objective):
    fitted, logged = _two_questions()
    seeds = 3
    keys = jax.random.split(jax.random.key(0), seeds)
    rows = np.tile(np.array([0, 1, 0, 1]), (seeds, 1))  # four questions per draw, both rows twice
    questions = posterior(keys, rows, fitted)
    # at most 8 positions: every sample the oracle may buy is a logged one
    out = static_oracle(keys, questions, 1.0, n_positions=8, cap=4096.0, objective=objective,
                        reps=16, logged=(logged, fitted, rows))
    assert out["objective"]["mean"] == pytest.approx(0.5)
    # the 0-of-8 question gains nothing from any number of its logged samples: none is bought
    assert out["max_samples"] == 1.0
    assert out["samples"] == pytest.approx(0.5)
