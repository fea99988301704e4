"""Figures of the attention lab, drawn from plain numbers so the report can re-plot them.

Every function takes data already computed by :mod:`innerworks.attention.analyze` (lists / arrays, no models) and
saves one figure through :func:`innerworks.report.figures.save_figure`: ``figures/NAME.plotly.json`` (interactive)
plus ``NAME.png`` and ``NAME.svg`` (matplotlib, Agg). Names follow the report's ``KIND__VARIANT`` rule, so all
figures of one kind form one panel with a run selector:

- ``attention__<run>``: one sample's attention, the temporal-only attention and the attention rebuilt from chosen
  terms, side by side (:func:`attention_figure`);
- ``term_shares__<run>``: dot ratios and signed shares of the nine terms (:func:`term_shares_figure`);
- ``mu_pca__<run>``: PCA of the temporal trajectories and of the input-driven clusters (:func:`mu_pca_figure`);
- ``lag__<run>``: temporal argmax lag against the data's mean offset (:func:`lag_figure`);
- ``input_share__<arch>``: input-driven share per task (:func:`input_share_figure`);
- ``term_shares_by_arch__<task>``: the nine dot ratios of AED and AO side by side (:func:`term_shares_by_arch_figure`);
- ``share_vs_match__runs``: temporal share against the average-attention match, one point per run
  (:func:`share_vs_match_figure`).

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> names = term_shares_figure(d, "term_shares__demo", {"muE_muD": [0.8], "chiE_chiD": [0.2]},
...                            {"muE_muD": [1.0], "chiE_chiD": [0.0]})
>>> sorted(p.name for p in names)
['term_shares__demo.plotly.json', 'term_shares__demo.png', 'term_shares__demo.svg']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from innerworks.report.figures import save_figure

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
_GREY = "#9a9a9a"

# Pretty labels for the nine terms (encoder part first, as everywhere in the lab).
TERM_LABELS = {
    "muE_muD": "μE·μD", "muE_chiD": "μE·χD", "muE_deltaD": "μE·δD",
    "chiE_muD": "χE·μD", "chiE_chiD": "χE·χD", "chiE_deltaD": "χE·δD",
    "deltaE_muD": "δE·μD", "deltaE_chiD": "δE·χD", "deltaE_deltaD": "δE·δD",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(x: Any) -> float:
    """``float(x)``, with None / NaN mapped to NaN (JSON stores NaN as null)."""
    if x is None:
        return math.nan
    return float(x)


def attention_figure(out_dir: str | Path, name: str, panels: Mapping[str, Sequence[Sequence[float]]],
                     src_labels: Sequence[str], tgt_labels: Sequence[str], title: str) -> list[Path]:
    """Heatmaps ``[T, S]`` side by side, one per entry of ``panels`` (e.g. sample / temporal-only / rebuilt).

    Rows are decoder steps (labelled by ``tgt_labels``, the target tokens), columns encoder positions (labelled by
    ``src_labels``). All panels share the colour scale 0..1 (they are attention weights).

    >>> import tempfile
    >>> p = attention_figure(tempfile.mkdtemp(), "attention__demo", {"a": [[1.0, 0.0]], "b": [[0.5, 0.5]]},
    ...                      ["x", "<eos>"], ["<eos>"], "demo")
    >>> len(p)
    3
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = _plt()
    items = list(panels.items())
    n = len(items)
    xs, ys = [f"{i}:{w}" for i, w in enumerate(src_labels)], [f"{i}:{w}" for i, w in enumerate(tgt_labels)]
    pfig = make_subplots(rows=1, cols=n, subplot_titles=[k for k, _ in items], horizontal_spacing=0.06)
    for j, (label, mat) in enumerate(items):
        pfig.add_trace(go.Heatmap(z=np.asarray(mat, float).tolist(), x=xs, y=ys, zmin=0.0, zmax=1.0,
                                  colorscale="Viridis", showscale=j == n - 1, name=label,
                                  hovertemplate="dec %{y}<br>enc %{x}<br>weight %{z:.3f}<extra>" + label +
                                  "</extra>"), row=1, col=j + 1)
        pfig.update_yaxes(autorange="reversed", row=1, col=j + 1)
        pfig.update_xaxes(title_text="encoder position", row=1, col=j + 1)
    pfig.update_yaxes(title_text="decoder step", row=1, col=1)
    pfig.update_layout(title=title, height=420, width=max(420 * n, 600))

    size = max(3.0, 0.28 * max(len(xs), len(ys)) + 1.5)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False)
    for ax, (label, mat) in zip(axes[0], items, strict=True):
        im = ax.imshow(np.asarray(mat, float), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels(list(src_labels), rotation=90, fontsize=6)
        ax.set_yticks(range(len(ys)))
        ax.set_yticklabels(list(tgt_labels), fontsize=6)
        ax.set_xlabel("encoder position", fontsize=8)
    axes[0][0].set_ylabel("decoder step", fontsize=8)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


def term_shares_figure(out_dir: str | Path, name: str, dot_ratios: Mapping[str, Sequence[float]],
                       signed_shares: Mapping[str, Sequence[float]], title: str | None = None) -> list[Path]:
    """Grouped bars per term: the dot ratio (top-k, ``|term| / sum |terms|``) and the signed share at the maximal
    alignment (``mean(term) / mean(full)``); one bar per head when there are several."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = _plt()
    terms = [t for t in TERM_LABELS if t in dot_ratios]
    labels = [TERM_LABELS[t] for t in terms]
    n_heads = max(len(dot_ratios[t]) for t in terms)
    title = title or name
    pfig = make_subplots(rows=1, cols=2, subplot_titles=["dot ratio at the top-k positions",
                                                         "signed share at the maximal alignment"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / n_heads
    x = np.arange(len(terms))
    for col, (values, ax) in enumerate(((dot_ratios, axes[0]), (signed_shares, axes[1]))):
        for h in range(n_heads):
            ys = [_finite(values[t][h]) if t in values and h < len(values[t]) else math.nan for t in terms]
            hl = f"head {h}" if n_heads > 1 else "all"
            pfig.add_trace(go.Bar(x=labels, y=ys, name=hl, marker_color=_COLORS[h % len(_COLORS)],
                                  showlegend=col == 0 and n_heads > 1, legendgroup=hl), row=1, col=col + 1)
            ax.bar(x + (h - (n_heads - 1) / 2) * width, ys, width, color=_COLORS[h % len(_COLORS)], label=hl)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45, fontsize=8)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_title("dot ratio at the top-k positions", fontsize=9)
    axes[1].set_title("signed share at the maximal alignment", fontsize=9)
    if n_heads > 1:
        axes[0].legend(fontsize=7)
    pfig.update_layout(title=title, barmode="group", height=400, width=1000)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


def mu_pca_figure(out_dir: str | Path, name: str, data: Mapping[str, Any], title: str) -> list[Path]:
    """Three panels: the temporal trajectories ``mu^E_t`` and ``mu^D_s`` in their top-2 PCs; encoder and decoder
    vectors with ``mu`` removed (``h - mu = chi + delta``), coloured by token, with ``chi(w)`` as large markers.

    ``data`` is what :func:`innerworks.attention.analyze.mu_pca_data` returns: ``{"mu": {"encoder": [[x, y]...],
    "decoder": [[x, y]...], "explained": [..]}, "encoder"/"decoder": {"points": [[x, y]...], "tokens": [...],
    "chi": {token: [x, y]}, "explained": [..]}}``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = _plt()
    mu = data["mu"]
    ev = mu.get("explained", [math.nan, math.nan])
    panel_titles = [f"μ trajectories (PC1 {_pct(ev, 0)}, PC2 {_pct(ev, 1)})"]
    sides = [s for s in ("encoder", "decoder") if data.get(s)]
    panel_titles += [f"{s}: h − μ by token, χ(w) as ◆" for s in sides]
    ncol = len(panel_titles)
    pfig = make_subplots(rows=1, cols=ncol, subplot_titles=panel_titles)
    fig, axes = plt.subplots(1, ncol, figsize=(4.6 * ncol, 4.2), squeeze=False)
    ax0 = axes[0][0]
    for side, color in (("encoder", _COLORS[0]), ("decoder", _COLORS[1])):
        pts = np.asarray(mu.get(side) or [], float).reshape(-1, 2)
        if not len(pts):
            continue
        label = "μE_t" if side == "encoder" else "μD_s"
        pfig.add_trace(go.Scatter(x=pts[:, 0].tolist(), y=pts[:, 1].tolist(), mode="lines+markers+text",
                                  text=[str(i) for i in range(len(pts))], textposition="top center",
                                  name=label, line={"color": color}), row=1, col=1)
        ax0.plot(pts[:, 0], pts[:, 1], "-o", color=color, ms=3, lw=1, label=label)
        for i, (a, b) in enumerate(pts):
            ax0.annotate(str(i), (a, b), fontsize=6, color=color)
    ax0.set_title(panel_titles[0], fontsize=8)
    ax0.legend(fontsize=7)
    for j, side in enumerate(sides, start=1):
        d = data[side]
        pts = np.asarray(d["points"], float).reshape(-1, 2)
        toks = list(d["tokens"])
        shown = list(d["chi"].keys())
        ax = axes[0][j]
        for i, tok in enumerate([*shown, "other"]):
            sel = [k for k, t in enumerate(toks) if (t == tok if tok != "other" else t not in shown)]
            if not sel:
                continue
            color = _COLORS[i % len(_COLORS)] if tok != "other" else _GREY
            pfig.add_trace(go.Scatter(x=pts[sel, 0].tolist(), y=pts[sel, 1].tolist(), mode="markers",
                                      marker={"color": color, "size": 4, "opacity": 0.5}, name=f"{side} {tok}",
                                      legendgroup=f"{side}{tok}"), row=1, col=j + 1)
            ax.scatter(pts[sel, 0], pts[sel, 1], s=4, alpha=0.4, color=color, label=tok)
            if tok in d["chi"]:
                cx, cy = d["chi"][tok]
                pfig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", marker={"color": color, "size": 12,
                                          "symbol": "diamond", "line": {"color": "black", "width": 1}},
                                          name=f"χ({tok})", legendgroup=f"{side}{tok}", showlegend=False),
                               row=1, col=j + 1)
                ax.scatter([cx], [cy], s=70, marker="D", color=color, edgecolors="black")
        ax.set_title(panel_titles[j], fontsize=8)
        ax.legend(fontsize=6, markerscale=3, loc="best")
    pfig.update_layout(title=title, height=440, width=470 * ncol)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


def _pct(values: Sequence[Any], i: int) -> str:
    if i >= len(values) or values[i] is None or not math.isfinite(float(values[i])):
        return "n/a"
    return f"{100 * float(values[i]):.0f}%"


def lag_figure(out_dir: str | Path, name: str, lag: Sequence[float], offset: Sequence[float],
               title: str, attention_lag: Sequence[float] | None = None,
               step_counts: Sequence[int] | None = None) -> list[Path]:
    """The temporal argmax lag ``argmax_t(mu^D_s . mu^E_t) - s`` per decoder step next to the data's mean
    encoder-minus-decoder offset; optionally the per-sample attention's own mean lag, and the number of samples
    behind each step (a bar chart on a second axis).

    >>> import tempfile
    >>> len(lag_figure(tempfile.mkdtemp(), "lag__demo", [0, 1, 1], [0.3, 0.8, 1.2], "demo", [0.2, 0.9, 1.0],
    ...                [10, 10, 4]))
    3
    """
    import plotly.graph_objects as go

    plt = _plt()
    s = list(range(len(lag)))
    off = [_finite(v) for v in offset][: len(lag)]
    traces = [go.Scatter(x=s, y=[_finite(v) for v in lag], mode="lines+markers", name="temporal argmax lag"),
              go.Scatter(x=s[: len(off)], y=off, mode="lines+markers", name="data mean offset",
                         line={"dash": "dash"})]
    alag = None if attention_lag is None else [_finite(v) for v in attention_lag][: len(lag)]
    if alag is not None:
        traces.append(go.Scatter(x=s[: len(alag)], y=alag, mode="lines+markers", name="sample attention lag (mean)",
                                 line={"dash": "dot"}))
    if step_counts is not None:
        traces.append(go.Bar(x=s, y=list(step_counts)[: len(lag)], name="samples at step", yaxis="y2",
                             opacity=0.25, marker_color=_GREY))
    pfig = go.Figure(traces)
    pfig.update_layout(title=title, xaxis_title="decoder step s", yaxis_title="encoder − decoder position",
                       height=380, width=600)
    if step_counts is not None:
        pfig.update_layout(yaxis2={"title": "samples", "overlaying": "y", "side": "right", "showgrid": False})
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    if step_counts is not None:
        ax2 = ax.twinx()
        ax2.bar(s, list(step_counts)[: len(lag)], color=_GREY, alpha=0.25, label="samples at step")
        ax2.set_ylabel("samples at step", fontsize=8)
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
    ax.plot(s, [_finite(v) for v in lag], "-o", label="temporal argmax lag")
    ax.plot(s[: len(off)], off, "--s", label="data mean offset")
    if alag is not None:
        ax.plot(s[: len(alag)], alag, ":^", label="sample attention lag (mean)")
    ax.set_xlabel("decoder step s")
    ax.set_ylabel("encoder − decoder position")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


def input_share_figure(out_dir: str | Path, name: str, shares: Mapping[str, float], title: str,
                       threshold: float | None = None,
                       ylabel: str = "input-driven dot-ratio share") -> list[Path]:
    """Bars of one value per label (default: the input-driven share per task), with an optional dashed threshold
    line (``repro attention`` also draws its accuracy bars with it).

    >>> import tempfile
    >>> len(input_share_figure(tempfile.mkdtemp(), "input_share__demo", {"a": 0.1, "b": 0.4}, "demo", 0.2))
    3
    """
    import plotly.graph_objects as go

    plt = _plt()
    names, values = list(shares), [_finite(v) for v in shares.values()]
    colors = [_COLORS[i % len(_COLORS)] for i in range(len(names))]
    pfig = go.Figure(go.Bar(x=names, y=values, marker_color=colors))
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.5, 3.4))
    ax.bar(names, values, color=colors)
    ax.tick_params(axis="x", labelrotation=30 if len(names) > 4 else 0, labelsize=8)
    if threshold is not None:
        pfig.add_hline(y=threshold, line_dash="dash", annotation_text="claim threshold")
        ax.axhline(threshold, ls="--", color="black", lw=0.8, label="claim threshold")
        ax.legend(fontsize=7)
    pfig.update_layout(title=title, yaxis_title=ylabel, height=380, width=max(560, 110 * len(names)))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


def term_shares_by_arch_figure(out_dir: str | Path, name: str, shares: Mapping[str, Mapping[str, float]],
                               title: str, ylabel: str = "dot ratio (top-5, head-averaged)") -> list[Path]:
    """Grouped bars: the nine terms on the x axis, one bar per architecture (e.g. AED and AO on one task).

    >>> import tempfile
    >>> len(term_shares_by_arch_figure(tempfile.mkdtemp(), "term_shares_by_arch__demo",
    ...                                {"aed": {"muE_muD": 0.8}, "ao": {"muE_muD": 0.7}}, "demo"))
    3
    """
    import plotly.graph_objects as go

    plt = _plt()
    terms = [t for t in TERM_LABELS if any(t in v for v in shares.values())]
    labels = [TERM_LABELS[t] for t in terms]
    pfig = go.Figure()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / max(len(shares), 1)
    for i, (arch, vals) in enumerate(shares.items()):
        ys = [_finite(vals.get(t)) for t in terms]
        pfig.add_trace(go.Bar(x=labels, y=ys, name=arch.upper(), marker_color=_COLORS[i % len(_COLORS)]))
        ax.bar(np.arange(len(terms)) + (i - (len(shares) - 1) / 2) * width, ys, width, label=arch.upper(),
               color=_COLORS[i % len(_COLORS)])
    pfig.update_layout(title=title, yaxis_title=ylabel, barmode="group", height=380, width=760)
    ax.set_xticks(np.arange(len(terms)), labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


def share_vs_match_figure(out_dir: str | Path, name: str, points: Mapping[str, Sequence[float]], title: str,
                          xlabel: str = "average-attention match (1 − mean TV)",
                          ylabel: str = "temporal share (μE·μD dot ratio)") -> list[Path]:
    """Scatter of one point per run, ``points[run] = (x, y)``, labelled by run name.

    >>> import tempfile
    >>> len(share_vs_match_figure(tempfile.mkdtemp(), "share_vs_match__demo", {"a": (0.9, 0.8), "b": (0.5, 0.3)},
    ...                           "demo"))
    3
    """
    import plotly.graph_objects as go

    plt = _plt()
    names = list(points)
    xs, ys = [_finite(points[n][0]) for n in names], [_finite(points[n][1]) for n in names]
    colors = [_COLORS[i % len(_COLORS)] for i in range(len(names))]
    pfig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers+text", text=names, textposition="top center",
                                marker={"color": colors, "size": 10}))
    pfig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=420, width=620)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.scatter(xs, ys, c=colors)
    for n, x, y in zip(names, xs, ys, strict=True):
        ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save_figure(out_dir, name, plotly_fig=pfig, mpl_fig=fig)


__all__ = ["TERM_LABELS", "attention_figure", "input_share_figure", "lag_figure", "mu_pca_figure",
           "share_vs_match_figure", "term_shares_by_arch_figure", "term_shares_figure"]
