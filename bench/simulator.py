"""Benchmark: the JAX simulator's rollouts against a vectorised NumPy implementation of the same.

    python bench/simulator.py                      # ~20 s on 2 idle CPU cores
    python bench/simulator.py --quick              # small sizes: ~10 s
    python bench/simulator.py --scale              # also the policy at 16 seeds x 10^6 questions x 64
    python bench/simulator.py --quick --scale 1    # ... timing 1 of the 16 seeds, scaled
    python bench/simulator.py --json out/simulator.json

Two rollouts, each timed in JAX (:func:`simulator.rollout.simulate`, compiled once, then the
fastest of 5 calls; NumPy the fastest of 2) and in NumPy (written here, vectorised over questions x seeds, looping over sample
positions and rounds as the JAX code scans over them):

* ``plain``: majority vote of ``L`` samples per question (no probe, no stop rules, no cap);
* ``policy``: probe 4, three bins by the probe's ``top_share`` (thresholds 0.5, 0.8), targets
  8 / 16 / 32 from agreeing to disagreeing probes, stop rules ``beta_confidence >= 0.95`` and ``unanimous last 4``, and the ledger's
  ``mean samples per query <= 10`` (water-filling when a round does not fit).

Both draw their sample sequences from the same questions (the default mixture); the figure is
simulated samples per second = seeds x questions x positions / seconds (every position is drawn
and scanned, whether the run spends it or not). The NumPy and JAX results are independent draws,
so their mean accuracy and spend are printed side by side as a cross-check (they agree within
sampling error when the two implementations agree). Wall-clock times depend on the machine and
its load; the JSON records the sizes, seconds, rates and ratios.

Figures, full sizes, 2 CPU cores shared with other jobs (load 5-20: noisy even as ratios).
Before :func:`simulator.rollout.simulate` looped over cache-sized batches of seeds: JAX 2.6x
NumPy on the plain vote (1.3e7 samples/s) and 2.4x on the policy (1.1e7), machine near idle;
1.5x and 2.0x loaded. After, three loaded runs: plain 2.3-6.5x, policy 2.4-4.7x. Old and new
code timed interleaved in one process (the fairest figure here): 1.3-1.6x faster on the plain
vote, 1.5-2.1x on the policy, identical outcomes. Not met on these CPUs: 1e8 samples/s for the
plain vote (its two threefry draws per sample alone take about 0.14 s per 5e6 samples here) and
16 seeds x 10^6 x 64 in a minute (``--scale 1``: 36 s per seed loaded, about 9 minutes scaled).
Since the rounds without a ``rounds`` cap check their stop rule with one gather per query (O(Q)
per round, not O(Q x L); identical outcomes, 1.2-1.4x old against new in one process):
``--quick --scale 1`` gives plain 1.3e7 samples/s (2.9x NumPy), policy 9.8e6 (4.1x NumPy) and
the scale run in about 195 s (12 s per seed), still short of the minute.
Four more changes, each with identical outcomes (the same accuracy and spend to every printed
digit): the answer draw compares each class's cumulative share one class at a time (XLA's CPU
code reduced the [Q, L, A] comparison over its short last axis 4x slower), log-probabilities
are drawn only where something reads them, the unweighted final vote counts votes packed in bit
fields (one row sum per uint32 word, not one per answer), and the rounds end at the first one
that grants nothing (the runtime's end) instead of scanning all L + 2. Old (71aed0b) and new
timed back to back on a near-idle machine, two runs each: plain 1.45-1.51e7 -> 3.3-3.4e7
samples/s (JAX 7.3x NumPy), policy 0.83-1.03e7 -> 1.57e7 (4.7x), ``--quick --scale 1`` 137 s ->
70 s. Still not met here: 1e8 samples/s for the plain vote (the two threefry draws per sample
alone cost about 0.1 s per 5e6) and the minute for the scale run.
Then three more. The uniform and normal draws are ``jax.random``'s own bits, computed as one
fused loop (:mod:`simulator.threefry`: JAX lowers Threefry for CPU as a rolled loop that writes
the whole array five times; 9x faster for a uniform, the same bits, so the same draws). The
ledger's tie order is one sort of plain uint32 keys, a keyed Feistel permutation of the indices
(:mod:`simulator.order`), in place of ``jax.random.permutation``'s two sorts with an index and an
``argsort`` for the ranks: those sorts were 40% of the plain vote's time. The vote's most votes
and first sample are one reduction. The tie order is a different random order, so a round the
budget cuts may go to other queries; the benchmark's accuracy and spend are unchanged to every
printed digit. Two runs, load 1-3: plain 3.3e7 -> 7.1-7.6e7 samples/s (JAX 17x NumPy), policy
1.6e7 -> 1.65-2.3e7 (5-7x), ``--quick --scale 1`` 70 s -> 43.5 s, and the whole ``--scale`` run
(16 seeds x 8 chunks, nothing scaled) 43.3 s of rollouts: under the minute. Still short: 1e8
samples/s for the plain vote. Its time is now mostly the draws themselves: per 5e6 samples
about 6 ms for the answers' hash, 21 ms for the lengths (hash, erfinv, exp) and 15 ms for the
vote, of 65 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import betainc  # noqa: E402

from simulator.model import default_mixture, draw_questions, outcome_probs  # noqa: E402
from simulator.rollout import Config, Rules, simple_plan, simulate  # noqa: E402

EDGES = (0.5, 0.8)
TARGETS = (8, 16, 32)  # bins by the probe's top_share, from agreeing to disagreeing
PROBE, LAST, CONF, MEAN_CAP = 4, 4, 0.95, 10.0


def questions_for(seeds: int, q: int):
    keys = jax.random.split(jax.random.key(0), seeds)
    return keys, jax.vmap(lambda k: draw_questions(k, default_mixture(), q))(keys)


def beta_table(length: int) -> np.ndarray:
    n, first, second = np.meshgrid(*[np.arange(length + 1)] * 3, indexing="ij")
    conf = np.where(first > 0, 1.0 - betainc(first + 1.0, second + 1.0, 0.5), 0.0)
    return conf >= CONF


def policy_plan(length: int, targets=TARGETS):
    votes = jnp.asarray(np.broadcast_to(beta_table(length), (3, *[length + 1] * 3)))
    rules = Rules(votes=votes, window=jnp.zeros(3, jnp.int32), last=jnp.full(3, LAST, jnp.int32),
                  first_check=jnp.full(3, PROBE, jnp.int32), any=jnp.ones(3, bool))
    plan = simple_plan(3, length, [0], [1.0], sample_cap=MEAN_CAP, rules=rules, edges=[-e for e in EDGES[::-1]])
    plan = plan._replace(options=jnp.asarray([[t] for t in targets], jnp.int32))
    return plan, Config(length, PROBE, 3, key_fn=lambda s: -s.top_share, weighted=False, logprobs=False)


# --------------------------------------------------------------------------- NumPy

def np_draw(probs: np.ndarray, length: int, rng) -> np.ndarray:
    """``[R, L]`` answer ids from ``[R, A + 1]`` probabilities (last = no answer -> -1), and
    log-normal token counts (drawn, as the JAX rollout draws them, though no cap is reached)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], length, 1))
    choice = (u >= cum[:, None, :-1]).sum(2)
    tokens = np.rint(np.exp(6.0 + 0.45 * rng.standard_normal((probs.shape[0], length))))
    return np.where(choice == probs.shape[1] - 1, -1, choice), tokens


def np_prefix(answer: np.ndarray, n_ids: int, stop: bool):
    """Per prefix: stop rule holds (beta table or unanimous last), majority right."""
    r, length = answer.shape
    rows = np.arange(r)
    counts = np.zeros((r, n_ids), np.int64)
    first_seen = np.full((r, n_ids), length)
    run = np.zeros(r, np.int64)
    prev = np.full(r, -2)
    table = beta_table(length) if stop else None
    holds = np.zeros((r, length), bool)
    hit = np.zeros((r, length), bool)
    for j in range(length):
        a = answer[:, j]
        real = a >= 0
        idx = np.maximum(a, 0)
        counts[rows[real], idx[real]] += 1
        fs = first_seen[rows, idx]
        first_seen[rows[real], idx[real]] = np.minimum(fs[real], j)
        present = counts > 0
        best = np.where(present, counts, -1).max(1, keepdims=True)
        tied = present & (counts == best)
        winner = np.argmin(np.where(tied, first_seen, length + 1), axis=1)
        hit[:, j] = present.any(1) & (winner == 0)
        if stop:
            top2 = -np.sort(-counts, axis=1)[:, :2]
            run = np.where(real & (a == prev), run + 1, real.astype(np.int64))
            holds[:, j] = table[j + 1, top2[:, 0], top2[:, 1]] | (run >= LAST)
        prev = a
    return holds, hit


def np_water_fill(ask, have, room, order, rank):
    if ask.sum() <= room:
        return ask
    lo, hi = have.min(), (have + ask).max() + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if np.clip(mid - have, 0, ask).sum() <= room:
            lo = mid
        else:
            hi = mid
    granted = np.clip(lo - have, 0, ask)
    rest = math.floor(room - granted.sum())
    eligible = (have + granted == lo) & (granted < ask)
    in_order = eligible[order]
    extra = (in_order & (np.cumsum(in_order) <= rest))[rank]
    return granted + extra


def np_plain(probs: np.ndarray, length: int, rng) -> np.ndarray:
    answer, tokens = np_draw(probs, length, rng)
    _, hit = np_prefix(answer, probs.shape[1] - 1, stop=False)
    return hit[:, -1], tokens.sum(1)


def np_policy(probs: np.ndarray, length: int, rng) -> tuple[float, float]:
    """One seed of the policy rollout; returns (accuracy, mean samples)."""
    q = probs.shape[0]
    answer, tokens = np_draw(probs, length, rng)
    probe = answer[:, :PROBE]
    same = (probe[:, :, None] == probe[:, None, :]) & (probe[:, :, None] >= 0)
    share = same.sum(2).max(1) / PROBE
    bins = np.searchsorted(-np.asarray(EDGES[::-1]), -share, side="right")
    target = np.asarray(TARGETS)[bins]
    holds, hit = np_prefix(answer, probs.shape[1] - 1, stop=True)
    order = rng.permutation(q)
    rank = np.argsort(order)
    have = np.zeros(q, np.int64)
    stopped = np.zeros(q, bool)
    checked = np.full(q, -1)
    spent, binned = 0.0, False
    room0 = math.floor(MEAN_CAP * q + 1e-6)
    rows = np.arange(q)
    for _ in range(length + 2):
        binned = binned or bool((have >= PROBE).all())
        if binned:
            due = ~stopped & (have >= PROBE) & (have != checked) & (have < target)
            stopped |= due & holds[rows, np.clip(have - 1, 0, length - 1)]
            checked = np.where(due, have, checked)
            ask = np.where(stopped, 0, np.minimum(np.maximum(target - have, 0), 1))
        else:
            ask = np.maximum(PROBE - have, 0)
        grant = np_water_fill(ask, have, room0 - spent, order, rank)
        have += grant
        spent += grant.sum()
    right = hit[rows, np.clip(have - 1, 0, length - 1)] & (have > 0)
    spent_tokens = np.where(np.arange(length)[None, :] < have[:, None], tokens, 0.0).sum(1)
    assert spent_tokens.shape == (q,)
    return right.mean(), have.mean()


# --------------------------------------------------------------------------- timing

def timed(fn, repeat: int = 1):
    """The fastest of ``repeat`` calls (the machine is shared: the minimum is the least
    disturbed), and the last call's result."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - start)
    return best, out


SCALE = (16, 1_000_000, 64)  # seeds, questions, positions: the "in under a minute" target
SCALE_TARGETS = (16, 32, 64)
SCALE_CHUNK = 125_000  # questions per simulate call: one call's arrays (~2 GB) fit a small machine


def scale_run(seeds_timed: int) -> dict:
    """The policy (targets 16 / 32 / 64) at the target scale, in chunks of ``SCALE_CHUNK``
    questions (one seed per call; each chunk is its own batch, so the ledger's cap applies per
    chunk); ``seeds_timed`` of the seeds are run and the time scaled to all of them. Timed after
    one compile; drawing the questions is not timed."""
    seeds, q, length = SCALE
    plan, config = policy_plan(length, SCALE_TARGETS)
    keys, qs = questions_for(1, SCALE_CHUNK)
    start = time.perf_counter()
    jax.block_until_ready(simulate(keys, qs, plan, config))
    compile_s = time.perf_counter() - start
    run_s, correct, spent = 0.0, [], []
    for seed in range(seeds_timed):
        for chunk in range(q // SCALE_CHUNK):
            keys = jax.random.split(jax.random.key(1000 * seed + chunk), 1)
            qs = jax.vmap(lambda k: draw_questions(k, default_mixture(), SCALE_CHUNK))(keys)
            jax.block_until_ready(qs)
            start = time.perf_counter()
            out = jax.block_until_ready(simulate(keys, qs, plan, config))
            run_s += time.perf_counter() - start
            correct.append(float(np.asarray(out.correct).mean()))
            spent.append(float(np.asarray(out.samples).mean()))
    total_s = run_s * seeds / seeds_timed
    row = {"seeds": seeds, "questions": q, "positions": length, "chunk": SCALE_CHUNK, "seeds_timed": seeds_timed,
           "compile_s": compile_s, "simulate_s": total_s, "jax_samples_per_s": seeds * q * length / total_s,
           "accuracy": float(np.mean(correct)), "mean_samples": float(np.mean(spent))}
    print(f"scale   {seeds} seeds x {q} questions x {length} positions in chunks of {SCALE_CHUNK}: "
          f"{total_s:.1f}s{'' if seeds_timed == seeds else f' (scaled from {seeds_timed} seed(s))'}, "
          f"{row['jax_samples_per_s']:.3g} samples/s (compile {compile_s:.1f}s); "
          f"accuracy {row['accuracy']:.4f}, samples {row['mean_samples']:.3f}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (~1 minute)")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--scale", type=int, nargs="?", const=SCALE[0], metavar="SEEDS",
                        help=f"also time the policy on {SCALE[0]} seeds x {SCALE[1]} questions x {SCALE[2]} "
                             "positions (JAX only); SEEDS: time that many seeds and scale")
    args = parser.parse_args()
    seeds = 4
    plain_q, plain_l = (4000, 32) if args.quick else (20000, 64)
    policy_q = 2000 if args.quick else 10000
    policy_l = max(TARGETS)
    figures = {"device": jax.devices()[0].device_kind, "platform": platform.platform(),
               "jax": jax.__version__, "seeds": seeds}

    for name, q, length in (("plain", plain_q, plain_l), ("policy", policy_q, policy_l)):
        keys, qs = questions_for(seeds, q)
        if name == "plain":
            plan = simple_plan(1, length, [length], [1.0])
            config = Config(length, 0, 1, stops=False, weighted=False, logprobs=False)
        else:
            plan, config = policy_plan(length)
        compile_s, _ = timed(lambda: simulate(keys, qs, plan, config))
        jax_s, out = timed(lambda: simulate(keys, qs, plan, config), repeat=5)
        probs = np.asarray(outcome_probs(jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), qs)), np.float64)
        probs /= probs.sum(1, keepdims=True)
        rng = np.random.default_rng(0)
        if name == "plain":
            np_s, (right, _) = timed(lambda: np_plain(probs, length, rng), repeat=2)
            np_acc, np_spent = float(right.mean()), float(length)
        else:
            def run_np():
                per = [np_policy(probs[s * q:(s + 1) * q], length, rng) for s in range(seeds)]
                return np.asarray(per)
            np_s, per = timed(run_np, repeat=2)
            np_acc, np_spent = float(per[:, 0].mean()), float(per[:, 1].mean())
        positions = seeds * q * length
        row = {
            "questions": q, "positions": length, "simulated_samples": positions,
            "jax_compile_s": compile_s, "jax_s": jax_s, "numpy_s": np_s,
            "jax_samples_per_s": positions / jax_s, "numpy_samples_per_s": positions / np_s,
            "ratio_jax_over_numpy": np_s / jax_s,
            "jax_accuracy": float(np.asarray(out.correct).mean()), "numpy_accuracy": np_acc,
            "jax_mean_samples": float(np.asarray(out.samples).mean()), "numpy_mean_samples": np_spent,
        }
        figures[name] = row
        print(f"{name:7} {seeds} seeds x {q} questions x {length} positions: "
              f"JAX {row['jax_samples_per_s']:.3g} samples/s ({jax_s:.2f}s, compile {compile_s:.1f}s), "
              f"NumPy {row['numpy_samples_per_s']:.3g} samples/s ({np_s:.2f}s), ratio {row['ratio_jax_over_numpy']:.1f}x; "
              f"accuracy JAX {row['jax_accuracy']:.4f} NumPy {np_acc:.4f}, "
              f"samples JAX {row['jax_mean_samples']:.3f} NumPy {np_spent:.3f}")
    if args.scale:
        figures["scale"] = scale_run(args.scale)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
