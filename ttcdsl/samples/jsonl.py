"""The JSONL layout of a samples table: a header line, then one JSON object per sample.

    {"ttc_samples": 1, "meta": {"schema_version": 1, "model": ..., "created_at": ..., ...}}
    {"query_id": "q1", "sample_index": 0, "round": 0, "prompt_tokens": 57, ..., "scores": {"rm": 3.5}, ...}
    {"query_id": "q1", "sample_index": 1, ...}

Every line, the last included, ends with ``\\n``: a final fragment without one is a *torn line*
(a write that was cut off) and is reported as :class:`~ttcdsl.samples.errors.TornLineError`, never
kept or dropped silently. Reading is vectorised (pyarrow's JSON reader); when that reader refuses
the file, or a value breaks the schema, the file is read again line by line to name the first bad
line and field exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ttcdsl.samples.errors import FileFormatError, TornLineError
from ttcdsl.samples.json_lines import loads, open_bytes
from ttcdsl.samples.schema import (
    ROW_FIELDS,
    SCHEMA_VERSION,
    RunMeta,
    SampleRow,
    SamplesTable,
    SchemaError,
)

HEADER_KEY = "ttc_samples"
_BLOCK_SIZE = 4 << 20  # pyarrow JSON block; a longer line is retried as one block


# ------------------------------------------------------------------------------------- encoding


def encode_header(meta: RunMeta) -> str:
    """The header line (with its ``\\n``)."""
    return _dumps({HEADER_KEY: SCHEMA_VERSION, "meta": meta.to_dict()}) + "\n"


def encode_row(row: SampleRow) -> str:
    """One row as a line (with its ``\\n``)."""
    return _dumps(row.to_dict()) + "\n"


def _dumps(value: Any) -> str:
    line = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from a broken log): keep it as an escape
            line = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return line


def iter_table_lines(table: SamplesTable) -> Iterator[str]:
    """The header and every row of ``table`` as lines, straight from the columns."""
    yield encode_header(table.meta)
    lists = {
        name: getattr(table, name).tolist() for name in ROW_FIELDS if name != "scores"
    }  # masked entries become None
    score_lists = {name: column.tolist() for name, column in table.scores.items()}
    names = [name for name in ROW_FIELDS if name != "scores"]
    for i in range(len(table)):
        record = {name: lists[name][i] for name in names}
        record["scores"] = {k: v[i] for k, v in score_lists.items() if v[i] is not None}
        yield _dumps({name: record[name] for name in ROW_FIELDS}) + "\n"


def write_jsonl(table: SamplesTable, path: str | os.PathLike[str]) -> None:
    """Write ``table`` to ``path`` atomically (the old file stays until the new one is complete)."""
    from ttcdsl.samples.atomic import atomic_writer

    with atomic_writer(path) as handle:
        batch: list[str] = []
        for line in iter_table_lines(table):
            batch.append(line)
            if len(batch) >= 10_000:
                handle.write("".join(batch))
                batch.clear()
        handle.write("".join(batch))


# -------------------------------------------------------------------------------------- reading


def parse_header(raw: bytes, path: Path) -> RunMeta:
    """The :class:`RunMeta` of a header line (without its ``\\n``)."""
    hint = 'a samples table starts with a header line {"ttc_samples": 1, "meta": {...}}'
    try:
        header = loads(raw, path, 1)
    except FileFormatError as error:
        from ttcdsl.file_kinds import kind_of_line, misplaced

        kind = kind_of_line(raw)  # a plan's YAML
        if kind is not None:
            message, kind_hint = misplaced(kind, "a samples table")
            raise FileFormatError(path, message, hint=kind_hint) from None
        raise FileFormatError(path, f"the header: {error.detail}", line=1, hint=hint) from None
    if not isinstance(header, dict) or HEADER_KEY not in header:
        from ttcdsl.file_kinds import kind_of_record, misplaced

        kind = kind_of_record(header)
        if kind is not None:
            message, kind_hint = misplaced(kind, "a samples table")
            raise FileFormatError(path, message, hint=kind_hint)
        raise FileFormatError(path, "the first line is not a samples header", line=1, hint=hint)
    version = header[HEADER_KEY]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError(path, f"bad schema version {version!r}", line=1, field=HEADER_KEY)
    if version > SCHEMA_VERSION:
        raise FileFormatError(
            path,
            f"schema version {version} is newer than this ttcdsl understands ({SCHEMA_VERSION})",
            line=1,
            field=HEADER_KEY,
            hint="upgrade ttcdsl",
        )
    unknown = sorted(set(header) - {HEADER_KEY, "meta"})
    if unknown:
        raise FileFormatError(path, "unknown header key", line=1, field=unknown[0])
    meta = header.get("meta")
    if not isinstance(meta, dict):
        raise FileFormatError(path, "must be a JSON object", line=1, field="meta")
    if meta.get("schema_version", version) != version:
        raise FileFormatError(
            path,
            f"schema_version {meta['schema_version']!r} disagrees with the header's "
            f"{HEADER_KEY} {version}",
            line=1,
            field="meta.schema_version",
        )
    try:
        return RunMeta.from_dict({**meta, "schema_version": version})
    except (SchemaError, TypeError) as error:
        field = getattr(error, "field", None)
        raise FileFormatError(
            path, str(error), line=1, field=f"meta.{field}" if field else "meta"
        ) from None


def read_header(path: str | os.PathLike[str]) -> RunMeta:
    """Only the metadata of a JSONL samples file (reads the first line)."""
    path = Path(path)
    with _open(path) as handle:
        first = handle.readline()
    if not first:
        raise FileFormatError(path, "the file is empty: no samples header")
    if not first.endswith(b"\n"):
        raise TornLineError(path, line=1, offset=0, size=len(first))
    return parse_header(first[:-1], path)


def torn_tail(data: bytes, path: Path) -> TornLineError | None:
    """The torn-line error for ``data`` (a whole file), or ``None`` if it ends cleanly."""
    if not data or data.endswith(b"\n"):
        return None
    start = data.rfind(b"\n") + 1
    return TornLineError(path, line=data.count(b"\n") + 1, offset=start, size=len(data))


_MAGIC = {b"PAR1": "a Parquet file: name it .parquet to read it as one",
          b"\x1f\x8b": "gzip-compressed: decompress it first (gunzip)",
          b"PK\x03\x04": "a zip archive: extract it first"}


def _refuse_binary(data: bytes, path: Path) -> None:
    """A binary file named ``.jsonl`` (Parquet, gzip, zip) is named for what it is."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise FileFormatError(path, f"this is {what}, not a JSONL samples table", line=1)


def _complete_row(fragment: bytes) -> bool:
    """Whether a last line without a line end is nonetheless a whole JSON object: a write cut
    off inside a row never is (the object's closing brace comes last)."""
    try:
        return isinstance(json.loads(fragment), dict)
    except (ValueError, RecursionError):
        return False


def read_jsonl(path: str | os.PathLike[str], *, store: bool = False) -> SamplesTable:
    """Load a JSONL samples file.

    Raises :class:`TornLineError` for an incomplete last line and :class:`FileFormatError`
    naming ``file:line`` and the field for anything malformed (bad JSON, wrong type, unknown or
    missing field, duplicate sample). A table whose last row is whole but lacks its line end
    (an edited file) loads, unless it is an append-only ``store``: the next append would be
    glued onto that line, so a store's every line must end.
    """
    path = Path(path)
    with _open(path) as handle:
        data = handle.read()
    if not data:
        raise FileFormatError(
            path,
            "the file is empty: no samples header",
            hint="a samples table starts with its header line; make one with ttc import, ttc run or ttc workload",
        )
    _refuse_binary(data, path)
    # the header first: a file that is not a samples table is said to be one, not "torn"
    header_end = data.find(b"\n")
    if header_end < 0:  # the header is the only line, without its end
        if store or (data.lstrip().startswith(b'{"' + HEADER_KEY.encode()) and not _complete_row(data)):
            raise TornLineError(path, line=1, offset=0, size=len(data))
        header_end = len(data)
        data += b"\n"
    meta = parse_header(data[:header_end], path)
    torn = torn_tail(data, path)
    if torn is not None:
        if store or not _complete_row(data[torn.offset:]):
            raise torn
        # a whole row that only lacks its line end (an edited file): nothing was cut off
        data += b"\n"
    body_lines = data.count(b"\n") - 1
    table = _read_fast(data, header_end + 1, body_lines, meta)
    if table is not None:
        return table
    return _read_slow(data, path, meta)


def _read_fast(data: bytes, start: int, expected: int, meta: RunMeta) -> SamplesTable | None:
    """Vectorised read; ``None`` when anything is off (the slow path then says exactly what)."""
    import pyarrow as pa
    import pyarrow.json as pj

    from ttcdsl.samples.arrow import BASE_SCHEMA, from_arrow

    if expected == 0:
        return SamplesTable.from_rows([], meta=meta)
    buffer = pa.py_buffer(data).slice(start)
    parse = pj.ParseOptions(explicit_schema=BASE_SCHEMA, unexpected_field_behavior="infer")
    block = _BLOCK_SIZE
    while True:
        try:
            arrow = pj.read_json(
                pa.BufferReader(buffer),
                read_options=pj.ReadOptions(block_size=block, use_threads=True),
                parse_options=parse,
            )
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            if "straddling" in str(error) and block < len(buffer):
                block = len(buffer) + 1  # a line longer than a block: read it all as one
                continue
            return None
    # Blank lines are skipped by pyarrow but are malformed here; unknown keys are inferred by it.
    if arrow.num_rows != expected or any(n not in ROW_FIELDS for n in arrow.column_names):
        return None
    if "scores" in arrow.column_names:
        kind = arrow.schema.field("scores").type
        if not pa.types.is_struct(kind) or not all(
            pa.types.is_floating(kind.field(i).type)
            or pa.types.is_integer(kind.field(i).type)
            or pa.types.is_null(kind.field(i).type)
            for i in range(kind.num_fields)
        ):
            return None
    try:
        return from_arrow(arrow, meta=meta)
    except SchemaError:
        return None


def _read_slow(data: bytes, path: Path, meta: RunMeta) -> SamplesTable:
    """Line-by-line read that names the first bad line; returns the table if there is none."""
    rows = list(iter_rows(data, path))
    try:
        return SamplesTable.from_rows(rows, meta=meta)
    except SchemaError as error:  # pragma: no cover - iter_rows checks everything rows can break
        raise FileFormatError(path, error.message, field=error.field) from None


def iter_rows(data: bytes, path: Path, *, first_line: int = 2) -> Iterator[SampleRow]:
    """Decode the row lines of ``data`` (a whole file, header included), checking each."""
    seen: dict[tuple[str, int], int] = {}
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines[first_line - 1 :], start=first_line):
        row = decode_row(raw, path, number)
        key = (row.query_id, row.sample_index)
        if key in seen:
            raise FileFormatError(
                path,
                f"duplicate sample: query {row.query_id!r} sample_index {row.sample_index} "
                f"already appears on line {seen[key]}",
                line=number,
                field="sample_index",
            )
        seen[key] = number
        yield row


def decode_row(raw: bytes, path: Path, line: int) -> SampleRow:
    """One row line (without ``\\n``) as a :class:`SampleRow`, or a :class:`FileFormatError`."""
    if not raw.strip():
        raise FileFormatError(
            path, "blank line (every line after the header is one sample)", line=line
        )
    record = loads(raw, path, line)
    if not isinstance(record, dict):
        raise FileFormatError(
            path, f"expected a JSON object, got {type(record).__name__}", line=line
        )
    try:
        return SampleRow.from_dict(record)
    except SchemaError as error:
        raise FileFormatError(path, error.message, line=line, field=error.field) from None


def rows_to_lines(rows: Iterable[SampleRow]) -> str:
    """Rows encoded as complete lines, joined; checks each is a :class:`SampleRow`."""
    parts = []
    for i, row in enumerate(rows):
        if not isinstance(row, SampleRow):
            raise SchemaError(f"row {i} is a {type(row).__name__}, not a SampleRow")
        parts.append(encode_row(row))
    return "".join(parts)


def _open(path: Path):  # noqa: ANN202 - a binary file handle
    return open_bytes(path)  # one rule for unreadable files, shared with every JSON-lines reader
