"""Benchmark: the slow-point manifold by Gauss–Newton against the authors' joint Adam, same tolerance, same starts.

Networks (trained with the shared loop on first use, cached under ``--work``, shared with ``bench/fixed_points.py``):

- ``synthetic4_gru128``: GRU-128 on 4-class categorical synthetic data (``synthetic/categorical4_gru``, documents
  of 20-30 tokens, ``--synthetic-steps`` steps of batch 64);
- ``ag_news_gru256``: GRU-256 on AG News (``natural/ag_news_quick`` with 256 units, the fixed-point bench's net).

Starts: the integration lab's (:func:`innerworks.dynamics.manifold.find_manifold_points`): ``--starts`` visited
states of ``--docs`` test documents drawn with its seed rule, plus N(0, 0.4²) noise; zero input.

Tolerances (``--tol``): ``aitken`` = :func:`~innerworks.dynamics.aitken_q_tol` of the mean token step (the authors'
rule, speed ≤ 22% of a token's move) and ``5e-6`` (the lab's ``manifold_speed_tol``); any number is a q tolerance.

Baseline: :func:`~innerworks.dynamics.find_slow_points` with its defaults (the lab's call): joint Adam lr 0.01 until
the batch mean q ≤ tol (at most ``--max-iters``), then points whose own q is above it dropped. Fast:
the same call with ``method="gauss_newton"``. Both then drop outliers (> 10× the visited states' mean distance from
their centroid), as the lab does. Counts: ``kept`` (the lab's ``unique_tol=0.0``) and ``uniq`` (the authors' greedy
dedup within 0.025). Geometry of each cloud: participation ratio of the PCA variances (PR), the 95%-variance
dimension, Levina–Bickel (k=20), the median centroid-distance ratio (spread against the visited states), and
``nn``: the median distance from each fast point to the nearest baseline point over the baseline cloud's RMS radius
(near 0 when the fast points lie on the baseline's cloud).

``adam_each`` (at the ``--each-tol`` tolerances): per-point Adam (``stop="each"``), which converges every start it
can, as Gauss–Newton does; its count is the one the fast method should match when the mean rule drops many starts.

Ratio = baseline wall time / fast wall time (the fast method runs before and after the baseline; its mean time is
used); the CPU-time ratio is printed beside it (on a loaded machine it is the steadier of the two).
Target: >= 10x with counts within 5%.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/slow_points.py [--starts 512] [--json PATH]``; the integration
lab's full size is ``--starts 9000 --docs 1000 --max-iters 10000``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
from fixed_points import _recipe, finish, machine_record

from innerworks.dynamics import aitken_q_tol, find_slow_points, levina_bickel, mean_step_size
from innerworks.dynamics._solver import greedy_unique
from innerworks.dynamics.geometry import centroid_distance_ratio, pca_dimension
from innerworks.train import train

TARGET_RATIO = 10.0
COUNT_TOL = 0.05
OUTLIER_SCALE = 10.0
AUTHORS_UNIQUE = 0.025


def recipes(synthetic_steps: int, ag_steps: int) -> dict[str, Any]:
    return {
        "synthetic4_gru128": _recipe("synthetic4_gru128", "synthetic/categorical4_gru",
                                     data={"length": 30, "min_length": 20, "n_train": 20000, "n_val": 1000,
                                           "n_test": 2000},
                                     model={"hidden_size": 128},
                                     train={"steps": synthetic_steps, "batch_size": 64, "eval_every": synthetic_steps,
                                            "checkpoint_every": synthetic_steps}),
        "ag_news_gru256": _recipe("ag_news_gru256", "natural/ag_news_quick", model={"hidden_size": 256},
                                  train={"steps": ag_steps, "eval_every": ag_steps, "checkpoint_every": ag_steps}),
    }


def load_net(recipe: Any, work: Path, n_docs: int) -> tuple[Any, torch.Tensor, float, float]:
    """Model, visited states ``[N, S]`` of ``n_docs`` test documents, mean token step, test accuracy."""
    res = train(recipe, work / recipe.name, resume=True, progress=False)
    model = res.model.cpu().eval()
    test = res.data.test
    with torch.no_grad():
        hs = model.states(test.tokens[:n_docs]).double()
        h0 = model.cell.initial_state(1)[0].double()
    lengths = test.lengths[:n_docs]
    mask = torch.arange(hs.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return model, hs[mask], mean_step_size(hs, lengths, h0), float(res.metrics["test"]["accuracy"])


def lab_starts(states: torch.Tensor, n: int, noise: float, seed: int) -> torch.Tensor:
    """The starts :func:`~innerworks.dynamics.manifold.find_manifold_points` draws (same rule, same seed)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(states.shape[0], (n,), generator=gen) if n > states.shape[0] else \
        torch.randperm(states.shape[0], generator=gen)[:n]
    starts = states[idx].double()
    return starts + noise * torch.randn(starts.shape, generator=gen, dtype=starts.dtype)


def run(model: Any, starts: torch.Tensor, tol: float, method: str, max_iters: int,
        stop: str = "mean") -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    sp = find_slow_points(model, starts, q_tol=tol, max_iters=max_iters, unique_tol=0.0, method=method, stop=stop)
    return {"sp": sp, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def describe(sp: Any, states: torch.Tensor, ref: torch.Tensor | None) -> dict[str, Any]:
    """Counts and geometry of the outlier-filtered cloud."""
    near = centroid_distance_ratio(sp.points, states) <= OUTLIER_SCALE
    pts, speeds, rows = sp.points[near], sp.speeds[near], sp.start_index[near]
    out: dict[str, Any] = {"converged": sp.meta["n_converged"], "kept": int(pts.shape[0]),
                           "unique_0.025": int(greedy_unique(pts, speeds, AUTHORS_UNIQUE)[0].numel()),
                           "iterations": sp.meta["iterations"],
                           "max_speed": float(speeds.max()) if len(speeds) else None,
                           "median_speed": float(speeds.median()) if len(speeds) else None}
    if pts.shape[0] > 21:
        pca = pca_dimension(pts, (0.95,))
        out |= {"participation_ratio": pca.participation_ratio, "dimension_95": pca.dimensions[0.95],
                "levina_bickel": levina_bickel(pts, k=20),
                "median_distance_ratio": float(centroid_distance_ratio(pts, states).median()),
                "top_pcs": [round(v, 4) for v in pca.explained[:4].tolist()]}
        if ref is not None and ref.shape[0]:
            spread = (ref - ref.mean(0)).norm(dim=1).pow(2).mean().sqrt()
            out["nn_ratio"] = float(torch.cdist(pts, ref).min(1).values.median() / spread)
            out["nn_ratio_reverse"] = float(torch.cdist(ref, pts).min(1).values.median() / spread)
    return {"points": pts, "rows": rows, **out}


def paired(b: dict[str, Any], f: dict[str, Any], starts: torch.Tensor) -> dict[str, Any]:
    """Starts kept by both methods: the distance between their two end points, and how far each moved from its
    start, over the baseline cloud's RMS radius (medians)."""
    pos_b = torch.full((starts.shape[0],), -1, dtype=torch.long)
    pos_f = pos_b.clone()
    pos_b[b["rows"]] = torch.arange(b["rows"].numel())
    pos_f[f["rows"]] = torch.arange(f["rows"].numel())
    common = ((pos_b >= 0) & (pos_f >= 0)).nonzero().squeeze(1)
    if common.numel() == 0 or b["points"].shape[0] < 2:
        return {"n_paired": 0}
    pb, pf = b["points"][pos_b[common]], f["points"][pos_f[common]]
    radius = float((b["points"] - b["points"].mean(0)).norm(dim=1).pow(2).mean().sqrt())
    return {"n_paired": int(common.numel()), "pair_distance": float((pb - pf).norm(dim=1).median()) / radius,
            "moved_baseline": float((pb - starts[common]).norm(dim=1).median()) / radius,
            "moved_fast": float((pf - starts[common]).norm(dim=1).median()) / radius}


def compare(name: str, model: Any, states: torch.Tensor, tol: float, each: bool,
            args: argparse.Namespace) -> dict[str, Any]:
    starts = lab_starts(states, args.starts, args.noise, args.seed)
    fast1 = run(model, starts, tol, "gauss_newton", args.max_iters)
    base = run(model, starts, tol, "adam", args.max_iters)
    fast2 = run(model, starts, tol, "gauss_newton", args.max_iters)
    b = describe(base["sp"], states, None)
    f = describe(fast2["sp"], states, b["points"])
    f |= paired(b, f, starts)
    rows_each = {}
    if each:  # per-point Adam: converges every start it can, so its count is the one to match
        e_run = run(model, starts, tol, "adam", args.max_iters, stop="each")
        e = describe(e_run["sp"], states, b["points"])
        f_e = paired(e, f, starts)
        rows_each = {"adam_each": {"wall_s": e_run["wall_s"], "cpu_s": e_run["cpu_s"],
                                   "ratio": base["wall_s"] / e_run["wall_s"], **e,
                                   "gauss_newton_vs_each": f_e, "vs_baseline": paired(b, e, starts)}}
    fast_wall = 0.5 * (fast1["wall_s"] + fast2["wall_s"])
    fast_cpu = 0.5 * (fast1["cpu_s"] + fast2["cpu_s"])
    ratio = base["wall_s"] / fast_wall
    rows = {"adam": {"wall_s": base["wall_s"], "cpu_s": base["cpu_s"], "ratio": 1.0, **b},
            "gauss_newton": {"wall_s": fast_wall, "cpu_s": fast_cpu, "ratio": ratio,
                             "products": fast2["sp"].meta.get("products"),
                             "stalled": fast2["sp"].meta.get("stalled"), **f}} | rows_each
    for key, r in rows.items():
        lb = r.get("levina_bickel")
        print(f"{name:<18} {tol:<9.3g} {key:<12} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} {r['iterations']:6d} "
              f"{r['converged']:5d} {r['kept']:5d} {r['unique_0.025']:5d} {r.get('participation_ratio', 0):6.3f} "
              f"{r.get('dimension_95', 0):4d} {lb if lb is None else round(lb, 2)!s:>6} "
              f"{r.get('median_distance_ratio', 0):6.3f} {r.get('nn_ratio', 0.0):5.3f} {r['ratio']:6.1f}x")
    counts = {k: abs(f[k] - b[k]) / max(b[k], 1) for k in ("kept", "unique_0.025")}
    cpu_ratio = base["cpu_s"] / fast_cpu
    verdict = {"ratio": ratio, "cpu_ratio": cpu_ratio, "faster_10x": ratio >= TARGET_RATIO,
               "count_differences": counts, "counts_within_5pct": all(v <= COUNT_TOL for v in counts.values()),
               "baseline_dropped_above_tol": base["sp"].meta["n_not_converged"]}
    if f["n_paired"]:
        print(f"{'':<18} {f['n_paired']} starts kept by both: end points {f['pair_distance']:.3f} apart, moved "
              f"{f['moved_baseline']:.3f} (Adam) and {f['moved_fast']:.3f} (Gauss-Newton) from their starts (medians,"
              f" in units of the Adam cloud's RMS radius)")
    if rows_each and rows_each["adam_each"]["gauss_newton_vs_each"]["n_paired"]:
        ae = rows_each["adam_each"]
        pe, adam_pair = ae["gauss_newton_vs_each"], ae["vs_baseline"].get("pair_distance", float("nan"))
        print(f"{'':<18} against per-point Adam ({pe['n_paired']} starts kept by both): end points "
              f"{pe['pair_distance']:.3f} apart (per-point vs mean-rule Adam: {adam_pair:.3f}); Gauss-Newton is "
              f"{ae['wall_s'] / fast_wall:.1f}x faster than it")
    print(f"{'':<18} ratio {ratio:.1f}x ({'met' if verdict['faster_10x'] else 'MISSED'}; CPU-time ratio "
          f"{cpu_ratio:.1f}x); count differences "
          f"kept {counts['kept']:.1%}, unique {counts['unique_0.025']:.1%}; the mean rule left "
          f"{verdict['baseline_dropped_above_tol']} starts above the tolerance, Gauss-Newton "
          f"{fast2['sp'].meta['n_not_converged']}")
    return {"q_tol": tol, "n_starts": args.starts, "verdict": verdict,
            "methods": {k: {kk: vv for kk, vv in v.items() if kk not in ("points", "rows")} for k, v in rows.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="synthetic4_gru128,ag_news_gru256")
    parser.add_argument("--starts", type=int, default=512, help="the lab's manifold_starts (quick 512, full 9000)")
    parser.add_argument("--docs", type=int, default=300, help="test documents whose states seed the starts")
    parser.add_argument("--noise", type=float, default=0.4)
    parser.add_argument("--tol", default="aitken,5e-6", help="q tolerances: 'aitken' or numbers, comma-separated")
    parser.add_argument("--each-tol", default="aitken",
                        help="tolerances (as in --tol) at which per-point Adam (stop='each') runs too")
    parser.add_argument("--max-iters", type=int, default=3000,
                        help="Adam's step cap (the lab's quick 3,000; the authors' and the full lab's 10,000)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "innerworks_bench_fp",
                        help="trained networks are cached here")
    parser.add_argument("--synthetic-steps", type=int, default=1600)
    parser.add_argument("--ag-steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1, help="the start draw's seed (the lab uses its seed + 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = machine_record()
    results: dict[str, Any] = {"machine": machine, "settings": {k: str(v) for k, v in vars(args).items()},
                               "nets": {}}
    all_recipes = recipes(args.synthetic_steps, args.ag_steps)
    header = (f"{'network':<18} {'q_tol':<9} {'method':<12} {'wall s':>7} {'cpu s':>7} {'iters':>6} {'conv':>5} "
              f"{'kept':>5} {'uniq':>5} {'PR':>6} {'d95':>4} {'LB':>6} {'dist':>6} {'nn':>5}    ratio")
    for name in [n.strip() for n in args.nets.split(",") if n.strip()]:
        t0 = time.perf_counter()
        model, states, step_size, acc = load_net(all_recipes[name], args.work, args.docs)
        print(f"\n{name}: test accuracy {acc:.3f}, {states.shape[0]} visited states, mean token step "
              f"{step_size:.4g} ({time.perf_counter() - t0:.1f} s train/load)")
        print(header + "\n" + "-" * len(header))
        per = {"test_accuracy": acc, "state_size": int(states.shape[1]), "mean_step_size": step_size, "runs": []}
        for spec in args.tol.split(","):
            tol = aitken_q_tol(step_size) if spec.strip() == "aitken" else float(spec)
            each = spec.strip() in [t.strip() for t in args.each_tol.split(",")]
            per["runs"].append(compare(name, model, states, tol, each, args))
        results["nets"][name] = per
    finish(results, args.json)


if __name__ == "__main__":
    main()
