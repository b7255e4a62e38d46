"""Reading JSON-lines files (datasets, logs to import): one JSON object per line, every problem
reported as a FileFormatError naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ttcdsl.samples.errors import FileFormatError


def open_text(path: Path, *, newline: str | None = None) -> TextIO:
    try:
        return open(path, encoding="utf-8", newline=newline)
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None


def json_objects(path: Path, *, what: str = "record") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (1-based line number, object) for every line; `what` names a line in messages."""
    number = 0
    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    raise FileFormatError(path, f"blank line (every line is one {what})", line=number)
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise FileFormatError(
                        path, f"not valid JSON ({error.msg} at column {error.colno})", line=number
                    ) from None
                if not isinstance(record, dict):
                    raise FileFormatError(path, "expected a JSON object", line=number)
                yield number, record
        except UnicodeDecodeError:
            raise FileFormatError(path, "not valid UTF-8 text", line=number + 1) from None
