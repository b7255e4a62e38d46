"""Vote counts of each row's answers: what top_share, distinct, answer_entropy, beta_confidence and
unanimous windows are read from.

Counting goes through one ``bincount`` over ``row * K + id``, so it costs O(B * (L + K)) with K
the largest id + 1. Answer ids are only required to be equal for equal answers within a row; when
they are sparse (K above max(2 L, 64), e.g. global ids) they are first renumbered by
:func:`first_appearance_ids`. :class:`RunningVotes` keeps the same statistics for growing
prefixes, one column at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ttcdsl.features.binomial import beta_half_sf


def first_appearance_ids(answer: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``[B, L] int32``: the row's answers renumbered 0, 1, ... in order of first appearance
    (-1 for no answer and padding).

    With these ids the first t samples of a row only hold ids below t, so every prefix of the
    result needs no further renumbering (first_stop renumbers once, then cuts prefixes).
    """
    n_rows, width = answer.shape
    real = valid & (answer >= 0)
    if width == 0:
        return np.full(answer.shape, -1, dtype=np.int32)
    key = np.where(real, answer.astype(np.int64), np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind="stable")  # equal ids keep position order
    sorted_key = np.take_along_axis(key, order, axis=1)
    starts = np.ones((n_rows, width), dtype=bool)
    starts[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(width), 0), axis=1)
    first_sorted = np.take_along_axis(
        order, group_start, axis=1
    )  # earliest position of the group
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    is_first = real & (first == np.arange(width))
    rank = np.cumsum(is_first, axis=1) - 1
    ids = np.take_along_axis(rank, first, axis=1)
    return np.where(real, ids, -1).astype(np.int32)


SPARSE_IDS = 64
"""Ids up to max(2 * columns, SPARSE_IDS) are counted as they are; larger ones are renumbered."""


def _id_bound(answer: np.ndarray, real: np.ndarray) -> int:
    """1 + the largest real id, renumbering not included (0 when the rows hold no answer)."""
    return int(np.where(real, answer, -1).max(initial=-1)) + 1


class Votes(NamedTuple):
    """Per-row vote statistics of the real answers (no-answer samples cast no vote)."""

    counts: np.ndarray  # [B, K] int: votes per answer id
    samples: np.ndarray  # [B] int64: samples, answered or not
    real: np.ndarray  # [B] int64: samples with an answer
    first: np.ndarray  # [B] int64: votes of the most common answer (0 if none)
    second: (
        np.ndarray
    )  # [B] int64: votes of the runner-up (0 if fewer than two answers)
    n_distinct: np.ndarray  # [B] int64: answers with at least one vote

    @property
    def top_share(self) -> np.ndarray:
        """votes of the leader / samples (no-answer samples count in the denominator); 0 if none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self.first / self.samples
        return np.where(self.samples > 0, share, 0.0)

    @property
    def distinct(self) -> np.ndarray:
        return self.n_distinct.astype(np.float64)

    @property
    def entropy(self) -> np.ndarray:
        """Entropy (nats) of the real answers' distribution, -sum p log p; 0 if none.

        Computed from the shares themselves so that a unanimous row gives exactly 0 (log 1), and
        `answer_entropy(answers) > 0` means "the answers disagree"."""
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = self.counts / self.real[:, None]
            terms = np.where(
                self.counts > 0,
                shares * np.log(np.where(self.counts > 0, shares, 1.0)),
                0.0,
            )
        return np.where(self.real > 0, -terms.sum(axis=1), 0.0) + 0.0

    @property
    def beta_confidence(self) -> np.ndarray:
        """P(p > 1/2) for p ~ Beta(first + 1, second + 1); 0 with no real answer."""
        return np.where(self.real > 0, beta_half_sf(self.first, self.second), 0.0)


def count_votes(answer: np.ndarray, valid: np.ndarray) -> Votes:
    n_rows, width = answer.shape
    real = valid & (answer >= 0)
    k = _id_bound(answer, real)
    if k > max(2 * width, SPARSE_IDS):
        answer = first_appearance_ids(answer, valid)
        k = _id_bound(answer, real)
    flat = (np.arange(n_rows, dtype=np.int64)[:, None] * k + answer)[real]
    counts = np.bincount(flat, minlength=n_rows * k).reshape(n_rows, k)
    if k >= 2:
        top_two = np.partition(counts, k - 2, axis=1)[:, k - 2 :]
        first, second = top_two[:, 1], top_two[:, 0]
    elif k == 1:
        first, second = counts[:, 0], np.zeros(n_rows, dtype=np.int64)
    else:
        first = second = np.zeros(n_rows, dtype=np.int64)
    return Votes(
        counts=counts,
        samples=valid.sum(axis=1, dtype=np.int64),
        real=real.sum(axis=1, dtype=np.int64),
        first=first.astype(np.int64),
        second=second.astype(np.int64),
        n_distinct=(counts > 0).sum(axis=1, dtype=np.int64),
    )


class RunningVotes:
    """The votes of growing prefixes, one column at a time: first_stop's hot path.

    Recounting every prefix from scratch costs O(B * t) per checkpoint; adding column j costs
    O(B). The two leading counts update without a sort: when an answer's count rises to c, the
    leader becomes max(first, c), and the runner-up max(second, c) unless the answer was already
    a leader (then the runner-up, if tied, was c - 1 = second, and otherwise is unchanged).
    """

    def __init__(self, answer: np.ndarray, valid: np.ndarray) -> None:
        n_rows, width = answer.shape
        real = valid & (answer >= 0)
        if _id_bound(answer, real) > max(2 * width, SPARSE_IDS):
            answer = first_appearance_ids(answer, valid)
        k = max(_id_bound(answer, real), 1)
        # Column-major copies: each step reads one contiguous column.
        self._ids = np.ascontiguousarray(np.where(real, answer, 0).T, dtype=np.int64)
        self._real = np.ascontiguousarray(real.T)
        self._valid = np.ascontiguousarray(valid.T)
        self.column = 0
        self.counts = np.zeros((n_rows, k), dtype=np.int64)
        self.samples = np.zeros(n_rows, dtype=np.int64)
        self.real = np.zeros(n_rows, dtype=np.int64)
        self.first = np.zeros(n_rows, dtype=np.int64)
        self.second = np.zeros(n_rows, dtype=np.int64)
        self.n_distinct = np.zeros(n_rows, dtype=np.int64)

    def advance(self, t: int) -> Votes:
        """The votes of each row's first t samples (t never decreases). The result shares the
        running counts: it is valid until the next call."""
        n_rows, k = self.counts.shape
        flat_counts = self.counts.reshape(-1)
        base = np.arange(n_rows, dtype=np.int64) * k
        for j in range(self.column, min(t, self._ids.shape[0])):
            real = self._real[j]
            index = (
                base + self._ids[j]
            )  # unanswered samples point at id 0 and add nothing
            c = flat_counts[index] + real
            flat_counts[index] = c
            c *= (
                real  # 0 for unanswered samples: leaves every statistic below unchanged
            )
            self.second = np.where(
                c > self.first, self.second, np.maximum(self.second, c)
            )
            np.maximum(self.first, c, out=self.first)
            self.n_distinct += c == 1
            self.real += real
            self.samples += self._valid[j]
        self.column = max(self.column, t)
        return Votes(
            counts=self.counts,
            samples=self.samples.copy(),
            real=self.real.copy(),
            first=self.first.copy(),
            second=self.second.copy(),
            n_distinct=self.n_distinct.copy(),
        )

    def take(self, rows: np.ndarray) -> RunningVotes:
        """The state of the given rows only (integer indices or a bool mask)."""
        taken = object.__new__(RunningVotes)
        taken._ids, taken._real, taken._valid = (
            np.ascontiguousarray(self._ids[:, rows]),
            np.ascontiguousarray(self._real[:, rows]),
            np.ascontiguousarray(self._valid[:, rows]),
        )
        taken.column = self.column
        for name in ("counts", "samples", "real", "first", "second", "n_distinct"):
            setattr(taken, name, getattr(self, name)[rows])
        return taken


def unanimous_last(
    answer: np.ndarray, valid: np.ndarray, last: int, lengths: np.ndarray | None = None
) -> np.ndarray:
    """``[B] bool``: the row has at least ``last`` samples and its last ``last`` samples all
    carry the same real answer (a no-answer sample breaks the window).

    Rows that fill every column read their window as a slice; only shorter rows gather."""
    if last < 1:
        raise ValueError(f"unanimous last {last}: the window needs at least one sample")
    n_rows, width = answer.shape
    if lengths is None:
        lengths = valid.sum(axis=1, dtype=np.int64)
    if last > width:
        return np.zeros(n_rows, dtype=bool)
    window = answer[:, width - last :]
    short = np.flatnonzero(lengths < width)
    if short.size:
        window = window.copy()
        positions = np.clip(lengths[short, None] - last + np.arange(last), 0, width - 1)
        window[short] = np.take_along_axis(answer[short], positions, axis=1)
    agree = (window[:, 0] >= 0) & (window == window[:, :1]).all(axis=1)
    return (lengths >= last) & agree


def unanimous_window(
    answer: np.ndarray, valid: np.ndarray, size: int, lengths: np.ndarray | None = None
) -> np.ndarray:
    """``[B] bool``: some completed disjoint window of the row (samples 1..size, size+1..2 size,
    ... counted from the row's first sample) carries one real answer throughout (ESC's test).

    A window counts once the row has all its samples, so on a row checked at every sample count
    the rule first holds exactly at the end of the first unanimous window, as in ESC; and once it
    holds it keeps holding, so a caller that checks only every few samples (bandit rounds, a
    `rounds` limit) still stops at its first check after that window, never skips it."""
    if size < 1:
        raise ValueError(f"unanimous window {size}: the window needs at least one sample")
    n_rows, width = answer.shape
    if lengths is None:
        lengths = valid.sum(axis=1, dtype=np.int64)
    n_windows = width // size
    if n_windows == 0:
        return np.zeros(n_rows, dtype=bool)
    windows = answer[:, : n_windows * size].reshape(n_rows, n_windows, size)
    agree = (windows[:, :, 0] >= 0) & (windows == windows[:, :, :1]).all(axis=2)
    complete = np.arange(n_windows)[None, :] < (lengths // size)[:, None]
    return (agree & complete).any(axis=1)
