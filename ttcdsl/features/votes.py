"""Vote counts of each row's answers: what top_share, distinct, answer_entropy, beta_confidence and
unanimous windows are read from.

Counting goes through one ``bincount`` over ``row * K + id``, so it costs O(B * (L + K)) with K
the largest id + 1. Answer ids are only required to be equal for equal answers within a row; when
they are sparse (K larger than the number of columns, e.g. a logged pool's ids after a random
reordering and a prefix cut) they are first renumbered by :func:`first_appearance_ids`.
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


class Votes(NamedTuple):
    """Per-row vote statistics of the real answers (no-answer samples cast no vote)."""

    counts: np.ndarray  # [B, K] int64: votes per answer id
    samples: np.ndarray  # [B] int64: samples, answered or not
    real: np.ndarray  # [B] int64: samples with an answer
    first: np.ndarray  # [B] int64: votes of the most common answer (0 if none)
    second: (
        np.ndarray
    )  # [B] int64: votes of the runner-up (0 if fewer than two answers)

    @property
    def top_share(self) -> np.ndarray:
        """votes of the leader / samples (no-answer samples count in the denominator); 0 if none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self.first / self.samples
        return np.where(self.samples > 0, share, 0.0)

    @property
    def distinct(self) -> np.ndarray:
        return (self.counts > 0).sum(axis=1).astype(np.float64)

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
    largest = int(np.where(real, answer, -1).max(initial=-1))
    if largest >= width:
        answer = first_appearance_ids(answer, valid)
        largest = int(answer.max(initial=-1))
    k = largest + 1
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
    )


def unanimous_last(answer: np.ndarray, valid: np.ndarray, last: int) -> np.ndarray:
    """``[B] bool``: the row has at least ``last`` samples and its last ``last`` samples all
    carry the same real answer (a no-answer sample breaks the window)."""
    if last < 1:
        raise ValueError(f"unanimous last {last}: the window needs at least one sample")
    n_rows, width = answer.shape
    lengths = valid.sum(axis=1, dtype=np.int64)
    if last > width:
        return np.zeros(n_rows, dtype=bool)
    positions = np.clip(lengths[:, None] - last + np.arange(last), 0, max(width - 1, 0))
    window = np.take_along_axis(answer, positions, axis=1)
    agree = (window[:, :1] >= 0) & (window == window[:, :1]).all(axis=1, keepdims=True)
    return (lengths >= last) & agree[:, 0]
