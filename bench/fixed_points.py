"""Benchmark: innerworks' fixed-point finder against a FixedPointFinder-style joint Adam search, same nets and starts.

Networks (trained here with the shared loop, cached under ``--work``):

- ``flipflop_tanh16``: the 3-bit tanh-16 flip-flop (built-in recipe ``flipflop/tanh16``; 27 fixed points);
- ``flipflop_gru16``: the GRU-16 flip-flop (built-in recipe ``flipflop/gru16``; FixedPointFinder's README: GRU fixed
  points "not working as expected");
- ``flipflop_gru32``: the same recipe with 32 units;
- ``synthetic_gru128``: GRU-128 on 3-class categorical synthetic data (``synthetic/categorical3_gru``,
  shortened to ``--synthetic-steps``);
- ``ag_news_gru256``: GRU-256 on AG News (``natural/ag_news_quick`` with 256 units).

Starts: ``--starts`` (1024) visited states drawn with one seed, plus Gaussian noise (0.5 for the flip-flops, as in
FixedPointFinder's example; none for the classifiers). Both methods get exactly these starts and the zero input.

Baseline (written here from FixedPointFinder's documented Torch algorithm; anchors.md §1): one Adam optimiser over
all starts minimising the MEAN of ``q = ½‖F(h) − h‖²`` (lr 1.0, torch defaults otherwise), ReduceLROnPlateau
(factor 0.95, patience 2) on the mean q, stop when EVERY point has ``q < tol_q = 1e-12`` or ``|Δq| < 1e-20·lr``, or
at ``max_iters`` (5000, FixedPointFinder's default); then unique points (element-wise within 1e-3, lowest q kept),
outlier removal (distance from the starts' centroid > 10× their mean distance) and Jacobian eigenvalues. It runs in
float64 on the same step function as ours (FixedPointFinder uses the model's float32, which cannot reach a 1e-8
residual), so the comparison is about the algorithm only.

Ours: :func:`innerworks.dynamics.find_fixed_points` (per-point Newton/LM, certificate ``‖F(h) − h‖ < 1e-8``,
float64, duplicates merged within 1e-3, eigenvalues included), in its default ``newton`` mode and in ``both``
(Newton + Adam exploration, the setting that recovers saddles).

"Certified unique points" (``cert.``): points with ``‖F(h) − h‖ < 1e-8`` (float64), merged greedily within 1e-3
(Euclidean), counted the same way for every method; ``q<1e-12`` counts them at FixedPointFinder's own tolerance
(speed < 1.41e-6) instead; ``unique`` is each method's own count (the baseline's has no residual filter).
Ratio = baseline wall time / ours; cpu ratio = the same with process CPU time (steadier on a shared, loaded
machine, where wall time also counts waiting for a core). Target: >= 20x faster with at least as many certified
points.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/fixed_points.py [--starts 1024] [--json PATH]``. It trains the five
nets on first use (a few CPU-minutes; ``--work`` caches them). Times depend on the machine and its load (CPU time is
reported beside wall time); compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from innerworks.dynamics import as_step, find_fixed_points
from innerworks.dynamics._solver import greedy_unique
from innerworks.dynamics.geometry import centroid_distance_ratio
from innerworks.dynamics.linearize import eigsorted, n_unstable_modes
from innerworks.train import load_recipe, train
from innerworks.train.config import parse_recipe
from innerworks.utils.provenance import cpu_name

CERT = 1e-8
FPF_CERT = (2 * 1e-12) ** 0.5  # FixedPointFinder's own convergence, q < tol_q = 1e-12, as a speed (1.41e-6)
UNIQUE = 1e-3
TARGET_RATIO = 20.0


# ------------------------------------------------------------------------------------------------------- networks
def _recipe(name: str, path: str, **over: Any) -> Any:
    import yaml

    from innerworks.train.config import resolve_recipe_path

    raw = yaml.safe_load(resolve_recipe_path(path).read_text(encoding="utf-8"))
    for section, values in over.items():
        raw[section] = {**raw.get(section, {}), **values}
    raw["name"] = name
    return parse_recipe(raw, source=path)


def build_nets(work: Path, synthetic_steps: int, ag_steps: int, wanted: list[str] | None = None) -> dict[str, Any]:
    """Train (or reload) the networks (all five, or those ``wanted``); return ``{name: (model, states [N, S],
    noise, test accuracy)}``."""
    recipes = {
        "flipflop_tanh16": load_recipe("flipflop/tanh16"),
        "flipflop_gru16": load_recipe("flipflop/gru16"),
        "flipflop_gru32": _recipe("flipflop_gru32", "flipflop/gru16", model={"hidden_size": 32}),
        "synthetic_gru128": _recipe("synthetic_gru128", "synthetic/categorical3_gru",
                                    data={"length": 30, "min_length": 20, "n_train": 20000, "n_val": 1000,
                                          "n_test": 2000},
                                    train={"steps": synthetic_steps, "batch_size": 64, "eval_every": synthetic_steps,
                                           "checkpoint_every": synthetic_steps}),
        "ag_news_gru256": _recipe("ag_news_gru256", "natural/ag_news_quick", model={"hidden_size": 256},
                                  train={"steps": ag_steps, "eval_every": ag_steps, "checkpoint_every": ag_steps}),
    }
    nets = {}
    for name, recipe in recipes.items():
        if wanted is not None and name not in wanted:
            continue
        t0 = time.perf_counter()
        res = train(recipe, work / name, resume=True, progress=False)
        model = res.model.cpu().eval()
        test = res.data.test
        with torch.no_grad():
            if recipe.task == "flipflop":
                states = model.states(test.inputs[:256]).reshape(-1, model.cell.state_size)
                noise = 0.5
            else:
                hs = model.states(test.tokens[:500])
                mask = torch.arange(hs.shape[1]).unsqueeze(0) < test.lengths[:500].unsqueeze(1)
                states = hs[mask]
                noise = 0.0
        acc = res.metrics["test"]["accuracy"]
        print(f"  {name}: test accuracy {acc:.3f}, {states.shape[0]} visited states "
              f"({time.perf_counter() - t0:.1f} s train/load)")
        nets[name] = (model, states.double(), noise, acc)
    return nets


def make_starts(states: torch.Tensor, n: int, noise: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(states.shape[0], generator=gen)[:n]
    starts = states[pick].clone()
    if noise > 0:
        starts += noise * torch.randn(starts.shape, generator=gen, dtype=torch.float64)
    return starts


# ------------------------------------------------------------------------------------------------------- baseline
def fpf_joint_adam(model: Any, starts: torch.Tensor, lr_init: float = 1.0, tol_q: float = 1e-12,
                   tol_dq: float = 1e-20, max_iters: int = 5000, tol_unique: float = 1e-3,
                   outlier_scale: float = 10.0) -> dict[str, Any]:
    """FixedPointFinder's Torch algorithm (joint Adam on mean q), float64, then unique/outliers/eigenvalues."""
    step = as_step(model)
    x_in = step.zero_inputs(starts.shape[0])
    t0, c0 = time.perf_counter(), time.process_time()
    x = starts.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr_init)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.95, patience=2)
    q_prev = torch.full((starts.shape[0],), float("nan"), dtype=torch.float64)
    it = 0
    for it in range(1, max_iters + 1):
        opt.zero_grad()
        dx = step(x_in, x) - x
        q_b = 0.5 * (dx * dx).sum(dim=1)
        q = q_b.mean()
        q.backward()
        opt.step()
        sched.step(float(q.detach()))
        with torch.no_grad():
            lr = opt.param_groups[0]["lr"]
            dq = (q_prev - q_b.detach()).abs()
            q_prev = q_b.detach().clone()
            if it > 1 and bool(((q_b < tol_q) | (dq < tol_dq * lr)).all()):
                break
    with torch.no_grad():
        pts = x.detach()
        q_b = 0.5 * ((step(x_in, pts) - pts) ** 2).sum(dim=1)
        # unique: element-wise within tol_unique, lowest q kept (FixedPointFinder's get_unique)
        order = torch.argsort(q_b)
        keep: list[int] = []
        for i in order.tolist():  # one vectorised comparison per point (FPF loops over pairs in Python)
            if not keep or bool(((pts[keep] - pts[i]).abs().amax(dim=1) > tol_unique).all()):
                keep.append(i)
        uniq = pts[keep]
        uq = q_b[keep]
        n_before_outliers = int(uniq.shape[0])
        # outliers: distance from the starts' centroid over their mean distance
        dist_ratio = centroid_distance_ratio(uniq, starts)
        inlier = dist_ratio <= outlier_scale
        uniq, uq = uniq[inlier], uq[inlier]
        ev = eigsorted(step.jacobian(step.zero_inputs(uniq.shape[0]), uniq), vectors=False).eigenvalues \
            if uniq.shape[0] else torch.zeros(0, starts.shape[1], dtype=torch.complex128)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    speed = (2 * uq).sqrt()
    return {"points": uniq, "speeds": speed, "eigenvalues": ev, "iterations": it, "wall_s": wall, "cpu_s": cpu,
            "n_unique_own_rule": int(uniq.shape[0]), "n_unique_before_outliers": n_before_outliers,
            "median_distance_ratio": float(dist_ratio.median()) if dist_ratio.numel() else None,
            "final_lr": opt.param_groups[0]["lr"],
            "all_q_below_tol": bool((q_b < tol_q).all()), "max_q": float(q_b.max()), "median_q": float(q_b.median())}


def certified_unique(points: torch.Tensor, speeds: torch.Tensor, eigenvalues: torch.Tensor) -> dict[str, Any]:
    """Count points with speed < 1e-8 (and, for reference, < FixedPointFinder's own 1.41e-6), merged within 1e-3
    (Euclidean), with the stability histogram of the 1e-8 set."""
    out: dict[str, Any] = {}
    for key, tol in (("certified_unique", CERT), ("converged_unique_fpf_tol", FPF_CERT)):
        ok = speeds < tol
        p, s, e = points[ok], speeds[ok], eigenvalues[ok]
        keep, _ = greedy_unique(p, s, UNIQUE)
        out[key] = int(keep.numel())
        if key == "certified_unique":
            nu = n_unstable_modes(e[keep]) if keep.numel() else torch.zeros(0, dtype=torch.long)
            out["histogram"] = ({int(k): int(v) for k, v in enumerate(torch.bincount(nu).tolist()) if v}
                                if nu.numel() else {})
    return out


def ours(model: Any, starts: torch.Tensor, mode: str) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    fps = find_fixed_points(model, starts, unique_tol=UNIQUE, mode=mode)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"points": fps.points, "speeds": fps.residuals, "eigenvalues": fps.eigenvalues, "wall_s": wall,
            "cpu_s": cpu, "n_unique_own_rule": len(fps), "outcomes": fps.meta.get("outcomes", {}),
            "n_slow": len(fps.slow) if fps.slow is not None else 0,
            "iterations_median": fps.meta.get("lm_iterations_median"), "jacobians": fps.meta.get("jacobians"),
            "factorizations": fps.meta.get("factorizations")}


def scaling(net: Any, counts: list[int], seed: int) -> list[dict[str, Any]]:
    """Goal 2: the default call's CPU time per start as the starts grow (flat within 2x), peak memory aside."""
    model, states, noise, _ = net
    rows = []
    print(f"\n{'starts':>7} {'wall s':>8} {'cpu s':>8} {'cpu ms/start':>12} {'points':>6}  vs first")
    for n in counts:
        starts = make_starts(states, n, noise, seed) if n <= states.shape[0] else torch.cat(
            [make_starts(states, states.shape[0], noise, seed + i) for i in range(-(-n // states.shape[0]))])[:n]
        r = ours(model, starts, "newton")
        per = 1e3 * r["cpu_s"] / n
        rows.append({"starts": n, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "cpu_ms_per_start": per,
                     "points": r["n_unique_own_rule"]})
        print(f"{n:7d} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {per:12.4f} {r['n_unique_own_rule']:6d}  "
              f"{per / rows[0]['cpu_ms_per_start']:.2f}x")
    return rows


# ------------------------------------------------------------------------------------------------------------ main
def machine_record(**extra: Any) -> dict[str, Any]:
    """The machine, versions, threads and the load average now; printed as one line and returned."""
    machine = {"platform": platform.platform(), "cpu": cpu_name(), "cores": os.cpu_count(),
               "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               **extra, "load_average": os.getloadavg()}
    print("machine: " + " | ".join(f"{k} {v}" for k, v in machine.items()))
    return machine


def finish(results: dict[str, Any], json_path: Path | None) -> None:
    """Record and print the load average after the run; write ``results`` to ``json_path`` when given."""
    results["load_average_after"] = os.getloadavg()
    print(f"\nload average before {results['machine']['load_average'][0]:.2f}, "
          f"after {results['load_average_after'][0]:.2f}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        print(f"\nwrote {json_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=1024)
    parser.add_argument("--max-iters", type=int, default=5000, help="baseline iteration cap (FPF default 5000)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "innerworks_bench_fp",
                        help="trained networks are cached here")
    parser.add_argument("--synthetic-steps", type=int, default=800)
    parser.add_argument("--ag-steps", type=int, default=600)
    parser.add_argument("--nets", default="flipflop_tanh16,flipflop_gru16,flipflop_gru32,synthetic_gru128,"
                        "ag_news_gru256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--scaling", default="1024,4096,16384",
                        help="start counts for the cost-per-start table on the first net ('' skips it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = machine_record(device="cpu")
    print("training / loading networks ...")
    wanted = [n.strip() for n in args.nets.split(",") if n.strip()]
    nets = build_nets(args.work, args.synthetic_steps, args.ag_steps, wanted)
    results: dict[str, Any] = {"machine": machine, "settings": vars(args) | {"work": str(args.work),
                                                                             "json": str(args.json)}, "nets": {}}
    header = (f"{'network':<18} {'method':<18} {'wall s':>8} {'cpu s':>8} {'iters':>6} {'unique':>6} "
              f"{'q<1e-12':>7} {'cert.':>5}  certified: unstable modes -> count   ratio  cpu ratio")
    print("\n" + header + "\n" + "-" * len(header))
    for name in wanted:
        model, states, noise, acc = nets[name]
        starts = make_starts(states, args.starts, noise, args.seed)
        rows: dict[str, Any] = {}
        base = fpf_joint_adam(model, starts, max_iters=args.max_iters)
        rows["fpf_joint_adam"] = base | certified_unique(base["points"], base["speeds"], base["eigenvalues"])
        for mode in ("newton", "both"):
            r = ours(model, starts, mode)
            rows[f"innerworks_{mode}"] = r | certified_unique(r["points"], r["speeds"], r["eigenvalues"])
        for key, r in rows.items():
            ratio = rows["fpf_joint_adam"]["wall_s"] / r["wall_s"] if key != "fpf_joint_adam" else 1.0
            cpu_ratio = rows["fpf_joint_adam"]["cpu_s"] / max(r["cpu_s"], 1e-9) if key != "fpf_joint_adam" else 1.0
            r["ratio_vs_baseline"], r["cpu_ratio_vs_baseline"] = ratio, cpu_ratio
            iters = r.get("iterations", r.get("iterations_median"))
            print(f"{name:<18} {key:<18} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {iters!s:>6} "
                  f"{r['n_unique_own_rule']:6d} {r['converged_unique_fpf_tol']:7d} {r['certified_unique']:5d}  "
                  f"{str(r['histogram']):<34} "
                  f"{'' if key == 'fpf_joint_adam' else f'{ratio:6.1f}x {cpu_ratio:9.1f}x'}")
        best = rows["innerworks_newton"]
        verdict = {"ratio_newton": best["ratio_vs_baseline"],
                   "ratio_both": rows["innerworks_both"]["ratio_vs_baseline"],
                   "faster_20x": best["ratio_vs_baseline"] >= TARGET_RATIO,
                   "at_least_as_many_certified_newton": best["certified_unique"] >=
                   rows["fpf_joint_adam"]["certified_unique"],
                   "at_least_as_many_certified_both": rows["innerworks_both"]["certified_unique"] >=
                   rows["fpf_joint_adam"]["certified_unique"]}
        print(f"{'':<18} baseline: {base['iterations']} iterations (final lr {base['final_lr']:.3g}, max q "
              f"{base['max_q']:.2e}, median q {base['median_q']:.2e}, all q < 1e-12: {base['all_q_below_tol']}); "
              f"{base['n_unique_before_outliers']} unique before its outlier filter (median distance "
              f"{base['median_distance_ratio']:.3g}x the starts' spread); ours (newton): "
              f"{rows['innerworks_newton'].get('outcomes')}, {rows['innerworks_newton'].get('n_slow')} slow points, "
              f"{rows['innerworks_newton'].get('factorizations')} LU factorisations; "
              f"target >= {TARGET_RATIO:.0f}x: {'met' if verdict['faster_20x'] else 'MISSED'}")
        results["nets"][name] = {
            "test_accuracy": acc, "state_size": int(states.shape[1]), "n_starts": int(starts.shape[0]),
            "start_noise": noise, "verdict": verdict,
            "methods": {k: {kk: vv for kk, vv in v.items() if kk not in ("points", "speeds", "eigenvalues")}
                        for k, v in rows.items()}}
    counts = [int(c) for c in args.scaling.split(",") if c.strip()]
    if counts and wanted:
        results["scaling"] = scaling(nets[wanted[0]], counts, args.seed)
    finish(results, args.json)


if __name__ == "__main__":
    main()
