"""Calibration: a policy's probe, features and bins applied to a logged samples table.

Each calibration query's samples are put in a seeded random order, the order a replay of the
table with that seed serves them (:func:`ttcdsl.runtime.replay.replay_order`): a log's own order
need not be random (one pool logs its most agreeing samples first), and a run's probe is a
random draw. In that order they are split in two:

* its first ``probe`` samples are its **probe**: they give its features, its difficulty and so
  its bin, exactly as the probe will at run time;
* its other samples are **held out**: they never place the query; the curves draw the samples
  a run adds after the probe from them.

The held-out samples never place a query in a bin, so they are an honest draw of the samples a
run adds after the probe. A run's count ``n`` is the probe plus ``n - probe`` more, and the run
checks stop rules on and votes over all of them, probe included: so the curves simulate each
query's own probe followed by its held-out samples (:mod:`ttcdsl.planner.stopping`). The probe
is selected (an "easy" query's probe agreed), and so is the run's, by the same rule.

Queries with no held-out sample (``m <= probe``) cannot inform a curve; they are dropped and
counted. So are, for an accuracy or coverage objective, queries with a sample of unknown
correctness (``unlabelled``): counted wrong, they would bias every curve down. Bins are ``[e_{i-1}, e_i)``: a query whose key equals an edge goes to the upper bin.

A run serves every sample under a ``max_tokens`` (the policy's for the probe, the bin's after):
a longer logged sample is cut (:mod:`ttcdsl.samples.truncation`), so the probe is cut at the
policy's ``max_tokens`` before its features are evaluated, and the curves cut each bin's samples
at the bin's (:func:`cut_pool`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ttcdsl.curves.pool import QueryPool
from ttcdsl.features.scorers import as_read
from ttcdsl.errors import UserError
from ttcdsl.lang import ir
from ttcdsl.samples.schema import SamplesTable

@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """A policy's view of a calibration table: which queries, their bins, the held-out pool."""

    policy: ir.Policy
    query_ids: tuple[str, ...]  # the queries used, in pool row order
    dropped: tuple[str, ...]  # queries with too few samples to hold any out
    unlabelled: tuple[str, ...] = ()  # queries left out for a sample of unknown correctness
    probe: QueryPool  # first `policy.probe` samples of each query
    heldout: QueryPool  # the remaining samples (cut at the policy's max_tokens): the baseline's input
    heldout_logprob: np.ndarray  # [Q, M - probe] mean token log-probability (NaN unknown)
    features: Mapping[str, np.ndarray]  # [Q] each, evaluated on the probe
    key: np.ndarray | None  # [Q] the binning key's values (None: one bin)
    edges: tuple[float, ...]  # absolute cut values of the key between consecutive bins
    bin_index: np.ndarray  # [Q] int64 index into policy.bins
    prompt_tokens: np.ndarray  # [Q] float64 mean prompt tokens per sample (NaN unknown)
    prompt_nll: np.ndarray  # [Q] float64 the prompt's mean token NLL (NaN: not measured)
    samples_per_query: tuple[int, int]  # min and max logged samples per used query
    pool: QueryPool  # every logged sample of each used query, in logged order, uncut
    logprob: np.ndarray  # [Q, M] mean token log-probability of `pool`'s samples (NaN unknown)
    ties: tuple[dict, ...] = ()  # quantile edges that coincide: value, share of queries, bins
    undefined_key: int = 0  # queries whose key is NaN (their probe was cut): in the last bin

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    def bin_rows(self, b: int) -> np.ndarray:
        return np.flatnonzero(self.bin_index == b)

    def counts(self) -> np.ndarray:
        return np.bincount(self.bin_index, minlength=len(self.policy.bins)).astype(np.int64)


def scorer_columns(
    policy: ir.Policy, table: SamplesTable, mapping: Mapping[str, str] | None = None
) -> dict[str, np.ma.MaskedArray]:
    """The table column each of the policy's scorers reads, as per-row masked arrays.

    A reward model reads the score column of its name (or the one ``mapping`` names), a
    ``confidence`` scorer the mean token log-probability, a ``gold`` scorer the labels.
    """
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - {s.name for s in policy.scorers})
    if unknown:
        raise UserError(
            f"--score maps {', '.join(repr(u) for u in unknown)}, which the policy does not declare",
            hint=f"the policy's scorers: {', '.join(s.name for s in policy.scorers) or 'none'}",
        )
    columns: dict[str, np.ma.MaskedArray] = {}
    for scorer in policy.scorers:
        if scorer.kind == "confidence":
            column = table.mean_logprob
            if np.ma.getmaskarray(column).all():
                raise UserError(
                    f"scorer {scorer.name!r} is a confidence scorer, but the calibration table has "
                    "no mean_logprob values",
                    hint="calibrate on samples generated with logprobs, or use another scorer",
                )
        elif scorer.kind == "gold":
            column = np.ma.masked_array(
                np.asarray(table.correct.filled(False), dtype=np.float64),
                mask=np.ma.getmaskarray(table.correct),
            )
        else:
            name = mapping.get(scorer.name, scorer.name)
            if name not in table.scores:
                have = ", ".join(sorted(table.scores)) or "none"
                raise UserError(
                    f"scorer {scorer.name!r} (reward model {scorer.model!r}) needs a score column "
                    f"{name!r} in the calibration table; its score columns: {have}",
                    hint=f"map it to a column with --score {scorer.name}=COLUMN"
                    if table.scores
                    else "score the calibration samples with the reward model first",
                )
            column = as_read(scorer, table.scores[name])  # sigmoid for a `logits` scorer
        columns[scorer.name] = column
    return columns


def calibrate(
    policy: ir.Policy,
    table: SamplesTable,
    *,
    score_columns: Mapping[str, str] | None = None,
    seed: int = 0,
) -> Calibration:
    """Order each query's samples by ``seed``, split them into probes and held-out samples,
    evaluate features, assign bins."""
    from ttcdsl.features import SampleBatch, evaluate_features
    from ttcdsl.samples.truncation import is_cut

    if len(table) == 0:
        raise UserError("the calibration table has no samples")
    if policy.objective in ("accuracy", "coverage") and np.ma.getmaskarray(table.correct).all():
        raise UserError(
            f"the policy maximizes {policy.objective}, but no calibration sample has a "
            "correctness label",
            hint="import the table with gold answers (ttc import), so the planner can measure "
            f"{policy.objective}",
        )
    scorers = scorer_columns(policy, table, score_columns)
    pool = QueryPool.from_table(table, extra=scorers)
    k = policy.probe
    m = pool.n_samples
    usable = m > k
    if not usable.any():
        raise UserError(
            f"every calibration query has at most {int(m.max())} samples, but the probe takes "
            f"{k}: none is left to estimate the curves",
            hint=f"calibrate on more than {k} samples per query",
        )
    dropped = tuple(pool.query_ids[i] for i in np.flatnonzero(~usable))
    unlabelled: tuple[str, ...] = ()
    if policy.objective in ("accuracy", "coverage"):
        unknown = set(table.unlabelled_query_ids())
        labelled = np.array([q not in unknown for q in pool.query_ids], dtype=bool)
        unlabelled = tuple(q for q, ok, use in zip(pool.query_ids, labelled, usable) if use and not ok)
        usable &= labelled
        if not usable.any():
            raise UserError(
                f"every calibration query has a sample without a correctness label: the "
                f"policy's {policy.objective} cannot be measured on any",
                hint="import the table with gold answers for every query (ttc import --gold-field ...)",
            )
    rows = np.flatnonzero(usable)
    pool = pool.take(rows)
    width = pool.answer.shape[1]
    order = _serving_order(table, pool.query_ids, width, seed)
    pool = _reorder(pool, order)
    logprob = _take(_grid(table, table.mean_logprob, pool.query_ids, width), order)
    # the probe is served under the policy's max_tokens: its features see the cut samples
    max_tokens = policy.sampling.max_tokens
    probe, probe_logprob = cut_pool(pool.columns(0, k), logprob[:, :k], max_tokens)
    heldout, heldout_logprob = cut_pool(pool.columns(k), logprob[:, k:], max_tokens)

    prompt = per_query_mean(table, table.prompt_tokens, pool.query_ids)
    prompt_nll = per_query_mean(table, table.prompt_nll, pool.query_ids)
    labels = _take(_grid(table, table.correct, pool.query_ids, width), order)[:, :k]
    labels = np.where(is_cut(pool.tokens[:, :k], max_tokens), np.minimum(labels, 0.0), labels)
    batch = SampleBatch(
        answer=probe.answer,
        valid=probe.valid,
        tokens=probe.tokens,
        logprob=probe_logprob,
        correct=np.where(probe.valid, labels, np.nan),  # a cut sample is wrong where labelled
        scores={name: probe.scores[name] for name in scorers},
        prompt_nll=prompt_nll,
    )
    features = evaluate_features(policy, batch) if (policy.features or policy.difficulty) else {}
    probe_cut = (probe.valid & is_cut(pool.tokens[:, :k], max_tokens)).any(axis=1)
    key, edges, bin_index = _assign_bins(policy, features, pool.n_queries, probe_cut, batch)
    return Calibration(
        policy=policy,
        query_ids=pool.query_ids,
        dropped=dropped,
        unlabelled=unlabelled,
        probe=probe,
        heldout=heldout,
        heldout_logprob=heldout_logprob,
        features=features,
        key=key,
        edges=edges,
        bin_index=bin_index,
        prompt_tokens=prompt,
        prompt_nll=prompt_nll,
        samples_per_query=(int(pool.n_samples.min()), int(pool.n_samples.max())),
        pool=pool,
        logprob=logprob,
        ties=_ties(policy, key, edges),
        undefined_key=int(np.sum(~np.isfinite(key))) if key is not None else 0,
    )


def _serving_order(table: SamplesTable, query_ids, width: int, seed: int) -> np.ndarray:
    """``[Q, width]``: per query, the columns (``sample_index`` order) in the order a replay with
    ``seed`` serves its samples; columns past a query's samples stay in place."""
    from ttcdsl.runtime.replay import replay_order

    rows = _sorted_rows(table, query_ids)[:, :width]
    index = np.asarray(table.sample_index)
    order = np.tile(np.arange(width), (len(query_ids), 1))
    for q, qid in enumerate(query_ids):
        logged = rows[q][rows[q] >= 0]
        order[q, : len(logged)] = replay_order(seed, qid, index[logged].tolist())
    return order


def _take(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    return np.take_along_axis(values, order, axis=1)


def _reorder(pool: QueryPool, order: np.ndarray) -> QueryPool:
    return pool._replace(
        answer=_take(pool.answer, order),
        valid=_take(pool.valid, order),
        correct=_take(pool.correct, order),
        scores={name: _take(values, order) for name, values in pool.scores.items()},
        tokens=_take(pool.tokens, order),
    )


def cut_pool(pool: QueryPool, logprob: np.ndarray, max_tokens: int) -> tuple[QueryPool, np.ndarray]:
    """``pool`` and its log-probabilities as a run would serve them under ``max_tokens``: a
    longer sample bills ``max_tokens`` tokens and has no answer, label-true, score or
    log-probability (:func:`ttcdsl.samples.truncation.is_cut`, the rule replay follows)."""
    from ttcdsl.samples.truncation import is_cut

    cut = pool.valid & is_cut(pool.tokens, max_tokens)
    if not cut.any():
        return pool, logprob
    return (
        pool._replace(
            answer=np.where(cut, -1, pool.answer),
            correct=pool.correct & ~cut,
            scores={name: np.where(cut, np.nan, values) for name, values in pool.scores.items()},
            tokens=np.where(cut, float(max_tokens), pool.tokens),
        ),
        np.where(cut, np.nan, logprob),
    )


def _assign_bins(
    policy: ir.Policy, features: Mapping[str, np.ndarray], n: int, cut: np.ndarray, batch,
) -> tuple[np.ndarray | None, tuple[float, ...], np.ndarray]:
    """The key, the edges and each query's bin. ``cut`` marks queries whose probe has a sample cut
    at ``max_tokens``: a cut sample has no answer or score, so the key may be NaN for them, and
    such a query goes to the last bin as the run sends it (:func:`ttcdsl.runtime.assignment.
    assign_bins`). A NaN key for any other query is a division by zero in the key (the probe's
    ``batch`` tells) or the table lacks what the key reads."""
    binning = policy.binning
    if binning is None:
        return None, (), np.zeros(n, dtype=np.int64)
    key = np.asarray(features[binning.key], dtype=np.float64)
    bad = ~np.isfinite(key)
    if (bad & ~cut).any() or bad.all():
        from ttcdsl.features.evaluate import zero_divisions

        expr = policy.difficulty if binning.key == "difficulty" else ir.FeatureRef(name=binning.key, span=None)
        divided = bad & zero_divisions(policy, expr, batch)
        missing = int((bad & ~divided & ~cut).sum())
        if divided.any():
            # the policy's arithmetic, not the table: blaming missing data misled the writer
            raise UserError(
                f"the binning key {binning.key!r} is undefined for {int(divided.sum())} of {n} "
                "calibration queries: it divides by zero there (x / 0 has no value)"
                + (f"; for {missing} more, what it reads is missing" if missing else ""),
                hint="keep the divisor away from 0 (e.g. `x / (1 - x + 0.01)`, or "
                "clip(1 - x, 0.01, 1) as the divisor), or bin by a key without the division",
            )
        raise UserError(
            f"the binning key {binning.key!r} is undefined (NaN) for {int(bad.sum())} of {n} "
            "calibration queries",
            hint="a feature is NaN when what it reads is unknown for the probe's samples: token "
            "counts (import with --tokenizer), scores, log-probabilities or prompt_nll missing from "
            "the table",
        )
    if binning.method == "quantiles":
        edges = tuple(float(e) for e in np.quantile(key[~bad], binning.cuts))
    else:
        edges = tuple(float(c) for c in binning.cuts)
    bins = np.searchsorted(np.asarray(edges), np.where(bad, 0.0, key), side="right")
    return key, edges, np.where(bad, len(policy.bins) - 1, bins).astype(np.int64)


def _sorted_rows(table: SamplesTable, query_ids: tuple[str, ...]):
    """Row positions of ``table`` as a ``[Q, M]`` grid in ``sample_index`` order (-1 = none)."""
    position = {q: i for i, q in enumerate(query_ids)}
    qrow = np.array([position.get(q, -1) for q in table.query_id], dtype=np.int64)
    keep = np.flatnonzero(qrow >= 0)
    order = keep[np.lexsort((np.asarray(table.sample_index)[keep], qrow[keep]))]
    counts = np.bincount(qrow[order], minlength=len(query_ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(order)) - starts[qrow[order]]
    grid = np.full((len(query_ids), int(counts.max(initial=0))), -1, dtype=np.int64)
    grid[qrow[order], slot] = order
    return grid


def _grid(table: SamplesTable, column: np.ma.MaskedArray, query_ids, width: int) -> np.ndarray:
    """A per-row masked column as ``[Q, width]`` float64 in sample order (NaN unknown/absent)."""
    rows = _sorted_rows(table, query_ids)[:, :width]
    values = np.asarray(np.ma.masked_array(column).astype(np.float64).filled(np.nan))
    return np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)


def per_query_mean(table: SamplesTable, column: np.ma.MaskedArray, query_ids) -> np.ndarray:
    """``[Q]``: each query's mean of a per-sample column over its samples that have a value
    (NaN where none has). For properties of the prompt (its tokens, its NLL), which every sample
    of a query shares; the runtime takes the same mean over the samples it holds
    (:func:`ttcdsl.runtime.executor.prompt_nll`)."""
    rows = _sorted_rows(table, query_ids)
    values = np.asarray(column.astype(np.float64).filled(np.nan))
    grid = np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)
    known = np.isfinite(grid)
    total = np.where(known, grid, 0.0).sum(axis=1)
    count = known.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _ties(policy: ir.Policy, key: np.ndarray | None, edges: tuple[float, ...]) -> tuple[dict, ...]:
    """Quantile edges the key's ties moved: where many calibration queries share the key value a
    cut falls on, the cut cannot split them (all go to the upper bin, at run time too), so a bin
    gets more or fewer queries than its quantile share, and where several cuts fall on the same
    value the bins between them are empty. One entry per such value: the value, the share of
    queries whose key equals it, the cuts that fall on it and the bins left empty."""
    binning = policy.binning
    if key is None or binning is None or binning.method != "quantiles" or not edges:
        return ()
    names = [b.name for b in policy.bins]
    out = []
    values = np.asarray(edges)
    for value in np.unique(values):
        at = np.flatnonzero(values == value)
        tied = float(np.mean(key == value))
        empty = [names[i] for i in at[1:]]  # bin i lies between edges i-1 and i: [v, v) is empty
        if empty or tied >= 0.05:
            out.append(
                {
                    "value": float(value),
                    "tied_share": tied,
                    "cuts": [float(binning.cuts[i]) for i in at],
                    "empty_bins": empty,
                }
            )
    return tuple(out)
