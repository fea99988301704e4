"""The self-contained HTML report of a reproduction run, and the claims table for the terminal.

:func:`render_report` reads an output folder and writes ``report.html`` into it: one file, with plotly.js and every
figure's data inlined, that opens offline. It accepts either

* a ``repro all`` folder: ``repro.json`` (stages, provenance, config, seed, device, wall times) plus one sub-folder per
  stage, each with ``results.json`` (the format of :mod:`innerworks.report.claims`) and ``figures/``; or
* a single stage folder: just ``results.json`` and ``figures/``; or
* a folder without ``repro.json`` whose sub-folders hold ``results.json`` files (each becomes a stage).

Nothing is recomputed. A stage without a readable ``results.json`` is shown as failed with its error; a figure file
that cannot be read is shown as a visible note. Neither stops the report.

Figure naming rule (for the labs). Figures are the files ``<stage>/figures/NAME.plotly.json`` (interactive) with
``NAME.png``/``NAME.svg`` beside them (static, linked). ``NAME`` splits into ``KIND`` and ``VARIANT``:

* ``KIND__VARIANT`` when ``NAME`` contains a double underscore (so a kind may itself contain ``_``:
  ``fixed_points__gru``);
* otherwise ``KIND_VARIANT`` at the first underscore (``attention_scan_gru`` -> kind ``attention``, variant
  ``scan_gru``); a name without ``_`` is a kind on its own.

All figures of one stage with the same kind form one panel; when there are several, a ``<select>`` switches between
their variants (e.g. ``attention_<task>_<model>`` gives one heatmap panel with a task/model selector). A figure with
only a PNG (no Plotly JSON) is embedded as an image. A claim's ``figure`` (``figures/NAME.png``, or just ``NAME``)
links to that figure in the page and to its PNG file.

>>> import tempfile
>>> from innerworks.report.claims import Claim, ReproResult, write_results
>>> d = tempfile.mkdtemp()
>>> _ = write_results(d, ReproResult("demo", [Claim("a", "x is small", "< 1", 0.5, True)]))
>>> render_report(d).name
'report.html'
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from innerworks.errors import InnerworksError
from innerworks.utils.io import atomic_write_text, read_json

REPORT_NAME = "report.html"
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_PLOTLY_SUFFIX = ".plotly.json"
_MAX_STATIC_BYTES = 3_000_000  # a PNG-only figure larger than this is linked, not embedded
_MAX_JSON_CHARS = 20_000  # extra results / claim details shown in the page are cut at this length
_RESULTS_KEYS = {"name", "claims", "all_passed", "figures", "wall_time_s", "provenance", "created"}
_GL3D_TYPES = {"scatter3d", "surface", "mesh3d", "cone", "streamtube", "volume", "isosurface"}


# --------------------------------------------------------------------------------------------------------------------
# Figure names
# --------------------------------------------------------------------------------------------------------------------


def figure_kind(name: str) -> tuple[str, str]:
    """Split a figure name into ``(kind, variant)`` by the naming rule of this module.

    >>> figure_kind("attention_scan_gru")
    ('attention', 'scan_gru')
    >>> figure_kind("fixed_points__lstm_n3")
    ('fixed_points', 'lstm_n3')
    >>> figure_kind("spectrum")
    ('spectrum', '')
    """
    sep = "__" if "__" in name else "_"
    kind, _, variant = name.partition(sep)
    if not kind:  # "_x" or "__x": no usable prefix, the name is its own kind
        return name, ""
    return kind, variant


def figure_name(ref: str) -> str:
    """The figure ``NAME`` a claim's ``figure`` field refers to (folder and extension dropped).

    >>> figure_name("figures/attention_scan_gru.png"), figure_name("loglog.plotly.json"), figure_name("pca3d")
    ('attention_scan_gru', 'loglog', 'pca3d')
    """
    base = ref.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (_PLOTLY_SUFFIX, ".png", ".svg", ".json", ".html"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


# --------------------------------------------------------------------------------------------------------------------
# What the page shows
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class FigureView:
    """One figure as the page shows it: embedded Plotly JSON, or an embedded PNG, or an error note."""

    name: str
    kind: str
    variant: str
    anchor: str
    title: str
    payload: str | None = None  # figure JSON, escaped so it is safe inside <script type="application/json">
    image_uri: str | None = None  # data: URI of the PNG when there is no interactive version
    png: str | None = None  # link to the static PNG, relative to the report
    svg: str | None = None
    error: str | None = None
    is_3d: bool = False


@dataclass
class FigureGroup:
    """The figures of one stage sharing a kind; several variants get a selector."""

    kind: str
    anchor: str
    figures: list[FigureView]

    @property
    def title(self) -> str:
        """Heading: the figure's own title when alone, else the kind."""
        if len(self.figures) == 1:
            return self.figures[0].title
        return self.kind.replace("_", " ")


@dataclass
class ClaimView:
    """One row of the claims table."""

    stage: str
    id: str
    statement: str
    expected: str
    measured: str
    passed: bool | None
    figure_ref: str | None = None
    figure_anchor: str | None = None
    figure_png: str | None = None
    details: str | None = None

    @property
    def verdict(self) -> str:
        """``PASS``, ``FAIL`` or ``N/A`` (could not be measured)."""
        return "PASS" if self.passed is True else ("FAIL" if self.passed is False else "N/A")


@dataclass
class StageView:
    """One reproduction stage: its status, claims, figures and provenance."""

    name: str
    key: str
    dir: str
    status: str
    error: str | None = None
    wall_time_s: float | None = None
    claims: list[ClaimView] = field(default_factory=list)
    groups: list[FigureGroup] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] | None = None  # the results.json document, when it could be read

    @property
    def n_passed(self) -> int:
        """Claims that passed."""
        return sum(c.passed is True for c in self.claims)

    @property
    def n_figures(self) -> int:
        """Figures in this stage."""
        return sum(len(g.figures) for g in self.groups)


@dataclass
class Report:
    """Everything the page shows, read from an output folder by :func:`load_report`.

    >>> import tempfile
    >>> from innerworks.report.claims import Claim, ReproResult, write_results
    >>> d = tempfile.mkdtemp()
    >>> _ = write_results(d, ReproResult("demo", [Claim("a", "s", "> 0", 1.0, True)]))
    >>> r = load_report(d); (r.n_passed, r.n_claims, r.stages[0].name)
    (1, 1, 'demo')
    """

    out_dir: Path
    title: str
    stages: list[StageView]
    provenance: dict[str, Any] = field(default_factory=dict)
    config: Any = None
    seed: Any = None
    device: Any = None
    quick: Any = None
    total_wall_time_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    generated: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %z"))

    @property
    def claims(self) -> list[ClaimView]:
        """Every claim of every stage, in order."""
        return [c for s in self.stages for c in s.claims]

    @property
    def n_claims(self) -> int:
        """Number of claims."""
        return len(self.claims)

    @property
    def n_passed(self) -> int:
        """Number of claims that passed."""
        return sum(c.passed is True for c in self.claims)

    @property
    def n_failed(self) -> int:
        """Number of claims that failed."""
        return sum(c.passed is False for c in self.claims)

    @property
    def failed_stages(self) -> list[StageView]:
        """Stages that did not finish."""
        return [s for s in self.stages if s.status != "ok"]

    @property
    def problems(self) -> list[str]:
        """What is wrong, in words: failed and unmeasured claims, failed stages (empty when all is well)."""
        n_na = self.n_claims - self.n_passed - self.n_failed
        parts = [f"{self.n_failed} failed"] if self.n_failed else []
        parts += [f"{n_na} not measured"] if n_na else []
        parts += [f"{len(self.failed_stages)} stage(s) failed"] if self.failed_stages else []
        return parts

    def results(self) -> list[dict[str, Any]]:
        """Per stage, a ``results.json``-like dict (with ``status``/``error``) for :func:`print_claims_table`."""
        out = []
        for s in self.stages:
            doc = dict(s.raw) if s.raw else {"claims": []}
            doc.update({"name": s.name, "status": s.status, "error": s.error})
            out.append(doc)
        return out


# --------------------------------------------------------------------------------------------------------------------
# Reading an output folder
# --------------------------------------------------------------------------------------------------------------------


def format_value(value: Any, limit: int = 160) -> str:
    """Short text for a measured value: floats to 4 significant digits, long lists cut.

    >>> format_value(0.123456), format_value([1.0, 2.5]), format_value(None), format_value({"gru": 0.91})
    ('0.1235', '[1, 2.5]', '—', 'gru: 0.91')
    """
    text = _fmt(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v[:8]) + (", …" if len(v) > 8 else "") + "]"
    if isinstance(v, dict):
        items = list(v.items())
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in items[:8]) + (", …" if len(items) > 8 else "")
    return str(v)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _pretty(obj: Any) -> str:
    text = json.dumps(obj, indent=2, default=str, allow_nan=True)
    return text if len(text) <= _MAX_JSON_CHARS else text[:_MAX_JSON_CHARS] + "\n… (cut)"


def _finite(obj: Any) -> Any:
    """NaN/inf become null: JSON.parse in the browser rejects them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _script_json(obj: Any) -> str:
    """JSON that can sit inside a <script> element: '<', '>' and '&' only occur in strings, so escape them there."""
    text = json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plotly_title(fig: dict[str, Any]) -> str | None:
    title = (fig.get("layout") or {}).get("title")
    if isinstance(title, dict):
        title = title.get("text")
    if not isinstance(title, str) or not title.strip():
        return None
    return re.sub(r"<[^>]+>", " ", title).strip()


def _read_plotly(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The figure dict, or an error message naming the file."""
    try:
        fig = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path.name}: cannot be read ({exc})"
    except json.JSONDecodeError as exc:
        return None, f"{path.name}:{exc.lineno}: invalid JSON ({exc.msg})"
    if not isinstance(fig, dict):
        return None, f"{path.name}: expected a Plotly figure object, got {type(fig).__name__}"
    data = fig.get("data", [])
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        return None, f"{path.name}: field 'data' must be a list of trace objects"
    if not isinstance(fig.get("layout", {}), dict):
        return None, f"{path.name}: field 'layout' must be an object"
    if not data:
        return None, f"{path.name}: the figure has no traces"
    return fig, None


def _load_figures(stage_dir: Path, rel: str, key: str) -> tuple[dict[str, FigureView], list[str]]:
    figdir = stage_dir / "figures"
    notes: list[str] = []
    if not figdir.is_dir():
        return {}, notes
    names: set[str] = set()
    for p in figdir.iterdir():
        if p.name.startswith("."):  # temp files of an atomic write in progress
            continue
        if p.name.endswith(_PLOTLY_SUFFIX):
            names.add(p.name[: -len(_PLOTLY_SUFFIX)])
        elif p.suffix in (".png", ".svg"):
            names.add(p.stem)
    views: dict[str, FigureView] = {}
    for name in sorted(names):
        kind, variant = figure_kind(name)
        view = FigureView(name=name, kind=kind, variant=variant, anchor=f"fig-{key}-{_slug(name)}", title=name)
        base = f"{rel}/figures/" if rel not in ("", ".") else "figures/"
        if (figdir / f"{name}.png").is_file():
            view.png = base + f"{name}.png"
        if (figdir / f"{name}.svg").is_file():
            view.svg = base + f"{name}.svg"
        jpath = figdir / f"{name}{_PLOTLY_SUFFIX}"
        if jpath.is_file():
            fig, err = _read_plotly(jpath)
            if fig is None:
                view.error = err
            else:
                view.payload = _script_json(fig)
                view.title = _plotly_title(fig) or name
                view.is_3d = any(t.get("type") in _GL3D_TYPES for t in fig["data"]) or "scene" in fig.get(
                    "layout", {}
                )
        else:
            png = figdir / f"{name}.png"
            if png.is_file() and png.stat().st_size <= _MAX_STATIC_BYTES:
                view.image_uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
            elif not png.is_file():
                view.error = f"{name}: no interactive version ({name}{_PLOTLY_SUFFIX}) and no PNG"
            else:
                view.error = f"{name}.png: too large to embed; open the linked file"
        if view.error:
            notes.append(f"{rel or '.'}/figures/{view.error}")
        views[name] = view
    return views, notes


def _group(views: dict[str, FigureView], key: str, order: list[str]) -> list[FigureGroup]:
    """Group by kind; groups whose figures a claim cites come first, in claim order, then the rest by kind."""
    groups: dict[str, FigureGroup] = {}
    for view in views.values():
        g = groups.setdefault(view.kind, FigureGroup(view.kind, f"group-{key}-{_slug(view.kind)}", []))
        g.figures.append(view)
    rank = {}
    for name in order:
        if name in views:
            rank.setdefault(views[name].kind, len(rank))
    return sorted(groups.values(), key=lambda g: (rank.get(g.kind, len(rank)), g.kind))


def _claim_views(stage: StageView, claims: Any, figures: dict[str, FigureView], source: Path) -> list[str]:
    """Fill ``stage.claims``; return the figure names cited, in order."""
    cited: list[str] = []
    if not isinstance(claims, list):
        stage.notes.append(f"{source}: field 'claims' must be a list")
        return cited
    for i, c in enumerate(claims):
        if not isinstance(c, dict):
            stage.notes.append(f"{source}: claims[{i}] is not an object")
            continue
        passed = c.get("passed")
        view = ClaimView(
            stage=stage.name,
            id=str(c.get("id", f"claim{i}")),
            statement=str(c.get("statement", "")),
            expected=format_value(c.get("expected")),
            measured=format_value(c.get("measured")),
            passed=passed if isinstance(passed, bool) else None,
        )
        if c.get("details"):
            view.details = _pretty(c["details"])
        ref = c.get("figure")
        if isinstance(ref, str) and ref:
            view.figure_ref = figure_name(ref)
            fig = figures.get(view.figure_ref)
            if fig is not None:
                view.figure_anchor, view.figure_png = fig.anchor, fig.png
                cited.append(fig.name)
        stage.claims.append(view)
    return cited


def _load_stage(out: Path, name: str, rel: str, status: str, error: str | None, wall: Any) -> StageView:
    stage_dir = out / rel if rel not in ("", ".") else out
    key = _slug(rel if rel not in ("", ".") else name)
    stage = StageView(name=name, key=key, dir=rel or ".", status=status, error=error,
                      wall_time_s=wall if isinstance(wall, (int, float)) else None)
    figures, stage.notes = _load_figures(stage_dir, rel if rel not in ("", ".") else "", key)
    rpath = stage_dir / "results.json"
    doc: Any = None
    if not rpath.is_file():
        stage.status = "failed"
        stage.error = error or f"{rpath}: no results.json (the stage did not finish)"
    else:
        try:
            doc = read_json(rpath)
        except InnerworksError as exc:
            stage.status, stage.error = "failed", str(exc)
        if doc is not None and not isinstance(doc, dict):
            stage.status, stage.error = "failed", f"{rpath}: expected a JSON object"
            doc = None
    cited: list[str] = []
    if isinstance(doc, dict):
        stage.raw = doc
        cited = _claim_views(stage, doc.get("claims", []), figures, rpath)
        if isinstance(doc.get("provenance"), dict):
            stage.provenance = doc["provenance"]
        stage.created = doc.get("created")
        if stage.wall_time_s is None and isinstance(doc.get("wall_time_s"), (int, float)):
            stage.wall_time_s = float(doc["wall_time_s"])
        stage.extra = {k: v for k, v in doc.items() if k not in _RESULTS_KEYS}
    stage.groups = _group(figures, key, cited)
    return stage


def _stages_from_repro(out: Path, repro: dict[str, Any], warnings: list[str]) -> list[StageView]:
    entries = repro.get("stages")
    if not isinstance(entries, list):
        warnings.append(f"{out / 'repro.json'}: field 'stages' must be a list")
        return []
    stages = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("dir") or e.get("name"), str):
            warnings.append(f"{out / 'repro.json'}: stages[{i}] needs a 'name' or 'dir' string")
            continue
        name = str(e.get("name") or e["dir"])
        rel = str(e.get("dir") or name)
        status = "ok" if e.get("status", "ok") == "ok" else "failed"
        error = e.get("error") if isinstance(e.get("error"), str) else None
        if status == "failed" and not error:
            error = "stage failed (no error message recorded)"
        stages.append(_load_stage(out, name, rel, status, error, e.get("wall_time_s")))
    return stages


def load_report(out_dir: str | Path) -> Report:
    """Read an output folder (``repro all`` folder, or one stage folder) into a :class:`Report`.

    Raises :class:`InnerworksError` when the folder holds neither ``repro.json`` nor any ``results.json``.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InnerworksError(f"{out}: folder not found")
    warnings: list[str] = []
    repro: dict[str, Any] | None = None
    if (out / "repro.json").is_file():
        try:
            doc = read_json(out / "repro.json")
            if isinstance(doc, dict):
                repro = doc
            else:
                warnings.append(f"{out / 'repro.json'}: expected a JSON object; showing the stage folders found")
        except InnerworksError as exc:
            warnings.append(f"{exc}; showing the stage folders found")
    if repro is not None:
        stages = _stages_from_repro(out, repro, warnings)
        report = Report(out, "innerworks reproduction report", stages,
                        provenance=repro.get("provenance") if isinstance(repro.get("provenance"), dict) else {},
                        config=repro.get("config"), seed=repro.get("seed"), device=repro.get("device"),
                        quick=repro.get("quick"), total_wall_time_s=repro.get("total_wall_time_s"),
                        warnings=warnings)
    elif (out / "results.json").is_file():
        try:
            name = read_json(out / "results.json").get("name")
        except (InnerworksError, AttributeError):
            name = None
        stage = _load_stage(out, name if isinstance(name, str) and name else out.resolve().name, "", "ok", None, None)
        extra = stage.extra
        report = Report(out, f"innerworks report: {stage.name}", [stage], provenance=stage.provenance,
                        config=extra.get("config"), seed=extra.get("seed"), device=extra.get("device"),
                        quick=extra.get("quick"), total_wall_time_s=stage.wall_time_s, warnings=warnings)
    else:
        subdirs = sorted(p for p in out.iterdir() if p.is_dir() and (p / "results.json").is_file())
        if not subdirs:
            raise InnerworksError(f"{out}: no repro.json or results.json here (not a reproduction output folder)")
        stages = [_load_stage(out, p.name, p.name, "ok", None, None) for p in subdirs]
        prov = next((s.provenance for s in stages if s.provenance), {})
        report = Report(out, "innerworks reproduction report", stages, provenance=prov, warnings=warnings)
    if not isinstance(report.total_wall_time_s, (int, float)):
        report.total_wall_time_s = None
    for s in report.stages:
        report.warnings.extend(f"{s.name}: {n}" for n in s.notes)
    return report


# --------------------------------------------------------------------------------------------------------------------
# Writing the page
# --------------------------------------------------------------------------------------------------------------------


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


def render_html(report: Report, link_base: str = "") -> str:
    """The page for ``report`` as one HTML string (plotly.js inlined, no external URLs).

    >>> import tempfile
    >>> from innerworks.report.claims import Claim, ReproResult, write_results
    >>> d = tempfile.mkdtemp(); _ = write_results(d, ReproResult("demo", [Claim("a", "s", "> 0", 1.0, True)]))
    >>> page = render_html(load_report(d)); page.startswith("<!DOCTYPE html>"), 'data-claim-id="a"' in page
    (True, True)
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["seconds"] = _seconds
    env.filters["value"] = format_value
    env.filters["pretty"] = _pretty
    # Static-figure links are relative to the run folder; ``link_base`` leads there from where the page is written.
    env.filters["link"] = lambda rel: link_base + rel
    template = env.get_template("report.html.j2")
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
    >>> from innerworks.report.claims import ReproResult, write_results
    >>> d = tempfile.mkdtemp(); _ = write_results(d, ReproResult("demo", []))
    >>> render_report(d).is_file()
    True
    """
    return write_report(load_report(out_dir), output)


def write_report(report: Report, output: str | Path | None = None) -> Path:
    """Write the page of an already loaded :class:`Report`; return its path.

    Links to the static figure files are written relative to where the page goes, so they work from there.

    >>> import tempfile
    >>> from innerworks.report.claims import ReproResult, write_results
    >>> d = tempfile.mkdtemp(); _ = write_results(d, ReproResult("demo", []))
    >>> write_report(load_report(d)).name
    'report.html'
    """
    path = Path(output) if output is not None else report.out_dir / REPORT_NAME
    base = os.path.relpath(report.out_dir.resolve(), path.resolve().parent).replace(os.sep, "/")
    atomic_write_text(path, render_html(report, link_base="" if base == "." else base + "/"))
    os.chmod(path, 0o644)  # a page to share: readable by others (the atomic write creates it private)
    return path


# --------------------------------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------------------------------


def print_claims_table(results: list[dict[str, Any]], console: Any | None = None) -> tuple[int, int]:
    """Print one rich table of every claim; return ``(passed, total)``.

    ``results`` holds ``results.json`` documents (``name`` and ``claims``). A document may also carry
    ``status: "failed"`` and ``error`` (as :meth:`Report.results` gives): that stage gets a row saying so.

    >>> import io
    >>> from rich.console import Console
    >>> doc = {"name": "demo", "claims": [{"id": "a", "statement": "s", "expected": "> 0", "measured": 1.0,
    ...                                     "passed": True}]}
    >>> print_claims_table([doc], console=Console(width=100, file=io.StringIO()))
    (1, 1)
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    badge = {True: Text("PASS", style="bold green"), False: Text("FAIL", style="bold red")}
    passed = total = 0
    table = Table(show_lines=False, header_style="bold", expand=False)
    for col, kw in (("stage", {}), ("claim", {"ratio": 3}), ("expected", {}), ("measured", {}), ("result", {})):
        table.add_column(col, overflow="fold", **kw)
    failed_stages = []
    for doc in results:
        name = str(doc.get("name", "?"))
        claims = doc.get("claims") if isinstance(doc.get("claims"), list) else []
        if doc.get("status", "ok") != "ok":
            failed_stages.append(name)
            table.add_row(name, Text(f"stage failed: {doc.get('error') or 'no error recorded'}", style="red"),
                          "", "", Text("FAIL", style="bold red"))
        for c in claims:
            if not isinstance(c, dict):
                continue
            total += 1
            ok = c.get("passed")
            passed += ok is True
            claim = Text(str(c.get("id", "?")), style="bold")
            if c.get("statement"):
                claim.append("\n" + str(c["statement"]), style="dim")
            verdict = badge[ok] if isinstance(ok, bool) else Text("N/A", style="bold yellow")
            table.add_row(name, claim, format_value(c.get("expected")), format_value(c.get("measured")), verdict)
    colour = "green" if passed == total and not failed_stages else "red"
    title = f"[{colour}]{passed}/{total} claims passed[/]"
    if failed_stages:
        title += f"[red]; stage(s) failed: {', '.join(failed_stages)}[/]"
    table.title = title
    console.print(table)
    return passed, total
