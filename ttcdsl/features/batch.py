"""The input of every evaluation: B sets of samples as padded, masked arrays.

One row is one query's samples (a probe, the samples so far, or one random order of a logged
pool), in generation order. The valid samples of a row are a prefix of its columns, so "the first
t samples" of every row is a column slice; padding values are never read (every evaluator masks
with ``valid``), which is what lets :meth:`SampleBatch.prefix` return views without copying.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

Ragged = Sequence[Sequence[float | bool | None]]


class SampleBatch(NamedTuple):
    """B sets of samples padded to L columns; the valid samples of a row are a prefix (columns
    0..len-1), in generation order.

    ========== ============ ===================================================================
    field      shape        meaning
    ========== ============ ===================================================================
    answer     [B, L] int32 answer id local to the row (same id = same canonical answer);
                            -1 = no answer extracted, or padding
    valid      [B, L] bool  the column holds a sample; a prefix of each row
    tokens     [B, L] f8    completion tokens, NaN unknown
    logprob    [B, L] f8    mean token log-probability, NaN unknown
    correct    [B, L] f8    1.0 / 0.0, NaN unknown (gold; offline policies only)
    scores     {name: [B, L] f8}  every policy scorer resolved to a column (see
                            :func:`ttcdsl.features.scorers.resolve_scorers`), NaN absent
    prompt_nll [B] f8       NaN unknown
    ========== ============ ===================================================================
    """

    answer: np.ndarray
    valid: np.ndarray
    tokens: np.ndarray
    logprob: np.ndarray
    correct: np.ndarray
    scores: Mapping[str, np.ndarray]
    prompt_nll: np.ndarray

    # ------------------------------------------------------------------------------ shape

    @property
    def n_rows(self) -> int:
        return int(self.answer.shape[0])

    @property
    def width(self) -> int:
        """L, the number of columns (the longest row fits)."""
        return int(self.answer.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """``[B] int64``: samples per row."""
        return self.valid.sum(axis=1, dtype=np.int64)

    def check(self) -> SampleBatch:
        """Raises ValueError when shapes, dtypes or the prefix layout are wrong; returns self.

        Cheap (one pass over ``valid``); the evaluators call it so that a malformed batch fails
        loudly instead of being read as some other set of samples.
        """
        if self.answer.ndim != 2:
            raise ValueError(f"answer must be [B, L], got shape {self.answer.shape}")
        shape = self.answer.shape
        if not np.issubdtype(self.answer.dtype, np.integer):
            raise ValueError(f"answer must hold integer ids, got {self.answer.dtype}")
        if self.valid.dtype != np.bool_:
            raise ValueError(f"valid must be bool, got {self.valid.dtype}")
        columns = {
            "valid": self.valid,
            "tokens": self.tokens,
            "logprob": self.logprob,
            "correct": self.correct,
        }
        columns.update(
            {f"scores[{name!r}]": values for name, values in self.scores.items()}
        )
        for name, values in columns.items():
            if values.shape != shape:
                raise ValueError(f"{name} has shape {values.shape}, answer has {shape}")
        if self.prompt_nll.shape != shape[:1]:
            raise ValueError(
                f"prompt_nll has shape {self.prompt_nll.shape}, expected {shape[:1]}"
            )
        if shape[1] > 1 and bool((self.valid[:, 1:] & ~self.valid[:, :-1]).any()):
            raise ValueError(
                "valid must be a prefix of each row (no gaps before a sample)"
            )
        return self

    # ------------------------------------------------------------------------------ views

    def prefix(self, length: int | np.ndarray) -> SampleBatch:
        """The first ``length`` samples of each row (a scalar, or ``[B]`` per row).

        A scalar keeps the first ``length`` columns as views (no copy). Per-row lengths cut the
        columns to the longest kept row and mark the rest padding (answer -1, numbers NaN).
        """
        if np.ndim(length) == 0:
            t = min(max(int(length), 0), self.width)
            return SampleBatch(
                answer=self.answer[:, :t],
                valid=self.valid[:, :t],
                tokens=self.tokens[:, :t],
                logprob=self.logprob[:, :t],
                correct=self.correct[:, :t],
                scores={name: values[:, :t] for name, values in self.scores.items()},
                prompt_nll=self.prompt_nll,
            )
        lengths = np.asarray(length, dtype=np.int64)
        if lengths.shape != (self.n_rows,):
            raise ValueError(
                f"prefix lengths must be a scalar or [{self.n_rows}], got {lengths.shape}"
            )
        kept = np.clip(lengths, 0, self.lengths)
        t = int(kept.max(initial=0))
        keep = np.arange(t) < kept[:, None]
        return SampleBatch(
            answer=np.where(keep, self.answer[:, :t], -1).astype(self.answer.dtype),
            valid=keep,
            tokens=np.where(keep, self.tokens[:, :t], np.nan),
            logprob=np.where(keep, self.logprob[:, :t], np.nan),
            correct=np.where(keep, self.correct[:, :t], np.nan),
            scores={
                name: np.where(keep, v[:, :t], np.nan)
                for name, v in self.scores.items()
            },
            prompt_nll=self.prompt_nll,
        )

    def take(self, rows: np.ndarray | Sequence[int]) -> SampleBatch:
        """The given rows (integer indices or a ``[B]`` bool mask), in that order."""
        rows = np.asarray(rows)
        return SampleBatch(
            answer=self.answer[rows],
            valid=self.valid[rows],
            tokens=self.tokens[rows],
            logprob=self.logprob[rows],
            correct=self.correct[rows],
            scores={name: values[rows] for name, values in self.scores.items()},
            prompt_nll=self.prompt_nll[rows],
        )

    def with_scores(self, scores: Mapping[str, np.ndarray]) -> SampleBatch:
        return self._replace(scores=dict(scores))

    # ------------------------------------------------------------------------------ building

    @classmethod
    def from_lists(
        cls,
        answers: Sequence[Sequence[Hashable | None]],
        *,
        tokens: Ragged | None = None,
        logprob: Ragged | None = None,
        correct: Ragged | None = None,
        scores: Mapping[str, Ragged] | None = None,
        prompt_nll: Sequence[float | None] | None = None,
        width: int | None = None,
    ) -> SampleBatch:
        """A batch from ragged per-row lists (tests, the runtime's samples so far).

        ``answers[b]`` lists row b's canonical answers in generation order, None where no answer
        was extracted; ids are given per row in order of first appearance. The number lists, when
        given, must have the same lengths as the answer lists (None = unknown); ``width`` pads to
        more columns than the longest row.
        """
        n_rows = len(answers)
        lengths = [len(row) for row in answers]
        longest = max(lengths, default=0)
        width = longest if width is None else width
        if width < longest:
            raise ValueError(
                f"width {width} is shorter than the longest row ({longest})"
            )
        answer = np.full((n_rows, width), -1, dtype=np.int32)
        valid = np.zeros((n_rows, width), dtype=bool)
        for b, row in enumerate(answers):
            ids: dict[Hashable, int] = {}
            for j, value in enumerate(row):
                if value is not None:
                    answer[b, j] = ids.setdefault(value, len(ids))
            valid[b, : len(row)] = True

        def column(name: str, ragged: Ragged | None) -> np.ndarray:
            out = np.full((n_rows, width), np.nan)
            if ragged is None:
                return out
            if len(ragged) != n_rows:
                raise ValueError(f"{name} has {len(ragged)} rows, answers has {n_rows}")
            for b, row in enumerate(ragged):
                if len(row) != lengths[b]:
                    raise ValueError(
                        f"{name}[{b}] has {len(row)} entries, answers[{b}] has {lengths[b]}"
                    )
                out[b, : len(row)] = [math.nan if v is None else float(v) for v in row]
            return out

        if prompt_nll is None:
            nll = np.full(n_rows, np.nan)
        else:
            if len(prompt_nll) != n_rows:
                raise ValueError(
                    f"prompt_nll has {len(prompt_nll)} rows, answers has {n_rows}"
                )
            nll = np.array(
                [math.nan if v is None else float(v) for v in prompt_nll], dtype=float
            )
        return cls(
            answer=answer,
            valid=valid,
            tokens=column("tokens", tokens),
            logprob=column("logprob", logprob),
            correct=column("correct", correct),
            scores={
                name: column(f"scores[{name!r}]", ragged)
                for name, ragged in (scores or {}).items()
            },
            prompt_nll=nll,
        ).check()
