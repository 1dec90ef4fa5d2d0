"""Where the real-data folder is for tests: ``$CARBONFED_DATA`` or ``<repo>/../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_data_dir() -> Path | None:
    from_env = os.environ.get("CARBONFED_DATA")
    candidate = Path(from_env) if from_env else REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


DATA_DIR = find_data_dir()
needs_data = pytest.mark.skipif(
    DATA_DIR is None, reason="real-data folder not found (set CARBONFED_DATA or ../shared/data)")
