"""Errors about malformed files: each names the file and, where there is one, the line and field."""

from __future__ import annotations

from pathlib import Path

from ttcdsl.errors import UserError


class FileFormatError(UserError):
    """A file (samples table, dataset, or a log being imported) is malformed.

    ``path`` is the file, ``line`` the 1-based line (``None`` when the problem has no line, e.g. in
    a Parquet file or a JSON document), ``field`` the offending field when known. The message reads
    ``FILE:LINE: field 'NAME': what is wrong``.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        what = f"field {field!r}: {message}" if field else message
        super().__init__(f"{where}: {what}", hint=hint)
        self.path = Path(path)
        self.line = line
        self.field = field
        self.detail = message


class TornLineError(FileFormatError):
    """The last line of an append-only file is incomplete (a write was cut off).

    ``offset`` is the byte offset where the torn line starts; :func:`ttcdsl.samples.repair` cuts the
    file there. Nothing is ever dropped silently.
    """

    def __init__(self, path: str | Path, *, line: int, offset: int, size: int) -> None:
        super().__init__(
            path,
            f"the last line is incomplete ({size - offset} bytes without a line end): "
            "a write was cut off",
            line=line,
            hint=(
                "the rows before it are intact; drop the torn line with "
                f"ttcdsl.samples.repair({str(path)!r}) (it reports what it removed), then resume"
            ),
        )
        self.offset = offset
        self.size = size
