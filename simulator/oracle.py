"""The static oracle: knows each question's response process and allocates a fixed sample budget
across the questions by the knapsack on expected gains.

Per question the value of ``n`` samples is ``v_q(n)``: coverage ``1 - (1 - p_q)^n`` exactly (``p_q``
the chance a sample served under the cap is correct), or the accuracy of the policy's answer rule
(majority, weighted vote, best-of-n; with several, per question and count the best of them),
estimated by Monte Carlo on ``reps`` fresh sample sequences of the question. The budget ``B = spend x Q`` is
allocated by the greedy on each question's upper concave hull of ``v_q``: the exact optimum of the
LP relaxation of the multiple-choice knapsack (at most one question mixes two counts). For
accuracy the allocation is chosen on one set of sequences and valued on another, so the oracle's
figure is not flattered by the noise it chose on.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import t as student_t

from simulator.model import Questions, draw_latent, is_right, n_right, observed_p_correct, serve
from simulator.rollout import MAJORITY, WEIGHTED_CONFIDENCE, WEIGHTED_SCORE, _prefix_scan, no_rules, simple_plan


def _hull(values: np.ndarray) -> list[tuple[int, int, float]]:
    """Segments ``(start, end, slope)`` of the upper concave hull of ``(n, values[n])``."""
    points: list[int] = []
    for n in range(len(values)):
        while len(points) >= 2:
            a, b = points[-2], points[-1]
            # drop b when it lies on or below the chord a -> n
            if (values[b] - values[a]) * (n - a) <= (values[n] - values[a]) * (b - a):
                points.pop()
            else:
                break
        points.append(n)
    return [(a, b, (values[b] - values[a]) / (b - a)) for a, b in zip(points, points[1:])]


def allocate(choose: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy on the hulls of ``choose`` (``[Q, L + 1]``, column ``n`` = value of ``n`` samples)
    under ``budget`` samples. Returns per question the two counts it mixes and the weight of
    the larger (0 except for at most one question)."""
    q = choose.shape[0]
    segments = [(slope, i, a, b) for i in range(q) for a, b, slope in _hull(choose[i]) if slope > 0]
    segments.sort(key=lambda s: -s[0])
    low = np.zeros(q, np.int64)
    high = np.zeros(q, np.int64)
    weight = np.zeros(q)
    left = budget
    for _, i, a, b in segments:
        if left <= 0:
            break
        size = b - a
        if size <= left:
            low[i] = high[i] = b
            left -= size
        else:
            high[i] = b
            weight[i] = left / size
            left = 0.0
    return low, high, weight


def _served(key, questions: Questions, length: int, cap: float, reps: int, logged=None):
    """``[Q x reps, length]`` served sample sequences, ``reps`` per question in question order:
    fresh draws of the response process, or (``logged``: ``(Logged, Fitted)`` restricted to the
    questions, the empirical mode) the question's logged samples in a fresh random order, the
    fitted model only past their depth, as the policy's rollouts draw them
    (:func:`simulator.empirical.draw_sequences`)."""
    if logged is None:
        tiled = jax.tree.map(lambda x: jnp.repeat(x, reps, axis=0), questions)
        return serve(draw_latent(key, tiled, length), cap)
    from simulator.empirical import draw_sequences, take_rows

    table, fitted = logged
    tile = jnp.repeat(jnp.arange(questions.p_correct.shape[0]), reps)
    latent, _ = draw_sequences(key, take_rows(table, tile), take_rows(fitted, tile), length)
    return serve(latent, cap)


def _vote_curves(key, questions: Questions, length: int, cap: float, reps: int,
                 strategy: int = MAJORITY, logged=None) -> jax.Array:
    """``[Q, L + 1]`` accuracy of ``n`` samples under ``strategy`` (a ``simulator.rollout``
    code), mean over ``reps`` sequences (the same sequences for the same key) of :func:`_served`."""
    q = questions.p_correct.shape[0]
    obs = _served(key, questions, length, cap, reps, logged)
    plan = simple_plan(1, length, [length], [1.0], strategy=strategy, rules=no_rules(1, length))
    r = n_right(questions)
    _, hit, _ = _prefix_scan(obs, is_right(obs.answer, r), jnp.zeros(q * reps, jnp.int32), plan,
                             r + questions.wrong.shape[1],
                             weighted_votes=strategy in (WEIGHTED_CONFIDENCE, WEIGHTED_SCORE), n_right=r)
    curve = hit.T.reshape(q, reps, length).mean(1)
    return jnp.concatenate([jnp.zeros((q, 1)), curve], axis=1)


def _coverage_curves(key, questions: Questions, length: int, cap: float, reps: int, logged) -> jax.Array:
    """``[Q, L + 1]`` coverage of ``n`` samples, mean over ``reps`` sequences of :func:`_served`
    (the empirical mode: no closed form over a question's logged samples and the model after them)."""
    q = questions.p_correct.shape[0]
    obs = _served(key, questions, length, cap, reps, logged)
    hit = jax.lax.cummax(is_right(obs.answer, n_right(questions)).astype(jnp.float32), axis=1)
    curve = hit.reshape(q, reps, length).mean(1)
    return jnp.concatenate([jnp.zeros((q, 1)), curve], axis=1)


_vote_curves_jit = jax.jit(_vote_curves, static_argnames=("length", "reps", "strategy"))
_coverage_curves_jit = jax.jit(_coverage_curves, static_argnames=("length", "reps"))


def static_oracle(keys, questions: Questions, spend: float, *, n_positions: int, cap: float,
                  objective: str = "accuracy", reps: int = 64, strategies: tuple[int, ...] = (MAJORITY,),
                  progress=None, logged=None) -> dict:
    """The oracle at ``spend`` samples per question on each seed's questions (``[S]`` keys,
    ``[S, Q, ...]`` questions): its objective and the samples it spends (a sample that gains
    nothing is not bought, so it may spend less than ``spend``, which is ``offered``), mean over
    seeds with a 95% interval.
    ``strategies``: the answer rules it may use (per question and count, the best on the
    choosing sequences). ``progress``: called with the number of seeds done after each.
    ``logged``: the empirical mode's ``(Logged, Fitted, rows)`` (``rows`` ``[S, Q]``, each seed's
    table rows): the oracle draws each question's logged samples before the model, as the policy
    does, so it cannot exceed what the logged samples allow (a posterior's fresh draws gave a
    question right 0 of 8 times a chance, and the oracle 58% where 50% was the ceiling)."""
    from simulator.empirical import take_rows
    n = np.arange(n_positions + 1)
    results, spent, tops = [], [], []
    for s in range(len(keys)):
        one = jax.tree.map(lambda x: x[s], questions)
        q = one.p_correct.shape[0]
        table = None if logged is None else (take_rows(logged[0], logged[2][s]), take_rows(logged[1], logged[2][s]))
        k1, k2 = jax.random.split(keys[s])
        if objective == "coverage" and table is None:
            p = np.asarray(observed_p_correct(one, cap), np.float64)
            choose = value = 1.0 - (1.0 - p[:, None]) ** n[None, :]
        elif objective == "coverage":
            # chosen on one set of sequences and valued on another, as accuracy is
            choose, value = (np.asarray(_coverage_curves_jit(k, one, n_positions, cap, reps, table), np.float64)
                             for k in (k1, k2))
        else:
            chosen, valued = (np.stack([np.asarray(_vote_curves_jit(k, one, n_positions, cap, reps, code, table),
                                                   np.float64)
                                        for code in strategies]) for k in (k1, k2))
            pick = chosen.argmax(0)[None]
            choose = np.take_along_axis(chosen, pick, 0)[0]
            value = np.take_along_axis(valued, pick, 0)[0]
        low, high, weight = allocate(choose, spend * q)
        rows = np.arange(q)
        got = (1 - weight) * value[rows, low] + weight * value[rows, high]
        results.append(got.mean())
        # what it spends, not what it was offered: a sample that gains nothing is not bought
        # (where no question can gain, the oracle spends nothing)
        spent.append(((1 - weight) * low + weight * high).mean())
        tops.append(np.where(weight > 0, high, low).max())
        if progress is not None:
            progress(s + 1)
    results = np.asarray(results)
    se = results.std(ddof=1) / math.sqrt(len(results)) if len(results) > 1 else float("nan")
    # a mean over few draws: Student's t with draws - 1 degrees of freedom, not the normal
    half = float(student_t.ppf(0.975, len(results) - 1)) * se if len(results) > 1 else float("nan")
    return {
        "objective": {"mean": float(results.mean()), "se": float(se), "df": len(results) - 1,
                      # an accuracy or coverage: the interval stops at 0 and 1
                      "lo": float(max(results.mean() - half, 0.0)),
                      "hi": float(min(results.mean() + half, 1.0))},
        "samples": float(np.mean(spent)),  # spent per question, mean over draws
        "offered": float(spend),  # the spend it was given (the policy's, or uniform's)
        "max_samples": float(np.mean(tops)),
    }
