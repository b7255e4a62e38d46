"""A deterministic split of queries into a calibration part and an evaluation part.

A query's side depends only on its id and the seed: it goes to calibration when a hash of
(seed, id), read as a number in [0, 1), is below ``fraction``. So the split is the same on every
machine and in every run, a query never changes side when other queries are added or removed, and
a table and its queries file split alike. The calibration part holds *about* ``fraction`` of the
queries (exactly, only in expectation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def split_point(query_id: str, seed: int) -> float:
    """Where ``query_id`` falls in [0, 1) under ``seed`` (the first 64 bits of a SHA-256)."""
    digest = hashlib.sha256(f"ttc-split\0{seed}\0{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_calibration(query_id: str, *, fraction: float, seed: int) -> bool:
    return split_point(query_id, seed) < fraction


def split_ids(
    ids: Iterable[str], *, fraction: float, seed: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(calibration ids, evaluation ids), each in the order given; every id in exactly one."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    calibration, evaluation = [], []
    for query_id in ids:
        side = calibration if in_calibration(query_id, fraction=fraction, seed=seed) else evaluation
        side.append(query_id)
    return tuple(calibration), tuple(evaluation)
