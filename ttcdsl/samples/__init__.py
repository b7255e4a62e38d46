"""The samples table: schema, append-only JSONL store, Parquet export/import, content hash."""

from ttcdsl.samples.schema import (
    ROW_FIELDS,
    SCHEMA_VERSION,
    RunMeta,
    SampleRow,
    SamplesTable,
    SchemaError,
)

__all__ = ["ROW_FIELDS", "SCHEMA_VERSION", "RunMeta", "SampleRow", "SamplesTable", "SchemaError"]
