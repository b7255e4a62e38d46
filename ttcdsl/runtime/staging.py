"""Creating and replacing run directories atomically: build beside, then rename into place.

A new run directory is built as a hidden sibling ``.NAME.ttc-new-<pid>`` (manifest, plan, policy,
samples header, the writer lock) and renamed to ``NAME`` only when complete, so ``NAME`` is either
absent or a whole run directory, never a half-created one. ``--force`` locks the old run, renames
it aside to ``.NAME.ttc-old-<pid>``, renames the new one in, and only then deletes the old one.

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
from ttcdsl.runtime.rundir import MANIFEST, PLAN, POLICY, REPORT, RESULTS, SAMPLES
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


def create_run_dir(out: Path, populate: Callable[[Path], None], *, force: bool) -> RunLock:
    """Build a run directory beside ``out`` (``populate`` writes its files), rename it into place
    (replacing an old run with ``force``), and return the held writer lock of the new run."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for line in recover(out):
        print(f"ttc run: {line}", file=sys.stderr)
    old_lock = None
    if os.path.lexists(out) and not (out.is_dir() and not out.is_symlink()
                                     and not any(out.iterdir())):
        if not force:
            raise _exists(out)
        check_replaceable(out)
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
            old_lock.release()
            shutil.rmtree(aside)
    except BaseException:
        if lock is not None:
            lock.release()
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        if old_lock is not None and aside.is_dir() and not os.path.lexists(out):
            os.rename(aside, out)  # the replacement failed: the old run stays
        raise
    finally:
        if old_lock is not None:
            old_lock.release()
    return lock


def _exists(out: Path) -> UserError:
    return UserError(
        f"{out}: already exists",
        hint=f"resume it with ttc run --resume {out}, replace a run with --force, or choose "
        "another --out",
    )
