"""Vectorised evaluation of policy expressions and stop conditions over sets of samples.

The planner reads it for the features of each query's probe and to simulate stop rules over many
random orders of logged samples; the runtime reads it for stop rules on the samples so far. Both
must agree on what every name means, so this docstring is the contract.

Values
    A NUMBER expression gives ``[B] float64``, one value per row (query). Lists (``answers``,
    ``tokens``, ``logprobs``, ``correct``, ``scores(s)``) have one entry per sample, the unanswered
    and the unknown included; they exist only inside an evaluation.

Answers (no-answer samples count as samples, never as an answer)
    ``top_share(answers)`` and the bare ``top_share``: votes of the most common real answer /
    number of samples; 0 with no samples. ``distinct(answers)``: number of distinct real answers.
    ``answer_entropy(answers)``: entropy in nats of the distribution of the real answers; 0 if
    none. ``count(list)``: number of samples. ``samples``: number of samples.

``beta_confidence`` (Adaptive-Consistency, Aggarwal et al. 2023)
    With v1 >= v2 the votes of the two most common real answers (v2 = 0 with one answer), the
    posterior P(p > 1/2) for p ~ Beta(v1 + 1, v2 + 1), which for these integer parameters is
    P(Binomial(v1 + v2 + 1, 1/2) <= v1) (derived in :mod:`ttcdsl.features.binomial`). A tie gives
    exactly 0.5. With no real answer it is 0: Adaptive-Consistency cannot stop before a vote, and
    0 passes no confidence threshold (the Beta(1, 1) value 0.5 would make `beta_confidence < 0.6`
    hold on a query with no answer yet).

Numbers
    ``mean``, ``min``, ``max``, ``std`` skip unknown (NaN) entries and give NaN when none is known;
    ``std`` is the population standard deviation. ``score(s)`` is the largest known score so far
    (NaN if none), ``scores(s)`` the list; the caller resolves every scorer to a column of the
    batch (:func:`ttcdsl.features.scorers.resolve_scorers`). ``prompt_nll`` is per row;
    ``logprobs`` and ``correct`` are lists. ``clip(x, lo, hi)`` = min(max(x, lo), hi), NaN if any
    argument is NaN. Arithmetic follows IEEE doubles except that division by zero gives NaN
    (0/0 and x/0 alike); no warnings are printed.

``normalize(x)``
    The only batch-relative function: (x - min) / (max - min) over the rows of the batch being
    evaluated, NaN rows ignored and kept NaN; all equal gives 0.0. Features are otherwise
    functions of one query's samples, so a row's value never depends on the other rows.

Conditions
    ``left OP right`` compares per row; any comparison with a NaN side is False (``!=`` included).
    With ``after N`` it is False while the row has fewer than N samples. ``unanimous last K``: the
    row has at least K samples and its last K samples all have the same real answer (a no-answer
    sample breaks the window). ``unanimous window K`` (ESC, Li et al. 2024): the samples are cut
    into disjoint windows 1..K, K+1..2K, ... counted from the query's first sample (the probe's
    samples are the first samples); the rule holds once some completed window has the same real
    answer throughout. Checked after every sample, it first holds at the end of the first
    unanimous window, a multiple of K, as in ESC; it keeps holding afterwards, so a caller that
    checks only every few samples stops at its first check after that window.

Features
    A ``FeatureRef`` resolves through ``features``: a precomputed ``[B]`` array (constant as
    samples arrive, e.g. computed on the probe), or the feature's expression, evaluated on the
    same batch (the same prefix, in :func:`first_stop`) and memoised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import assert_never

import numpy as np

from ttcdsl.features.batch import SampleBatch
from ttcdsl.features.interpret import Evaluation, FeatureSource
from ttcdsl.features.votes import RunningVotes
from ttcdsl.lang import ir
from ttcdsl.lang.vocabulary import FUNCTIONS

NEVER = np.iinfo(np.int64).max
"""first_stop's value for a row where no condition held at any checkpoint."""

_NO_FEATURES: Mapping[str, FeatureSource] = {}


def evaluate(
    expr: ir.Expr,
    batch: SampleBatch,
    features: Mapping[str, FeatureSource] = _NO_FEATURES,
) -> np.ndarray:
    """``[B] float64``: a NUMBER-typed expression on every row of the batch."""
    return Evaluation(batch.check(), features).number(expr)


def holds(
    condition: ir.Condition,
    batch: SampleBatch,
    features: Mapping[str, FeatureSource] = _NO_FEATURES,
) -> np.ndarray:
    """``[B] bool``: whether the condition holds on each row's samples."""
    return Evaluation(batch.check(), features).holds(condition)


def evaluate_features(policy: ir.Policy, batch: SampleBatch) -> dict[str, np.ndarray]:
    """Every feature of the policy on every row, plus ``"difficulty"`` when it declares one.

    ``normalize`` is relative to this batch; call it on the whole batch of queries, not on chunks.
    """
    evaluation = Evaluation(batch.check(), {f.name: f.expr for f in policy.features})
    values = {
        f.name: evaluation.number(ir.FeatureRef(name=f.name, span=f.span))
        for f in policy.features
    }
    if policy.difficulty is not None:
        values["difficulty"] = evaluation.number(policy.difficulty)
    return values


def zero_divisions(policy: ir.Policy, expr: ir.Expr, batch: SampleBatch) -> np.ndarray:
    """``[B] bool``: rows where ``expr`` (with the features it reads) divides by zero somewhere,
    which makes it NaN (``x / 0`` is NaN, above). A NaN key is then the policy's arithmetic, not
    data missing from the table, and the planner says which."""
    evaluation = Evaluation(batch.check(), {f.name: f.expr for f in policy.features})
    features = {f.name: f.expr for f in policy.features}
    found = np.zeros(evaluation.n_rows, dtype=bool)
    stack, seen = [expr], set()
    while stack:  # iterative, each feature once: a feature chain is no recursion
        node = stack.pop()
        match node:
            case ir.Arith(op=op, left=left, right=right):
                if op == "/":
                    found |= evaluation.number(right) == 0
                stack.extend((left, right))
            case ir.Apply(args=args):
                stack.extend(args)
            case ir.Neg(operand=operand):
                stack.append(operand)
            case ir.FeatureRef(name=name) if name in features and name not in seen:
                seen.add(name)
                stack.append(features[name])
    return found


def first_stop(
    conditions: Sequence[ir.Condition],
    batch: SampleBatch,
    checkpoints: Sequence[int] | np.ndarray,
    features: Mapping[str, FeatureSource] = _NO_FEATURES,
) -> np.ndarray:
    """``[B] int64``: per row, the first checkpoint t (a prefix length) at which any condition
    holds on the row's first t samples; :data:`NEVER` when none does.

    Checkpoints are taken in ascending order (duplicates ignored); those beyond a row's length are
    skipped for that row. Rows are evaluated together at each checkpoint on a column slice of the
    batch; rows that stopped, or are too short, are dropped from the working set whenever it
    halves, so the cost follows the rows still running, and the vote counts run across
    checkpoints (each column is counted once, :class:`~ttcdsl.features.votes.RunningVotes`). Conditions may not read batch-relative
    values (``normalize``, directly or through a feature expression): the working set changes from
    checkpoint to checkpoint, so such a value would have no fixed meaning (pass the feature as a
    precomputed array instead).
    """
    batch = batch.check()
    points = np.unique(np.asarray(checkpoints, dtype=np.int64))
    if points.size and points[0] < 0:
        raise ValueError(
            f"checkpoints are prefix lengths and cannot be negative: {points[0]}"
        )
    for condition in conditions:
        _reject_batch_relative(condition, features)
    stop = np.full(batch.n_rows, NEVER, dtype=np.int64)
    if not conditions or batch.n_rows == 0:
        return stop
    rows = np.arange(batch.n_rows)
    work, lengths, votes = batch, batch.lengths, RunningVotes(batch.answer, batch.valid)
    arrays = {
        n: np.asarray(v) for n, v in features.items() if not isinstance(v, ir.Expr)
    }
    exprs = {n: v for n, v in features.items() if isinstance(v, ir.Expr)}
    for t in points.tolist():
        running = (lengths >= t) & (stop[rows] == NEVER)
        n_running = int(running.sum())
        if n_running == 0:
            break
        if n_running * 2 <= rows.size:  # compact: keep only the rows still running
            rows, lengths, work = rows[running], lengths[running], work.take(running)
            votes = votes.take(running)
            arrays = {name: values[running] for name, values in arrays.items()}
            running = np.ones(rows.size, dtype=bool)
        evaluation = Evaluation(
            work.prefix(t),
            {**exprs, **arrays},
            votes=votes.advance(t),
            lengths=np.minimum(lengths, t),
        )
        hit = np.zeros(rows.size, dtype=bool)
        for condition in conditions:
            hit |= evaluation.holds(condition)
        hit &= running
        stop[rows[hit]] = t
    return stop


def _reject_batch_relative(
    condition: ir.Condition, features: Mapping[str, FeatureSource]
) -> None:
    if not isinstance(condition, ir.Threshold):
        return
    stack: list[ir.Expr] = [condition.left, condition.right]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        match node:
            case ir.Apply(function=function, args=args):
                spec = FUNCTIONS.get(function)
                if spec is not None and spec.batch_relative:
                    raise ValueError(
                        f"{function}() is batch-relative and cannot be read by a stop condition "
                        f"(line {node.span.line}); pass the feature as a precomputed array"
                    )
                stack.extend(args)
            case ir.Arith(left=left, right=right):
                stack.extend((left, right))
            case ir.Neg(operand=operand):
                stack.append(operand)
            case ir.FeatureRef(name=name):
                source = features.get(name)
                if name not in seen and isinstance(source, ir.Expr):
                    seen.add(name)
                    stack.append(source)
            case ir.Const() | ir.ObservableRef() | ir.ScorerRef():
                pass
            case _:
                assert_never(node)
