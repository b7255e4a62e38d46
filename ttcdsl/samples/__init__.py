"""The samples table: one row per generated sample, the format every part of ttcdsl reads.

* :mod:`~ttcdsl.samples.schema` — :class:`SampleRow`, :class:`RunMeta`, the columnar
  :class:`SamplesTable`.
* :mod:`~ttcdsl.samples.store` — :class:`SampleStore`, the append-only JSONL file a run writes
  (fsynced per append; a torn last line is reported, and :func:`repair` cuts it off explicitly).
* :func:`load` / :func:`save` — a whole table from/to ``.jsonl`` or ``.parquet`` (atomic writes).
* :func:`content_hash` — a stable hash of the rows, for plans to record their calibration table.
"""

from ttcdsl.samples.errors import FileFormatError, TornLineError
from ttcdsl.samples.hashing import content_hash
from ttcdsl.samples.io import load, save
from ttcdsl.samples.schema import (
    ROW_FIELDS,
    SCHEMA_VERSION,
    RunMeta,
    SampleRow,
    SamplesTable,
    SchemaError,
)
from ttcdsl.samples.store import RepairReport, SampleStore, repair

__all__ = [
    "ROW_FIELDS",
    "SCHEMA_VERSION",
    "RepairReport",
    "RunMeta",
    "SampleRow",
    "SampleStore",
    "FileFormatError",
    "SamplesTable",
    "SchemaError",
    "TornLineError",
    "content_hash",
    "load",
    "repair",
    "save",
]
