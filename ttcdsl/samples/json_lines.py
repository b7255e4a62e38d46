"""Reading JSON-lines files (datasets, logs to import): one JSON object per line, every problem
reported as a FileFormatError naming the file and line. Logs and question files may be gzip.

Lines are split as bytes and decoded one at a time: a text-mode reader decodes ahead in blocks,
so its UnicodeDecodeError would blame whatever line it had reached, not the line holding the byte.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ttcdsl.samples.errors import FileFormatError


def open_text(path: Path, *, newline: str | None = None) -> TextIO:
    try:
        return open(path, encoding="utf-8", newline=newline)
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None


def open_bytes(path: Path):  # noqa: ANN201 - a binary file handle
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None
    except PermissionError:
        raise FileFormatError(path, "permission denied") from None


GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def open_log(path: Path) -> Iterator[BinaryIO]:
    """A log or question file to read, decompressed if it is gzip (logs are often kept as
    ``.jsonl.gz``); a gzip file cut short or damaged is a FileFormatError, not a crash."""
    with open_bytes(path) as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            yield raw
            return
        try:
            with gzip.GzipFile(fileobj=raw) as handle:
                yield handle
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise FileFormatError(path, f"a damaged gzip file: {error}") from None


def decode_text(raw: bytes, path: Path, line: int | None) -> str:
    """``raw`` as UTF-8 text; a bad byte is reported on ``line`` with its column. A file's first
    line (``line`` 1, or ``None``: a whole document) loses a UTF-8 byte-order mark: Windows tools
    (PowerShell, Notepad, a spreadsheet's UTF-8 export) start files with one, and it would be
    read as bad JSON or as an invisible part of a CSV's first column name."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if line is None:  # a whole document: find the line of the bad byte
            line = raw.count(b"\n", 0, error.start) + 1
            column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        else:
            column = error.start + 1
        raise FileFormatError(
            path,
            f"not valid UTF-8 text (byte 0x{raw[error.start]:02x} at column {column})",
            line=line,
        ) from None
    return text.removeprefix("\ufeff") if line in (None, 1) else text


def loads(text: str | bytes, path: Path, line: int | None) -> Any:
    """Parse one JSON value; bad JSON, bad UTF-8 and nesting too deep for the parser are all
    :class:`FileFormatError` on ``line`` (``None``: a whole document, located from the error)."""
    if isinstance(text, bytes):
        text = decode_text(text, path, line)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FileFormatError(
            path,
            # some of json's messages end in "at" already ("Unterminated string starting at")
            f"not valid JSON ({error.msg.removesuffix(' at')} at column {error.colno})",
            line=error.lineno if line is None else line,
        ) from None
    except RecursionError:
        # json recurses once per nesting level; no record of ours nests more than a few levels.
        raise FileFormatError(
            path, "JSON nested too deeply to read (no valid record nests like this)", line=line
        ) from None


def json_objects(path: Path, *, what: str = "record") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (1-based line number, object) for every line; `what` names a line in messages.
    Blank lines at the end of the file are ignored (editors and many writers leave one); a blank
    line before another record is an error."""
    blank: int | None = None  # the first blank line not yet followed by a record
    with open_log(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                blank = blank or number
                continue
            if blank is not None:
                raise FileFormatError(path, f"blank line (every line is one {what})", line=blank)
            try:
                record = loads(raw, path, number)
            except FileFormatError as error:
                first = raw.strip()
                if number == 1 and (first[:1] in (b"[", "[") or first in (b"{", "{")):
                    # a whole JSON document (json.dump of a list, or pretty-printed): the error
                    # lands on line 1 or its end, nowhere near what is wrong
                    error.hint = error.hint or _NOT_JSON_LINES.format(what=what)
                elif number == 1 and path.name.lower().endswith(".gz"):
                    # it was read as plain text because it does not start as gzip does
                    error.hint = error.hint or (
                        "the file is named .gz but is not gzip-compressed (it lacks gzip's "
                        "first bytes): compress it with gzip, or name it .jsonl")
                raise
            if not isinstance(record, dict):
                raise FileFormatError(
                    path, f"expected a JSON object, got a JSON {json_type(record)}", line=number,
                    hint=_NOT_JSON_LINES.format(what=what) if isinstance(record, list) else None,
                )
            yield number, record


_NOT_JSON_LINES = ("the file must be JSON Lines: one {what}, a JSON object, per line; a JSON "
                   "array or a pretty-printed document is not (write each object with "
                   "json.dumps on its own line)")


def json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
