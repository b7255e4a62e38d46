"""The simulator's empirical mode (simulator.empirical): each draw serves a question's logged
samples in a uniformly random order, the fitted model only past the logged depth (flagged).
Checked against things computed here without the simulator: the logged multiset, the position
of each sample, the planner's exact response curves (ttcdsl.curves) on a shared pool, and the
share of samples past the logged depth."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from simulator.empirical import draw_rows, draw_sequences, logged_samples, simulate
from simulator.fit import fit
from simulator.rollout import Config, simple_plan

# three questions, ragged: answers as strings compare within a row, "r*" labelled correct
ROWS = [
    ["r1", "w1", "r2", "r1", None, "w2"],
    ["w1", "w1", "w2"],
    ["r1", "r1", "r1", "r1"],
]
CORRECT_IDS = 2  # the most distinct correct answers of a row (row 0: r1, r2)


def small_table():
    q, m = len(ROWS), max(len(r) for r in ROWS)
    answer = np.full((q, m), -1)
    correct = np.zeros((q, m), bool)
    valid = np.zeros((q, m), bool)
    tokens = np.full((q, m), np.nan)
    for i, row in enumerate(ROWS):
        ids = {}
        for j, a in enumerate(row):
            valid[i, j] = True
            tokens[i, j] = 100 * i + j + 1  # tells the samples apart
            if a is not None:
                answer[i, j] = ids.setdefault(a, len(ids))
                correct[i, j] = a.startswith("r")
    fitted = fit(answer, correct, valid, tokens, np.zeros((q, m), bool), 4096.0)
    return answer, correct, valid, tokens, fitted


def test_logged_ids_follow_the_fit_slots():
    answer, correct, valid, tokens, fitted = small_table()
    logged = logged_samples(answer, correct, valid, tokens, fitted)
    r = int(fitted.right_alpha.shape[1])
    assert r == CORRECT_IDS
    ids = np.asarray(logged.answer)
    # row 0: r1 twice (slot 0), r2 once (slot 1), w1 and w2 once each (wrong slots from r on)
    assert ids[0].tolist() == [0, r, 1, 0, -1, r + 1]
    assert ids[1, :3].tolist() == [r, r, r + 1]  # w1 the most common wrong answer
    assert ids[2, :4].tolist() == [0, 0, 0, 0]
    assert (ids[~valid] == -1).all()


def test_sequences_are_random_orders_of_the_logged_samples_then_the_model():
    answer, correct, valid, tokens, fitted = small_table()
    logged = logged_samples(answer, correct, valid, tokens, fitted)
    length = 8
    depth = valid.sum(1)
    draws = 3000
    keys = jax.random.split(jax.random.key(0), draws)
    latent, from_model = jax.jit(jax.vmap(lambda k: draw_sequences(k, logged, fitted, length)))(keys)
    tok, ids, from_model = np.asarray(latent.length), np.asarray(latent.answer), np.asarray(from_model)
    assert (from_model == (np.arange(length)[None, None, :] >= depth[None, :, None])).all()
    # the model's samples carry the fit's ids: correct below R, wrong from R
    assert (ids[from_model] < CORRECT_IDS + int(fitted.wrong_alpha.shape[1])).all()
    firsts = np.zeros(valid.shape)
    for i in range(len(ROWS)):
        # the logged positions hold each logged sample once (their token counts are distinct)
        logged_tokens = np.sort(tok[:, i, : depth[i]], axis=1)
        assert (logged_tokens == np.sort(tokens[i, : depth[i]])[None, :]).all()
        firsts[i, : depth[i]] = np.bincount(tok[:, i, 0].astype(int) - 100 * i - 1, minlength=depth[i])
    # each logged sample comes first with chance 1 / depth
    for i in range(len(ROWS)):
        p = 1.0 / depth[i]
        share = firsts[i, : depth[i]] / draws
        assert np.all(np.abs(share - p) <= 4 * math.sqrt(p * (1 - p) / draws)), (i, share)


@pytest.fixture(scope="module")
def crux_input(shared_data):
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored

    path = shared_data / "pools" / "cruxeval_input_codellama7b_x10.json"
    if not path.exists():
        pytest.skip("cruxeval_input_codellama7b_x10.json is not in the shared pools")
    return import_cruxeval_scored(path, ImportOptions())


@pytest.mark.parametrize("n", [1, 3, 10])
def test_empirical_votes_are_the_exact_curves_of_the_table(crux_input, n):
    """Majority vote and coverage of ``n`` samples, averaged over draws, per question, against
    the planner's exact curves on the same table (a paired z-test over the questions). CRUXEval
    input: several correct answers per question, so votes split between right answers."""
    from ttcdsl.curves import response_curve
    from ttcdsl.curves.pool import QueryPool
    from ttcdsl.simulate import fit_table

    fitted, logged = fit_table(crux_input, empirical=True)
    q = int(logged.answer.shape[0])
    seeds = 64
    keys = jax.random.split(jax.random.key(3), seeds)
    rows = draw_rows(keys, q, q)
    plan = simple_plan(1, n, [n], [1.0])
    out = simulate(keys, rows, logged, fitted, plan, Config(n_positions=n, probe=0, n_bins=1, stops=False,
                                                            weighted=False))
    assert int(np.asarray(out.extrapolated).sum()) == 0  # 10 logged samples per question
    assert (np.asarray(out.samples) == n).all()
    exact = response_curve(QueryPool.from_table(crux_input), "majority_vote", n, reps=256)
    for name, sim, ref in (("vote", out.correct, exact.accuracy), ("coverage", out.covered, exact.coverage)):
        diff = np.asarray(sim, np.float64).mean(0) - ref[:, n - 1]
        se = diff.std(ddof=1) / math.sqrt(q)  # 0 where every draw is the table's (all 10 samples)
        assert abs(diff.mean()) <= 3 * se + 1e-12, (
            f"{name}@{n}: table {ref[:, n - 1].mean():.4f} empirical {np.asarray(sim).mean():.4f} "
            f"diff {diff.mean():+.5f} ± {se:.5f}")
    if n == 10:  # every logged sample: coverage is the table's any-correct, whatever the order
        pool = QueryPool.from_table(crux_input)
        assert (np.asarray(out.covered) == pool.correct.any(1)[None, :]).all()


def test_samples_past_the_logged_depth_are_extrapolated_and_counted(crux_input):
    from ttcdsl.simulate import fit_table

    fitted, logged = fit_table(crux_input, empirical=True)
    q, n = int(logged.answer.shape[0]), 16
    keys = jax.random.split(jax.random.key(4), 4)
    out = simulate(keys, draw_rows(keys, q, 300), logged, fitted, simple_plan(1, n, [n], [1.0]),
                   Config(n_positions=n, probe=0, n_bins=1, stops=False, weighted=False))
    # 10 logged samples each: 6 of every 16 from the model
    assert np.asarray(out.samples).shape == (4, 300)
    assert (np.asarray(out.extrapolated) == n - 10).all()
