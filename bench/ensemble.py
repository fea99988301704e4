"""Ensemble training against one process per run (issue 14, goal 4), measured in one run.

K copies of the built-in ``quick`` recipe (GRU-64, 800 steps) that differ only in seed train three ways, into fresh
folders:

- ``alone``: ``train_many(jobs=J)``, one run per worker process, one torch thread each (the baseline);
- ``ensembles``: ``train_many(jobs=J, ensembles=True)``, which cuts the K runs into J ensembles, one per worker,
  one thread each;
- ``one ensemble`` (``--one``): ``train_ensemble`` of all K in this process with J torch threads (on a loaded
  2-core machine J threads oversubscribe the cores and this way is far slower, so it is off by default).

It prints wall times, the speed-up of each over ``alone``, the largest gap between a member's test accuracy and its
standalone run's, the machine and the load average before and after. ``--device cuda`` runs the same comparison on a
GPU (``bench/ensemble_gpu.sh``).

    python bench/ensemble.py                 # K=8, J=2, CPU
    python bench/ensemble.py --steps 100     # shorter
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from innerworks.train import load_recipe
from innerworks.train.ensemble import train_ensemble
from innerworks.train.parallel import train_many


def _recipes(k: int, steps: int | None, device: str) -> dict:
    base = load_recipe("quick")
    update = {"device": device, **({"steps": steps} if steps else {})}
    train_cfg = base.train.model_copy(update=update)
    return {f"seed{i}": base.model_copy(update={"seed": i, "name": f"quick_seed{i}", "train": train_cfg})
            for i in range(k)}


def _timed(fn, *args, **kwargs) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8, help="runs")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (and threads of the one ensemble)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's 800 steps")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--one", action="store_true", help="also train all K as one in-process ensemble")
    args = ap.parse_args()
    recipes = _recipes(args.k, args.steps, args.device)
    load0 = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="bench_ensemble_"))
    rows = []
    t_alone, alone = _timed(train_many, recipes, root / "alone", device=args.device, jobs=args.jobs, threads=1,
                            progress=False)
    rows.append(("alone (baseline)", t_alone, alone))
    t_ens, ens = _timed(train_many, recipes, root / "ensembles", device=args.device, jobs=args.jobs, threads=1,
                        progress=False, ensembles=True)
    rows.append((f"ensembles ({args.jobs} workers)", t_ens, ens))
    if args.one:
        torch.set_num_threads(args.jobs)
        t_one, one = _timed(train_ensemble, recipes, root / "one", device=args.device, progress=False)
        rows.append((f"one ensemble ({args.jobs} threads)", t_one, one))
    load1 = os.getloadavg()
    print(f"\n## Ensemble training: {args.k} x quick GRU-64 ({args.steps or 800} steps), {args.device}, "
          f"jobs {args.jobs}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}; load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    print("\n| way | wall s | speed-up vs alone | max abs. test-accuracy gap vs alone (points) | failed |")
    print("|---|---|---|---|---|")
    for label, wall, recs in rows:
        gaps = [abs(recs[n]["test"]["accuracy"] - alone[n]["test"]["accuracy"]) * 100 for n in recipes
                if recs[n]["status"] == "ok" and alone[n]["status"] == "ok"]
        failed = sum(r["status"] != "ok" for r in recs.values())
        print(f"| {label} | {wall:.1f} | {t_alone / wall:.2f}x | {max(gaps) if gaps else float('nan'):.2f} | "
              f"{failed} |")


if __name__ == "__main__":
    main()
