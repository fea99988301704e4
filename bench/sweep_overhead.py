"""Overhead of the Ray backend against the local backend: the same sweep of quick runs, both ways, in one process.

Run: ``.venv/bin/python bench/sweep_overhead.py [--runs 8] [--steps N] [--order local,ray]``. Each backend trains
the same ``--runs`` quick runs (seeds 0..runs-1, one CPU thread each, as many at once as the machine has cores) into
a fresh folder. Ray's time is end to end: starting a local Ray instance (``ray.init``), the sweep, and shutting it
down; the sweep alone is printed beside it. Goal: Ray within 15% of local. Prints the machine (CPU count and model)
and the load average before and after, since other work on the machine moves both numbers, and the mean CPU seconds
per run (the work itself, which load does not change) beside the mean training wall time.

Skipped (exit 0, with a line saying so) when Ray is not installed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from innerworks.utils.provenance import cpu_name

GOAL = 1.15


def _sweep(runs: int, steps: int | None) -> object:
    from innerworks.sweep import SweepSpec

    overrides = {"train.steps": steps} if steps else {}
    return SweepSpec.model_validate({"base": "quick", "grid": {"seed": list(range(runs))}, "overrides": overrides})


def _time_local(spec: object, out: Path) -> dict[str, float]:
    from innerworks.sweep import Backend, run_sweep

    t0 = time.perf_counter()
    result = run_sweep(spec, out, Backend.LOCAL, progress=False)
    wall = time.perf_counter() - t0
    assert result.ok, result.failed
    return {"total": wall, "sweep": wall, **_means(result)}


def _time_ray(spec: object, out: Path) -> dict[str, float]:
    import ray

    from innerworks.sweep import Backend, run_sweep
    from innerworks.sweep.ray_backend import local_instance_options

    t0 = time.perf_counter()
    ray.init(**local_instance_options())  # what `--backend ray` starts, timed apart from the sweep
    t1 = time.perf_counter()
    result = run_sweep(spec, out, Backend.RAY, progress=False)
    t2 = time.perf_counter()
    ray.shutdown()
    t3 = time.perf_counter()
    assert result.ok, result.failed
    return {"total": t3 - t0, "sweep": t2 - t1, "init": t1 - t0, "shutdown": t3 - t2, **_means(result)}


def _means(result: object) -> dict[str, float]:
    """Mean training wall time (run.json) and mean CPU seconds per run (the worker's, training included)."""
    out = {}
    for key, attr in (("train_mean", "wall_time_s"), ("cpu_mean", "cpu_s")):
        values = [getattr(r, attr) for r in result.runs if getattr(r, attr) is not None]
        out[key] = sum(values) / max(1, len(values))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8, help="quick runs per backend (seeds 0..runs-1)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default: the recipe's)")
    parser.add_argument("--order", default="local,ray", help="which backend goes first (load drifts)")
    args = parser.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        print("sweep_overhead: Ray is not installed (pip install 'innerworks[ray]'); skipped")
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    spec = _sweep(args.runs, args.steps)
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    print(f"machine: {os.cpu_count()} CPUs, {cpu_name()}; load before {os.getloadavg()}")
    times = {}
    for backend in args.order.split(","):
        timer = _time_local if backend == "local" else _time_ray
        times[backend] = timer(spec, root / backend)
    print(f"load after {os.getloadavg()}")
    loc, ray_t = times["local"], times["ray"]
    print(f"{args.runs} quick runs, {os.cpu_count()} at once; per run, mean training wall time: local "
          f"{loc['train_mean']:.1f} s, ray {ray_t['train_mean']:.1f} s; mean CPU time: local {loc['cpu_mean']:.1f} s, "
          f"ray {ray_t['cpu_mean']:.1f} s")
    print(f"local: {loc['total']:.1f} s")
    print(f"ray:   {ray_t['total']:.1f} s end to end (init {ray_t['init']:.1f} s, sweep {ray_t['sweep']:.1f} s, "
          f"shutdown {ray_t['shutdown']:.1f} s)")
    ratio, sweep_ratio = ray_t["total"] / loc["total"], ray_t["sweep"] / loc["total"]
    verdict = "within" if ratio <= GOAL else "over"
    print(f"ratio ray/local: {ratio:.3f} end to end ({verdict} the {GOAL:.2f} goal), {sweep_ratio:.3f} sweep only")


if __name__ == "__main__":
    main()
