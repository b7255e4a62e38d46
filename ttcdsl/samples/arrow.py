"""Conversion between :class:`SamplesTable` and a ``pyarrow.Table`` (the Parquet layout).

The Arrow layout has one column per row field; ``scores`` is a struct column with one float64
child per scorer (left out when there are no scorers: Parquet cannot store an empty struct). The
run metadata travels as JSON in the schema metadata under ``ttcdsl.meta``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ttcdsl.samples.schema import ROW_FIELDS, RunMeta, SamplesTable, SchemaError

META_KEY = b"ttcdsl.meta"

BASE_TYPES: dict[str, pa.DataType] = {
    "query_id": pa.string(),
    "sample_index": pa.int64(),
    "round": pa.int64(),
    "prompt_tokens": pa.int64(),
    "completion_tokens": pa.int64(),
    "finish_reason": pa.string(),
    "text": pa.string(),
    "answer": pa.string(),
    "correct": pa.bool_(),
    "mean_logprob": pa.float64(),
    "prompt_nll": pa.float64(),
    "temperature": pa.float64(),
    "seed": pa.int64(),
}
"""Arrow type of every field except ``scores``."""

REQUIRED = ("query_id", "sample_index")

BASE_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in BASE_TYPES.items()])


def _masked_to_arrow(column: np.ma.MaskedArray, kind: pa.DataType) -> pa.Array:
    mask = np.ma.getmaskarray(column)
    return pa.array(np.asarray(column.data), type=kind, mask=mask if mask.any() else None)


def to_arrow(table: SamplesTable) -> pa.Table:
    """The table as Arrow columns, metadata in the schema (see the module docstring)."""
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for name in ROW_FIELDS:
        if name == "scores":
            if table.scores:
                children = [
                    _masked_to_arrow(column, pa.float64()) for column in table.scores.values()
                ]
                arrays.append(pa.StructArray.from_arrays(children, names=list(table.scores)))
                fields.append(pa.field("scores", arrays[-1].type))
            continue
        kind = BASE_TYPES[name]
        column = getattr(table, name)
        if isinstance(column, np.ma.MaskedArray):
            array = _masked_to_arrow(column, kind)
        elif column.dtype == object:
            array = _string_array(column, name)
        else:
            array = pa.array(column, type=kind)
        arrays.append(array)
        fields.append(pa.field(name, kind, nullable=name not in REQUIRED))
    metadata = {META_KEY: json.dumps(table.meta.to_dict()).encode("utf-8")}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def _string_array(column: np.ndarray, name: str) -> pa.Array:
    values = column.tolist()
    try:
        return pa.array(values, type=pa.string())
    except (UnicodeEncodeError, pa.ArrowInvalid):
        for row, value in enumerate(values):
            if value is not None:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise SchemaError(
                        f"row {row + 1} holds text that is not valid Unicode (a lone surrogate), "
                        "which Arrow and Parquet cannot store",
                        field=name,
                    ) from None
        raise


class ArrowLayoutError(SchemaError):
    """An Arrow table does not have the samples layout; ``field`` names the column."""


def meta_from_arrow(schema: pa.Schema) -> RunMeta | None:
    """The run metadata stored in an Arrow schema, or ``None`` when there is none."""
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArrowLayoutError(
            f"the stored metadata is not valid JSON ({error})", field="meta"
        ) from None
    except RecursionError:
        raise ArrowLayoutError(
            "the stored metadata is nested too deeply to read", field="meta"
        ) from None
    if not isinstance(data, dict):
        raise ArrowLayoutError("the stored metadata is not a JSON object", field="meta")
    return RunMeta.from_dict(data)


def _nullable_numpy(array: pa.ChunkedArray, fill: Any) -> np.ma.MaskedArray:
    mask = (
        array.is_null().to_numpy(zero_copy_only=False)
        if array.null_count
        else np.zeros(len(array), dtype=bool)
    )
    data = (pc.fill_null(array, fill) if array.null_count else array).to_numpy()
    return np.ma.MaskedArray(data, mask=mask)


def from_arrow(arrow: pa.Table, *, meta: RunMeta) -> SamplesTable:
    """Build a :class:`SamplesTable` from the Arrow layout.

    Raises :class:`ArrowLayoutError` for a missing required column, an unknown column, or a
    column of the wrong type, and :class:`SchemaError` for values that break the schema (the
    caller locates the offending row).
    """
    names = arrow.column_names
    unknown = [n for n in names if n not in ROW_FIELDS]
    if unknown:
        raise ArrowLayoutError(
            f"unknown column {unknown[0]!r} (a samples table has: {', '.join(ROW_FIELDS)})",
            field=unknown[0],
        )
    for name in REQUIRED:
        if name not in names:
            raise ArrowLayoutError(f"missing required column {name!r}", field=name)
    n = arrow.num_rows
    columns: dict[str, Any] = {}
    for name, kind in BASE_TYPES.items():
        if name not in names:
            continue
        array = arrow.column(name)
        if kind == pa.bool_() and array.type != kind and not pa.types.is_null(array.type):
            # Arrow casts any non-zero number to true: a grader's 0.3 would become "correct"
            raise ArrowLayoutError(
                f"column {name!r} has type {array.type}, expected bool (true, false or null; "
                "a grade or probability belongs in a score column)", field=name)
        if array.type != kind:
            try:
                array = array.cast(kind, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise ArrowLayoutError(
                    f"column {name!r} has type {array.type}, expected {kind}", field=name
                ) from None
        if name in REQUIRED or name == "round":
            if array.null_count:
                raise SchemaError(f"{name} must not be null", field=name)
        if kind == pa.string():
            columns[name] = _object_array(array, name)
        elif name in ("sample_index", "round"):
            columns[name] = array.to_numpy().astype(np.int64, copy=False)
        else:
            fill = False if kind == pa.bool_() else 0
            columns[name] = _nullable_numpy(array, fill)
    for name, kind in BASE_TYPES.items():
        if name in columns:
            continue
        if name == "round":
            columns[name] = np.zeros(n, dtype=np.int64)
        elif kind == pa.string():
            columns[name] = np.full(n, None, dtype=object)
        else:
            dtype = {pa.int64(): np.int64, pa.float64(): np.float64, pa.bool_(): np.bool_}[kind]
            columns[name] = np.ma.MaskedArray(np.zeros(n, dtype=dtype), mask=np.ones(n, dtype=bool))
    scores: dict[str, np.ma.MaskedArray] = {}
    if "scores" in names:
        struct = arrow.column("scores")
        if not pa.types.is_struct(struct.type):
            raise ArrowLayoutError(
                f"column 'scores' has type {struct.type}, expected a struct of float64",
                field="scores",
            )
        combined = struct.combine_chunks() if struct.num_chunks != 1 else struct.chunk(0)
        parent_valid = (
            combined.is_valid().to_numpy(zero_copy_only=False) if combined.null_count else None
        )
        for index in range(combined.type.num_fields):
            child_field = combined.type.field(index)
            child = combined.field(index)
            if not (
                pa.types.is_floating(child.type)
                or pa.types.is_integer(child.type)
                or pa.types.is_null(child.type)
            ):
                raise ArrowLayoutError(
                    f"score {child_field.name!r} has type {child.type}, expected float64",
                    field="scores",
                )
            child = pa.chunked_array([child.cast(pa.float64())])
            column = _nullable_numpy(child, 0.0)
            if parent_valid is not None:
                column = np.ma.MaskedArray(
                    column.data, mask=np.ma.getmaskarray(column) | ~parent_valid
                )
            if np.ma.getmaskarray(column).all():
                continue  # a scorer no row has (the JSON reader's inference can leave one)
            if child_field.name in scores or not child_field.name:
                raise ArrowLayoutError(
                    f"bad or repeated scorer name {child_field.name!r}", field="scores"
                )
            scores[child_field.name] = column
    columns["scores"] = scores
    query_ids = arrow.column("query_id")
    if query_ids.type != pa.string():
        query_ids = query_ids.cast(pa.string())
    encoded = (
        query_ids.combine_chunks().dictionary_encode()
        if n
        else pa.array([], pa.string()).dictionary_encode()
    )
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    unique = tuple(encoded.dictionary.to_pylist())
    return SamplesTable._from_owned(meta=meta, columns=columns, codes=codes, unique=unique)


def _object_array(array: pa.ChunkedArray, name: str) -> np.ndarray:
    try:
        values = array.to_numpy(zero_copy_only=False)
    except pa.ArrowException:
        # Arrow's readers (JSON, Parquet) do not validate UTF-8; conversion is where bad bytes
        # surface, as an "Unknown error" that names nothing. Name the row instead.
        raise ArrowLayoutError(
            f"row {_first_invalid_utf8(array) + 1}: not valid UTF-8 text", field=name
        ) from None
    if values.dtype != object:
        values = values.astype(object)
    return values


def _first_invalid_utf8(array: pa.ChunkedArray) -> int:
    """The index of the first value of a string column that is not valid UTF-8."""
    for index, value in enumerate(array.cast(pa.binary()).to_pylist()):
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return index
    raise AssertionError("no invalid UTF-8 value, yet Arrow refused the column")


def arrow_records(arrow: pa.Table) -> list[dict[str, Any]]:
    """Rows of an Arrow table as plain dicts (used to locate a bad row; slow)."""
    return arrow.to_pylist()
