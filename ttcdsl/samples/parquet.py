"""Parquet export and import of a samples table (the layout of :mod:`ttcdsl.samples.arrow`)."""

from __future__ import annotations

import os
from pathlib import Path

from ttcdsl.samples.errors import FileFormatError
from ttcdsl.samples.schema import RunMeta, SampleRow, SamplesTable, SchemaError


def write_parquet(table: SamplesTable, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (rows and metadata) to ``path`` atomically."""
    import pyarrow.parquet as pq

    from ttcdsl.samples.arrow import to_arrow
    from ttcdsl.samples.atomic import atomic_path

    try:
        arrow = to_arrow(table)
    except SchemaError as error:
        raise FileFormatError(
            path, error.message, field=error.field, hint="keep this table as .jsonl"
        ) from None
    with atomic_path(path) as temp:
        pq.write_table(arrow, temp, compression="zstd")


def read_parquet(path: str | os.PathLike[str]) -> SamplesTable:
    """Load a Parquet samples table; errors name the file, the row (1-based) and the field.

    A Parquet file without ttcdsl metadata (written by another tool with the same columns) loads
    with empty metadata whose ``source`` names the file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ttcdsl.samples.arrow import ArrowLayoutError, from_arrow, meta_from_arrow

    target = Path(path)
    if not target.is_file():
        raise FileFormatError(target, "no such file" if not target.exists() else "not a file")
    try:
        arrow = pq.read_table(target)
    except (pa.ArrowInvalid, OSError) as error:
        raise FileFormatError(target, f"not a readable Parquet file ({error})") from None
    try:
        meta = meta_from_arrow(arrow.schema) or RunMeta(source=f"parquet {target.name}")
    except SchemaError as error:
        raise FileFormatError(target, error.message, field=error.field) from None
    try:
        return from_arrow(arrow, meta=meta)
    except ArrowLayoutError as error:
        raise FileFormatError(target, error.message, field=error.field) from None
    except SchemaError as error:
        _locate(target, arrow.to_pylist(), error)
        raise FileFormatError(target, error.message, field=error.field) from None


def _locate(path: Path, records: list[dict], error: SchemaError) -> None:
    """Raise a :class:`FileFormatError` naming the first row that breaks the schema."""
    seen: dict[tuple[str, int], int] = {}
    for number, record in enumerate(records, start=1):
        try:
            values = dict(record)
            values["scores"] = {
                k: v for k, v in (values.get("scores") or {}).items() if v is not None
            }
            row = SampleRow.from_dict(values)
        except SchemaError as problem:
            raise FileFormatError(
                path, f"row {number}: {problem.message}", field=problem.field
            ) from None
        key = (row.query_id, row.sample_index)
        if key in seen:
            raise FileFormatError(
                path,
                f"row {number}: duplicate sample: query {row.query_id!r} sample_index "
                f"{row.sample_index} already in row {seen[key]}",
                field="sample_index",
            ) from None
        seen[key] = number
