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

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def tiny3_recipe() -> object:
    """A 3-class categorical GRU-24 recipe, 300 steps (about 2 s): a clear triangle of slow points."""
    from innerworks.train.config import parse_recipe

    return parse_recipe({
        "name": "tiny3", "seed": 0,
        "data": {"source": "synthetic", "task": "categorical", "num_classes": 3, "length": 16, "min_length": 10,
                 "n_train": 4000, "n_val": 200, "n_test": 300},
        "model": {"cell": "gru", "hidden_size": 24, "embed_dim": None, "readout_bias": False},
        "train": {"steps": 300, "batch_size": 64, "lr": 0.1, "eps": 0.1, "betas": [0.9, 0.99], "lr_decay": 0.9997,
                  "clip": 10.0, "l2": 0.0005, "eval_every": 300, "checkpoint_every": 300}})
