"""Shared test fixtures: the data folder and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ["INNERWORKS_DATA"])
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root
