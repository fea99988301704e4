"""The Ray backend: each run is a Ray Core task with a resource request, retried when its worker dies.

Ray is imported here only (an optional extra: ``pip install 'innerworks[ray]'``). With no address the driver
starts a Ray instance on this machine (all its CPUs and GPUs, loopback address, no dashboard); ``auto`` or
``ray://HOST:10001`` joins a running cluster. A Ray instance already started in this process (``ray.init``) is used
as it is, and left running.

Why tasks (Ray Core) and not Ray Tune: a sweep here is a fixed grid of independent, deterministic runs, each already
checkpointing and resuming itself; Tune's trial scheduler, searchers and result storage would wrap the same loop
and add a second notion of checkpoints. A task per run keeps one code path with the local backend
(:func:`~innerworks.sweep.worker.run_one`) and Ray's ``max_retries`` gives the fault tolerance.

>>> ray_missing_message()
"--backend ray: Ray is not installed; install the extra with pip install 'innerworks[ray]'"
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from innerworks.errors import InnerworksError
from innerworks.sweep.local import machine_cpus
from innerworks.sweep.worker import RunJob, marker, run_one

_OBJECT_STORE = 256 * 2**20  # the runs exchange only small records; a small store starts faster


def ray_missing_message() -> str:
    """The one-line error for ``--backend ray`` without Ray installed."""
    return "--backend ray: Ray is not installed; install the extra with pip install 'innerworks[ray]'"


def import_ray() -> Any:
    """``import ray``, or an :class:`InnerworksError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InnerworksError(ray_missing_message()) from None
    return ray


def local_instance_options(num_cpus: int | None = None) -> dict[str, Any]:
    """``ray.init`` keyword arguments of the Ray instance a sweep starts on this machine: all its cores (or
    ``num_cpus``), loopback address, no dashboard, a small object store, worker output kept out of the terminal, and
    workers at normal priority (Ray's default niceness of 15 would let every other job on the machine take the cores
    from the runs, which the local backend's workers do not allow either).

    >>> local_instance_options(2)["num_cpus"], local_instance_options()["_system_config"]
    (2, {'worker_niceness': 0})
    """
    return {"num_cpus": num_cpus or machine_cpus(), "include_dashboard": False, "log_to_driver": False,
            "logging_level": logging.ERROR, "object_store_memory": _OBJECT_STORE, "_node_ip_address": "127.0.0.1",
            "_system_config": {"worker_niceness": 0}}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class RayPool:
    """Runs as Ray tasks: ``threads`` CPUs and ``gpus_per_run`` GPUs each, at most ``jobs`` in flight (None: all)."""

    def __init__(self, address: str | None = None, threads: int = 1, gpus_per_run: float = 0.0,
                 max_retries: int = 3, jobs: int | None = None) -> None:
        ray = self._ray = import_ray()
        self._owns = False
        if not ray.is_initialized():
            self._init(address)
        self._check_resources(threads, gpus_per_run)
        opts: dict[str, Any] = {"num_cpus": threads, "max_retries": max_retries, "retry_exceptions": False}
        if gpus_per_run:
            opts["num_gpus"] = gpus_per_run
        self._task = ray.remote(run_one).options(**opts)
        self._jobs = jobs
        self._queue: deque[RunJob] = deque()
        self._refs: dict[Any, RunJob] = {}
        self._seen_running: set[str] = set()
        self._last_scan = 0.0

    def _init(self, address: str | None) -> None:
        try:
            if address:
                self._ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            else:  # loopback and token-protected: Ray's warnings about that are noise here (logging_level)
                self._ray.init(**local_instance_options())
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"--address {address}" if address else "--backend ray"
            raise InnerworksError(f"{where}: could not start or reach Ray ({_first_line(exc)})") from None
        self._owns = True

    def _check_resources(self, threads: int, gpus: float) -> None:
        """A request the cluster cannot meet would wait forever: refuse it on an instance this pool started (its
        size is fixed); on a joined cluster (which may still scale up) only warn."""
        total = self._ray.cluster_resources()
        problem = None
        if threads > total.get("CPU", 0):
            problem = f"--threads {threads}: more than the {total.get('CPU', 0):g} CPUs Ray has"
        elif gpus and gpus > total.get("GPU", 0):
            problem = f"--gpus-per-run {gpus:g}: Ray sees {total.get('GPU', 0):g} GPUs"
        if problem and self._owns:
            raise InnerworksError(problem)
        if problem:
            logging.getLogger(__name__).warning("%s; the runs wait until the cluster has them", problem)

    def submit(self, job: RunJob) -> None:
        """Queue a run; it is sent to Ray while fewer than ``jobs`` are in flight."""
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and (self._jobs is None or len(self._refs) < self._jobs):
            job = self._queue.popleft()
            self._refs[self._task.remote(job)] = job

    def running(self) -> set[str]:
        """Runs in flight whose worker has started them (their ``worker.json``; scanned at most once a second)."""
        now = time.monotonic()
        if now - self._last_scan >= 1.0:
            self._last_scan = now
            for job in self._refs.values():
                if job.name not in self._seen_running and marker(job.run_dir, job.session) is not None:
                    self._seen_running.add(job.name)
        return self._seen_running & {j.name for j in self._refs.values()}

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        """Wait up to ``timeout`` s (``ray.wait``) and return the records of the runs that ended."""
        ray = self._ray
        if not self._refs:
            return []
        ready, rest = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        out = []
        for ref in ready:
            job = self._refs.pop(ref)
            self._seen_running.discard(job.name)
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayError as exc:  # worker died on every attempt, node lost, task cancelled
                out.append({"name": job.name, "status": "failed", "error": _first_line(exc)})
        self._dispatch()
        return out

    def close(self) -> None:
        """Cancel runs still in flight (they keep their checkpoints); shut Ray down if this pool started it."""
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort; the task may have just finished
                pass
        self._refs.clear()
        self._queue.clear()
        if self._owns:
            self._ray.shutdown()


__all__ = ["RayPool", "import_ray", "local_instance_options", "ray_missing_message"]
