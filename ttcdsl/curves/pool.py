"""The per-query input every curve estimator reads: a padded, masked array view of a sample pool.

A :class:`QueryPool` holds, for each of ``Q`` queries, its ``m_q`` logged samples padded to
``M = max m_q`` columns:

==================  ===================  ========================================================
field               shape / dtype        meaning
==================  ===================  ========================================================
``answer``          ``[Q, M] int32``     answer id of the sample within its query (ids count from 0
                                         in order of first appearance); -1 = no answer or padding
``valid``           ``[Q, M] bool``      the column is a logged sample (not padding)
``correct``         ``[Q, M] bool``      the sample is labelled correct (False for padding)
``answer_correct``  ``[Q, A] bool``      answer id is correct: any of its samples is labelled so
``scores``          ``{name: [Q, M] f8}`` scorer values, NaN where absent or padding
``tokens``          ``[Q, M] float64``   completion tokens, NaN where unknown or padding
``query_ids``       ``tuple[str, ...]``  the queries, in row order
==================  ===================  ========================================================

Samples keep their logged order (``sample_index``); the estimators average over random orders.
Votes credit an answer as correct when any of its samples is labelled correct; when the labels of
one answer's samples disagree (possible only if the labels are not a function of the canonical
answer) :attr:`QueryPool.inconsistent` counts those answers, and pass@k and best-of-n still use the
per-sample labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ttcdsl.samples.schema import SamplesTable


class QueryPool(NamedTuple):
    answer: np.ndarray
    valid: np.ndarray
    correct: np.ndarray
    answer_correct: np.ndarray
    scores: Mapping[str, np.ndarray]
    tokens: np.ndarray
    query_ids: tuple[str, ...]
    inconsistent: int = 0

    # ------------------------------------------------------------------------------ derived

    @property
    def n_queries(self) -> int:
        return self.answer.shape[0]

    @property
    def n_samples(self) -> np.ndarray:
        """``[Q] int64``: logged samples per query, ``m_q``."""
        return self.valid.sum(axis=1).astype(np.int64)

    @property
    def n_correct(self) -> np.ndarray:
        """``[Q] int64``: samples labelled correct per query."""
        return (self.correct & self.valid).sum(axis=1).astype(np.int64)

    def answer_counts(self) -> np.ndarray:
        """``[Q, A] int64``: votes per answer id over all logged samples."""
        q, a = self.answer_correct.shape
        counts = np.zeros((q, max(a, 1)), dtype=np.int64)
        rows, cols = np.nonzero(self.answer >= 0)
        np.add.at(counts, (rows, self.answer[rows, cols]), 1)
        return counts[:, :a]

    def mean_tokens(self) -> np.ndarray:
        """``[Q] float64``: mean completion tokens of the logged samples (NaN if none known)."""
        known = self.valid & np.isfinite(self.tokens)
        total = np.where(known, self.tokens, 0.0).sum(axis=1)
        count = known.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def score(self, name: str) -> np.ndarray:
        try:
            return self.scores[name]
        except KeyError:
            known = ", ".join(sorted(self.scores)) or "none"
            raise KeyError(f"no scorer {name!r} in this pool (scorers: {known})") from None

    def take(self, queries: Sequence[int] | np.ndarray) -> QueryPool:
        """The sub-pool of the given query rows (a bin), in that order."""
        idx = np.asarray(queries, dtype=np.int64)
        return QueryPool(
            answer=self.answer[idx],
            valid=self.valid[idx],
            correct=self.correct[idx],
            answer_correct=self.answer_correct[idx],
            scores={k: v[idx] for k, v in self.scores.items()},
            tokens=self.tokens[idx],
            query_ids=tuple(self.query_ids[i] for i in idx),
            inconsistent=self.inconsistent,
        )

    def columns(self, start: int, stop: int | None = None) -> QueryPool:
        """The pool of each query's samples ``start:stop`` in logged order (answer ids are kept,
        so an answer's correctness still reads from :attr:`answer_correct`). The planner splits a
        calibration pool this way into each query's probe and the samples its curves come from."""
        cut = slice(start, stop)
        return self._replace(
            answer=self.answer[:, cut],
            valid=self.valid[:, cut],
            correct=self.correct[:, cut],
            scores={k: v[:, cut] for k, v in self.scores.items()},
            tokens=self.tokens[:, cut],
        )

    def with_scores(self, scores: Mapping[str, np.ndarray]) -> QueryPool:
        """This pool with more ``[Q, M]`` score arrays (NaN where absent), e.g. a policy's scorers."""
        masked = {k: np.where(self.valid, np.asarray(v, dtype=np.float64), np.nan) for k, v in scores.items()}
        return self._replace(scores={**self.scores, **masked})

    # -------------------------------------------------------------------------- construction

    @classmethod
    def from_lists(
        cls,
        answers: Sequence[Sequence[Any]],
        correct: Sequence[Sequence[bool | None]],
        *,
        scores: Mapping[str, Sequence[Sequence[float | None]]] | None = None,
        tokens: Sequence[Sequence[float | None]] | None = None,
        query_ids: Sequence[str] | None = None,
    ) -> QueryPool:
        """Build from ragged per-query lists: ``answers[q][j]`` is a hashable answer or None.

        Unknown correctness (None) counts as incorrect.
        """
        q = len(answers)
        if len(correct) != q:
            raise ValueError(f"{q} queries of answers but {len(correct)} of correctness labels")
        m = max((len(a) for a in answers), default=0)
        answer = np.full((q, m), -1, dtype=np.int32)
        valid = np.zeros((q, m), dtype=bool)
        label = np.zeros((q, m), dtype=bool)
        ids: list[dict[Any, int]] = []
        for i, (row, ok) in enumerate(zip(answers, correct, strict=True)):
            if len(ok) != len(row):
                raise ValueError(f"query {i}: {len(row)} answers but {len(ok)} labels")
            seen: dict[Any, int] = {}
            for j, a in enumerate(row):
                valid[i, j] = True
                label[i, j] = bool(ok[j])
                if a is not None:
                    answer[i, j] = seen.setdefault(a, len(seen))
            ids.append(seen)
        n_answers = max((len(s) for s in ids), default=0)

        def ragged(values: Sequence[Sequence[float | None]], name: str) -> np.ndarray:
            if len(values) != q:
                raise ValueError(f"{name}: {len(values)} queries, expected {q}")
            out = np.full((q, m), np.nan)
            for i, row in enumerate(values):
                if len(row) != valid[i].sum():
                    raise ValueError(
                        f"{name}: query {i} has {len(row)} values for {valid[i].sum()} samples"
                    )
                out[i, : len(row)] = [np.nan if v is None else float(v) for v in row]
            return out

        return cls._assemble(
            answer=answer,
            valid=valid,
            correct=label,
            n_answers=n_answers,
            scores={k: ragged(v, f"scores[{k!r}]") for k, v in (scores or {}).items()},
            tokens=ragged(tokens, "tokens") if tokens is not None else np.full((q, m), np.nan),
            query_ids=tuple(query_ids)
            if query_ids is not None
            else tuple(str(i) for i in range(q)),
        )

    @classmethod
    def from_table(
        cls, table: SamplesTable, *, extra: Mapping[str, np.ma.MaskedArray] | None = None
    ) -> QueryPool:
        """Build from a :class:`~ttcdsl.samples.schema.SamplesTable` (samples in ``sample_index``
        order; unknown correctness counts as incorrect; every scorer column is carried).

        ``extra`` adds per-row columns of the table (``[n]`` masked arrays, e.g.
        ``{"conf": table.mean_logprob}``) to :attr:`scores` under the given names."""
        n = len(table)
        qids = table.query_ids()
        q = len(qids)
        codes = np.asarray(table.query_codes, dtype=np.int64)
        order = np.lexsort((np.asarray(table.sample_index), codes))
        sorted_codes = codes[order]
        per_query = np.bincount(sorted_codes, minlength=q) if n else np.zeros(q, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(per_query)[:-1]]) if q else np.zeros(0, np.int64)
        slot = np.arange(n) - starts[sorted_codes] if n else np.zeros(0, np.int64)
        m = int(per_query.max()) if q else 0

        def grid(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
            out = np.full((q, m), fill, dtype=dtype)
            out[sorted_codes, slot] = values[order]
            return out

        valid = grid(np.ones(n, dtype=bool), False, bool)
        correct = grid(np.asarray(table.correct.filled(False), dtype=bool), False, bool)
        tokens = grid(
            np.asarray(table.completion_tokens.astype(np.float64).filled(np.nan)),
            np.nan,
            np.float64,
        )
        raw = table.answer[order]
        answer = np.full((q, m), -1, dtype=np.int32)
        n_answers = 0
        # Answer ids are local to a query: factorise (query, answer) pairs, then renumber within
        # each query in order of first appearance.
        has = np.array([a is not None for a in raw], dtype=bool)
        if has.any():
            keys = np.array(
                [f"{c}\x00{a}" for c, a in zip(sorted_codes[has], raw[has], strict=True)],
                dtype=object,
            )
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            hq = sorted_codes[has]
            # rank of each distinct (query, answer) by first appearance within its query
            first_pos = np.flatnonzero(has)[first]
            pair_query = hq[first]
            rank_order = np.lexsort((first_pos, pair_query))
            local = np.empty(len(first), dtype=np.int64)
            group_start = np.searchsorted(
                pair_query[rank_order], pair_query[rank_order], side="left"
            )
            local[rank_order] = np.arange(len(first)) - group_start
            answer[hq, slot[has]] = local[inverse]
            n_answers = int(local.max()) + 1
        scores = {
            name: grid(np.asarray(col.filled(np.nan), dtype=np.float64), np.nan, np.float64)
            for name, col in {**table.scores, **(extra or {})}.items()
        }
        return cls._assemble(
            answer=answer,
            valid=valid,
            correct=correct,
            n_answers=n_answers,
            scores=scores,
            tokens=tokens,
            query_ids=tuple(qids),
        )

    @classmethod
    def _assemble(
        cls,
        *,
        answer: np.ndarray,
        valid: np.ndarray,
        correct: np.ndarray,
        n_answers: int,
        scores: Mapping[str, np.ndarray],
        tokens: np.ndarray,
        query_ids: tuple[str, ...],
    ) -> QueryPool:
        q = answer.shape[0]
        any_right = np.zeros((q, n_answers), dtype=bool)
        any_wrong = np.zeros((q, n_answers), dtype=bool)
        rows, cols = np.nonzero(answer >= 0)
        ids = answer[rows, cols]
        np.logical_or.at(any_right, (rows, ids), correct[rows, cols])
        np.logical_or.at(any_wrong, (rows, ids), ~correct[rows, cols])
        masked_scores = {k: np.where(valid, v, np.nan) for k, v in scores.items()}
        return cls(
            answer=answer,
            valid=valid,
            correct=correct & valid,
            answer_correct=any_right,
            scores=masked_scores,
            tokens=np.where(valid, tokens, np.nan),
            query_ids=query_ids,
            inconsistent=int((any_right & any_wrong).sum()),
        )
