"""Train many recipes at once, each in its own worker process.

A reproduction's runs are small networks: one of them uses a GPU (or a CPU core) poorly, so training them side by
side is what makes a paper-scale reproduction fit in minutes on one GPU with a many-core host. Each worker trains
one recipe with :func:`innerworks.train.train` into ``root/<name>/`` (``resume=True``: a finished run is reused and
an interrupted one continues from its checkpoint), with ``threads`` torch threads.

>>> from innerworks.train import load_recipe
>>> r = load_recipe("quick").model_copy(update={"train": load_recipe("quick").train.model_copy(update={"steps": 2})})
>>> import tempfile; records = train_many({"a": r}, tempfile.mkdtemp(), jobs=1, progress=False)
>>> records["a"]["status"]
'ok'
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from innerworks.errors import InnerworksError
from innerworks.train.config import Recipe
from innerworks.utils.workers import run_in_workers


def _train_one(recipe: Recipe, run_dir: Path, device: str, threads: int | None) -> dict[str, Any]:
    """Worker: train one recipe; never raises (a failed run is a record, so the others go on)."""
    import torch

    from innerworks.train.loop import train

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        result = train(recipe, run_dir, resume=True, device=device, progress=False)
        test = result.metrics.get("test", {})
        return {"status": "ok", "dir": str(run_dir), "wall_time_s": round(time.perf_counter() - t0, 2),
                "test": {k: v for k, v in test.items() if isinstance(v, int | float)}}
    except Exception as exc:  # noqa: BLE001 - reported per run
        return {"status": "failed", "dir": str(run_dir), "wall_time_s": round(time.perf_counter() - t0, 2),
                "error": f"{type(exc).__name__}: {exc}"}


def train_many(recipes: Mapping[str, Recipe], root: str | Path, device: str = "cpu", jobs: int | None = None,
               threads: int | None = 1, progress: bool = True,
               console: Console | None = None) -> dict[str, dict[str, Any]]:
    """Train every recipe into ``root/<name>/``, ``jobs`` at a time in spawned worker processes.

    Args:
        recipes: run name -> validated recipe; runs start in this order (put the longest first).
        root: folder of the run directories (created).
        device: ``cpu``, ``cuda`` or ``cuda:N``; every worker trains on it.
        jobs: runs at once (default: one per CPU core, at most one per recipe). ``1`` trains in this process.
        threads: torch threads per worker (``None``: torch's default).
        progress: a rich status line per run.
        console: where progress goes (default stderr).

    Returns:
        name -> ``{"status": "ok"|"failed", "dir", "wall_time_s", "test" | "error"}``. A failed run does not stop the
        others; its run directory keeps its last checkpoint.

    >>> train_many({}, "/tmp/x", jobs=0)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: jobs: expected at least 1, got 0
    """
    if jobs is not None and jobs < 1:
        raise InnerworksError(f"jobs: expected at least 1, got {jobs}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = list(recipes)
    if not names:
        return {}
    jobs = min(len(names), jobs or os.cpu_count() or 1)
    if jobs == 1:
        return {n: _train_one(recipes[n], root / n, device, None) for n in names}
    return run_in_workers({n: (_train_one, (recipes[n], root / n, device, threads)) for n in names},
                          max_workers=jobs, label="train", running=lambda _: f"running on {device}",
                          progress=progress, console=console)


__all__ = ["train_many"]
