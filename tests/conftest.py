"""Shared fixtures."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from tests.paths import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public data (`../shared/data` beside the repository, or $TTC_SHARED_DATA);
    tests that need it are skipped, with the reason, when it is absent."""
    root = shared_data_dir()
    if not (root / "problems").is_dir() or not (root / "pools").is_dir():
        pytest.skip(f"shared data not found at {root} (set TTC_SHARED_DATA to its directory)")
    return root


MAPPINGS_BEFORE_CLEARING = 20_000
"""Every executable XLA compiles on the CPU holds about 18 memory mappings until its function's
cache lets go of it, and Linux allows a process 65,530 (vm.max_map_count). The whole suite in one
process compiles thousands: past the limit, XLA's next compile fails, and with vLLM's in-process
engine loaded (its libraries install a crash handler that deadlocks while unwinding) the session
hangs rather than fails. So the caches are dropped after a test once the count is high."""


def _memory_mappings() -> int | None:
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux: no such limit to watch
        return None


@pytest.fixture(autouse=True)
def _drop_compiled_executables_when_mappings_pile_up():
    yield
    if "jax" not in sys.modules:
        return
    count = _memory_mappings()
    if count is not None and count > MAPPINGS_BEFORE_CLEARING:
        import jax

        jax.clear_caches()
        gc.collect()
