"""Temporary files of atomic writes: a writer killed mid-write leaves its ``.NAME.<pid>-<hex>.tmp``
behind; the next write to the same path removes it, but never the temporary file of a writer that
is still alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.paths import REPO
from ttcdsl.samples.atomic import atomic_writer

# A writer that fills its temporary file, then either kills itself (SIGKILL: no cleanup runs) or
# waits to be killed by the test.
WRITER = """
import os, signal, sys, time
from ttcdsl.samples.atomic import atomic_writer
with atomic_writer(sys.argv[1]) as handle:
    handle.write("x" * 100_000)
    handle.flush()
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    print("writing", flush=True)
    time.sleep(60)
"""


def _writer(target, how: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), how], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )


def _temporaries(target) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.endswith(".tmp"))


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path) -> None:
    target = tmp_path / "plan.yaml"
    killed = _writer(target, "die")
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    left = _temporaries(target)
    assert len(left) == 1 and left[0].startswith(f".plan.yaml.{killed.pid}-")
    (tmp_path / ".other.yaml.1-0123456789ab.tmp").write_text("another path's")
    with atomic_writer(target) as handle:
        handle.write("done\n")
    assert target.read_text() == "done\n"
    assert _temporaries(target) == [".other.yaml.1-0123456789ab.tmp"]  # only this path's


def test_a_live_writers_temporary_file_is_kept(tmp_path) -> None:
    target = tmp_path / "plan.yaml"
    live = _writer(target, "wait")
    try:
        assert live.stdout.readline() == "writing\n"
        (busy,) = _temporaries(target)
        with atomic_writer(target) as handle:
            handle.write("mine\n")
        assert _temporaries(target) == [busy]
        assert os.path.getsize(tmp_path / busy) == 100_000
    finally:
        live.kill()
        live.wait()


def test_only_a_regular_file_is_ever_replaced(tmp_path) -> None:
    """A directory, a symbolic link or a device at the destination is refused, and left as it
    was: the rename replaced /dev/full with a plan file (run as root)."""
    import pytest

    from ttcdsl.errors import UserError

    folder = tmp_path / "out.yaml"
    folder.mkdir()
    real = tmp_path / "real.yaml"
    real.write_text("kept\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    for target in (folder, link, "/dev/null"):
        with pytest.raises(UserError, match="not a regular file"):
            with atomic_writer(target) as handle:
                handle.write("new\n")
    assert folder.is_dir() and link.is_symlink() and real.read_text() == "kept\n"
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    plain = tmp_path / "plain.yaml"
    plain.write_text("old\n")
    with atomic_writer(plain) as handle:
        handle.write("new\n")
    assert plain.read_text() == "new\n"
