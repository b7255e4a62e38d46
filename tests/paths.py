"""Where the repository, its policies and the shared data are (for tests and benchmarks)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICIES = sorted((REPO / "policies").glob("*.ttc"))


def shared_data_dir() -> Path:
    """`../shared/data` beside the repository, or $TTC_SHARED_DATA."""
    override = os.environ.get("TTC_SHARED_DATA")
    return Path(override) if override else REPO.parent / "shared" / "data"
