"""Ensemble training against one process per run, measured in one run.

K copies of the built-in ``quick`` recipe (GRU-64, batch 64, 800 steps) that differ only in seed train, into fresh
folders, in these ways (interleaved ``--repeat`` times, so load changes hit every way alike):

- ``alone``: ``train_many(jobs=J)``, one run per worker process, one torch thread each (the baseline);
- ``ensembles``: ``train_many(jobs=J, ensembles=True)``: the K runs cut into J ensembles, one per worker, one
  thread each; once per ``--kernel`` (the GRU sequence as torch ops, or as the fused C++ extension, which is
  compiled before the clock starts; a worker still pays loading it);
- ``one ensemble`` (``--one``): ``train_ensemble`` of all K in this process with J torch threads.

For each way it prints the wall time and the CPU seconds (this process and its finished workers: on a machine
shared with other work the CPU time is the steadier figure), each as a speed-up over ``alone``, and the largest
gap between a member's final test accuracy and its standalone run's. The machine, torch version, threads and the
load average before and after come with the table.

    python bench/ensemble.py                       # K=8, J=2, CPU
    python bench/ensemble.py --steps 200 --one     # shorter; also the in-process ensemble
    python bench/ensemble.py --kernel cpp          # only the C++ kernel's ensembles beside the baseline
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from innerworks.train import load_recipe
from innerworks.train._grouped_kernel import ENV_VAR, GroupedKernel, cpp_available
from innerworks.train.ensemble import train_ensemble
from innerworks.train.parallel import train_many
from innerworks.utils.provenance import cpu_name


def _recipes(k: int, steps: int | None, device: str) -> dict:
    base = load_recipe("quick")
    update = {"device": device, **({"steps": steps} if steps else {})}
    train_cfg = base.train.model_copy(update=update)
    return {f"seed{i}": base.model_copy(update={"seed": i, "name": f"quick_seed{i}", "train": train_cfg})
            for i in range(k)}


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished (reaped) worker processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn, *args, **kwargs) -> tuple[float, float, dict]:
    c0, t0 = _cpu_s(), time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, _cpu_s() - c0, out


def _with_kernel(kernel: str, fn, *args, **kwargs) -> dict:
    """``fn(...)`` with ``$INNERWORKS_GROUPED_KERNEL`` set (worker processes inherit it)."""
    before = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = kernel
    try:
        return fn(*args, **kwargs)
    finally:
        if before is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = before


def _one(recipes: dict, root: Path, device: str, threads: int) -> dict:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return train_ensemble(recipes, root, device=device, progress=False)
    finally:
        torch.set_num_threads(before)


def _ways(args: argparse.Namespace, recipes: dict, kernels: list[str]) -> dict:
    """label -> function of a fresh root folder; the first is the baseline."""
    ways = {"alone (baseline)": lambda root: train_many(recipes, root, device=args.device, jobs=args.jobs,
                                                        threads=1, progress=False)}
    for kernel in kernels:
        ways[f"ensembles ({args.jobs} workers x 1 thread, {kernel})"] = (
            lambda root, kernel=kernel: _with_kernel(kernel, train_many, recipes, root, device=args.device,
                                                     jobs=args.jobs, threads=1, progress=False, ensembles=True))
        if args.one:
            ways[f"one ensemble (1 process x {args.jobs} threads, {kernel})"] = (
                lambda root, kernel=kernel: _with_kernel(kernel, _one, recipes, root, args.device, args.jobs))
    return ways


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8, help="runs")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (and threads of the one ensemble)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's 800 steps")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all ways, interleaved; the best is kept")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--one", action="store_true", help="also train all K as one in-process ensemble")
    ap.add_argument("--kernel", default="torch,cpp",
                    help="grouped GRU kernels to time, comma-separated (torch, cpp, auto)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    kernels = [GroupedKernel.parse(k.strip()).value for k in args.kernel.split(",") if k.strip()]
    if "cpp" in kernels and args.device != "cpu":  # the extension is a CPU kernel
        print(f"the C++ grouped kernel runs on the CPU only; timing the torch ops on {args.device}")
        kernels = [k for k in kernels if k != "cpp"] or ["torch"]
    if "cpp" in kernels and not cpp_available():  # compiles here, outside the timing
        print("the C++ grouped kernel does not compile here; timing the torch ops only")
        kernels = [k for k in kernels if k != "cpp"] or ["torch"]
    recipes = _recipes(args.k, args.steps, args.device)
    ways = _ways(args, recipes, kernels)
    load0 = os.getloadavg()
    best: dict[str, tuple[float, float, dict]] = {}
    for r in range(args.repeat):
        for i, (label, fn) in enumerate(ways.items()):
            wall, cpu, recs = _timed(fn, Path(tempfile.mkdtemp(prefix=f"bench_ensemble_{r}_{i}_")))
            prev = best.get(label, (wall, cpu, recs))
            best[label] = (min(wall, prev[0]), min(cpu, prev[1]), recs)
    load1 = os.getloadavg()
    t_alone, c_alone, alone = best["alone (baseline)"]
    print(f"\n## Ensemble training: {args.k} x quick GRU-64 ({args.steps or 800} steps), {args.device}, "
          f"jobs {args.jobs}")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 torch thread per worker; "
          f"load average before {load0[0]:.2f}, after {load1[0]:.2f}; best of {args.repeat}")
    print("\n| way | wall s | speed-up (wall) | CPU s | speed-up (CPU) | max test-accuracy gap vs alone (points) "
          "| failed |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for label, (wall, cpu, recs) in best.items():
        gaps = [abs(recs[n]["test"]["accuracy"] - alone[n]["test"]["accuracy"]) * 100 for n in recipes
                if recs[n]["status"] == "ok" and alone[n]["status"] == "ok"]
        failed = sum(r["status"] != "ok" for r in recs.values())
        gap = max(gaps) if gaps else float("nan")
        rows.append({"way": label, "wall_s": wall, "speedup_wall": t_alone / wall, "cpu_s": cpu,
                     "speedup_cpu": c_alone / cpu, "max_gap_points": gap, "failed": failed})
        print(f"| {label} | {wall:.1f} | {t_alone / wall:.2f}x | {cpu:.1f} | {c_alone / cpu:.2f}x | {gap:.2f} | "
              f"{failed} |")
    if args.json:
        args.json.write_text(json.dumps({"k": args.k, "jobs": args.jobs, "kernels": kernels, "steps": args.steps or 800,
                                         "machine": cpu_name(), "torch": torch.__version__,
                                         "load": [load0[0], load1[0]], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
