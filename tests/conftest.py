"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import shared_data_dir


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set TTC_SHARED_DATA to its location)")
    return path
