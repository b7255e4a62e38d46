"""The append-only samples store a run writes to, one round of rows at a time.

    store = SampleStore.create("runs/r1.jsonl", meta)   # writes the header (atomically)
    store.append(rows_of_round_0)                        # complete lines, flushed and fsynced
    store.append(rows_of_round_1)
    table = store.load()

A crash can only ever leave a torn *last* line (a write cut off midway). ``load`` and ``append``
refuse such a file with :class:`~ttcdsl.samples.errors.TornLineError`; :func:`repair` cuts the torn
tail off and says how many bytes it removed. One process writes a store at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ttcdsl.samples.atomic import atomic_writer, fsync_directory
from ttcdsl.samples.errors import FileFormatError, TornLineError
from ttcdsl.samples.jsonl import encode_header, read_header, read_jsonl, rows_to_lines
from ttcdsl.samples.schema import RunMeta, SampleRow, SamplesTable, SchemaError


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairReport:
    """What :func:`repair` did: ``removed`` bytes cut from the end, starting at line ``line``."""

    path: Path
    removed: int
    line: int | None
    fragment: bytes

    @property
    def changed(self) -> bool:
        return self.removed > 0


class SampleStore:
    """An append-only JSONL samples file (see the module docstring)."""

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SampleStore({str(self.path)!r})"

    @classmethod
    def create(cls, path: str | os.PathLike[str], meta: RunMeta) -> SampleStore:
        """Create a new store holding only the header; an existing file is an error."""
        target = Path(path)
        if target.exists():
            raise FileFormatError(
                target,
                "already exists",
                hint="open it with SampleStore(path) to append, or choose a new path",
            )
        with atomic_writer(target) as handle:
            handle.write(encode_header(meta))
        return cls(target)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SampleStore:
        """Open an existing store after checking its header and that its last line is complete."""
        store = cls(path)
        store.meta()
        store._check_tail()
        return store

    def meta(self) -> RunMeta:
        """The run metadata from the header."""
        return read_header(self.path)

    def load(self) -> SamplesTable:
        """Every row appended so far (raises on a torn or malformed line)."""
        return read_jsonl(self.path, store=True)

    def append(self, rows: Iterable[SampleRow]) -> int:
        """Append complete lines for ``rows``, flush and fsync; returns how many were written.

        All rows are encoded before anything is written, so a bad row writes nothing. Refuses a file
        whose last line is torn (appending would glue a new line onto the fragment).
        """
        rows = list(rows)
        seen: set[tuple[str, int]] = set()
        for row in rows:
            if isinstance(row, SampleRow):
                key = (row.query_id, row.sample_index)
                if key in seen:
                    raise SchemaError(
                        f"duplicate sample in one append: query {row.query_id!r} "
                        f"sample_index {row.sample_index}",
                        field="sample_index",
                    )
                seen.add(key)
        payload = rows_to_lines(rows).encode("utf-8")
        if not payload:
            return 0
        self._check_tail()
        with open(self.path, "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return len(rows)

    def repair(self) -> RepairReport:
        """Cut a torn last line off (see :func:`repair`)."""
        return repair(self.path)

    def _check_tail(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise FileFormatError(
                self.path,
                "no such file",
                hint="create the store with SampleStore.create(path, meta)",
            ) from None
        if size == 0:
            raise FileFormatError(self.path, "the file is empty: no samples header")
        with open(self.path, "rb") as handle:
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            # Torn: find where the last line starts, reading back in chunks.
            end = size
            start = 0
            while end > 0:
                begin = max(0, end - (1 << 16))
                handle.seek(begin)
                chunk = handle.read(end - begin)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    start = begin + newline + 1
                    break
                end = begin
            handle.seek(0)
            line = handle.read(start).count(b"\n") + 1
        raise TornLineError(self.path, line=line, offset=start, size=size)


def repair(path: str | os.PathLike[str]) -> RepairReport:
    """Truncate a torn last line (bytes after the final ``\\n``) and report what was removed.

    A file that ends cleanly is left untouched (``removed == 0``). The truncation is fsynced.
    Only the incomplete tail is removed: a malformed *complete* line is not a torn write and is
    left for the user to inspect. A file that is not a samples table (no samples header: a
    Parquet or gzip file, a raw log) is refused untouched: its "last line" is not a torn row.
    """
    target = Path(path)
    try:
        with open(target, "rb+") as handle:
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return RepairReport(path=target, removed=0, line=None, fragment=b"")
            _check_is_samples_file(data, target)
            start = data.rfind(b"\n") + 1
            line = data.count(b"\n") + 1
            handle.truncate(start)
            handle.flush()
            os.fsync(handle.fileno())
    except FileNotFoundError:
        raise FileFormatError(target, "no such file") from None
    fsync_directory(target.parent)
    return RepairReport(path=target, removed=len(data) - start, line=line, fragment=data[start:])


def _check_is_samples_file(data: bytes, path: Path) -> None:
    """Refuse (untouched) a file whose first line is not a samples header."""
    from ttcdsl.samples.jsonl import parse_header

    end = data.find(b"\n")
    if end < 0:  # the header itself was cut off: it must at least begin as one
        if data.lstrip().startswith(b'{"ttc_samples"'):
            return
        raise FileFormatError(path, "not a samples table (no samples header): nothing to repair",
                              line=1)
    try:
        parse_header(data[:end], path)
    except FileFormatError as error:
        raise FileFormatError(path, f"not a samples table, so nothing to repair: {error.detail}",
                              line=1) from None
