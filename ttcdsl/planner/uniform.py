"""The baseline every plan is compared with: uniform allocation at the same spend.

Every query gets the same count, mixed between the two neighbouring counts so the mean samples
per query equal the plan's; no probe, no stop rules, the policy's answer strategy, and the same
held-out samples the plan's curves came from — so the comparison isolates the allocation.
"""

from __future__ import annotations

import math

import numpy as np

from ttcdsl.planner.calibration import Calibration


def uniform_at(calibration: Calibration, samples: np.ndarray) -> list[dict[str, float] | None]:
    """Accuracy, coverage and the objective of uniform allocation at each mean ``samples`` per
    query (``None`` where it is below one sample or undefined)."""
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
    accuracy, coverage = curve.accuracy.mean(0), curve.coverage.mean(0)  # [i]: level i + 1
    out: list[dict[str, float] | None] = []
    for s in samples:
        if not np.isfinite(s) or s < 1:
            out.append(None)
            continue
        lo = int(math.floor(s))
        theta = s - lo
        mix = {
            name: float((1 - theta) * values[lo - 1] + theta * values[min(lo, top - 1)])
            for name, values in (("accuracy", accuracy), ("coverage", coverage))
        }
        mix["objective"] = mix["coverage" if policy.objective == "coverage" else "accuracy"]
        out.append(mix)
    return out
