"""What runs on a worker: train one sweep run (resuming from its checkpoint), then analyse it when asked.

:func:`run_one` is the same function for every backend: a local worker process calls it, and the Ray backend wraps
it as a Ray task. It never raises for a failed run (a failure is a record, so the other runs go on); a worker that
dies instead leaves the run's last checkpoint behind, and the retry continues from it (``train(..., resume=True)``).

While it runs, ``worker.json`` in the run directory says which process trains it (``pid``, ``host``, ``attempt``,
``session``): the driver counts running runs from it, and a user (or a test) can find the process to stop.

>>> from innerworks.train import load_recipe
>>> import tempfile
>>> r = load_recipe("quick"); r = r.model_copy(update={"train": r.train.model_copy(update={"steps": 2})})
>>> rec = run_one(RunJob("demo", r, tempfile.mkdtemp(), session="s"))
>>> rec["status"], rec["attempt"], rec["metric"]
('done', 1, 'accuracy')
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from innerworks.train.config import Recipe
from innerworks.utils.io import read_json, write_json

WORKER_FILE = "worker.json"

# Headline numbers of an analysis: column name -> path into the lab's analysis.json summary (missing paths skipped).
HEADLINES: dict[str, dict[str, tuple[str, ...]]] = {
    "dynamics": {
        "fixed_points": ("fixed_points", "n"),
        "slow_points": ("fixed_points", "n_slow"),
        "manifold_dim_95": ("manifold", "dimension_95"),
        "manifold_participation_ratio": ("manifold", "participation_ratio"),
        "wordcount_dim_95": ("wordcount", "dimensions", "0.95"),
        "top_abs_eigenvalue": ("linearization", "top_abs_eigenvalue", "mean"),
        "readout_deviation": ("readout", "mean_deviation"),
        "lattice_matches": ("lattice", "matches"),
        "audit_complete": ("audit", "complete"),
    },
    "attention": {
        "largest_dot_ratio_term": ("largest_dot_ratio_term",),
        "temporal_share": ("temporal_share",),
        "temporal_diagonal_fraction": ("temporal_diagonal_fraction",),
        "average_attention_match": ("average_attention_match",),
    },
}


@dataclass(frozen=True)
class RunJob:
    """One run for a worker: its name, recipe and run directory, how to train it, and what analysis follows."""

    name: str
    recipe: Recipe
    run_dir: str
    device: str | None = None
    threads: int | None = 1
    analyze: str | None = None
    analyze_settings: dict[str, Any] = field(default_factory=dict)
    analysis_dir: str | None = None
    session: str = ""


def headlines(lab: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an ``analysis.json`` document written by ``lab``.

    >>> headlines("dynamics", {"fixed_points": {"n": 3, "n_slow": 0}, "lattice": {"matches": True}})
    {'fixed_points': 3, 'slow_points': 0, 'lattice_matches': True}
    """
    summary = doc.get("summary", doc) if lab == "attention" else doc
    out: dict[str, Any] = {}
    for column, path in HEADLINES.get(lab, {}).items():
        value: Any = summary
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict | list):
            out[column] = value
    return out


def _write_marker(run_dir: Path, session: str) -> int:
    """Record this process as the run's worker; returns the attempt number within this sweep session."""
    path = run_dir / WORKER_FILE
    attempt = 1
    if path.is_file():
        try:
            old = read_json(path)
            if old.get("session") == session:
                attempt = int(old.get("attempt", 0)) + 1
        except (ValueError, OSError):
            pass
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, {"pid": os.getpid(), "host": socket.gethostname(), "attempt": attempt, "session": session,
                      "started": time.time()})
    return attempt


def _analyse(job: RunJob) -> dict[str, Any]:
    """Run the job's lab analysis into ``analysis_dir`` (reusing an existing ``analysis.json``); its headlines."""
    assert job.analyze is not None and job.analysis_dir is not None
    out = Path(job.analysis_dir)
    if not (out / "analysis.json").is_file():
        if job.analyze == "dynamics":
            from innerworks.dynamics.analyze import AnalysisSettings, analyze_run

            analyze_run(job.run_dir, out, settings=AnalysisSettings(**job.analyze_settings), progress=False)
        else:
            from innerworks.attention.analyze import analyze_run as analyze_attention

            analyze_attention(job.run_dir, out, progress=False, **job.analyze_settings)
    return headlines(job.analyze, read_json(out / "analysis.json"))


def _train(job: RunJob) -> dict[str, Any]:
    """Train (or resume, or reuse) the run; what its ``metrics.json`` and ``run.json`` say."""
    import torch

    from innerworks.train.loop import train
    from innerworks.train.run import training_record

    before = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        result = train(job.recipe, job.run_dir, resume=True, device=job.device, progress=False)
    finally:
        torch.set_num_threads(before)
    metric = result.metrics.get("primary_metric", "accuracy")
    rec = training_record(job.run_dir)
    return {"metric": metric, "test": result.metrics.get("test", {}).get(metric),
            "wall_time_s": rec.get("wall_time_s"), "resumed_from_step": rec.get("resumed_from_step"),
            "device": rec.get("device")}


def run_one(job: RunJob) -> dict[str, Any]:
    """Train one run with ``resume=True`` (a checkpoint is continued, a finished run reused), then analyse it.

    Returns a record: ``name``, ``status`` (``done`` or ``failed``), ``attempt``, ``metric``, ``test``,
    ``wall_time_s`` (training time from ``run.json``), ``resumed_from_step``, ``analysis`` (headline numbers),
    ``task_s`` and ``cpu_s`` (wall and CPU seconds of this call) and ``error`` (one line) for a failure.
    Exceptions become failed records; only a dying process escapes.
    """
    run_dir = Path(job.run_dir)
    attempt = _write_marker(run_dir, job.session)
    rec: dict[str, Any] = {"name": job.name, "status": "done", "attempt": attempt, "host": socket.gethostname()}
    t0, c0 = time.perf_counter(), time.process_time()
    stage = "training"
    try:
        rec.update(_train(job))
        if job.analyze:
            stage = f"analyze {job.analyze}"
            rec["analysis"] = _analyse(job)
    except Exception as exc:  # noqa: BLE001 - reported per run, the sweep goes on
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        rec.update(status="failed", error=f"{stage}: {type(exc).__name__}: {first}")
    rec.update(task_s=round(time.perf_counter() - t0, 3), cpu_s=round(time.process_time() - c0, 3))
    (run_dir / WORKER_FILE).unlink(missing_ok=True)
    return rec


def marker(run_dir: str | Path, session: str) -> dict[str, Any] | None:
    """The ``worker.json`` of a run started in ``session``, or None (absent, unreadable or another session).

    >>> marker("/nonexistent", "s") is None
    True
    """
    path = Path(run_dir) / WORKER_FILE
    try:
        doc = read_json(path) if path.is_file() else None
    except (ValueError, OSError):
        return None
    return doc if isinstance(doc, dict) and doc.get("session") == session else None


__all__ = ["HEADLINES", "RunJob", "WORKER_FILE", "headlines", "marker", "run_one"]
