"""What "uniform at equal spend" spends: the one rule every comparison with uniform reads.

A policy is judged against uniform allocation that spends as much as it does, in the unit its
budget is written in. A budget of samples: uniform's mean samples per query are the policy's. A
batch budget of tokens (``total tokens <= 4M``, ``mean tokens per query <= 8k``): uniform's
billed tokens per query are the policy's, so uniform gets ``tokens / tokens_per_sample`` samples per query, where
``tokens_per_sample`` is uniform's own billed tokens per sample (completion, plus the prompt where
the policy charges it). Uniform serves every question alike, so its tokens grow in proportion to
its samples; a policy that moves samples to long-answer questions spends more tokens per sample,
and comparing it at equal samples hands it tokens uniform never got.

The planner (:mod:`ttcdsl.planner.uniform`, per-sample tokens from its held-out samples), the
simulator (:mod:`ttcdsl.simulate`, from a simulated uniform run), a run's report and ``ttc
compare``'s paired baseline (:func:`matched_baseline`, from uniform's own drawn samples) and
``ttc compare``'s exact curves (:func:`tokens_per_sample` of the evaluation pool) all read this
rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ttcdsl.lang import ir


def budget_unit(policy: ir.Policy) -> str:
    """``"tokens"`` when the policy's batch budget is in tokens (a ``total`` or ``mean`` token
    limit over the whole batch, with or without a samples one beside it), else ``"samples"``.
    A per-query or per-bin token cap guards a query or a bin; it is not what the batch spends."""
    batch_tokens = any(limit.unit == "tokens" and limit.kind in ("total", "mean") and limit.bin is None
                       for limit in policy.budget.limits)
    return "tokens" if batch_tokens else "samples"


def tokens_per_sample(tokens: np.ndarray, valid: np.ndarray, prompt: np.ndarray | None) -> float | None:
    """Uniform's billed tokens per sample on a pool (``tokens``, ``valid``: ``[Q, W]``, the
    completion counts as a run bills them, i.e. cut at its ``max_tokens``): each query's mean,
    plus its prompt (``[Q]``) where the policy charges prompts, averaged over queries, since
    uniform gives every query as many samples. None when some count is unknown."""
    known = valid & np.isfinite(tokens)
    if (known != valid).any() or not known.any(axis=1).all():
        return None
    per_query = np.where(known, tokens, 0.0).sum(1) / known.sum(1)
    if prompt is not None:
        per_query = per_query + prompt
    value = float(per_query.mean())
    return value if math.isfinite(value) else None


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


def matched_baseline(baseline: Callable[[int], dict[str, Any] | None], policy: ir.Policy, samples: int,
                     tokens: int | None) -> dict[str, Any] | None:
    """A run's uniform baseline at equal spend, through ``baseline`` (total samples -> the
    baseline of :func:`ttcdsl.runtime.report.uniform_baseline`) for a run that spent ``samples``
    and measured ``tokens`` (None: some count unknown). A budget of samples: uniform at the run's
    samples. A budget of tokens: uniform is drawn at the run's samples to measure its own tokens
    per sample, then again at the run's tokens over that (rounded to whole samples). Where
    either side's tokens are unknown it stays at the run's samples, and says so: ``matched``
    is the unit it was matched in, ``budget_unit`` the one it should be. None where
    ``baseline`` gives none (a live run without ``--baseline``)."""
    base = baseline(samples)
    if base is None:
        return None
    unit = budget_unit(policy)
    base.update(matched="samples", budget_unit=unit)
    if unit == "samples":
        return base
    drawn, spent = base.get("samples"), base.get("tokens")
    why = ("some of the run's token counts are unknown" if tokens is None
           else "some of uniform's token counts are unknown" if spent is None
           else "uniform's samples billed no tokens" if not drawn or spent <= 0 else None)
    if why is not None:
        base["how"] += ("; matched to the run's samples, NOT its tokens, though the budget is in "
                        f"tokens: {why}")
        return base
    per_sample = spent / drawn
    target = max(1, round(uniform_samples(policy, samples, tokens, per_sample)))
    if target != samples:
        base = baseline(target)
        base.update(matched="samples", budget_unit=unit)
    base["matched"] = "tokens"
    base["how"] += (f"; the budget is in tokens, so uniform draws the samples that bill the run's "
                    f"{tokens} tokens at its own {per_sample:.1f} per sample ({target}, the run "
                    f"drew {samples}): it billed {base.get('tokens')}")
    return base
