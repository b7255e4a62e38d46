"""From a query's probe to its bin and its sample target: pure functions of the run seed.

Bins
    The plan fixes the binning key's edges in absolute values (``plan["binning"]["edges"]``); a
    query's key is computed from its probe exactly as calibration computed it, and it goes to bin
    ``searchsorted(edges, key, side="right")``: a key equal to an edge goes to the upper bin (the
    planner's rule). A NaN key (its probe has nothing the key can read, e.g. no samples at all
    after a backend shortfall) goes to the LAST bin, the one the planner gives the fewest
    samples per expected gain in most policies; such queries are counted in the report.

Targets
    A bin's allocation is a mix of options ``[{samples, share}]`` (a rounded LP solution mixes two
    neighbouring counts). Which query gets which option must not depend on the order queries
    arrive in or on anything random at run time, so that a resumed run decides as the interrupted
    one did: the bin's queries are ranked by :func:`rank_key` (a hash of the run seed and the
    query id), options are taken from the most samples to the fewest, the first
    ``floor(share * count)`` ranked queries get the first option, the next ``floor(...)`` the
    second, ... and every query left over gets the SMALLEST option. Rounding down and giving the
    remainder the cheapest option means a bin never spends more than the plan's mix says.
    Targets count the probe's samples (the plan's levels include the probe).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

_RANK_DOMAIN = "ttcdsl.runtime.rank.v1"


def rank_key(seed: int, query_id: str) -> int:
    """A 64-bit rank of ``query_id`` under the run ``seed`` (SHA-256, same in every process)."""
    payload = json.dumps([_RANK_DOMAIN, seed, query_id], ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:8], "big")


def assign_bins(key: np.ndarray | None, edges: Sequence[float], n_bins: int) -> np.ndarray:
    """``[Q] int64`` bin index per query (see the module docstring; ``key=None``: one bin)."""
    if key is None:
        if n_bins != 1:
            raise ValueError(f"no binning key but {n_bins} bins")
        return np.zeros(0, dtype=np.int64)
    key = np.asarray(key, dtype=np.float64)
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), key, side="right")
    bins = np.where(np.isnan(key), n_bins - 1, bins)
    if len(edges) + 1 != n_bins:
        raise ValueError(f"{len(edges)} edges give {len(edges) + 1} bins, not {n_bins}")
    return bins.astype(np.int64)


def assign_targets(
    allocation: Sequence[Mapping[str, float]], query_ids: Sequence[str], seed: int
) -> dict[str, int]:
    """Each query of one bin -> its total sample target (module docstring)."""
    if not allocation:
        raise ValueError("an allocation needs at least one option")
    options = sorted(
        ((int(o["samples"]), float(o["share"])) for o in allocation), key=lambda o: -o[0]
    )
    ranked = sorted(query_ids, key=lambda q: (rank_key(seed, q), q))
    count = len(ranked)
    targets: dict[str, int] = {}
    position = 0
    for samples, share in options:
        # 1e-6 absorbs the plan's six-digit shares (0.295 * 200 = 58.99999...)
        take = min(math.floor(share * count + 1e-6), count - position)
        for qid in ranked[position : position + take]:
            targets[qid] = samples
        position += take
    smallest = options[-1][0]
    for qid in ranked[position:]:
        targets[qid] = smallest
    return targets
