"""Train many recipes at once, each in its own worker process.

A reproduction's runs are small networks: one of them uses a GPU (or a CPU core) poorly, so training them side by
side is what makes a paper-scale reproduction fit in minutes on one GPU with a many-core host. Each worker trains
one recipe with :func:`innerworks.train.train` into ``root/<name>/`` (``resume=True``: a finished run is reused and
an interrupted one continues from its checkpoint), with ``threads`` torch threads.

With ``ensembles=True``, runs that can stack (:func:`innerworks.train.ensemble.can_share_ensemble`: same
classification model and training settings, other seeds or datasets) train as ensembles instead, one batched model
per worker (:func:`innerworks.train.ensemble.train_ensemble`). That is opt-in: on a 2-core CPU, 8 ``quick`` runs
train ~1.6x faster that way (``bench/ensemble.py``), but an ensemble member agrees with its standalone run only to
float rounding (its final accuracy moves as much as after a 1-ulp change of the initial weights), so by default
every run trains on its own and ``--jobs`` gives the sequential result bit for bit.

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


def _train_group(recipes: dict[str, Recipe], root: Path, device: str,
                 threads: int | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Worker: train one ensemble; returns a summary record (for the status line) and each member's record."""
    import torch

    from innerworks.train.ensemble import train_ensemble

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        records = train_ensemble(recipes, root, device=device, progress=False)
    except Exception as exc:  # noqa: BLE001 - never raise in a worker: every member gets a failed record
        records = {n: {"status": "failed", "dir": str(root / n), "wall_time_s": round(time.perf_counter() - t0, 2),
                       "error": f"{type(exc).__name__}: {exc}"} for n in recipes}
    bad = [f"{n}: {r['error']}" for n, r in records.items() if r["status"] != "ok"]
    summary = {"status": "failed" if bad else "ok", "wall_time_s": round(time.perf_counter() - t0, 2)}
    if bad:
        summary["error"] = "; ".join(bad)
    return summary, records


def _plan(recipes: Mapping[str, Recipe], jobs: int, ensembles: bool,
          max_size: int) -> tuple[list[list[str]], list[str]]:
    """Ensemble chunks (each of two or more runs) and the runs left to train alone.

    A group of ``n`` stackable runs is cut into at most ``jobs`` near-equal chunks (so every worker gets a share),
    each of at most ``max_size`` runs; a chunk of one trains alone.
    """
    from innerworks.train.ensemble import can_share_ensemble

    chunks: list[list[str]] = []
    for group in can_share_ensemble(recipes) if ensembles else []:
        parts = max(min(jobs, len(group) // 2), -(-len(group) // max_size), 1)
        chunks.extend(group[i::parts] for i in range(parts))
    grouped = {n for c in chunks if len(c) >= 2 for n in c}
    return [c for c in chunks if len(c) >= 2], [n for n in recipes if n not in grouped]


def train_many(recipes: Mapping[str, Recipe], root: str | Path, device: str = "cpu", jobs: int | None = None,
               threads: int | None = 1, progress: bool = True, console: Console | None = None,
               ensembles: bool = False, ensemble_size: int = 64) -> dict[str, dict[str, Any]]:
    """Train every recipe into ``root/<name>/``, ``jobs`` at a time in spawned worker processes.

    Args:
        recipes: run name -> validated recipe; runs start in this order (put the longest first).
        root: folder of the run directories (created).
        device: ``cpu``, ``cuda`` or ``cuda:N``; every worker trains on it.
        jobs: runs at once (default: one per CPU core, at most one per recipe). ``1`` trains in this process.
        threads: torch threads per worker (``None``: torch's default).
        progress: a rich status line per run.
        console: where progress goes (default stderr).
        ensembles: train stackable runs as ensembles (one batched model per worker); default: each run alone.
        ensemble_size: most runs in one ensemble (bounds its memory).

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
    chunks, alone = _plan(recipes, jobs, ensembles, ensemble_size)
    work: dict[str, tuple[Any, tuple[Any, ...]]] = {
        f"ensemble {c[0]} +{len(c) - 1}": (_train_group, ({n: recipes[n] for n in c}, root, device, threads))
        for c in chunks}
    work.update({n: (_train_one, (recipes[n], root / n, device, threads)) for n in alone})
    jobs = min(jobs, len(work))
    if jobs == 1:  # in this process, with the caller's torch thread count
        results = {key: fn(*args[:-1], None) for key, (fn, args) in work.items()}
    else:
        results = run_in_workers(work, max_workers=jobs, label="train", running=lambda _: f"running on {device}",
                                 progress=progress, console=console)
    records: dict[str, dict[str, Any]] = {}
    for key, result in results.items():
        records.update(result[1] if isinstance(result, tuple) else {key: result})
    return {n: records[n] for n in names}


__all__ = ["train_many"]
