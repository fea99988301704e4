"""Saving figures in the three forms a report needs: interactive Plotly JSON, and static PNG + SVG (matplotlib).

Convention shared by every reproduction: figures live in ``<out>/figures/``; ``NAME.plotly.json`` is a Plotly figure
(``fig.to_json()``) that :mod:`innerworks.report.html` embeds, ``NAME.png``/``NAME.svg`` are for papers. A claim links
to its figure by ``figures/NAME.png``.

>>> import tempfile, plotly.graph_objects as go
>>> d = tempfile.mkdtemp()
>>> paths = save_figure(d, "demo", plotly_fig=go.Figure(go.Scatter(x=[0, 1], y=[1, 0])))
>>> sorted(p.name for p in paths)
['demo.plotly.json']
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from innerworks.errors import InnerworksError
from innerworks.utils.io import atomic_write_bytes, atomic_write_text

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def figures_dir(out_dir: str | Path) -> Path:
    """``<out_dir>/figures``, created if missing."""
    d = Path(out_dir) / "figures"
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_figure(out_dir: str | Path, name: str, plotly_fig: Any | None = None, mpl_fig: Any | None = None,
                title: str | None = None) -> list[Path]:
    """Save ``plotly_fig`` as ``figures/NAME.plotly.json`` and ``mpl_fig`` as PNG + SVG; return the paths written.

    The matplotlib figure is closed after saving. ``title`` overrides the Plotly layout title.
    """
    if not _NAME.match(name):
        raise InnerworksError(f"figure name {name!r}: use letters, digits, '_', '-' or '.'")
    d = figures_dir(out_dir)
    written: list[Path] = []
    if plotly_fig is not None:
        if title is not None:
            plotly_fig.update_layout(title=title)
        path = d / f"{name}.plotly.json"
        atomic_write_text(path, plotly_fig.to_json())
        written.append(path)
    if mpl_fig is not None:
        import matplotlib.pyplot as plt

        for ext in ("png", "svg"):
            buf = io.BytesIO()
            mpl_fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight")
            path = d / f"{name}.{ext}"
            atomic_write_bytes(path, buf.getvalue())
            written.append(path)
        plt.close(mpl_fig)
    return written
