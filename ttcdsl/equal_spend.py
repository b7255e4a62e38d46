"""What "uniform at equal spend" spends: the one rule every comparison with uniform reads.

A policy is judged against uniform allocation that spends as much as it does, in the unit its
budget is written in. A budget of samples: uniform's mean samples per query are the policy's. A
budget that limits tokens (a batch's, a query's or a bin's): uniform's billed tokens per query
are the policy's, so uniform gets ``tokens / tokens_per_sample`` samples per query, where
``tokens_per_sample`` is uniform's own billed tokens per sample (completion, plus the prompt where
the policy charges it). Uniform serves every question alike, so its tokens grow in proportion to
its samples; a policy that moves samples to long-answer questions spends more tokens per sample,
and comparing it at equal samples hands it tokens uniform never got.

The planner (:mod:`ttcdsl.planner.uniform`, per-sample tokens from its held-out samples) and the
simulator (:mod:`ttcdsl.simulate`, from a simulated uniform run) both read this rule.
"""

from __future__ import annotations

import math

from ttcdsl.lang import ir


def budget_unit(policy: ir.Policy) -> str:
    """``"tokens"`` when any of the policy's limits is in tokens, else ``"samples"``."""
    return "tokens" if any(limit.unit == "tokens" for limit in policy.budget.limits) else "samples"


def uniform_samples(policy: ir.Policy, samples: float, tokens: float | None,
                    tokens_per_sample: float | None) -> float:
    """Uniform's mean samples per query at the same spend as an allocation spending ``samples``
    and ``tokens`` per query. NaN (uniform undefined, so no comparison) when the budget is in
    tokens but either token figure is unknown: a guess would be a comparison at unequal spend."""
    if budget_unit(policy) == "samples":
        return float(samples)
    if tokens is None or tokens_per_sample is None or not (math.isfinite(tokens) and math.isfinite(tokens_per_sample)) \
            or tokens_per_sample <= 0:
        return float("nan")
    return float(tokens) / float(tokens_per_sample)
