"""A stable content hash of a samples table, for plans to record which table they were fitted on.

The hash covers the rows only — not the metadata (a re-import on another day hashes the same) and
not their order (rows are taken sorted by query id, then sample index). Each column is hashed from
a fixed binary encoding (little-endian int64/float64, a null mask, length-prefixed UTF-8 strings),
so the value does not depend on the platform, the numpy version or the file format the table came
from. The result reads ``ttc-samples-v1:sha256:<64 hex digits>``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ttcdsl.samples.schema import ROW_FIELDS, SamplesTable

PREFIX = "ttc-samples-v1:sha256:"

# Columns added to the schema after tables were first hashed: a table with no value in one hashes
# as it did before the column existed, so the plans that recorded its hash still match.
OPTIONAL_SINCE_V1 = ("prompt_nll",)


def content_hash(table: SamplesTable) -> str:
    """The content hash of ``table`` (see the module docstring)."""
    order = canonical_order(table)
    digest = hashlib.sha256()
    digest.update(f"rows={len(table)}\n".encode())
    for name in ROW_FIELDS:
        if name in OPTIONAL_SINCE_V1 and np.ma.getmaskarray(getattr(table, name)).all():
            continue  # a column added later hashes only where it holds a value
        if name == "scores":
            for scorer in sorted(table.scores):
                _update(digest, f"scores.{scorer}", table.scores[scorer][order])
        else:
            _update(digest, name, getattr(table, name)[order])
    return PREFIX + digest.hexdigest()


def canonical_order(table: SamplesTable) -> np.ndarray:
    """Row indices sorting the table by (query id, sample index); query ids compare as strings."""
    unique = table.query_ids()
    rank_of_code = np.empty(len(unique), dtype=np.int64)
    rank_of_code[np.array(sorted(range(len(unique)), key=unique.__getitem__), dtype=np.int64)] = (
        np.arange(len(unique), dtype=np.int64)
    )
    ranks = rank_of_code[table.query_codes] if len(table) else np.zeros(0, dtype=np.int64)
    return np.lexsort((table.sample_index, ranks))


def _update(digest: "hashlib._Hash", name: str, column: np.ndarray) -> None:
    digest.update(f"column={name}\n".encode())
    if isinstance(column, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(column)
        digest.update(np.packbits(mask, bitorder="little").tobytes())
        data = np.where(mask, np.zeros((), dtype=column.dtype), column.data)
        _update_values(digest, data)
    elif column.dtype == object:
        mask = np.fromiter((v is None for v in column.tolist()), dtype=bool, count=len(column))
        digest.update(np.packbits(mask, bitorder="little").tobytes())
        # surrogatepass: a text with a lone surrogate (a JSON escape of half a UTF-16 pair,
        # which a JSONL table keeps) hashes too; any other text encodes as plain UTF-8
        encoded = [b"" if v is None else v.encode("utf-8", "surrogatepass") for v in column.tolist()]
        lengths = np.fromiter((len(e) for e in encoded), dtype="<i8", count=len(encoded))
        digest.update(lengths.tobytes())
        digest.update(b"".join(encoded))
    else:
        _update_values(digest, column)


def _update_values(digest: "hashlib._Hash", data: np.ndarray) -> None:
    if data.dtype == np.bool_:
        digest.update(data.astype("u1").tobytes())
    elif np.issubdtype(data.dtype, np.integer):
        digest.update(data.astype("<i8").tobytes())
    else:
        # +0.0 and -0.0 are the same value: hash them alike.
        digest.update((data.astype("<f8") + 0.0).tobytes())
