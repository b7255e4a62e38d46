from __future__ import annotations

import os
from pathlib import Path

import pytest


def _shared_data() -> Path:
    override = os.environ.get("TTC_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = _shared_data()
    if not (root / "pools").is_dir():
        pytest.skip(f"shared data not found at {root} (set TTC_SHARED_DATA to its directory)")
    return root
