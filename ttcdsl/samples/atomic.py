"""Atomic file replacement: a reader sees the old file or the complete new one, never a part.

The new content goes to a temporary file in the destination's directory (so the final rename stays
on one file system), is flushed and fsynced, then renamed over the destination; the directory is
fsynced so the rename itself survives a crash. If anything fails before the rename, the temporary
file is removed and the destination is left as it was (absent if it was absent).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ttcdsl.errors import UserError


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new directory entry in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _new_temporary(directory: Path, name: str) -> Path:
    """Create an empty, uniquely named file in ``directory``. Unlike ``tempfile.mkstemp`` (mode
    0600) it gets the permissions any new file gets under the user's umask, so the table that
    replaces the destination is as readable as one written directly."""
    for _ in range(100):
        temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temp
    raise FileExistsError(f"could not create a temporary file in {directory}")


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success it replaces ``destination``.

    The caller writes the temporary path completely (any way it likes: pyarrow, open(), ...);
    this function fsyncs it and renames it into place. On an exception the temporary file is
    deleted and the exception propagates.
    """
    target = Path(destination)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(
            f"{target}: the directory {directory} does not exist",
            hint="create the directory first or choose another output path",
        )
    temp = _new_temporary(directory, target.name)
    try:
        yield temp
        with open(temp, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_directory(directory)


@contextlib.contextmanager
def atomic_writer(destination: str | os.PathLike[str], *, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing (``"w"`` text UTF-8 or ``"wb"``); it replaces
    ``destination`` only if the block completes."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(destination) as temp:
        if mode == "w":
            handle: IO = open(temp, "w", encoding="utf-8", newline="\n")
        else:
            handle = open(temp, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
