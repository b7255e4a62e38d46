"""An output directory a command writes into (a comparison, plots, one plan per policy): made
before the work that fills it, or the user's error naming what it was to hold."""

from __future__ import annotations

import os
from pathlib import Path

from ttcdsl.errors import UserError


def refuse_file_above(path: str | Path, made: str, *, hint: str = "choose another path") -> None:
    """A file where a directory above ``path`` must be is the user's error, named: "FILE: is a
    file, not a directory, so MADE cannot be made under it" (mkdir said "File exists" of it, or
    "Not a directory"). ``made`` says what was to go there ("the run directory")."""
    for above in Path(path).parents:  # the nearest that exists decides
        if os.path.lexists(above):
            if not above.is_dir():
                raise UserError(f"{above}: is a file, not a directory, so {made} cannot be made "
                                "under it", hint=hint)
            return


def output_directory(path: str | Path, holds: str, *, option: str | None = None) -> Path:
    """``path`` as a directory, created with its parents if missing. ``holds`` says what goes
    in it ("the plots"); ``option`` (``--out``) is named before the path in the message."""
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{where}: cannot hold {holds}: exists and is not a directory")
    refuse_file_above(path, f"the directory for {holds} ({where})")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{where}: cannot hold {holds}: {error.strerror or error}") from None
    return path
