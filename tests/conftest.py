"""Shared fixtures."""

from __future__ import annotations

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
