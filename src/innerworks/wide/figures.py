"""Figures of the wide-network lab, drawn from plain data so that a report can re-plot them.

Each figure is first built as a JSON-able *figure spec* (panels of series), then rendered with matplotlib (PNG + SVG)
and Plotly (``.plotly.json``) through :func:`innerworks.report.figures.save_figure`; the spec itself is saved as
``figures/NAME.data.json``.

>>> import tempfile
>>> spec = {"title": "demo", "panels": [{"title": "p", "xlabel": "n", "ylabel": "y", "xscale": "log",
...         "yscale": "log", "series": [{"label": "a", "x": [1, 2], "y": [1, 0.5], "style": "points"}]}]}
>>> sorted(p.name for p in save_spec(tempfile.mkdtemp(), "demo", spec))
['demo.data.json', 'demo.plotly.json', 'demo.png', 'demo.svg']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from innerworks.report.figures import figures_dir, save_figure
from innerworks.utils.io import write_json
from innerworks.wide.sweep import SweepResult

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def render_matplotlib(spec: dict[str, Any]) -> Any:
    """A matplotlib figure (Agg) from a figure spec."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = spec["panels"]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.7 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for s in panel["series"]:
            x, y = np.asarray(s["x"], float), np.asarray(s["y"], float)
            style = s.get("style", "points")
            color = s.get("color")
            if style == "points":
                yerr = s.get("yerr")
                ax.errorbar(x, y, yerr=None if yerr is None else np.asarray(yerr, float), fmt="o", ms=4,
                            capsize=2, color=color, label=s["label"])
            else:
                ax.plot(x, y, "--" if style == "dashed" else "-", color=color, lw=1.2,
                        alpha=0.6 if style == "dashed" else 0.9, label=s["label"])
        ax.set_xscale(panel.get("xscale", "linear"))
        if panel.get("xscale") == "log":
            # tick at the measured widths, written plainly (no 3x10^1 clutter)
            xs = sorted({float(v) for s in panel["series"] for v in s["x"]})
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{v:g}" for v in xs], fontsize=7)
            ax.minorticks_off()
        ax.set_yscale(panel.get("yscale", "linear"))
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(spec["title"], fontsize=11)
    fig.tight_layout()
    return fig


def render_plotly(spec: dict[str, Any]) -> Any:
    """A Plotly figure from a figure spec (one subplot per panel)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = spec["panels"]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[p["title"] for p in panels])
    for i, panel in enumerate(panels):
        row, col = i // ncols + 1, i % ncols + 1
        for s in panel["series"]:
            style = s.get("style", "points")
            hidden = s["label"].startswith("_")
            kw: dict[str, Any] = {"x": s["x"], "y": s["y"], "name": s["label"].lstrip("_"), "showlegend": not hidden}
            if style == "points":
                err = s.get("yerr")
                tr = go.Scatter(mode="markers", marker={"color": s.get("color")},
                                error_y=None if err is None else {"type": "data", "array": err}, **kw)
            else:
                tr = go.Scatter(mode="lines", line={"color": s.get("color"), "dash": "dash" if style == "dashed"
                                                    else "solid"}, **kw)
            fig.add_trace(tr, row=row, col=col)
        fig.update_xaxes(type=panel.get("xscale", "linear"), title_text=panel["xlabel"], row=row, col=col)
        fig.update_yaxes(type=panel.get("yscale", "linear"), title_text=panel["ylabel"], row=row, col=col)
    fig.update_layout(title=spec["title"], height=380 * nrows, width=480 * ncols)
    return fig


def save_spec(out_dir: str | Path, name: str, spec: dict[str, Any]) -> list[Path]:
    """Save the spec as ``figures/NAME.data.json`` plus its Plotly, PNG and SVG renderings; return the paths."""
    data_path = figures_dir(out_dir) / f"{name}.data.json"
    write_json(data_path, spec)
    paths = save_figure(out_dir, name, plotly_fig=render_plotly(spec), mpl_fig=render_matplotlib(spec))
    return [data_path, *paths]


def _guide(widths: Sequence[int], values: Sequence[float], slope: float) -> list[float]:
    """A power law of the given slope through the geometric mean of the data."""
    x = np.log(np.asarray(widths, float))
    y = np.log(np.abs(np.asarray(values, float)))
    return np.exp(y.mean() + slope * (x - x.mean())).tolist()


def sweep_panel(title: str, results: Sequence[SweepResult], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """A log-log panel: |estimate| with ±1 s.e. per width, the fitted power law (solid) and the predicted slope
    (dashed, through the data's geometric mean), one colour per result. Labels starting with ``_`` stay out of the
    legend."""
    series: list[dict[str, Any]] = []
    for i, r in enumerate(results):
        label = labels[i] if labels else r.config["activation"]
        c = _color(i)
        means = [e.mean for e in r.estimates]
        if r.fit is None:
            series.append({"label": f"{label}: zero ({r.zero_reason})", "x": r.widths,
                           "y": [max(abs(m), 1e-30) for m in means], "yerr": [e.stderr for e in r.estimates],
                           "style": "points", "color": c})
            continue
        series.append({"label": f"{label}: slope {r.fit.slope:.2f} [{r.fit.ci_low:.2f}, {r.fit.ci_high:.2f}]",
                       "x": r.widths, "y": [abs(m) for m in means], "yerr": [e.stderr for e in r.estimates],
                       "style": "points", "color": c})
        series.append({"label": f"_{label} fit", "x": r.widths, "y": r.fit.line(r.widths).tolist(), "style": "line",
                       "color": c})
        series.append({"label": f"_{label} predicted n^{r.predicted}", "x": r.widths,
                       "y": _guide(r.widths, r.fit.values, r.predicted), "style": "dashed", "color": c})
    return {"title": title, "xlabel": "width n", "ylabel": "|estimate|", "xscale": "log", "yscale": "log",
            "series": series}


def rms_panel(title: str, widths: Sequence[int], curves: dict[str, tuple[list[float], Any]],
              guides: Sequence[float]) -> dict[str, Any]:
    """A log-log panel of RMS values per width with fits and guide slopes (``curves``: label -> (values, fit))."""
    series: list[dict[str, Any]] = []
    for i, (label, (values, fit)) in enumerate(curves.items()):
        c = _color(i)
        series.append({"label": f"{label}: slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]",
                       "x": list(widths), "y": values, "style": "points", "color": c})
        series.append({"label": f"_{label} fit", "x": list(widths), "y": fit.line(widths).tolist(),
                       "style": "line", "color": c})
    first = next(iter(curves.values()))[0] if curves else [1.0] * len(widths)
    for g in guides:
        series.append({"label": f"n^{g:g}", "x": list(widths), "y": _guide(widths, first, g), "style": "dashed",
                       "color": "#7f7f7f"})
    return {"title": title, "xlabel": "width n", "ylabel": "RMS over nets", "xscale": "log", "yscale": "log",
            "series": series}


def diagonal_panel(title: str, results: Sequence[SweepResult], exact: float | None) -> dict[str, Any]:
    """A linear-y panel of estimates against width (log x) with an exact reference line."""
    series: list[dict[str, Any]] = []
    for i, r in enumerate(results):
        series.append({"label": r.config["activation"], "x": r.widths, "y": [e.mean for e in r.estimates],
                       "yerr": [e.stderr for e in r.estimates], "style": "points", "color": _color(i)})
    if exact is not None and results:
        series.append({"label": f"exact {exact:g}", "x": results[0].widths, "y": [exact] * len(results[0].widths),
                       "style": "dashed", "color": "#7f7f7f"})
    return {"title": title, "xlabel": "width n", "ylabel": "estimate", "xscale": "log", "yscale": "linear",
            "series": series}
