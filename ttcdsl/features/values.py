"""The values an expression evaluates to, and the reductions of per-sample lists to numbers.

A NUMBER is a ``[B] float64`` array. The list types exist only inside an evaluation: a list is the
batch's ``[B, L]`` column with its ``valid`` mask, one entry per sample. Reductions of numbers
skip unknown (NaN) entries and give NaN when a row has none, so a missing token count or
score never turns into a zero.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ttcdsl.features.votes import Votes, count_votes


class Numbers(NamedTuple):
    """A list of numbers, one per sample (tokens, logprobs, correct, scores(s))."""

    values: np.ndarray  # [B, L] float64, NaN unknown
    valid: np.ndarray  # [B, L] bool

    @property
    def known(self) -> np.ndarray:
        return self.valid & ~np.isnan(self.values)

    def count(self) -> np.ndarray:
        return self.valid.sum(axis=1).astype(np.float64)

    def mean(self) -> np.ndarray:
        known = self.known
        n = known.sum(axis=1)
        total = np.where(known, self.values, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, total / n, np.nan)

    def std(self) -> np.ndarray:
        """Population standard deviation (two passes: mean, then mean squared deviation)."""
        known = self.known
        n = known.sum(axis=1)
        mean = self.mean()
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            deviation = np.where(known, self.values - mean[:, None], 0.0)
            variance = (deviation * deviation).sum(axis=1) / n
        return np.where(n > 0, np.sqrt(variance), np.nan)

    def min(self) -> np.ndarray:
        known = self.known
        smallest = np.where(known, self.values, np.inf).min(axis=1, initial=np.inf)
        return np.where(known.any(axis=1), smallest, np.nan)

    def max(self) -> np.ndarray:
        known = self.known
        largest = np.where(known, self.values, -np.inf).max(axis=1, initial=-np.inf)
        return np.where(known.any(axis=1), largest, np.nan)


class Answers:
    """The answers of the samples, one entry per sample (no-answer samples included); the vote
    counts are computed once, on first use, and shared by every function that reads them."""

    __slots__ = ("_votes", "answer", "valid")

    def __init__(
        self, answer: np.ndarray, valid: np.ndarray, votes: Votes | None = None
    ) -> None:
        self.answer = answer
        self.valid = valid
        self._votes = votes

    @property
    def votes(self) -> Votes:
        if self._votes is None:
            self._votes = count_votes(self.answer, self.valid)
        return self._votes

    def count(self) -> np.ndarray:
        return self.valid.sum(axis=1).astype(np.float64)


Value = np.ndarray | Numbers | Answers


def normalize(x: np.ndarray) -> np.ndarray:
    """Min-max rescaling over the rows (NaN rows ignored and kept NaN); all equal -> 0.0."""
    known = ~np.isnan(x)
    if not known.any():
        return x.copy()
    lo = x[known].min()
    hi = x[known].max()
    if hi == lo:
        return np.where(known, 0.0, np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return (x - lo) / (hi - lo)
