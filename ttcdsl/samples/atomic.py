"""Atomic file replacement: a reader sees the old file or the complete new one, never a part.

The new content goes to a temporary file in the destination's directory (so the final rename stays
on one file system), is flushed and fsynced, then renamed over the destination; the directory is
fsynced so the rename itself survives a crash. If anything fails before the rename, the temporary
file is removed and the destination is left as it was (absent if it was absent).

A writer killed outright (SIGKILL, power loss) cannot remove its temporary file. The name carries
the writer's pid (``.NAME.<pid>-<hex>.tmp``) and the writer holds an ``flock`` on the file while it
lives, so the next atomic write to the same destination removes the temporary files of writers
that are gone, and never one a live writer is still filling.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
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


_TEMP_MIDDLE = re.compile(r"(\d+)-[0-9a-f]{12}")


def _new_temporary(directory: Path, name: str) -> tuple[Path, int]:
    """Create an empty, uniquely named file in ``directory`` and lock it; returns the path and the
    open descriptor holding the lock (closed when the write is over). Unlike ``tempfile.mkstemp``
    (mode 0600) the file gets the permissions any new file gets under the user's umask, so the
    table that replaces the destination is as readable as one written directly."""
    for _ in range(100):
        temp = directory / f".{name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        return temp, fd
    raise FileExistsError(f"could not create a temporary file in {directory}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(directory: Path, name: str) -> list[Path]:
    """Remove the temporary files left beside ``directory / name`` by killed writers: those whose
    pid is not alive and whose lock nobody holds. Returns the paths removed."""
    removed: list[Path] = []
    prefix, suffix = f".{name}.", ".tmp"
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
            continue
        match = _TEMP_MIDDLE.fullmatch(entry.name[len(prefix):-len(suffix)])
        if match is None or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue  # locked (a live writer elsewhere) or already gone
        finally:
            os.close(fd)
    return removed


def check_destination(destination: str | os.PathLike[str], *, probe: bool = False) -> tuple[Path, Path]:
    """Refuse, by name, a destination :func:`atomic_path` could not replace: no file name, a
    missing directory, something other than a regular file in the way; with ``probe`` also a
    directory where no file can be created (read-only, or a file system such as /proc whose
    permission bits say writable), found by creating and removing a temporary file there, which
    is what the write will do. Commands call it with ``probe`` before slow work, so a bad output
    path fails in a second, not after the work. Returns the target and its directory."""
    target = Path(destination)
    directory = target.parent if str(target.parent) else Path(".")
    if not str(destination).strip() or target.name in ("", ".", ".."):
        raise UserError(f"{str(destination)!r}: not a file name", hint="choose an output file")
    if not directory.is_dir():
        from ttcdsl.output_dir import refuse_file_above

        refuse_file_above(target, target.name, hint="choose another output path")
        raise UserError(
            f"{target}: the directory {directory} does not exist",
            hint="create the directory first or choose another output path",
        )
    if os.path.lexists(target) and (target.is_symlink() or not target.is_file()):
        # the rename would replace a directory's entry, a device (/dev/null) or a link's target
        # path with a plain file: only a file is ever replaced
        raise UserError(f"{target}: exists and is not a regular file; only a file is replaced",
                        hint="choose another output path")
    if probe:
        try:
            temp, fd = _new_temporary(directory, target.name)
        except OSError as error:
            raise UserError(f"{target}: cannot write in {directory}: {error.strerror or error}",
                            hint="choose another output path") from None
        os.close(fd)
        with contextlib.suppress(OSError):
            temp.unlink()
    return target, directory


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success it replaces ``destination``.

    The caller writes the temporary path completely (any way it likes: pyarrow, open(), ...);
    this function fsyncs it and renames it into place. On an exception the temporary file is
    deleted and the exception propagates.
    """
    target, directory = check_destination(destination)
    remove_stale_temporaries(directory, target.name)
    temp, lock_fd = _new_temporary(directory, target.name)
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
    finally:
        os.close(lock_fd)
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
