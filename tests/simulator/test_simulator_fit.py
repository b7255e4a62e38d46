"""A workload fitted to a samples table reproduces the table's exact response curves: majority-vote
accuracy and coverage at every count up to the logged depth, within sampling error (a paired
z-test over the questions: each question's simulated curve against its exact curve from the
table, ttcdsl.curves), on the built-in workload and on the shared pools."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from simulator.fit import draw_fitted, fit
from simulator.model import draw_latent, is_right, n_right, serve
from simulator.oracle import _vote_curves_jit
from ttcdsl.curves import response_curve
from ttcdsl.curves.pool import QueryPool
from ttcdsl.simulate import fit_table, table_arrays
from ttcdsl.workloads import builtin_workload

SEEDS, REPS = 4, 32


def simulated_curves(table, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """``[Q, depth]`` majority-vote accuracy and coverage of the fitted workload, served at the
    table's cap: mean over SEEDS posterior draws x REPS sequences per question."""
    arrays = table_arrays(table)
    fitted = fit_table(table)
    keys = jax.random.split(jax.random.key(7), SEEDS)
    votes, covers = [], []
    for key in keys:
        k_q, k_v, k_c = jax.random.split(key, 3)
        questions = draw_fitted(k_q, fitted)
        votes.append(np.asarray(_vote_curves_jit(k_v, questions, depth, arrays["max_tokens"], REPS))[:, 1:])
        tiled = jax.tree.map(lambda x: np.repeat(x, REPS, axis=0), questions)
        obs = serve(draw_latent(k_c, tiled, depth), arrays["max_tokens"])
        hit = np.cumsum(np.asarray(is_right(obs.answer, n_right(questions))), axis=1) > 0
        covers.append(hit.reshape(-1, REPS, depth).mean(1))
    return np.mean(votes, axis=0), np.mean(covers, axis=0)


def check(table, label: str) -> None:
    pool = QueryPool.from_table(table)
    depth = int(pool.n_samples.min())
    exact = response_curve(pool, "majority_vote", depth, reps=256)
    votes, covers = simulated_curves(table, depth)
    lines = []
    for name, sim, ref in (("maj", votes, exact.accuracy), ("cov", covers, exact.coverage)):
        for n in range(depth):
            diff = sim[:, n] - ref[:, n]
            se = diff.std(ddof=1) / math.sqrt(len(diff))
            z = diff.mean() / se if se > 0 else 0.0
            lines.append(f"{label} {name}@{n + 1}: table {ref[:, n].mean():.3f} fitted {sim[:, n].mean():.3f} z {z:+.2f}")
            assert abs(z) <= 3, lines[-1]
    print("\n".join(lines))


def test_fit_reproduces_the_builtin_workload():
    table, _ = builtin_workload(300, 12, seed=3)
    check(table, "builtin")


def test_fit_reproduces_the_qwen_math_pool(shared_data):
    from ttcdsl.importers import ImportOptions, import_qwen25math_eval

    table = import_qwen25math_eval(shared_data / "pools" / "qwen25math_math100_x8.jsonl",
                                   ImportOptions(temperature=0.7))
    check(table, "qwen")


@pytest.mark.parametrize("name", [
    "cruxeval_output_codellama7b_x10.json",
    # CRUXEval input has several correct answers per question (any input that gives the
    # output): its vote curve is flat (0.360 from 1 to 10 samples), which a fit with one correct
    # answer per question misses (z about +4)
    "cruxeval_input_codellama7b_x10.json",
])
def test_fit_reproduces_the_cruxeval_pools(shared_data, name):
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored

    path = shared_data / "pools" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the shared pools")
    check(import_cruxeval_scored(path, ImportOptions()), f"crux {name.split('_')[1]}")


def test_fit_reads_rates_and_concentration():
    """Known answer streams: the posterior means follow the counts, and wrong answers piled on
    one value give a lower concentration than wrong answers that scatter."""
    q, m = 200, 10
    rng = np.random.default_rng(0)
    correct = rng.random((q, m)) < np.linspace(0.05, 0.95, q)[:, None]
    piled = np.where(correct, 0, 1)
    scattered = np.where(correct, 0, rng.integers(1, 50, (q, m)))
    tokens = np.full((q, m), 100.0)
    valid = np.ones((q, m), bool)
    cut = np.zeros((q, m), bool)
    a = fit(piled, correct, valid, tokens, cut, 4096.0)
    b = fit(scattered, correct, valid, tokens, cut, 4096.0)
    post = np.asarray((a.correct_w * a.correct_a / (a.correct_a + a.correct_b)).sum(1))
    freq = correct.mean(1)
    assert np.corrcoef(post, freq)[0, 1] > 0.99
    assert float(a.prior[0]) < float(b.prior[0])


def test_fit_reproduces_best_of_n_on_the_builtin_workload():
    """The fitted verifier: best-of-n by the table's reward-model scores, the fitted workload's
    curve against the table's exact one at every count (paired z-test over the questions, as
    above). The built-in workload's verifier separates correct from wrong samples more on some
    questions than on others (simulator.verifier), so the fit must be per question."""
    from simulator.rollout import BEST_OF_N
    from ttcdsl.workloads import SCORER

    table, _ = builtin_workload(300, 12, seed=5)
    pool = QueryPool.from_table(table)
    depth = int(pool.n_samples.min())
    exact = response_curve(pool, "best_of_n", depth, score=SCORER, reps=256).accuracy
    arrays = table_arrays(table)
    fitted = fit_table(table)
    curves = []
    for key in jax.random.split(jax.random.key(8), SEEDS):
        k_q, k_v = jax.random.split(key)
        questions = draw_fitted(k_q, fitted)
        curves.append(np.asarray(_vote_curves_jit(k_v, questions, depth, arrays["max_tokens"], REPS,
                                                  BEST_OF_N))[:, 1:])
    sim = np.mean(curves, axis=0)
    lines = []
    for n in range(depth):
        diff = sim[:, n] - exact[:, n]
        z = diff.mean() / (diff.std(ddof=1) / math.sqrt(len(diff)))
        lines.append(f"best@{n + 1}: table {exact[:, n].mean():.3f} fitted {sim[:, n].mean():.3f} z {z:+.2f}")
    print("\n".join(lines))
    assert all(abs(float(line.rsplit("z ", 1)[1])) <= 3 for line in lines), "\n".join(lines)


@pytest.mark.parametrize("source", ["ttc workload", "simulator builtin"])
@pytest.mark.parametrize("cap", [1024, 2048])
def test_the_fit_cuts_as_the_table_does_under_a_lower_cap(source, cap):
    """A policy served under a lower ``max_tokens`` than the table was logged under loses the
    samples longer than its cap. The fitted token model must give the share of correct samples
    that survive per question, as the table shows. (Class offsets pooled over the table fit a hard
    question's correct samples 0.6 log units too short, since hard questions give most of the
    long wrong samples: 5 to 7 points too much accuracy under a 1024 cap.)"""
    from simulator.model import observed_p_correct
    from ttcdsl.simulate import Workload, draw_table

    table = builtin_workload(600, 16, seed=8)[0] if source == "ttc workload" \
        else draw_table(Workload(name="builtin"), 600, 16, seed=8)
    arrays = table_arrays(table)
    logged = (arrays["correct"] & (arrays["tokens"] <= cap)).mean(1)
    fitted = fit_table(table)
    keys = jax.random.split(jax.random.key(3), SEEDS)
    simulated = np.mean([np.asarray(observed_p_correct(draw_fitted(k, fitted), float(cap))) for k in keys], 0)
    diff = simulated - logged
    z = diff.mean() / (diff.std(ddof=1) / math.sqrt(len(diff)))
    assert abs(z) <= 3, f"{source} under {cap}: table {logged.mean():.4f}, fit {simulated.mean():.4f}, z {z:+.2f}"
