"""CTRL-C in a command that computes with JAX: print ``interrupted`` and exit 130 at once.

The default KeyboardInterrupt lands at any bytecode: inside JAX's garbage-collection callback it
is "ignored" (the command ran on to the end, exit 0), and raised anywhere else it unwinds to the
exit while XLA's threads still run, and the interpreter's teardown under them crashed (signal
11). These commands (``ttc plan``, ``simulate``, ``compare``: ``set_defaults(exit_at_once=True)``)
write their outputs only at the end, each through an atomic write (a killed writer's temporary
file is removed by the next write to that path), so leaving at once loses nothing. ``ttc run``,
which appends samples as it goes, keeps the KeyboardInterrupt."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator


def _leave(signum, frame) -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    os.write(2, b"interrupted\n")
    os._exit(130)


@contextlib.contextmanager
def exit_at_once_on_interrupt() -> Iterator[None]:
    """Within the block, CTRL-C (SIGINT) leaves the process at once; the handler before it is
    restored after (a command run in-process, as tests do, leaves the caller's as it was). Only
    the main thread may set a handler: elsewhere the default stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
