"""Creating and replacing run directories atomically: build beside, then rename into place.

A new run directory is built as a hidden sibling ``.NAME.ttc-new-<pid>`` (manifest, plan, policy,
samples header, the writer lock) and renamed to ``NAME`` only when complete, so ``NAME`` is either
absent or a whole run directory, never a half-created one. ``--force`` locks the old run, renames
it aside to ``.NAME.ttc-old-<pid>`` and renames the new one in; the old one is deleted only once
the new one has stored a sample (:meth:`NewRun.drop_old`), and put back if the new one stops
before it stored any (:meth:`NewRun.undo`: a CTRL-C in the first round), so an interrupted
``--force`` never leaves an empty new run where a finished old one was.

A kill can leave those hidden siblings behind. The next ``ttc run`` (fresh, ``--force`` or
``--resume``) on ``NAME`` cleans them up (:func:`recover`) once their writer is gone (its pid is
dead and nobody holds their lock): a half-built ``-new`` one is deleted; an ``-old`` one is put
back where it was if the replacement never arrived (the old run is not lost), else deleted. Only
directories of exactly these names are touched.

``TTC_RUN_CRASH=create:STEP`` SIGKILLs the process at a step (``begun``: the hidden directory and
its lock exist; ``built``: it is complete; ``aside``: the old run is renamed aside; ``swapped``:
the new run is in place, the old one not yet deleted), for the crash tests.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from ttcdsl.errors import UserError
from ttcdsl.runtime.lock import LOCK, RunLock, lock_run_dir, writer_pid
from ttcdsl.runtime.rundir import (
    MANIFEST,
    PLAN,
    POLICY,
    REPORT,
    RESULTS,
    SAMPLES,
    remove_run_dir,
)
from ttcdsl.samples.atomic import fsync_directory

# The entries ttc itself writes into a run directory (and the temporary files of their writes).
RUN_FILES = frozenset({MANIFEST, PLAN, POLICY, SAMPLES, RESULTS, REPORT, LOCK})
_TEMP = re.compile(r"\.(?P<name>.+)\.\d+-[0-9a-f]{12}\.tmp|\.(?P<old>.+)\.[0-9a-f]{12}\.tmp")


def only_ttc_files(directory: Path) -> bool:
    """Whether every entry of ``directory`` is a file ttc writes into a run directory."""
    for entry in directory.iterdir():
        temp = _TEMP.fullmatch(entry.name)
        name = entry.name if temp is None else (temp.group("name") or temp.group("old"))
        if name not in RUN_FILES or entry.is_symlink() or not entry.is_file():
            return False
    return True


def _crash(step: str) -> None:
    if os.environ.get("TTC_RUN_CRASH") == f"create:{step}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier call of this process, which is no longer creating anything
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path, kind: str) -> list[Path]:
    pattern = re.compile(re.escape(f".{out.name}.ttc-{kind}-") + r"(\d+)")
    found = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return found
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            if not _pid_alive(int(match.group(1))) and writer_pid(entry) is None:
                found.append(entry)
    return sorted(found)


def recover(out: Path) -> list[str]:
    """Clean up what killed creations or replacements of ``out`` left beside it (module
    docstring); returns what was done, one line each."""
    done = []
    for staging in _leftovers(out, "new"):
        if only_ttc_files(staging):
            shutil.rmtree(staging)
            done.append(f"removed the half-built run directory {staging}")
    for aside in _leftovers(out, "old"):
        if not os.path.lexists(out):
            os.rename(aside, out)
            fsync_directory(out.parent)
            done.append(f"put back {out}, which an interrupted ttc run --force had moved aside")
        else:
            shutil.rmtree(aside)
            done.append(f"removed {aside}, the old run an interrupted ttc run --force replaced")
    return done


def check_replaceable(out: Path) -> None:
    """``--force``: ``out`` may be replaced only if it is a run directory, or a half-created one
    (nothing but ttc's own files); refuse anything else."""
    if not out.is_dir() or out.is_symlink():
        raise UserError(
            f"{out}: exists and is not a run directory; --force replaces only runs",
            hint="choose another --out",
        )
    if not (out / MANIFEST).is_file() and not only_ttc_files(out):
        raise UserError(
            f"{out}: exists and is not a run directory (no {MANIFEST}); --force replaces only runs",
            hint="choose another --out",
        )


class NewRun:
    """A run directory :func:`create_run_dir` made: its held writer ``lock``, and with
    ``--force`` the old run it replaced, kept aside (locked) until :meth:`drop_old` or
    :meth:`undo`."""

    def __init__(self, out: Path, lock: RunLock, aside: Path | None,
                 old_lock: RunLock | None) -> None:
        self.out, self.lock, self.aside, self._old_lock = out, lock, aside, old_lock

    @property
    def replaced(self) -> bool:
        """Whether an old run is still kept aside (put back by :meth:`undo`)."""
        return self.aside is not None

    def drop_old(self) -> None:
        """The new run holds something of its own now: delete the old run it replaced."""
        aside, self.aside = self.aside, None
        if aside is not None:
            self._old_lock.release()
            shutil.rmtree(aside, ignore_errors=True)  # what is left, recover() removes

    def undo(self, *, keep_dir: bool = False) -> None:
        """The new run stopped before it stored anything: remove it (only its files, if
        ``keep_dir``: an empty directory the user made) and put the old run back in its place."""
        remove_run_dir(self.out, keep_dir=keep_dir)
        self.lock.release()
        if self.aside is not None:
            os.rename(self.aside, self.out)
            fsync_directory(self.out.parent)
            self.aside = None
            self._old_lock.release()


def create_run_dir(out: Path, populate: Callable[[Path], None], *, force: bool) -> NewRun:
    """Build a run directory beside ``out`` (``populate`` writes its files), rename it into place
    (moving an old run aside with ``force``: kept until :meth:`NewRun.drop_old`), and return it
    with its held writer lock."""
    out = Path(out)
    from ttcdsl.output_dir import refuse_file_above

    refuse_file_above(out, "the run directory", hint="choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    for line in recover(out):
        print(f"ttc run: {line}", file=sys.stderr)
    old_lock = None
    if os.path.lexists(out) and not (out.is_dir() and not out.is_symlink()
                                     and not any(out.iterdir())):
        check_replaceable(out)  # not a run (a file, another directory): never one to resume
        if not force:
            raise _exists(out)
        old_lock = lock_run_dir(out)  # refuses a run another process is writing
    staging = out.parent / f".{out.name}.ttc-new-{os.getpid()}"
    aside = out.parent / f".{out.name}.ttc-old-{os.getpid()}"
    lock = None
    try:
        staging.mkdir()
        lock = lock_run_dir(staging)  # the lock file moves with the directory
        _crash("begun")
        populate(staging)
        fsync_directory(staging)
        _crash("built")
        if old_lock is None:
            try:
                os.rename(staging, out)  # onto nothing, or an empty directory
            except OSError as error:
                if os.path.lexists(out):  # another process created it meanwhile
                    raise _exists(out) from None
                raise error
            fsync_directory(out.parent)
        else:
            os.rename(out, aside)
            fsync_directory(out.parent)
            _crash("aside")
            os.rename(staging, out)
            fsync_directory(out.parent)
            _crash("swapped")
    except BaseException:
        if lock is not None:
            lock.release()
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        if old_lock is not None:
            if aside.is_dir() and not os.path.lexists(out):
                os.rename(aside, out)  # the replacement failed: the old run stays
            old_lock.release()
        raise
    return NewRun(out, lock, aside if old_lock is not None else None, old_lock)


def _exists(out: Path) -> UserError:
    return UserError(
        f"{out}: already exists",
        hint=f"resume it with ttc run --resume {out}, replace a run with --force, or choose "
        "another --out",
    )
