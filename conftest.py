"""Test-session environment for both tests/ and the doctests under src/ (pytest loads this first)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent
os.environ.setdefault("INNERWORKS_DATA", str((REPO.parent / "shared" / "data").resolve()))
os.environ.setdefault("MPLBACKEND", "Agg")
# Small models run fastest on one thread, and a loaded 2-core CI box punishes oversubscription badly
# (measured: 11 ms vs 240 ms per training step). Subprocesses inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
