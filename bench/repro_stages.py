"""Time each stage of `innerworks repro all --quick`, alone and side by side.

Runs every stage sequentially (one torch thread each) and then all stages through `run_all` with one worker per
core, and prints a table: wall and CPU seconds per stage, the sequential sum, the parallel total, and their ratio.
Usage: `.venv/bin/python bench/repro_stages.py [--full] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path


def _cpu_seconds() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="time the full (non-quick) reproduction")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()
    import torch

    from innerworks.repro.all import _run_stage, run_all
    from innerworks.repro.registry import LABS as STAGES

    out = Path(args.out or tempfile.mkdtemp(prefix="repro-bench-"))
    torch.set_num_threads(1)
    rows = []
    for stage in STAGES:
        c0, t0 = _cpu_seconds(), time.perf_counter()
        record, _ = _run_stage(stage, out / "sequential", not args.full, "cpu", 0, False, 1, log=True)
        rows.append((stage.name, time.perf_counter() - t0, _cpu_seconds() - c0, record["status"]))
    t0 = time.perf_counter()
    result = run_all(out / "parallel", quick=not args.full, progress=False)
    parallel = time.perf_counter() - t0
    sequential = sum(r[1] for r in rows)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"{'stage':<12} {'wall s':>8} {'cpu s':>8}  status")
    for name, wall, cpu, status in rows:
        print(f"{name:<12} {wall:8.1f} {cpu:8.1f}  {status}")
    print(f"{'sequential':<12} {sequential:8.1f}")
    print(f"{'parallel':<12} {parallel:8.1f}   (run_all, {len(result.stages)} stages; "
          f"speed-up {sequential / parallel:.2f}x over the sequential sum)")
    print(f"all claims passed: {result.all_passed}; report: {result.report}")


if __name__ == "__main__":
    main()
