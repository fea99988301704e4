"""The self-contained HTML report of a reproduction run (and, re-exported here, the claims table for the terminal).

:func:`render_report` reads an output folder (:func:`~innerworks.report.load.load_report`, which describes the
layouts and the figure naming rule) and writes ``report.html`` into it: one file, with plotly.js and every figure's
data inlined, that opens offline. Nothing is recomputed, and only saved JSON is read.

The headline gives the claims passed per source (paper, predecessor, author code, extension), never one mixed total:
extensions are ours and not part of the paper's count. In each stage the paper-grounded claims come first and the
extensions follow in their own labelled group; every claim shows its reference, and the stage's thresholds table
(name, value, reason) is shown when ``results.json`` has one.

>>> import tempfile
>>> from innerworks.utils.io import write_json
>>> d = tempfile.mkdtemp()
>>> write_json(f"{d}/results.json", {"name": "demo", "claims": [{"id": "a", "statement": "x is small",
...     "expected": "< 1", "measured": 0.5, "passed": True, "source": "paper", "reference": "ICLR 2021 abstract"}]})
>>> render_report(d).name
'report.html'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from innerworks.report.load import figure_kind, figure_name, load_report
from innerworks.report.model import Report, format_value, pretty
from innerworks.report.sources import PAPER_GROUNDED, counts_text, source_counts, source_label
from innerworks.report.table import print_claims_table
from innerworks.utils.io import atomic_write_text

__all__ = ["REPORT_NAME", "Report", "figure_kind", "figure_name", "format_value", "load_report", "print_claims_table",
           "render_html", "render_report", "source_counts", "write_report"]

REPORT_NAME = "report.html"
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # The page must end this <script> only where we do.
    return js.replace("</script", "<\\/script")


def _seconds(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "—"
    if v < 60:
        return f"{v:.1f} s"
    m, s = divmod(v, 60)
    return f"{int(m)} min {s:04.1f} s" if m < 60 else f"{int(m // 60)} h {int(m % 60)} min"


def _environment(link_base: str) -> Any:
    """The Jinja environment of the page: autoescaped, strict, with the report's filters and tests."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["seconds"] = _seconds
    env.filters["value"] = format_value
    env.filters["pretty"] = pretty
    env.filters["counts"] = counts_text
    env.filters["source_label"] = source_label
    env.tests["paper_grounded"] = lambda source: source in PAPER_GROUNDED
    # Static-figure links are relative to the run folder; ``link_base`` leads there from where the page is written.
    env.filters["link"] = lambda rel: link_base + rel
    return env


def render_html(report: Report, link_base: str = "") -> str:
    """The page for ``report`` as one HTML string (plotly.js inlined, no external URLs).

    >>> import tempfile
    >>> from innerworks.utils.io import write_json
    >>> d = tempfile.mkdtemp()
    >>> write_json(f"{d}/results.json", {"name": "demo", "claims": [
    ...     {"id": "a", "statement": "s", "expected": "> 0", "measured": 1.0, "passed": True}]})
    >>> page = render_html(load_report(d)); page.startswith("<!DOCTYPE html>"), 'data-claim-id="a"' in page
    (True, True)
    """
    template = _environment(link_base).get_template("report.html.j2")
    prov = dict(report.provenance)
    versions = prov.pop("versions", {}) if isinstance(prov.get("versions"), dict) else {}
    return template.render(
        r=report,
        versions=versions,
        provenance_items=[(k, v if isinstance(v, str) else format_value(v, 400)) for k, v in prov.items()],
        css=(_TEMPLATES / "report.css").read_text(encoding="utf-8"),
        app_js=(_TEMPLATES / "report.js").read_text(encoding="utf-8"),
        plotly_js=_plotlyjs(),
    )


def render_report(out_dir: str | Path, output: str | Path | None = None) -> Path:
    """Render ``out_dir`` (see :func:`load_report`) into ``out_dir/report.html`` (or ``output``), atomically.

    >>> import tempfile
    >>> from innerworks.utils.io import write_json
    >>> d = tempfile.mkdtemp(); write_json(f"{d}/results.json", {"name": "demo", "claims": []})
    >>> render_report(d).is_file()
    True
    """
    return write_report(load_report(out_dir), output)


def write_report(report: Report, output: str | Path | None = None) -> Path:
    """Write the page of an already loaded :class:`Report`; return its path.

    Links to the static figure files are written relative to where the page goes, so they work from there.

    >>> import tempfile
    >>> from innerworks.utils.io import write_json
    >>> d = tempfile.mkdtemp(); write_json(f"{d}/results.json", {"name": "demo", "claims": []})
    >>> write_report(load_report(d)).name
    'report.html'
    """
    path = Path(output) if output is not None else report.out_dir / REPORT_NAME
    base = os.path.relpath(report.out_dir.resolve(), path.resolve().parent).replace(os.sep, "/")
    atomic_write_text(path, render_html(report, link_base="" if base == "." else base + "/"))
    os.chmod(path, 0o644)  # a page to share: readable by others (the atomic write creates it private)
    return path
