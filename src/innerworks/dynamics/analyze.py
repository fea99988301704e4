"""Analyse a trained run's dynamics: fixed points, manifold dimension, linearisation, readout geometry, word counts.

:func:`analyze_run` loads a run directory (written by :func:`innerworks.train.train`) and calls
:func:`analyze_model`, which writes ``analysis.json``, ``fixed_points.safetensors``/``.json`` and figures:

**Classifiers** (``task: classification``):

1. Visited states: the cell states of ``n_docs`` test documents, up to each document's length.
2. Manifold points (:func:`~innerworks.dynamics.manifold.find_manifold_points`): approximate fixed points at
   x* = 0 from ``manifold_starts`` visited states plus N(0, 0.4²) noise, joint Adam descent of q to mean
   ``q ≤ manifold_speed_tol`` (5e-6), faster points and outliers (``outlier_scale`` × the states' mean distance from
   their centroid) dropped. The certified exact roots (:func:`~innerworks.dynamics.find_fixed_points`, Newton) are
   reported apart under ``exact_roots`` with their stability and never decide a dimension (a trained text
   classifier has very few).
3. Manifold statistics (:func:`~innerworks.dynamics.manifold.manifold_statistics`): participation ratio, readout
   dimension ``d_read`` (smallest n whose top-n-PC projection of the final states keeps R² ≥ 0.95 of the logits),
   95%-variance dimension, accuracy restricted to the top n PCs, Levina-Bickel.
4. Linearisation at up to ``n_linearize`` manifold points: sorted eigenvalues, time constants, slow modes (τ ≥ the
   mean document length), left eigenvectors' readout alignment; for binary runs ``line_attractor`` (readout
   alignment of the first PC, right-eigenvector alignment against a random null, τ ratio, valence AUC).
5. Readout geometry: pairwise readout angles against the regular-simplex angle, and span fractions.
6. Word-count prediction (:func:`~innerworks.dynamics.word_count_prediction` on the training split) compared with
   the measured fixed-point dimension at the same variance thresholds.

**Flip-flops** (``task: flipflop``): fixed points at zero input from visited states with ``mode="both"`` and
``noise_scale=1`` (the settings that recover the full skeleton, saddles included), their unstable-mode histogram,
whether they form the 3ⁿ lattice (2ⁿ stable memories), the attractor audit, and the readout at each point.

Figures (``figures/``): ``pca3d__<run>``, ``eigenvalues__<run>``, ``readout__<run>`` and, for classifiers,
``variance__<run>`` (predicted vs measured dimension).

>>> AnalysisSettings().n_starts
1024
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from innerworks.dynamics import figures as F
from innerworks.dynamics import manifold as M
from innerworks.dynamics.fixed_points import FixedPoints, find_fixed_points, stability, stability_counts
from innerworks.dynamics.geometry import pca_dimension, readout_angles
from innerworks.dynamics.linearize import linearize_modes, n_unstable_modes, time_constants
from innerworks.dynamics.orbits import audit_attractors
from innerworks.dynamics.slow_points import SlowMethod
from innerworks.dynamics.step import as_step
from innerworks.dynamics.toys import expected_unstable_counts
from innerworks.dynamics.wordcount import compare_dimensions, word_count_prediction
from innerworks.errors import InnerworksError
from innerworks.utils.io import write_json

THRESHOLDS = (0.9, 0.95)


class AnalysisSettings(BaseModel):
    """How a run is analysed (all have working defaults; the ``repro integration`` settings set them too).

    >>> AnalysisSettings(n_docs=100).n_docs
    100
    """

    model_config = ConfigDict(extra="forbid")

    n_docs: int = Field(500, ge=1, description="test documents (or flip-flop trials) whose states are collected")
    max_states: int = Field(5000, ge=10, description="visited states kept (seeded subsample) for the all-states PCA")
    n_starts: int = Field(1024, ge=1, description="starts of the fixed-point search (seeded subset of the states)")
    unique_tol: float = Field(0.025, gt=0, description="classifiers: fixed points closer than this are merged "
                              "(Aitken's manifold setting)")
    mode: Literal["newton", "explore", "both"] = Field("newton", description="classifiers' fixed-point search mode")
    noise_scale: float = Field(0.0, ge=0, description="classifiers: noise added to the starts")
    batch_size: int = Field(256, ge=1, description="starts polished at once (bounds the [B, S, S] memory)")
    n_linearize: int = Field(200, ge=1, description="manifold points linearised with eigenvectors")
    n_modes: int = Field(3, ge=1, description="slowest modes whose left eigenvectors are kept")
    n_trajectories: int = Field(40, ge=0, description="trajectories drawn in the 3-D PCA figure")
    outlier_scale: float = Field(10.0, gt=0, description="classifiers: manifold points farther than this × the "
                                 "visited states' mean distance from their centroid are dropped (FixedPointFinder's "
                                 "outlier rule)")
    manifold_starts: int | None = Field(None, ge=1, description="manifold (approximate fixed point) starts; None: "
                                        "n_starts (the co-author used about 9,000)")
    manifold_noise: float = Field(0.4, ge=0, description="manifold starts: Gaussian noise added to visited states "
                                  "(the co-author's 0.4)")
    manifold_speed_tol: float = Field(5e-6, gt=0, description="manifold: joint descent stops at mean q <= this; "
                                      "points above it are dropped (the co-author's 5e-6)")
    slow_lr: float = Field(0.01, gt=0, description="manifold: Adam step size (the authors' 0.01)")
    slow_max_iters: int = Field(10_000, ge=1, description="manifold: most Adam steps")
    slow_method: SlowMethod = Field(SlowMethod.ADAM, description="manifold: 'adam' (the authors' joint descent) or "
                                    "'gauss_newton' (per-point Gauss-Newton to the same tolerance: 10-50x faster, "
                                    "every start converged, so more points are kept)")
    n_accuracy_dims: int = Field(8, ge=1, description="accuracy restricted to the top n PCs for n = 1..this")
    n_valence_words: int = Field(100, ge=1, description="binary runs: words with the most positive (and negative) "
                                 "bag-of-words coefficients in the valence AUC")
    flipflop_mode: Literal["newton", "explore", "both"] = Field("both", description="flip-flop search mode")
    flipflop_noise: float = Field(1.0, ge=0, description="flip-flop start noise (tanh-scale states)")
    flipflop_unique_tol: float = Field(1e-3, gt=0)
    figures: bool = True
    seed: int = 0


@dataclass
class RunAnalysis:
    """What :func:`analyze_model` found: ``summary`` (the plain-JSON ``analysis.json`` body), the fixed points and
    the names of the figures written."""

    name: str
    task: str
    summary: dict[str, Any]
    fixed_points: FixedPoints
    figures: list[str] = field(default_factory=list)
    json_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, **self.summary, "figures": self.figures}


# ------------------------------------------------------------------------------------------------------ helpers
def _pca_dict(x: torch.Tensor, top: int = 10) -> dict[str, Any] | None:
    """PCA summary of a point cloud; None when it has fewer than 2 distinct points."""
    if x.shape[0] < 2 or float((x - x.mean(0)).abs().max()) == 0.0:
        return None
    r = pca_dimension(x, THRESHOLDS)
    return {"n_points": int(x.shape[0]), "explained": [round(float(v), 6) for v in r.explained[:top]],
            "dimensions": {str(k): v for k, v in r.dimensions.items()},
            "participation_ratio": round(r.participation_ratio, 4)}


def _basis(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, top-k principal directions ``[k, S]`` and explained fractions of ``x`` (zero-padded when rank < k)."""
    mu = x.mean(0)
    xc = x - mu
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)
    var = s**2
    frac = var / var.sum().clamp_min(1e-300)
    comps = torch.zeros(k, x.shape[1], dtype=x.dtype)
    n = min(k, vh.shape[0])
    comps[:n] = vh[:n]
    ex = torch.zeros(k, dtype=x.dtype)
    ex[:n] = frac[:n]
    return mu, comps, ex


def _n_unstable(model: Any, points: torch.Tensor, margin: float, chunk: int = 64) -> torch.Tensor:
    """Number of modes with ``|λ| > 1 + margin`` at each point (zero input)."""
    step = as_step(model)
    pts = step.cast(points)
    eigenvalues, _, _ = stability(step, pts, step.zero_inputs(pts.shape[0]), vectors=False, batch_size=chunk)
    return n_unstable_modes(eigenvalues, margin).cpu()


def _valid_states(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = torch.arange(states.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return states[mask]


def _subsample(x: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    return x if x.shape[0] <= n else x[torch.randperm(x.shape[0], generator=gen)[:n]]


def _stats(v: torch.Tensor) -> dict[str, float] | None:
    if v.numel() == 0:
        return None
    v = v.double()
    return {"median": float(v.median()), "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean())}


# ------------------------------------------------------------------------------------------------- classifiers
def _exact_roots(model: nn.Module, states: torch.Tensor, s: AnalysisSettings,
                 progress: bool) -> tuple[FixedPoints, dict[str, Any]]:
    """The certified exact roots at zero input (Newton from visited states): their own object, never a dimension."""
    fps = find_fixed_points(model, states, n_starts=s.n_starts, unique_tol=s.unique_tol, mode=s.mode,
                            noise_scale=s.noise_scale, batch_size=s.batch_size, seed=s.seed, progress=progress)
    ok = fps.converged.cpu() & (fps.residuals.cpu() < 1e-8) if len(fps) else torch.zeros(0, dtype=torch.bool)
    roots = fps.points.cpu()[ok]
    rec = {"n": int(ok.sum()), "stability": stability_counts(fps.subset(ok)) if len(fps) else {},
           "pca": _pca_dict(roots), "points": "certified roots of F(h) = h at zero input (|F(h) - h| < 1e-8)"}
    return fps, rec


def _final_states(hs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return hs[torch.arange(hs.shape[0]), (lengths - 1).clamp(min=0)]


def analyze_classifier(model: nn.Module, data: Any, *, name: str, settings: AnalysisSettings,
                       metrics: dict[str, Any] | None = None, out: Path | None = None,
                       fig_out: Path | None = None, progress: bool = False) -> RunAnalysis:
    """Analyse an :class:`~innerworks.models.classifier.RNNClassifier` on its data splits (see the module doc)."""
    s = settings
    gen = torch.Generator().manual_seed(s.seed)
    test = data.test
    n = min(s.n_docs, len(test))
    t0 = time.perf_counter()
    with torch.no_grad():
        hs = model.states(test.tokens[:n]).detach().to(torch.float64)
    lengths, labels = test.lengths[:n], test.labels[:n]
    states = _valid_states(hs, lengths)
    doc_len = {"max": int(test.lengths.max()), "mean": float(test.lengths.double().mean())}
    fps, roots = _exact_roots(model, states, s, progress)
    sp, man_rec = M.find_manifold_points(model, states, n_starts=s.manifold_starts or s.n_starts,
                                         noise=s.manifold_noise, speed_tol=s.manifold_speed_tol,
                                         outlier_scale=s.outlier_scale, lr=s.slow_lr, max_iters=s.slow_max_iters,
                                         batch_size=max(s.batch_size, 1024), seed=s.seed + 1,
                                         method=s.slow_method)
    manifold = sp.points
    t_fp = time.perf_counter()
    man_unstable = _n_unstable(model, manifold, fps.unstable_margin) if len(sp) else torch.zeros(0, dtype=torch.long)
    readout = model.readout.weight.detach().to(torch.float64).cpu()
    bias = None if model.readout.bias is None else model.readout.bias.detach().to(torch.float64).cpu()
    lin_pts = _subsample(manifold, s.n_linearize, gen) if manifold.shape[0] else manifold
    lin = linearize_modes(model, lin_pts, readout, n_modes=s.n_modes) if lin_pts.shape[0] else None
    sub_states = _subsample(states, s.max_states, gen)
    geo = readout_angles(readout) if readout.shape[0] >= 2 else None
    wc = word_count_prediction(data.train, THRESHOLDS)
    man_pca = _pca_dict(manifold)
    comp = compare_dimensions(wc, pca_dimension(manifold, THRESHOLDS)) if man_pca is not None else None
    stats = M.manifold_statistics(manifold, _final_states(hs, lengths), labels, readout, bias, s.n_accuracy_dims)
    acc = (metrics or {}).get("accuracy")
    summary: dict[str, Any] = {
        "cell": model.cell.kind, "hidden_size": int(model.cell.hidden_size), "state_size": int(model.cell.state_size),
        "num_classes": int(model.num_classes), "class_names": list(test.class_names),
        "metrics": metrics or {}, "document_length": doc_len, "n_docs": n, "n_states": int(states.shape[0]),
        "test_accuracy": None if acc is None else float(acc), "chance_accuracy": _chance(test.labels),
        "fixed_points": _fixed_point_record(fps, s),
        "exact_roots": roots,
        "manifold": {"points": "approximate fixed points at zero input (co-author protocol: noisy visited-state "
                               "starts, joint descent of q to mean q <= speed_tol, outliers dropped)",
                     "kind": "approximate", **man_rec, **stats, "pca": man_pca,
                     "n_unstable_histogram": _histogram(man_unstable)},
        "slow_points": {"n": len(sp), "pca": man_pca, "points": "the manifold points (same object as manifold)"},
        "states": {"points": "visited states (subsample)", "pca": _pca_dict(sub_states)},
    }
    summary["linearization"] = _linearization_summary(lin, readout, doc_len["mean"])
    if lin is not None and int(model.num_classes) == 2 and stats["participation_ratio"] is not None:
        summary["line_attractor"] = M.line_attractor_statistics(
            model, manifold, lin_pts, lin, readout, doc_len["mean"], data.train, s.n_valence_words, s.seed)
    if geo is not None:
        summary["readout"] = _readout_summary(geo)
    summary["wordcount"] = {
        "explained": [round(float(v), 6) for v in wc.explained[:10]],
        "dimensions": {str(k): v for k, v in wc.dimensions.items()},
        "dimension_95": int(wc.dimensions[0.95]),
        "participation_ratio": round(wc.participation_ratio, 4),
        "agree": None if comp is None else {str(k): v for k, v in comp.agree.items()},
    }
    summary["timing_s"] = {"states_and_fixed_points": round(t_fp - t0, 3), "total": round(time.perf_counter() - t0, 3)}

    figs: list[str] = []
    if s.figures and fig_out is not None:
        figs = _classifier_figures(fig_out, name, hs, lengths, labels, list(test.class_names), fps,
                                   manifold, man_unstable, lin, readout, summary, s, sp.points)
    result = RunAnalysis(name, "classification", summary, fps, figs)
    _write(result, out)
    return result


def _chance(labels: torch.Tensor) -> float:
    """The majority class' share of the test labels (the accuracy of always guessing it)."""
    if labels.dim() != 1 or labels.numel() == 0:
        return float("nan")
    return float(torch.bincount(labels).max()) / labels.numel()


def _histogram(n_unstable: torch.Tensor) -> dict[str, int]:
    vals, counts = torch.unique(n_unstable, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(vals, counts, strict=True)}


def _fixed_point_record(fps: FixedPoints, s: AnalysisSettings) -> dict[str, Any]:
    slow = fps.slow
    return {"n": len(fps), "n_slow": 0 if slow is None else len(slow),
            "unstable_histogram": {str(k): v for k, v in fps.unstable_histogram().items()},
            "max_residual": float(fps.residuals.max()) if len(fps) else None,
            "all_certified": bool(len(fps) > 0 and bool(fps.converged.all()) and float(fps.residuals.max()) < 1e-8),
            "outcomes": fps.meta.get("outcomes", {}), "n_starts": fps.meta.get("n_starts"),
            "time_s": round(fps.meta.get("time_s", 0.0), 3), "tol": fps.meta.get("tol"),
            "unique_tol": s.unique_tol, "mode": s.mode, "input": "zero vector (no word)",
            "notes": fps.meta.get("notes", [])}


def _linearization_summary(lin: dict[str, Any] | None, readout: torch.Tensor, mean_len: float) -> dict[str, Any] | None:
    if lin is None:
        return None
    ev = lin["eigenvalues"]
    top = ev[:, 0].abs()
    tau = time_constants(ev[:, :1])[:, 0]
    slow = M.slow_mode_counts(ev, mean_len)
    # diagnostic beside the rule: growing modes as slow as that too (|log|λ|| <= 1/L), i.e. |τ| >= L
    near = (ev.abs().log().abs() <= 1.0 / mean_len).sum(-1)
    return {
        "n_points": int(ev.shape[0]),
        "top_abs_eigenvalue": _stats(top),
        "second_abs_eigenvalue": _stats(ev[:, 1].abs()) if ev.shape[1] > 1 else None,
        "top_time_constant_median": float(tau.median()),
        "top_abs_log_eigenvalue_median": float(top.log().abs().median()),
        "slow_modes": {"length": mean_len, "rule": "modes with tau = -1/log|lambda| >= the mean document length",
                       "median": float(slow.double().median()), "counts": _histogram(slow),
                       "median_abs_tau": float(near.double().median()), "counts_abs_tau": _histogram(near)},
        "readout_direction": "w_last - w_first",
        "alignment_top_mode": _stats(lin["alignment"][:, 0]),
        "alignment_per_mode_median": [float(v) for v in lin["alignment"].median(0).values],
        "alignment_per_class_median": [float(v) for v in lin["per_class_alignment"].median(0).values],
        "right_alignment_top_mode": _stats(lin["right_alignment"]),
        "chance_alignment": math.sqrt(2 / (math.pi * readout.shape[1])),
    }


def _readout_summary(geo: Any) -> dict[str, Any]:
    c = geo.angles.shape[0]
    iu = torch.triu_indices(c, c, 1)
    pair = geo.angles[iu[0], iu[1]]
    return {"angles": [[round(float(a), 4) for a in row] for row in geo.angles],
            "pair_angles": [round(float(a), 4) for a in pair], "simplex_angle": geo.simplex_angle,
            "mean_deviation": geo.deviation, "max_deviation": float((pair - geo.simplex_angle).abs().max()),
            "span_fraction": [round(float(v), 4) for v in geo.span_fraction]}


def _classifier_figures(fig_out: Path, name: str, hs: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
                        class_names: list[str], fps: FixedPoints, manifold: torch.Tensor, man_unstable: torch.Tensor,
                        lin: dict[str, Any] | None, readout: torch.Tensor, summary: dict[str, Any],
                        s: AnalysisSettings, slow_cloud: torch.Tensor) -> list[str]:
    figs = []
    cell = f"{summary['cell']}-{summary['hidden_size']}"
    # PCA basis of the manifold (the object of interest); fall back to the states when it has < 3 points
    base = manifold if manifold.shape[0] >= 3 else _valid_states(hs, lengths)
    mu, comps, ex = _basis(base, 3)
    nt = min(s.n_trajectories, hs.shape[0])
    trajs = [((hs[i, : int(lengths[i])] - mu) @ comps.T).tolist() for i in range(nt)]
    lab = labels[:nt]
    tl = lab.tolist() if lab.dim() == 1 else None
    fp_pts = fps.points.cpu()
    # grey markers: the authors' slow-point cloud (the manifold to the eye), plus the solver's stalled slow points
    stalled = fps.slow.points.cpu() if fps.slow is not None else fp_pts[:0]
    slow_pts = torch.cat([slow_cloud.to(fp_pts.dtype), stalled])
    what = "approximate fixed points"
    F.pca3d_figure(fig_out, f"pca3d__{name}", trajs, ((fp_pts - mu) @ comps.T).tolist(),
                   fps.n_unstable.cpu().tolist(),
                   f"{name} ({cell}): {len(fps)} fixed points, {slow_pts.shape[0]} {what}, in the manifold's top PCs",
                   slow=((slow_pts - mu) @ comps.T).tolist() if slow_pts.shape[0] else None, trajectory_labels=tl,
                   class_names=class_names, explained=ex.tolist())
    figs.append(f"pca3d__{name}")
    if lin is not None:
        ev = lin["eigenvalues"]
        k = min(ev.shape[0], 100)
        nu = (ev[:k].abs() > 1 + 1e-7).sum(-1)
        F.eigenvalues_figure(fig_out, f"eigenvalues__{name}", ev[:k].real.tolist(), ev[:k].imag.tolist(),
                             nu.tolist(), f"{name} ({cell}): Jacobian eigenvalues at {k} manifold points")
        figs.append(f"eigenvalues__{name}")
    if "readout" in summary and manifold.shape[0] >= 1:
        mu2, comps2, _ = _basis(manifold if manifold.shape[0] >= 2 else base, 2)
        F.readout_figure(fig_out, f"readout__{name}", ((manifold - mu2) @ comps2.T).tolist(),
                         (readout @ comps2.T).tolist(), class_names, summary["readout"]["angles"],
                         summary["readout"]["simplex_angle"], f"{name} ({cell}): readout geometry",
                         n_unstable=man_unstable.tolist())
        figs.append(f"readout__{name}")
    profiles = {}
    if summary["manifold"]["pca"] is not None:
        profiles["manifold (" + summary["manifold"]["kind"] + " points)"] = summary["manifold"]["pca"]["explained"]
    if summary["exact_roots"]["pca"] is not None:
        profiles["exact roots"] = summary["exact_roots"]["pca"]["explained"]
    if summary["states"]["pca"] is not None:
        profiles["all visited states"] = summary["states"]["pca"]["explained"]
    profiles["word-count prediction"] = summary["wordcount"]["explained"]
    pred = summary["wordcount"]["dimensions"]["0.95"]
    meas = None if summary["manifold"]["pca"] is None else summary["manifold"]["pca"]["dimensions"]["0.95"]
    F.variance_figure(fig_out, f"variance__{name}", profiles,
                      f"{name} ({cell}): dimension at 95% — predicted {pred}, measured {meas}")
    figs.append(f"variance__{name}")
    return figs


# -------------------------------------------------------------------------------------------------- flip-flops
def lattice_counts(n_bits: int) -> dict[str, int]:
    """The 3ⁿ flip-flop lattice as ``{unstable modes: count}`` with string keys (``{"0": 8, "1": 12, ...}``).

    >>> lattice_counts(2)
    {'0': 4, '1': 4, '2': 1}
    """
    return {str(k): v for k, v in expected_unstable_counts(n_bits).items()}


def analyze_flipflop(model: nn.Module, data: Any, *, name: str, settings: AnalysisSettings,
                     metrics: dict[str, Any] | None = None, out: Path | None = None, fig_out: Path | None = None,
                     progress: bool = False) -> RunAnalysis:
    """Analyse a :class:`~innerworks.dynamics.task.FlipFlopModel`: the fixed-point skeleton and the audit."""
    s = settings
    test = data.test
    n = min(s.n_docs, len(test))
    t0 = time.perf_counter()
    with torch.no_grad():
        hs = model.states(test.inputs[:n]).detach().to(torch.float64)
    fps = find_fixed_points(model, hs, n_starts=s.n_starts, mode=s.flipflop_mode, noise_scale=s.flipflop_noise,
                            unique_tol=s.flipflop_unique_tol, batch_size=s.batch_size, seed=s.seed, progress=progress)
    newton = find_fixed_points(model, hs, n_starts=s.n_starts, unique_tol=s.flipflop_unique_tol,
                               batch_size=s.batch_size, seed=s.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = audit_attractors(model, hs[:, -1], fps)
    n_bits = int(model.n_bits)
    hist = {str(k): v for k, v in fps.unstable_histogram().items()}
    with torch.no_grad():
        outputs = model.readout(fps.points.to(model.readout.weight.dtype)).double()
    stable_out = outputs[fps.stable]
    patterns = {tuple(int(v) for v in torch.sign(o).tolist()) for o in stable_out}
    certified = bool(len(fps) > 0 and bool(fps.converged.all()) and float(fps.residuals.max()) < 1e-8)
    summary: dict[str, Any] = {
        "cell": model.cell.kind, "hidden_size": int(model.cell.hidden_size), "state_size": int(model.cell.state_size),
        "n_bits": n_bits, "metrics": metrics or {},
        "fixed_points": {"n": len(fps), "n_slow": 0 if fps.slow is None else len(fps.slow),
                         "unstable_histogram": hist, "max_residual": float(fps.residuals.max()) if len(fps) else None,
                         "all_certified": certified, "outcomes": fps.meta.get("outcomes", {}),
                         "n_starts": fps.meta.get("n_starts"), "time_s": round(fps.meta.get("time_s", 0.0), 3),
                         "mode": s.flipflop_mode, "noise_scale": s.flipflop_noise, "tol": fps.meta.get("tol")},
        "newton_only": {"unstable_histogram": {str(k): v for k, v in newton.unstable_histogram().items()},
                        "outcomes": newton.meta.get("outcomes", {}), "all_certified": bool(
                            len(newton) > 0 and float(newton.residuals.max()) < 1e-8)},
        "lattice": {"expected": lattice_counts(n_bits), "matches": hist == lattice_counts(n_bits)},
        "memories": {"n_stable": int(fps.stable.sum()), "distinct_sign_patterns": len(patterns),
                     "expected": 2**n_bits},
        "audit": {"complete": audit.complete, "n_attractors": len(audit.attractors),
                  "n_missing": len(audit.missing), "summary": audit.summary()},
        "timing_s": {"total": round(time.perf_counter() - t0, 3)},
    }
    figs: list[str] = []
    if s.figures and fig_out is not None and len(fps):
        cell = f"{summary['cell']}-{summary['hidden_size']}"
        mu, comps, ex = _basis(hs.reshape(-1, hs.shape[-1]), 3)
        nt = min(s.n_trajectories, hs.shape[0])
        trajs = [((hs[i] - mu) @ comps.T).tolist() for i in range(nt)]
        F.pca3d_figure(fig_out, f"pca3d__{name}", trajs, ((fps.points - mu) @ comps.T).tolist(),
                       fps.n_unstable.tolist(), f"{name} ({cell}): {len(fps)} fixed points "
                       f"({hist.get('0', 0)} stable)", explained=ex.tolist())
        F.eigenvalues_figure(fig_out, f"eigenvalues__{name}", fps.eigenvalues.real.tolist(),
                             fps.eigenvalues.imag.tolist(), fps.n_unstable.tolist(),
                             f"{name} ({cell}): Jacobian eigenvalues at the fixed points")
        F.flipflop_readout_figure(fig_out, f"readout__{name}", outputs.tolist(), fps.n_unstable.tolist(),
                                  f"{name}: readout at each fixed point")
        figs = [f"pca3d__{name}", f"eigenvalues__{name}", f"readout__{name}"]
    result = RunAnalysis(name, "flipflop", summary, fps, figs)
    _write(result, out)
    return result


# ------------------------------------------------------------------------------------------------- entry points
def _write(result: RunAnalysis, out: Path | None) -> None:
    if out is None:
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.fixed_points.save(out / "fixed_points")
    result.json_path = out / "analysis.json"
    write_json(result.json_path, result.to_dict())


def analyze_model(model: nn.Module, data: Any, *, task: str, name: str, settings: AnalysisSettings | None = None,
                  metrics: dict[str, Any] | None = None, out: str | Path | None = None,
                  fig_out: str | Path | None = None, progress: bool = False) -> RunAnalysis:
    """Analyse a trained model of ``task`` (``classification`` or ``flipflop``); write into ``out`` (analysis.json,
    fixed points) and ``fig_out/figures`` (default: ``out``)."""
    settings = settings or AnalysisSettings()
    out_p = None if out is None else Path(out)
    fig_p = out_p if fig_out is None else Path(fig_out)
    model = model.cpu().eval()
    if task == "classification":
        return analyze_classifier(model, data, name=name, settings=settings, metrics=metrics, out=out_p,
                                  fig_out=fig_p, progress=progress)
    if task == "flipflop":
        return analyze_flipflop(model, data, name=name, settings=settings, metrics=metrics, out=out_p,
                                fig_out=fig_p, progress=progress)
    raise InnerworksError(f"analyze dynamics: task {task!r} is not supported (expected a 'classification' or "
                          "'flipflop' run)")


def analyze_run(run_dir: str | Path, out: str | Path, settings: AnalysisSettings | None = None,
                progress: bool = False) -> RunAnalysis:
    """Load ``run_dir`` (a finished :func:`innerworks.train.train` run) and analyse it into ``out``.

    >>> analyze_run("/nonexistent", "/tmp/x")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: /nonexistent: not a run directory (no config.yaml)
    """
    from innerworks.train.run import load_run

    run = load_run(run_dir)
    test_metrics = run.metrics.get("test", {}) if isinstance(run.metrics, dict) else {}
    return analyze_model(run.model, run.data, task=run.recipe.task, name=run.recipe.name, settings=settings,
                         metrics=test_metrics, out=out, progress=progress)


__all__ = ["AnalysisSettings", "RunAnalysis", "analyze_classifier", "analyze_flipflop", "analyze_model",
           "analyze_run", "lattice_counts", "linearize_modes"]
