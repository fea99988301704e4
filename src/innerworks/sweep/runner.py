"""``run_sweep``: check everything, skip what finished, train the rest on a backend, record every run as it ends.

>>> import tempfile
>>> spec = SweepSpec.model_validate({"base": "quick", "grid": {"seed": [0, 1]},
...                                  "overrides": {"train.steps": 2, "data.n_train": 200}})
>>> result = run_sweep(spec, tempfile.mkdtemp() + "/sweep", Backend.LOCAL, jobs=1, progress=False)
>>> result.ok, [r.name for r in result.runs], result.counts()["done"]
(True, ['seed-0', 'seed-1'], 2)
"""

from __future__ import annotations

import importlib.util
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from innerworks.errors import InnerworksError
from innerworks.sweep.local import InlinePool, LocalPool, machine_cpus
from innerworks.sweep.record import (
    SPEC_FILE,
    RunRecord,
    SweepLog,
    SweepResult,
    check_run_dirs,
    check_sweep_dir,
    finished_record,
    spec_yaml,
)
from innerworks.sweep.spec import SweepRun, SweepSpec, check_analysis_settings, load_sweep, plan_runs
from innerworks.sweep.worker import RunJob
from innerworks.utils.device import resolve_device
from innerworks.utils.io import atomic_write_text
from innerworks.utils.provenance import provenance


class Backend(str, Enum):
    """Where the runs train: ``LOCAL`` (worker processes on this machine) or ``RAY`` (Ray tasks, local or cluster).

    >>> Backend("ray") is Backend.RAY
    True
    """

    LOCAL = "local"
    RAY = "ray"


class Pool(Protocol):
    """What a backend offers the driver (see :mod:`innerworks.sweep.local` and :mod:`innerworks.sweep.ray_backend`)."""

    def submit(self, job: RunJob) -> None: ...
    def poll(self, timeout: float) -> list[dict[str, Any]]: ...
    def running(self) -> set[str]: ...
    def close(self) -> None: ...


def _backend(backend: Backend | str, gpus_per_run: float) -> Backend:
    try:
        b = Backend(backend.value if isinstance(backend, Backend) else str(backend).lower())
    except ValueError:
        raise InnerworksError(f"--backend {backend}: expected one of local, ray") from None
    if b is Backend.RAY and importlib.util.find_spec("ray") is None:
        from innerworks.sweep.ray_backend import ray_missing_message

        raise InnerworksError(ray_missing_message())
    if b is Backend.LOCAL and gpus_per_run:
        raise InnerworksError("--gpus-per-run: GPU shares are a Ray resource request; use --backend ray "
                              "(the local backend trains every run on --device)")
    return b


def _check_numbers(jobs: int | None, threads: int, gpus_per_run: float, max_retries: int) -> None:
    for option, value, low in (("--jobs", jobs, 1), ("--threads", threads, 1), ("--max-retries", max_retries, 0)):
        if value is not None and value < low:
            raise InnerworksError(f"{option}: expected at least {low}, got {value}")
    if gpus_per_run < 0 or (gpus_per_run > 1 and gpus_per_run != int(gpus_per_run)):
        raise InnerworksError(f"--gpus-per-run: expected 0, a fraction in (0, 1] or a whole number, got "
                              f"{gpus_per_run}")


def _check_device(device: str | None, remote: bool) -> None:
    """Check ``--device`` here; on a cluster (``remote``) only its form: the GPUs are on the nodes."""
    if device is None:
        return
    if remote and re.fullmatch(r"cpu|cuda(:\d+)?", device):
        return
    resolve_device(device, option="--device")


def _load(spec_or_path: SweepSpec | str | Path) -> tuple[SweepSpec, str]:
    if isinstance(spec_or_path, SweepSpec):
        if spec_or_path.analyze is not None:
            check_analysis_settings(spec_or_path.analyze)
        return spec_or_path, "sweep"
    return load_sweep(spec_or_path), str(spec_or_path)


def _make_pool(backend: Backend, n_pending: int, jobs: int | None, threads: int, gpus_per_run: float,
               max_retries: int, address: str | None) -> Pool:
    if backend is Backend.RAY:
        from innerworks.sweep.ray_backend import RayPool

        return RayPool(address, threads=threads, gpus_per_run=gpus_per_run, max_retries=max_retries, jobs=jobs)
    workers = min(n_pending, jobs or max(1, machine_cpus() // threads))
    return InlinePool() if workers == 1 else LocalPool(workers, max_retries=max_retries)


def _snapshot(records: dict[str, RunRecord], running: set[str]) -> list[RunRecord]:
    """The records with in-flight runs shown as ``running``."""
    return [replace(r, status="running") if r.status == "pending" and r.name in running else r
            for r in records.values()]


def _eta(elapsed: float, finished: int, remaining: int) -> str:
    if not finished or not remaining:
        return "eta -" if remaining else ""
    s = int(elapsed / finished * remaining)
    return f"eta {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _drive(pool: Pool, jobs: list[RunJob], records: dict[str, RunRecord], log: SweepLog, progress: bool,
           console: Console) -> None:
    """Submit every job, then poll the pool, updating one progress line and the sweep files as runs end."""
    for job in jobs:
        pool.submit(job)
    remaining = {j.name for j in jobs}
    t0, ended = time.monotonic(), 0
    columns = [TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
               TimeElapsedColumn(), TextColumn("{task.fields[eta]}")]
    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task("sweep", total=len(records), completed=len(records) - len(remaining), state="", eta="")
        while remaining:
            running = pool.running() & remaining
            done = sum(r.status == "done" for r in records.values())
            failed = sum(r.status == "failed" for r in records.values())
            state = f"[green]{done} done[/] {len(running)} running " + (f"[red]{failed} failed[/]" if failed else "")
            bar.update(task, completed=len(records) - len(remaining), state=state,
                       eta=_eta(time.monotonic() - t0, ended, len(remaining)))
            finished = pool.poll(0.5)
            for rec in finished:
                name = rec["name"]
                records[name] = records[name].updated(rec)
                remaining.discard(name)
                ended += 1
                if rec.get("status") == "failed":
                    console.print(f"[red]failed[/] {name}: {rec.get('error')}", highlight=False)
            if finished:
                log.write(_snapshot(records, pool.running()))
        bar.update(task, completed=len(records), state=f"[green]{sum(r.status == 'done' for r in records.values())}"
                   f" done[/] {sum(r.status == 'failed' for r in records.values())} failed", eta="")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the sweep runs, SIGTERM (a job scheduler's stop, ``kill``) ends it like Ctrl-C: workers stopped, the
    sweep files written, checkpoints kept. Only the main thread can set signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _header(spec: SweepSpec, source: str, backend: Backend, runs: list[SweepRun], options: dict[str, Any]) -> dict:
    return {"sweep": spec.model_dump(mode="json"), "source": source, "backend": backend.value, "options": options,
            "n_runs": len(runs), "seeds": sorted({r.recipe.seed for r in runs}), "provenance": provenance()}


def run_sweep(spec_or_path: SweepSpec | str | Path, out: str | Path, backend: Backend | str = Backend.LOCAL, *,
              address: str | None = None, jobs: int | None = None, threads: int = 1, gpus_per_run: float = 0.0,
              max_retries: int = 3, resume: bool = False, device: str | None = None, progress: bool = True,
              console: Console | None = None, ensembles: bool = False) -> SweepResult:
    """Train every run of a sweep into ``out/runs/<name>/`` and record them in ``out/sweep.json`` and ``sweep.csv``.

    Args:
        spec_or_path: a sweep file path, or a validated :class:`SweepSpec`.
        out: the sweep folder (created; an existing one only with ``resume`` and the same sweep).
        backend: :class:`Backend` (or ``"local"``/``"ray"``).
        address: Ray only: ``auto`` or ``ray://HOST:PORT`` joins a cluster; None starts Ray on this machine (or
            uses the Ray instance this process already started).
        jobs: runs at once (local default: CPUs // threads; ``1`` trains in this process; Ray default: all queued,
            Ray schedules them by resources).
        threads: CPU threads per run (torch threads; the Ray task's ``num_cpus``).
        gpus_per_run: Ray only: the GPU share each run requests (0.125: eight runs per GPU); implies ``cuda``.
        max_retries: times a run is restarted, from its last checkpoint, after its worker process died.
        resume: continue the sweep in ``out``; finished runs are read back, not trained again.
        device: ``cpu``, ``cuda`` or ``cuda:N`` for every run (default: each recipe's ``train.device``).
        progress: one progress line (runs done, running, failed, ETA) on ``console`` (default stderr).
        ensembles: local only: first train the runs that can stack (same architecture and training settings, other
            seeds or data) as batched ensembles (:func:`innerworks.train.parallel.train_many`), then record and
            analyse every run as usual. Faster on a CPU; members equal standalone runs up to float rounding.

    Every run's recipe is validated, and ``out`` checked, before any training starts. A failed run does not stop
    the others; the result says which failed and why.
    """
    spec, source = _load(spec_or_path)
    b = _backend(backend, gpus_per_run)
    _check_numbers(jobs, threads, gpus_per_run, max_retries)
    if device is None and gpus_per_run:
        device = "cuda"
    if address and b is not Backend.RAY:
        raise InnerworksError("--address: only with --backend ray")
    if ensembles and b is not Backend.LOCAL:
        raise InnerworksError("--ensembles: only with --backend local")
    _check_device(device, remote=bool(address))
    runs = plan_runs(spec, source)
    out_p = check_sweep_dir(out, spec, resume)
    check_run_dirs(out_p, runs)
    lab = spec.analyze.lab if spec.analyze else None
    records = {r.name: finished_record(out_p, r, lab) or RunRecord(r.name, r.params, seed=r.recipe.seed)
               for r in runs}
    session = uuid.uuid4().hex
    jobs_list = [_job(out_p, r, spec, device, threads, session) for r in runs if records[r.name].status != "done"]
    options = {"address": address, "jobs": jobs, "threads": threads, "gpus_per_run": gpus_per_run,
               "max_retries": max_retries, "device": device}
    log = SweepLog(out_p, _header(spec, source, b, runs, options), list(spec.grid))
    t0 = time.perf_counter()
    with _sigterm_as_interrupt():
        pool = _make_pool(b, len(jobs_list), jobs, threads, gpus_per_run, max_retries, address) if jobs_list else None
        try:  # the folder is written only once the backend is up (a Ray that cannot start leaves nothing behind)
            out_p.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out_p / SPEC_FILE, spec_yaml(spec))
            log.write(list(records.values()))
            if ensembles and jobs_list:
                _train_ensembles(jobs_list, out_p / "runs", device, jobs, threads, progress, console)
            if pool is not None:
                _drive(pool, jobs_list, records, log, progress, console or Console(stderr=True))
        finally:
            if pool is not None:
                pool.close()
            log.write(list(records.values()), finished=all(r.status != "pending" for r in records.values()))
    return SweepResult(out_p, tuple(records.values()), b.value, round(time.perf_counter() - t0, 3),
                       out_p / "sweep.json", out_p / "sweep.csv")


def _train_ensembles(jobs_list: list[RunJob], root: Path, device: str | None, jobs: int | None, threads: int,
                     progress: bool, console: Console | None) -> None:
    """Train the pending runs with ensembles first; the pool then finds them finished and records (and analyses)
    them. A run that fails here is trained again, alone, by the pool."""
    from innerworks.train.parallel import train_many

    recipes = {j.name: j.recipe for j in jobs_list}
    dev = device or jobs_list[0].recipe.train.device
    train_many(recipes, root, device=dev, jobs=jobs, threads=threads, progress=progress, console=console,
               ensembles=True)


def _job(out: Path, run: SweepRun, spec: SweepSpec, device: str | None, threads: int, session: str) -> RunJob:
    a = spec.analyze
    return RunJob(run.name, run.recipe, str(out / "runs" / run.name), device=device, threads=threads,
                  analyze=a.lab if a else None, analyze_settings=dict(a.settings) if a else {},
                  analysis_dir=str(out / "analysis" / run.name) if a else None, session=session)


__all__ = ["Backend", "run_sweep"]
