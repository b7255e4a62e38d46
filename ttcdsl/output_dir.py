"""An output directory a command writes into (a comparison, plots, one plan per policy): made
before the work that fills it, or the user's error naming what it was to hold."""

from __future__ import annotations

from pathlib import Path

from ttcdsl.errors import UserError


def output_directory(path: str | Path, holds: str, *, option: str | None = None) -> Path:
    """``path`` as a directory, created with its parents if missing. ``holds`` says what goes
    in it ("the plots"); ``option`` (``--out``) is named before the path in the message."""
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{where}: cannot hold {holds}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{where}: cannot hold {holds}: {error.strerror or error}") from None
    return path
