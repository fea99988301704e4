"""Figures of the dynamics lab, drawn from plain numbers (no models) so the report can re-plot them.

Each function saves one figure with :func:`innerworks.report.figures.save_figure`: ``figures/NAME.plotly.json``
(interactive; the 3-D views rotate) plus ``NAME.png`` and ``NAME.svg`` (matplotlib, Agg). Names follow the report's
``KIND__VARIANT`` rule, so the figures of one kind form one panel with a run selector:

- ``pca3d__<run>``: trajectories and fixed points in the top 3 PCs, points coloured by their number of unstable
  modes (:func:`pca3d_figure`);
- ``eigenvalues__<run>``: recurrent-Jacobian eigenvalues at the fixed points in the complex plane, with the unit
  circle (:func:`eigenvalues_figure`);
- ``readout__<run>``: readout geometry: fixed points and readout directions in the top 2 PCs with the pairwise
  readout angles (:func:`readout_figure`), or, for a flip-flop, the readout of every fixed point
  (:func:`flipflop_readout_figure`);
- ``variance__<run>``: cumulative PCA variance of the fixed points, of all visited states and of the word-count
  prediction (:func:`variance_figure`);
- ``dimension``: predicted (word counts) against measured (fixed points) dimension across runs
  (:func:`dimension_figure`).

>>> import tempfile
>>> paths = eigenvalues_figure(tempfile.mkdtemp(), "eigenvalues__demo", [[0.5, 0.2], [1.2, 0.1]],
...                            [[0.0, 0.1], [0.0, 0.0]], [0, 1], "demo")
>>> sorted(p.name for p in paths)
['eigenvalues__demo.plotly.json', 'eigenvalues__demo.png', 'eigenvalues__demo.svg']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from innerworks.report.figures import save_figure

# colour per number of unstable modes: stable points black (FixedPointFinder's convention), saddles warm colours
_UNSTABLE_COLORS = ["#111111", "#d62728", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22"]
_CLASS_COLORS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                 "#7f7f7f"]
_GREY = "#b0b0b0"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ucolor(k: int) -> str:
    return _UNSTABLE_COLORS[min(int(k), len(_UNSTABLE_COLORS) - 1)]


def _ulabel(k: int) -> str:
    return "stable" if k == 0 else f"{k} unstable mode{'s' if k > 1 else ''}"


def pca3d_figure(out_dir: str | Path, name: str, trajectories: Sequence[Any], points: Any, n_unstable: Sequence[int],
                 title: str, slow: Any | None = None, trajectory_labels: Sequence[int] | None = None,
                 class_names: Sequence[str] | None = None, explained: Sequence[float] | None = None) -> list[Path]:
    """Trajectories (lines) and fixed points (markers coloured by unstable modes) in 3 PCs; slow points grey.

    Args:
        trajectories: ``[T_i, 3]`` arrays (already projected).
        points: ``[K, 3]`` projected fixed points; ``n_unstable``: ``[K]``.
        slow: ``[M, 3]`` projected slow points, or None.
        trajectory_labels: class of each trajectory (colours the lines), with ``class_names``.
        explained: variance fraction of the 3 PCs (axis labels).

    >>> import tempfile
    >>> p = pca3d_figure(tempfile.mkdtemp(), "pca3d__demo", [[[0, 0, 0], [1, 1, 1]]], [[1, 1, 1]], [0], "demo")
    >>> len(p)
    3
    """
    import plotly.graph_objects as go

    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    nu = np.asarray(n_unstable, dtype=int).reshape(-1)
    ax = [f"PC{i + 1}" + (f" ({explained[i]:.0%})" if explained is not None and i < len(explained) else "")
          for i in range(3)]
    fig = go.Figure()
    seen: set[int] = set()
    for i, tr in enumerate(trajectories):
        t = np.asarray(tr, dtype=float).reshape(-1, 3)
        lab = None if trajectory_labels is None else int(trajectory_labels[i])
        color = _GREY if lab is None else _CLASS_COLORS[lab % len(_CLASS_COLORS)]
        legend = lab is not None and lab not in seen
        if lab is not None:
            seen.add(lab)
        tname = "trajectory" if lab is None else f"trajectory ({class_names[lab] if class_names else lab})"
        fig.add_trace(go.Scatter3d(x=t[:, 0], y=t[:, 1], z=t[:, 2], mode="lines", line={"color": color, "width": 2},
                                   opacity=0.5, name=tname, showlegend=legend or i == 0 and lab is None,
                                   legendgroup=tname, hoverinfo="skip"))
    if slow is not None and len(slow):
        s = np.asarray(slow, dtype=float).reshape(-1, 3)
        fig.add_trace(go.Scatter3d(x=s[:, 0], y=s[:, 1], z=s[:, 2], mode="markers", name="slow points",
                                   marker={"size": 2, "color": "#7f7f7f", "symbol": "circle-open"}))
    for k in sorted(set(nu.tolist())):
        m = nu == k
        fig.add_trace(go.Scatter3d(x=pts[m, 0], y=pts[m, 1], z=pts[m, 2], mode="markers",
                                   name=f"{_ulabel(k)} ({int(m.sum())})",
                                   marker={"size": 5 if k == 0 else 4, "color": _ucolor(k)}))
    fig.update_layout(title=title, scene={"xaxis_title": ax[0], "yaxis_title": ax[1], "zaxis_title": ax[2]},
                      legend={"itemsizing": "constant"}, margin={"l": 0, "r": 0, "t": 40, "b": 0})

    plt = _plt()
    mfig = plt.figure(figsize=(6.5, 5.5))
    a = mfig.add_subplot(111, projection="3d")
    for i, tr in enumerate(trajectories):
        t = np.asarray(tr, dtype=float).reshape(-1, 3)
        lab = None if trajectory_labels is None else int(trajectory_labels[i])
        a.plot(t[:, 0], t[:, 1], t[:, 2], lw=0.6, alpha=0.4,
               color=_GREY if lab is None else _CLASS_COLORS[lab % len(_CLASS_COLORS)])
    if slow is not None and len(slow):
        s = np.asarray(slow, dtype=float).reshape(-1, 3)
        a.scatter(s[:, 0], s[:, 1], s[:, 2], s=3, c="#7f7f7f", alpha=0.5, label="slow points")
    for k in sorted(set(nu.tolist())):
        m = nu == k
        a.scatter(pts[m, 0], pts[m, 1], pts[m, 2], s=28 if k == 0 else 18, c=_ucolor(k), depthshade=False,
                  label=f"{_ulabel(k)} ({int(m.sum())})")
    a.set_xlabel(ax[0])
    a.set_ylabel(ax[1])
    a.set_zlabel(ax[2])
    a.set_title(title, fontsize=10)
    a.legend(fontsize=7, loc="upper left")
    return save_figure(out_dir, name, plotly_fig=fig, mpl_fig=mfig)


def eigenvalues_figure(out_dir: str | Path, name: str, real: Any, imag: Any, n_unstable: Sequence[int],
                       title: str) -> list[Path]:
    """Eigenvalues ``[K, S]`` (real and imaginary parts) of the Jacobians at K points, coloured by each point's
    number of unstable modes, with the unit circle (|λ| = 1: the stability boundary)."""
    import plotly.graph_objects as go

    re_, im_ = np.asarray(real, dtype=float), np.asarray(imag, dtype=float)
    re_ = re_.reshape(len(n_unstable), -1) if re_.size else np.zeros((0, 1))
    im_ = im_.reshape(re_.shape) if im_.size else np.zeros_like(re_)
    nu = np.asarray(n_unstable, dtype=int).reshape(-1)
    th = np.linspace(0, 2 * math.pi, 361)
    fig = go.Figure(go.Scatter(x=np.cos(th), y=np.sin(th), mode="lines", name="|λ| = 1",
                               line={"color": "#444", "dash": "dash", "width": 1}, hoverinfo="skip"))
    for k in sorted(set(nu.tolist())):
        m = nu == k
        fig.add_trace(go.Scatter(x=re_[m].ravel(), y=im_[m].ravel(), mode="markers",
                                 name=f"at {_ulabel(k)} points ({int(m.sum())})",
                                 marker={"size": 4, "color": _ucolor(k), "opacity": 0.6}))
    fig.update_layout(title=title, xaxis_title="Re λ", yaxis_title="Im λ",
                      yaxis={"scaleanchor": "x", "scaleratio": 1})

    plt = _plt()
    mfig, a = plt.subplots(figsize=(5.5, 5))
    a.plot(np.cos(th), np.sin(th), "--", color="#444", lw=0.8, label="|λ| = 1")
    for k in sorted(set(nu.tolist())):
        m = nu == k
        a.scatter(re_[m].ravel(), im_[m].ravel(), s=6, alpha=0.5, c=_ucolor(k),
                  label=f"at {_ulabel(k)} points ({int(m.sum())})")
    a.set_aspect("equal", adjustable="datalim")
    a.set_xlabel("Re λ")
    a.set_ylabel("Im λ")
    a.set_title(title, fontsize=10)
    a.legend(fontsize=7)
    return save_figure(out_dir, name, plotly_fig=fig, mpl_fig=mfig)


def readout_figure(out_dir: str | Path, name: str, points2d: Any, readout2d: Any, class_names: Sequence[str],
                   angles: Any, simplex_angle: float, title: str, n_unstable: Sequence[int] | None = None
                   ) -> list[Path]:
    """Fixed points in the top 2 PCs with each readout row drawn as an arrow from the centre, plus a table of the
    pairwise readout angles (full state space) against the regular-simplex angle."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    p = np.asarray(points2d, dtype=float).reshape(-1, 2)
    w = np.asarray(readout2d, dtype=float).reshape(-1, 2)
    ang = np.asarray(angles, dtype=float)
    c = len(class_names)
    nu = np.zeros(len(p), dtype=int) if n_unstable is None else np.asarray(n_unstable, dtype=int)
    centre = p.mean(axis=0) if len(p) else np.zeros(2)
    span = float(np.abs(p - centre).max()) if len(p) else 1.0
    wn = w / max(float(np.linalg.norm(w, axis=1).max()), 1e-12) * max(span, 1e-6)
    pairs = [(i, j) for i in range(c) for j in range(i + 1, c)]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], specs=[[{"type": "xy"}, {"type": "table"}]],
                        subplot_titles=("fixed points and readouts (top 2 PCs)",
                                        f"readout angles (simplex {simplex_angle:.1f}°)"))
    for k in sorted(set(nu.tolist())):
        m = nu == k
        fig.add_trace(go.Scatter(x=p[m, 0], y=p[m, 1], mode="markers", name=f"{_ulabel(k)} ({int(m.sum())})",
                                 marker={"size": 6, "color": _ucolor(k)}), row=1, col=1)
    for i in range(c):
        col = _CLASS_COLORS[i % len(_CLASS_COLORS)]
        fig.add_trace(go.Scatter(x=[centre[0], centre[0] + wn[i, 0]], y=[centre[1], centre[1] + wn[i, 1]],
                                 mode="lines+markers+text", text=["", class_names[i]], textposition="top center",
                                 line={"color": col, "width": 3}, marker={"size": [0, 8], "color": col},
                                 name=f"readout {class_names[i]}"), row=1, col=1)
    fig.add_trace(go.Table(header={"values": ["pair", "angle (°)", "− simplex"]},
                           cells={"values": [[f"{class_names[i]}–{class_names[j]}" for i, j in pairs],
                                             [f"{ang[i, j]:.1f}" for i, j in pairs],
                                             [f"{ang[i, j] - simplex_angle:+.1f}" for i, j in pairs]]}),
                  row=1, col=2)
    fig.update_layout(title=title)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)

    plt = _plt()
    mfig, a = plt.subplots(figsize=(6, 5))
    for k in sorted(set(nu.tolist())):
        m = nu == k
        a.scatter(p[m, 0], p[m, 1], s=16, c=_ucolor(k), label=f"{_ulabel(k)} ({int(m.sum())})")
    for i in range(c):
        col = _CLASS_COLORS[i % len(_CLASS_COLORS)]
        a.annotate("", xy=(centre[0] + wn[i, 0], centre[1] + wn[i, 1]), xytext=(centre[0], centre[1]),
                   arrowprops={"arrowstyle": "->", "color": col, "lw": 2})
        a.text(centre[0] + 1.08 * wn[i, 0], centre[1] + 1.08 * wn[i, 1], class_names[i], color=col, fontsize=8)
    txt = ", ".join(f"{class_names[i]}–{class_names[j]} {ang[i, j]:.1f}°" for i, j in pairs[:10])
    a.set_title(f"{title}\n{txt} (simplex {simplex_angle:.1f}°)", fontsize=8)
    a.set_aspect("equal", adjustable="datalim")
    a.set_xlabel("PC1")
    a.set_ylabel("PC2")
    a.legend(fontsize=7)
    return save_figure(out_dir, name, plotly_fig=fig, mpl_fig=mfig)


def flipflop_readout_figure(out_dir: str | Path, name: str, outputs: Any, n_unstable: Sequence[int],
                            title: str) -> list[Path]:
    """The readout ``[K, n_bits]`` at each fixed point (rows sorted by unstable modes): the 8 stable points of a
    3-bit flip-flop read out the 8 sign patterns, the saddles read 0 on their unstable bits."""
    import plotly.graph_objects as go

    o = np.asarray(outputs, dtype=float)
    o = o.reshape(len(n_unstable), -1) if o.size else np.zeros((0, 1))
    nu = np.asarray(n_unstable, dtype=int)
    order = np.lexsort(tuple(o[:, j] for j in reversed(range(o.shape[1]))) + (nu,)) if len(o) else np.zeros(0, int)
    o, nu = o[order], nu[order]
    rows = [f"#{i} ({_ulabel(k)})" for i, k in enumerate(nu.tolist())]
    cols = [f"bit {j}" for j in range(o.shape[1])]
    fig = go.Figure(go.Heatmap(z=o, x=cols, y=rows, zmin=-1.2, zmax=1.2, colorscale="RdBu", colorbar={"title": "out"}))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"})
    plt = _plt()
    mfig, a = plt.subplots(figsize=(4, max(2.5, 0.22 * len(o) + 1)))
    im = a.imshow(o, cmap="RdBu", vmin=-1.2, vmax=1.2, aspect="auto")
    a.set_yticks(range(len(rows)), rows, fontsize=6)
    a.set_xticks(range(len(cols)), cols, fontsize=8)
    a.set_title(title, fontsize=9)
    mfig.colorbar(im, ax=a, fraction=0.05)
    return save_figure(out_dir, name, plotly_fig=fig, mpl_fig=mfig)


def variance_figure(out_dir: str | Path, name: str, profiles: dict[str, Sequence[float]], title: str,
                    threshold: float = 0.95, top: int = 10) -> list[Path]:
    """Cumulative explained variance of the first ``top`` components for each profile (e.g. fixed points, all
    visited states, word-count prediction), with the variance threshold the dimension is read at."""
    import plotly.graph_objects as go

    fig = go.Figure()
    plt = _plt()
    mfig, a = plt.subplots(figsize=(5.5, 4))
    for i, (label, prof) in enumerate(profiles.items()):
        v = np.cumsum(np.asarray(prof, dtype=float)[:top])
        x = np.arange(1, len(v) + 1)
        col = _CLASS_COLORS[i % len(_CLASS_COLORS)]
        fig.add_trace(go.Scatter(x=x, y=v, mode="lines+markers", name=label, line={"color": col}))
        a.plot(x, v, "o-", color=col, label=label, ms=4)
    fig.add_hline(y=threshold, line_dash="dash", line_color="#444", annotation_text=f"{threshold:.0%}")
    fig.update_layout(title=title, xaxis_title="number of PCs", yaxis_title="cumulative variance",
                      yaxis={"range": [0, 1.02]})
    a.axhline(threshold, ls="--", color="#444", lw=0.8)
    a.set_ylim(0, 1.02)
    a.set_xlabel("number of PCs")
    a.set_ylabel("cumulative variance")
    a.set_title(title, fontsize=10)
    a.legend(fontsize=7)
    return save_figure(out_dir, name, plotly_fig=fig, mpl_fig=mfig)


def dimension_figure(out_dir: str | Path, name: str, rows: Sequence[dict[str, Any]], title: str) -> list[Path]:
    """Predicted (word counts) against measured (fixed points) dimension, one marker per run, with the diagonal.

    Each row: ``{"run", "dataset", "cell", "predicted", "measured", "measured_states"}`` (dimensions at the same
    variance threshold; ``measured_states`` is the all-visited-states figure, drawn hollow beside it).

    >>> import tempfile
    >>> p = dimension_figure(tempfile.mkdtemp(), "dimension", [{"run": "a", "dataset": "d", "cell": "gru",
    ...                      "predicted": 2, "measured": 2, "measured_states": 5}], "demo")
    >>> len(p)
    3
    """
    import plotly.graph_objects as go

    rows = [r for r in rows if r.get("predicted") is not None]
    datasets = sorted({r["dataset"] for r in rows})
    cells = sorted({r["cell"] for r in rows})
    symbols = ["circle", "square", "diamond", "triangle-up", "cross"]
    mpl_markers = ["o", "s", "D", "^", "P"]
    hi = max([1] + [int(r["predicted"]) for r in rows] + [int(r["measured"]) for r in rows
                                                           if r.get("measured") is not None])
    fig = go.Figure(go.Scatter(x=[0, hi + 1], y=[0, hi + 1], mode="lines", name="measured = predicted",
                               line={"color": "#444", "dash": "dash"}))
    plt = _plt()
    mfig, a = plt.subplots(figsize=(5.5, 5))
    a.plot([0, hi + 1], [0, hi + 1], "--", color="#444", lw=0.8, label="measured = predicted")
    for di, ds in enumerate(datasets):
        for ci, cell in enumerate(cells):
            sel = [r for r in rows if r["dataset"] == ds and r["cell"] == cell]
            if not sel:
                continue
            col = _CLASS_COLORS[di % len(_CLASS_COLORS)]
            # small horizontal offsets keep the cells apart when they coincide
            off = (ci - (len(cells) - 1) / 2) * 0.08
            xs = [float(r["predicted"]) + off for r in sel]
            ys = [float(r["measured"]) if r.get("measured") is not None else math.nan for r in sel]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{ds} · {cell}",
                                     text=[r["run"] for r in sel],
                                     marker={"size": 11, "color": col, "symbol": symbols[ci % len(symbols)]}))
            a.scatter(xs, ys, s=55, c=col, marker=mpl_markers[ci % len(mpl_markers)], label=f"{ds} · {cell}")
            st = [float(r["measured_states"]) if r.get("measured_states") is not None else math.nan for r in sel]
            fig.add_trace(go.Scatter(x=xs, y=st, mode="markers", name=f"{ds} · {cell} (all states)",
                                     text=[r["run"] for r in sel], visible="legendonly",
                                     marker={"size": 9, "color": col, "symbol": symbols[ci % len(symbols)] + "-open"}))
    fig.update_layout(title=title, xaxis_title="predicted dimension (word counts, 95% variance)",
                      yaxis_title="measured dimension (fixed points, 95% variance)")
    a.set_xlabel("predicted dimension (word counts, 95%)")
    a.set_ylabel("measured dimension (fixed points, 95%)")
    a.set_title(title, fontsize=10)
    a.legend(fontsize=6, loc="upper left")
    return save_figure(out_dir, name, plotly_fig=fig, mpl_fig=mfig)


__all__ = ["dimension_figure", "eigenvalues_figure", "flipflop_readout_figure", "pca3d_figure", "readout_figure",
           "variance_figure"]
