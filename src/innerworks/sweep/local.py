"""The local backend: a pool of spawned worker processes on this machine, each training one run at a time.

Unlike a ``concurrent.futures`` pool, a worker that dies (killed, out of memory) costs only its own run: the driver
sees the process's end, starts a fresh worker and gives the run to it again (up to ``max_retries`` times); the run
continues from its last checkpoint. Workers exit when the driver process goes away.

>>> pool = LocalPool(workers=1, max_retries=0)
>>> pool.poll(0.01), pool.running(), pool.close()
([], set(), None)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from innerworks.sweep.worker import RunJob, run_one


def machine_cpus() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one).

    >>> machine_cpus() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _watch_parent(ppid: int) -> None:
    """Exit this worker once its driver is gone (also when the driver was killed with SIGKILL)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != ppid:
            os._exit(1)


def _worker_main(conn: Connection, ppid: int) -> None:
    """Worker process: take jobs from ``conn``, send back :func:`run_one`'s record; ``None`` ends it.

    Ctrl-C is the driver's to handle (it stops the workers); a worker ignores SIGINT so it prints no traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(ppid,), daemon=True).start()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(run_one(job))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    job: RunJob | None = None


def died_record(job: RunJob, exitcode: int | None, attempts: int) -> dict[str, Any]:
    """The record of a run whose worker process died on every attempt.

    >>> died_record(RunJob("r", None, "/tmp/r"), -9, 2)["error"]
    'worker died (exit code -9) on all 2 attempts; the run directory keeps its last checkpoint'
    """
    return {"name": job.name, "status": "failed", "attempt": attempts,
            "error": f"worker died (exit code {exitcode}) on all {attempts} attempts; the run directory keeps its "
                     "last checkpoint"}


class LocalPool:
    """At most ``workers`` spawned processes training queued :class:`RunJob` s; per-run retries of dead workers."""

    def __init__(self, workers: int, max_retries: int = 3) -> None:
        self._ctx = mp.get_context("spawn")
        self._size = workers
        self._max_retries = max_retries
        self._queue: deque[RunJob] = deque()
        self._workers: list[_Worker] = []
        self._deaths: dict[str, int] = {}

    def submit(self, job: RunJob) -> None:
        """Queue a run; it starts when a worker is free."""
        self._queue.append(job)

    def running(self) -> set[str]:
        """Names of the runs a worker holds now."""
        return {w.job.name for w in self._workers if w.job is not None}

    def _start_worker(self) -> _Worker:
        here, there = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(there, os.getpid()), daemon=True)
        proc.start()
        there.close()
        worker = _Worker(proc, here)
        self._workers.append(worker)
        return worker

    def _dispatch(self) -> None:
        idle = [w for w in self._workers if w.job is None]
        while self._queue and (idle or len(self._workers) < self._size):
            worker = idle.pop() if idle else self._start_worker()
            worker.job = self._queue.popleft()
            worker.conn.send(worker.job)

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        """Start queued runs on free workers, wait up to ``timeout`` s, return the records of runs that ended."""
        self._dispatch()
        busy = [w for w in self._workers if w.job is not None]
        if not busy:
            return []
        ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout))
        out = []
        for w in busy:
            if w.conn in ready or w.proc.sentinel in ready:
                rec = self._collect(w)
                if rec is not None:
                    out.append(rec)
        self._dispatch()
        return out

    def _collect(self, w: _Worker) -> dict[str, Any] | None:
        """The record of ``w``'s run, or None when its worker died and the run was queued again."""
        job = w.job
        assert job is not None
        try:
            if w.conn.poll():
                rec = w.conn.recv()
                w.job = None
                return rec
        except (EOFError, OSError):
            pass
        w.proc.join(timeout=5)
        if w.proc.is_alive():  # the pipe broke but the process lives on: end it before retrying
            w.proc.kill()
            w.proc.join()
        self._workers.remove(w)
        w.conn.close()
        deaths = self._deaths[job.name] = self._deaths.get(job.name, 0) + 1
        if deaths <= self._max_retries:
            self._queue.appendleft(job)
            return None
        return died_record(job, w.proc.exitcode, deaths)

    def close(self) -> None:
        """Stop every worker (a run in progress keeps its last checkpoint)."""
        for w in self._workers:
            try:
                if w.job is None:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5
        for w in self._workers:
            if w.job is not None:
                w.proc.terminate()
            w.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
        self._workers.clear()


class InlinePool:
    """One run at a time in this process (``--jobs 1`` on the local backend): no worker start-up, no retries.

    >>> InlinePool().poll(0.0)
    []
    """

    def __init__(self) -> None:
        self._queue: deque[RunJob] = deque()

    def submit(self, job: RunJob) -> None:
        """Queue a run."""
        self._queue.append(job)

    def running(self) -> set[str]:
        """The run that the next :meth:`poll` trains (the driver shows it as running while it trains)."""
        return {self._queue[0].name} if self._queue else set()

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        """Train the next queued run here and return its record."""
        if not self._queue:
            return []
        return [run_one(self._queue.popleft())]

    def close(self) -> None:
        """Nothing to stop."""
        self._queue.clear()


__all__ = ["InlinePool", "LocalPool", "died_record", "machine_cpus"]
