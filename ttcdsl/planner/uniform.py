"""The baseline every plan is compared with: uniform allocation at the same spend.

Every query gets the same count, mixed between the two neighbouring counts so the mean samples
per query equal the plan's; no probe, no stop rules, the policy's answer strategy, and the same
held-out samples the plan's curves came from — so the comparison isolates the allocation.

A plan predicts a run that generates, not a replay of its table: where a query's log holds fewer
samples than uniform's count, its curve past the log comes from the model (as the planner's own
curves do under ``--extrapolate``, and its bandit simulation past the logged depth), so uniform
"at s" gives every query s samples. ``ttc compare``, which replays a fixed table, instead gives a
shallow query what it holds and the rest to the others (:mod:`ttcdsl.compare.baselines`).
"""

from __future__ import annotations

import math

import numpy as np

from ttcdsl.lang.vocabulary import DEFAULT_MIN_SAMPLES
from ttcdsl.planner.calibration import Calibration


def uniform_at(
    calibration: Calibration, samples: np.ndarray, *, per_query: bool = False
) -> list[dict | None]:
    """Accuracy, coverage and the objective of uniform allocation at each mean ``samples`` per
    query (``None`` where it is below one sample or undefined); with ``per_query``, each entry
    also holds ``objective_per_query`` (``[Q]``, calibration query order), for paired errors."""
    from ttcdsl.curves import response_curve

    policy = calibration.policy
    samples = np.asarray(samples, dtype=np.float64)
    finite = samples[np.isfinite(samples)]
    if finite.size == 0 or finite.max() < 1:
        return [None] * len(samples)
    top = int(math.floor(finite.max())) + 1
    strategy = {"keep_probe": "majority_vote"}.get(policy.answer.kind, policy.answer.kind)
    curve = response_curve(
        calibration.heldout,
        strategy,
        top,
        score=policy.answer.scorer,
        scorer_kind=policy.scorer_kind(policy.answer.scorer),
        reps=64,
    )
    metric = "coverage" if policy.objective == "coverage" else "accuracy"
    by_query = {"accuracy": curve.accuracy, "coverage": curve.coverage}  # [Q, i]: level i + 1
    out: list[dict | None] = []
    for s in samples:
        if not np.isfinite(s) or s < 1:
            out.append(None)
            continue
        lo = int(math.floor(s))
        theta = s - lo
        mixed = {
            name: (1 - theta) * values[:, lo - 1] + theta * values[:, min(lo, top - 1)]
            for name, values in by_query.items()
        }
        entry: dict = {name: float(values.mean()) for name, values in mixed.items()}
        entry["objective"] = entry[metric]
        if per_query:
            entry["objective_per_query"] = mixed[metric]
        out.append(entry)
    return out


def billed_tokens_per_sample(calibration: Calibration) -> float | None:
    """Uniform's billed tokens per sample on the held-out samples it is valued on
    (:func:`ttcdsl.equal_spend.tokens_per_sample`: cut at the policy's max_tokens, as a run bills
    them, plus the prompt where charged). None when some count is unknown."""
    from ttcdsl.equal_spend import tokens_per_sample

    pool = calibration.heldout
    prompt = calibration.prompt_tokens if calibration.policy.budget.charge_prompt_tokens else None
    return tokens_per_sample(pool.tokens, pool.valid, prompt)


def equal_spend(calibration: Calibration, samples: float, tokens: float | None) -> float:
    """Uniform's mean samples per query at the same spend as an allocation of ``samples`` and
    ``tokens`` per query, in the unit of the policy's budget (:mod:`ttcdsl.equal_spend`); NaN
    when that is tokens and they are unknown."""
    from ttcdsl.equal_spend import budget_unit, uniform_samples

    if budget_unit(calibration.policy) == "samples":
        return float(samples)
    return uniform_samples(calibration.policy, samples, tokens, billed_tokens_per_sample(calibration))


def spend_words(calibration: Calibration, samples: float, tokens: float | None) -> str:
    """How uniform's count was matched, for a baseline's ``how``."""
    from ttcdsl.equal_spend import budget_unit

    if budget_unit(calibration.policy) == "samples":
        return ""
    return (f"; the budget is in tokens, so matched to the allocation's {tokens:.6g} billed tokens "
            f"per query at uniform's {billed_tokens_per_sample(calibration):.6g} per sample")


def versus_uniform(calibration: Calibration, curves, x: np.ndarray, samples: float) -> dict | None:
    """The allocation ``x`` ([bins, counts] shares) against uniform at the same mean ``samples``
    per query, PAIRED on the calibration queries: each query is valued under its bin's allocation
    and under uniform, on the same held-out samples, and the standard error is that of the mean
    of the per-query differences (the pairing removes the spread of difficulty between queries,
    which both sides share). Returns the difference, its error and the verdict sentence
    (:func:`ttcdsl.verdict.verdict`), or ``None`` when uniform is undefined (below one sample)."""
    from ttcdsl.verdict import verdict

    (uniform,) = uniform_at(calibration, np.array([samples]), per_query=True)
    if uniform is None:
        return None
    metric = "coverage" if calibration.policy.objective == "coverage" else "accuracy"
    mix = x[calibration.bin_index]  # [Q, K] each query's allocation
    used = mix > 0
    values = np.where(used, curves.per_query[metric], 0.0)
    theirs = uniform["objective_per_query"]
    if not np.isfinite(values).all() or values.shape[0] != theirs.shape[0]:
        return None
    diff = (mix * values).sum(1) - theirs
    q = len(diff)
    se = float(diff.std(ddof=1) / math.sqrt(q)) if q > 1 else None
    mean = float(diff.mean())
    return {"difference": mean, "difference_se": se, "verdict": verdict(mean, se)}


def uniform_choice(calibration: Calibration, levels: np.ndarray, samples: float) -> dict | None:
    """Uniform allocation as a plan the runtime can execute, at mean ``samples`` per query:
    every query gets ``lo`` or ``lo + 1`` samples (probe included, so its probe is part of its
    count), the policy's answer strategy over all of them, no stop rules, the policy's sampling.
    ``None`` when the policy cannot be served that way at equal spend: it limits anything but
    samples for the whole batch (tokens, one bin: uniform at equal samples need not keep them),
    or ``lo`` is below the probe (the run spends the probe first) or outside its per-query
    bounds or the counts the calibration table can serve (``levels``)."""
    policy = calibration.policy
    budget = policy.budget
    for limit in budget.limits:
        if limit.unit != "samples" or limit.bin is not None:
            return None
    if not np.isfinite(samples) or samples < 1:
        return None
    lo = int(math.floor(samples + 1e-9))
    theta = max(0.0, samples - lo)
    counts = [lo] if theta < 1e-6 else [lo + 1, lo]
    low = budget.find("per_query_min", "samples")
    high = budget.find("per_query_max", "samples")
    floor = max(DEFAULT_MIN_SAMPLES, policy.probe, int(low.value) if low else DEFAULT_MIN_SAMPLES)
    ceiling = min(int(high.value) if high else int(levels[-1]), int(levels[-1]))
    if min(counts) < floor or max(counts) > ceiling:
        return None
    strategy = {"keep_probe": "majority_vote"}.get(policy.answer.kind, policy.answer.kind)
    shares = [1.0] if len(counts) == 1 else [theta, 1.0 - theta]
    return {
        "strategy": strategy,
        "scorer": policy.answer.scorer,
        "samples": float(samples),
        "allocation": [{"samples": n, "share": s} for n, s in zip(counts, shares)],
    }


def paired_baseline(calibration: Calibration, got: np.ndarray, samples: float,
                    tokens: float | None = None) -> dict | None:
    """Uniform at the same spend per query as an allocation of ``samples`` and ``tokens`` per
    query (in the budget's unit, :func:`equal_spend`), against ``got``, the allocation's objective
    per calibration query (``[Q]``, calibration query order), PAIRED per query as
    :func:`versus_uniform` pairs a binned plan: the plan's ``baseline`` of a per-query or bandit plan."""
    from ttcdsl.verdict import verdict

    spent = equal_spend(calibration, samples, tokens)
    (uniform,) = uniform_at(calibration, np.array([spent]), per_query=True)
    if uniform is None:
        return None
    lo = math.floor(spent)
    diff = got - uniform["objective_per_query"]
    q = len(diff)
    se = float(diff.std(ddof=1) / math.sqrt(q)) if q > 1 else None
    mean = float(diff.mean())
    return {
        "strategy": calibration.policy.answer.kind,
        "samples": spent,
        **{k: v for k, v in uniform.items() if k != "objective_per_query"},
        "how": f"every query gets {lo} or {lo + 1} samples (mixed to spend {spent:.4g} per "
        f"query), no probe, no stop rules, same held-out samples{spend_words(calibration, samples, tokens)}",
        "difference": mean,
        "difference_se": se,
        "verdict": verdict(mean, se),
    }
