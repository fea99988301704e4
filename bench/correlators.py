"""Benchmark: matrix-free correlator estimators against a Jacobian-materialising baseline, per Monte Carlo sample.

Network: the [DG] MLP (NTK parameterisation, no biases), 2 hidden layers of width n, tanh, d_in = 4, float32, so
P ≈ n² parameters. Quantities (one initialisation = one sample):

- E[dΘ(x1,x2)/dt] under MSE gradient flow on the notes' 4-point training set;
- C3 = ∂³f(x1)[∂f(x2), ∂f(x3), ∂f(x4)].

Ours, two ways (both O(P) memory: nothing of size P beyond the parameters and a few vectors):

- ``structured``: the default path for named correlators (:mod:`innerworks.wide.structured`: factored gradients and
  one multilinear forward pass; the weights are read a few times per sample);
- ``autodiff``: the torch.func fast paths of :mod:`innerworks.wide.estimators` (gradients + nested jvps).
Baseline (written here): the Jacobian-contraction recipe of the torch.func NTK tutorial and neural-tangents'
``implementation=1``, with derivatives of the kernel taken by ``jvp`` through it (as the notes' §7 JAX recipe):

- dΘ/dt: J_D = vmap(jacrev(f))(X_D) materialised [N_D, P]; g = J_Dᵀ r; Θ12(θ) = the contraction of the
  materialised Jacobian rows J(x1), J(x2) = vmap(jacrev(f))([x1, x2]); dΘ/dt = -jvp(Θ12, g).
- C3: J(x2..x4) = vmap(jacrev(f)) materialised [3, P]; C3 = jvp(jvp(θ -> vmap(jacrev(f))([x1]) · J2, J3), J4).

Each (method, quantity, width) runs in a fresh subprocess, so its peak RSS can be attributed to it: the reported
memory is the peak RSS during the calls minus the RSS just before them (parameters already allocated).
Run: ``python bench/correlators.py [--widths 256,...,16384] [--repeats 3] [--out runs/bench/correlators.json]``.
Times depend on the machine and its load; compare the ratio within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUANTITIES = ("dtheta_dt", "c3")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _worker(method: str, quantity: str, width: int, repeats: int, threads: int, queue: mp.Queue) -> None:
    import torch

    torch.set_num_threads(threads)
    # Warm up the same code path on a tiny net first, so one-time library allocations are not charged to the method.
    _make_run(method, quantity, 8, torch)[0]()
    run, num_params = _make_run(method, quantity, width, torch)
    before = _rss_bytes()
    try:
        value = run()  # warm-up (and the value, for the agreement check)
        times, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        queue.put({"ok": True, "value": value, "time_s": sorted(times)[len(times) // 2],
                   "cpu_s": sorted(cpus)[len(cpus) // 2], "peak_extra_bytes": max(0, peak - before),
                   "num_params": num_params})
    except (RuntimeError, MemoryError) as exc:  # e.g. an allocation failure
        queue.put({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}", "num_params": num_params})


def _make_run(method: str, quantity: str, width: int, torch: Any) -> tuple[Callable[[], float], int]:
    """(a closure computing one sample's value, the number of parameters); parameters are drawn here."""
    from torch.func import jacrev, jvp, vmap

    from innerworks.wide.estimators import default_dataset, default_points
    from innerworks.wide.networks import MLPConfig, mlp_apply
    from innerworks.wide.structured import StructuredWorkspace
    from innerworks.wide.workspace import FAST_PATHS, Workspace

    cfg = MLPConfig(width=width, depth=2, activation="tanh")
    params = cfg.init_params(1, seed=0)
    pts = {k: v.float() for k, v in default_points(["x1", "x2", "x3", "x4"], cfg.d_in, seed=0).items()}
    X, y = (t.float() for t in default_dataset(cfg.d_in, seed=0))

    if method == "structured":
        def run() -> float:
            sw = StructuredWorkspace(cfg, params, pts, (X, y))
            return float(sw.evaluate(quantity)[0])
    elif method == "autodiff":
        def run() -> float:
            ws = Workspace(cfg, params, pts, (X, y))
            return float(FAST_PATHS[quantity](ws, 0)[0])
    else:
        single = {k: v[0] for k, v in params.items()}

        def f1(th: dict, x: torch.Tensor) -> torch.Tensor:
            return mlp_apply(cfg, {k: v.unsqueeze(0) for k, v in th.items()}, x.reshape(1, -1))[0, 0]

        def jac(th: dict, xs: torch.Tensor) -> dict:
            return vmap(jacrev(f1), in_dims=(None, 0))(th, xs)  # materialised: [len(xs), *shape] per parameter

        def rowdot(a: dict, i: int, b: dict, j: int) -> torch.Tensor:
            return sum((a[k][i] * b[k][j]).sum() for k in a)

        x12 = torch.stack([pts["x1"], pts["x2"]])
        x1 = pts["x1"].reshape(1, -1)
        x234 = torch.stack([pts["x2"], pts["x3"], pts["x4"]])

        if quantity == "dtheta_dt":
            def run() -> float:
                JD = jac(single, X)
                r = torch.stack([f1(single, X[i]) for i in range(X.shape[0])]).detach() - y
                g = {k: torch.tensordot(r, JD[k], dims=1) for k in JD}
                del JD

                def theta12(th: dict) -> torch.Tensor:
                    J12 = jac(th, x12)
                    return rowdot(J12, 0, J12, 1)

                return float(-jvp(theta12, (single,), (g,))[1])
        else:
            def run() -> float:
                J234 = jac(single, x234)
                v = [{k: J234[k][i] for k in J234} for i in range(3)]
                del J234

                def d1(th: dict) -> torch.Tensor:
                    J1 = jac(th, x1)
                    return sum((J1[k][0] * v[0][k]).sum() for k in J1)

                def d2(th: dict) -> torch.Tensor:
                    return jvp(d1, (th,), (v[1],))[1]

                return float(jvp(d2, (single,), (v[2],))[1])

    return run, cfg.num_params


def measure(method: str, quantity: str, width: int, repeats: int, threads: int, timeout: float) -> dict:
    """Run one measurement in a fresh process; return its result dict."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_worker, args=(method, quantity, width, repeats, threads, q))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    if p.exitcode != 0:
        return {"ok": False, "error": f"process died (exit code {p.exitcode}; out of memory?)"}
    return q.get()


def needed_bytes(method: str, quantity: str, width: int) -> float:
    """Rough peak memory of a method: parameter-sized float32 vectors it holds at once (parameters included)."""
    P = width * width + 5 * width
    if method == "structured":
        vectors = 1.5
    elif method == "autodiff":
        vectors = 6
    else:  # materialised Jacobian rows plus their tangents
        vectors = 1 + (4 + 2 * 2 if quantity == "dtheta_dt" else 3 + 4)
    return 4.0 * P * vectors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="256,512,1024,2048,4096,8192,16384")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--max-gb", type=float, default=8.0,
                    help="skip a method whose parameter-sized vectors would exceed this many GiB")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    ap.add_argument("--out", default="runs/bench/correlators.json")
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    print(f"{'quantity':10s} {'width':>6s} {'params':>11s} | {'structured':>16s} | {'autodiff':>16s} | "
          f"{'baseline':>16s} | speed-up vs baseline", flush=True)
    print(f"{'':30s} | {'s':>8s} {'MiB':>7s} | {'s':>8s} {'MiB':>7s} | {'s':>8s} {'MiB':>7s} | structured autodiff",
          flush=True)
    for width in widths:
        for quantity in QUANTITIES:
            res = {}
            for method in ("structured", "autodiff", "baseline"):
                need = needed_bytes(method, quantity, width)
                if need > args.max_gb * 2**30:
                    res[method] = {"ok": False, "error": f"skipped: needs ~{need / 2**30:.1f} GiB (> --max-gb "
                                   f"{args.max_gb:g})"}
                    continue
                res[method] = measure(method, quantity, width, args.repeats, args.threads, args.timeout)
            base = res["baseline"]
            row = {"quantity": quantity, "width": width, "num_params": res["structured"].get("num_params"), **res}
            for method in ("structured", "autodiff"):
                r = res[method]
                if r["ok"] and base["ok"]:
                    row[f"speedup_{method}"] = base["time_s"] / r["time_s"]
                    row[f"agree_rel_{method}"] = abs(r["value"] - base["value"]) / max(abs(base["value"]), 1e-30)
            rows.append(row)

            def cell(r: dict) -> str:
                if not r["ok"]:
                    return f"{'—':>8s} {'—':>7s}"
                return f"{r['time_s']:8.3f} {r['peak_extra_bytes'] / 2**20:7.0f}"

            sp = " ".join(f"{row[f'speedup_{m}']:9.1f}x" if f"speedup_{m}" in row else f"{'—':>10s}"
                          for m in ("structured", "autodiff"))
            notes = "".join(f"   {m}: {r['error']}" for m, r in res.items() if not r["ok"])
            print(f"{quantity:10s} {width:6d} {row['num_params'] or 0:11d} | {cell(res['structured'])} | "
                  f"{cell(res['autodiff'])} | {cell(base)} | {sp}{notes}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "threads": args.threads, "repeats": args.repeats}, indent=2) + "\n")
    print(f"wrote {out}")
    for r in rows:
        if r["width"] == 4096 and "speedup_structured" in r:
            verdict = "meets" if r["speedup_structured"] >= 5 else "misses"
            print(f"{r['quantity']} at width 4096: structured is {r['speedup_structured']:.1f}x faster than the "
                  f"baseline ({verdict} the 5x target)")
    for r in rows:
        if r["structured"]["ok"] and r["width"] == max(widths):
            print(f"{r['quantity']} at width {r['width']}: structured {r['structured']['time_s']:.2f} s per sample, "
                  f"{r['structured']['peak_extra_bytes'] / 2**20:.0f} MiB above the parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
