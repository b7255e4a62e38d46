"""Load or save a samples table by file extension: ``.jsonl`` (the store) or ``.parquet``."""

from __future__ import annotations

import os
from pathlib import Path

from ttcdsl.errors import UserError
from ttcdsl.samples.schema import SamplesTable

SUFFIXES = (".jsonl", ".parquet")


HINT = "samples tables are .jsonl (append-only store) or .parquet files"


def table_format(path: str | os.PathLike[str]) -> str:
    """``"jsonl"`` or ``"parquet"`` from the path's extension; anything else is a user error, and
    so is a directory, read or written (it was "the extension '(none)'")."""
    if Path(path).is_dir():
        from ttcdsl.file_kinds import require_file

        require_file(path, "samples table", hint=HINT)
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise UserError(
        f"{path}: cannot tell the table format from the extension {suffix or '(none)'!r}", hint=HINT
    )


def load(path: str | os.PathLike[str]) -> SamplesTable:
    """Load a samples table from a ``.jsonl`` or ``.parquet`` file; a plan or a dataset given as
    the table is named as what it is, whatever its extension."""
    try:
        kind = table_format(path)
    except UserError:
        from ttcdsl.file_kinds import misplaced_file

        found = misplaced_file(Path(path), "a samples table")
        if found is None:
            raise
        from ttcdsl.samples.errors import FileFormatError

        raise FileFormatError(path, found[0], hint=found[1]) from None
    if kind == "jsonl":
        from ttcdsl.samples.jsonl import read_jsonl

        return read_jsonl(path)
    from ttcdsl.samples.parquet import read_parquet

    return read_parquet(path)


def save(table: SamplesTable, path: str | os.PathLike[str]) -> None:
    """Write a samples table atomically to a ``.jsonl`` or ``.parquet`` file (replacing it)."""
    if table_format(path) == "jsonl":
        from ttcdsl.samples.jsonl import write_jsonl

        write_jsonl(table, path)
    else:
        from ttcdsl.samples.parquet import write_parquet

        write_parquet(table, path)
