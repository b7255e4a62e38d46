"""The run directory's writer lock: one process writes a run directory at a time.

Every writer (a fresh run, ``--resume``, ``--force`` replacing a run) takes an exclusive
``flock`` on ``RUN_DIR/.ttc-lock`` and holds it for the whole run; the operating system releases it
when the process ends, however it ends (a crash or SIGKILL leaves no stale lock). The holder writes
its pid into the file, so a second writer can say who holds the run, and ``ttc report`` can say
that the run it reads is still being written. Two writers would otherwise both append the same
(query, sample index) rows and both spend the budget.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from ttcdsl.errors import UserError

LOCK = ".ttc-lock"


class RunLock:
    """A held lock; ``release`` (or leaving the ``with`` block) gives it back."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_run_dir(run_dir: Path) -> RunLock:
    """Take the writer lock of ``run_dir`` (a directory that exists), or refuse naming the holder."""
    path = Path(run_dir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise UserError(
            f"{run_dir}: the run directory is being written by another ttc process (pid {pid})",
            hint="wait for it to finish (or stop it), then try again; one process writes a run "
            "directory at a time",
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return RunLock(fd, path)


def writer_pid(run_dir: Path) -> int | str | None:
    """The pid of the process writing ``run_dir`` now, or None when nobody holds its lock."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None  # never locked (or unreadable: nothing to say)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | str:
    # The holder writes its pid right after taking the lock: wait a moment for it.
    for _ in range(50):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return "unknown"
