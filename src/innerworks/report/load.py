"""Reading a reproduction output folder into the report's model (:mod:`innerworks.report.model`), recomputing nothing.

:func:`load_report` accepts either

* a ``repro all`` folder: ``repro.json`` (stages, provenance, config, seed, device, wall times) plus one sub-folder per
  stage, each with ``results.json`` (the claims format: claims with ``source`` and ``reference``, ``thresholds``) and
  ``figures/``; or
* a single stage folder: just ``results.json`` and ``figures/``; or
* a folder without ``repro.json`` whose sub-folders hold ``results.json`` files (each becomes a stage).

Only the saved JSON is read; the report never imports the code that wrote it. A stage without a readable
``results.json`` is shown as failed with its error; a figure file that cannot be read, a malformed claim or threshold
becomes a visible note. None of them stops the report. A claim without ``source`` (older files) is a paper claim.

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
>>> from innerworks.utils.io import write_json
>>> d = tempfile.mkdtemp()
>>> write_json(f"{d}/results.json", {"name": "demo", "claims": [
...     {"id": "a", "statement": "s", "expected": "> 0", "measured": 1.0, "passed": True, "source": "paper"},
...     {"id": "b", "statement": "t", "expected": "> 0", "measured": -1.0, "passed": False, "source": "extension"}]})
>>> r = load_report(d); (r.counts, r.stages[0].name)
({'paper': {'passed': 1, 'total': 1}, 'extension': {'passed': 0, 'total': 1}}, 'demo')
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

from innerworks.errors import InnerworksError
from innerworks.report.model import (
    ClaimView,
    FigureGroup,
    FigureView,
    Report,
    StageView,
    ThresholdView,
    format_value,
    pretty,
)
from innerworks.report.sources import SOURCES, group_rank, source_of
from innerworks.utils.io import read_json

PLOTLY_SUFFIX = ".plotly.json"
_MAX_STATIC_BYTES = 3_000_000  # a PNG-only figure larger than this is linked, not embedded
_RESULTS_KEYS = {"name", "claims", "all_passed", "counts", "thresholds", "figures", "wall_time_s", "provenance",
                 "created"}
_GL3D_TYPES = {"scatter3d", "surface", "mesh3d", "cone", "streamtube", "volume", "isosurface"}


# --------------------------------------------------------------------------------------------------------------------
# Figures
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
    for suffix in (PLOTLY_SUFFIX, ".png", ".svg", ".json", ".html"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


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


def _figure_view(figdir: Path, name: str, rel: str, key: str) -> FigureView:
    """One figure: its Plotly JSON embedded, else its PNG inlined, else an error; static files linked."""
    kind, variant = figure_kind(name)
    view = FigureView(name=name, kind=kind, variant=variant, anchor=f"fig-{key}-{_slug(name)}", title=name)
    base = f"{rel}/figures/" if rel else "figures/"
    if (figdir / f"{name}.png").is_file():
        view.png = base + f"{name}.png"
    if (figdir / f"{name}.svg").is_file():
        view.svg = base + f"{name}.svg"
    jpath = figdir / f"{name}{PLOTLY_SUFFIX}"
    if jpath.is_file():
        fig, view.error = _read_plotly(jpath)
        if fig is not None:
            view.payload = _script_json(fig)
            view.title = _plotly_title(fig) or name
            view.is_3d = any(t.get("type") in _GL3D_TYPES for t in fig["data"]) or "scene" in fig.get("layout", {})
        return view
    png = figdir / f"{name}.png"
    if png.is_file() and png.stat().st_size <= _MAX_STATIC_BYTES:
        view.image_uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    elif not png.is_file():
        view.error = f"{name}: no interactive version ({name}{PLOTLY_SUFFIX}) and no PNG"
    else:
        view.error = f"{name}.png: too large to embed; open the linked file"
    return view


def _load_figures(stage_dir: Path, rel: str, key: str) -> tuple[dict[str, FigureView], list[str]]:
    """Every figure in ``stage_dir/figures`` by name, and a note for each that cannot be shown."""
    figdir = stage_dir / "figures"
    if not figdir.is_dir():
        return {}, []
    names: set[str] = set()
    for p in figdir.iterdir():
        if p.name.startswith("."):  # temp files of an atomic write in progress
            continue
        if p.name.endswith(PLOTLY_SUFFIX):
            names.add(p.name[: -len(PLOTLY_SUFFIX)])
        elif p.suffix in (".png", ".svg"):
            names.add(p.stem)
    views = {name: _figure_view(figdir, name, rel, key) for name in sorted(names)}
    notes = [f"{rel or '.'}/figures/{v.error}" for v in views.values() if v.error]
    return views, notes


def _group(views: dict[str, FigureView], key: str, order: list[str]) -> list[FigureGroup]:
    """Group by kind; groups whose figures a claim cites come first, in claim order, then the rest by kind."""
    groups: dict[str, FigureGroup] = {}
    for view in views.values():
        g = groups.setdefault(view.kind, FigureGroup(view.kind, f"group-{key}-{_slug(view.kind)}", []))
        g.figures.append(view)
    rank: dict[str, int] = {}
    for name in order:
        if name in views:
            rank.setdefault(views[name].kind, len(rank))
    return sorted(groups.values(), key=lambda g: (rank.get(g.kind, len(rank)), g.kind))


# --------------------------------------------------------------------------------------------------------------------
# Claims and thresholds
# --------------------------------------------------------------------------------------------------------------------


def _claim_view(stage: StageView, i: int, c: dict[str, Any], figures: dict[str, FigureView], where: Path) -> ClaimView:
    """One claim entry as a table row; an unknown source name is kept, and noted."""
    passed = c.get("passed")
    view = ClaimView(stage=stage.name, id=str(c.get("id", f"claim{i}")), statement=str(c.get("statement", "")),
                     expected=format_value(c.get("expected")), measured=format_value(c.get("measured")),
                     passed=passed if isinstance(passed, bool) else None, source=source_of(c),
                     reference=str(c.get("reference") or ""))
    if view.source not in SOURCES:
        stage.notes.append(f"{where}: claims[{i}] has unknown source {view.source!r} (not counted as the paper's; "
                           f"expected one of {', '.join(SOURCES)})")
    if c.get("details"):
        view.details = pretty(c["details"])
    ref = c.get("figure")
    if isinstance(ref, str) and ref:
        view.figure_ref = figure_name(ref)
        fig = figures.get(view.figure_ref)
        if fig is not None:
            view.figure_anchor, view.figure_png = fig.anchor, fig.png
    return view


def _claim_views(stage: StageView, claims: Any, figures: dict[str, FigureView], where: Path) -> list[str]:
    """Fill ``stage.claims``, paper-grounded first then extensions (stable); return the figure names cited, in order."""
    if not isinstance(claims, list):
        stage.notes.append(f"{where}: field 'claims' must be a list")
        return []
    for i, c in enumerate(claims):
        if isinstance(c, dict):
            stage.claims.append(_claim_view(stage, i, c, figures, where))
        else:
            stage.notes.append(f"{where}: claims[{i}] is not an object")
    stage.claims.sort(key=lambda v: group_rank(v.source))
    cited = [c.figure_ref for c in stage.claims if c.figure_anchor and c.figure_ref]
    return list(dict.fromkeys(cited))


def _thresholds(table: Any, where: Path, notes: list[str]) -> list[ThresholdView]:
    """The ``thresholds`` table: ``{name: {"value", "reason"}}``, or older ``{name: number}`` (shown without reason)."""
    if table is None:
        return []
    if not isinstance(table, dict):
        notes.append(f"{where}: field 'thresholds' must be an object")
        return []
    rows = []
    for name, entry in table.items():
        if isinstance(entry, dict) and "value" in entry:
            reason = entry.get("reason")
            rows.append(ThresholdView(str(name), format_value(entry["value"]), str(reason) if reason else None))
        elif isinstance(entry, (int, float, str, bool, list)) or entry is None:
            rows.append(ThresholdView(str(name), format_value(entry)))
        else:
            notes.append(f"{where}: thresholds[{name!r}] needs a 'value'")
    return rows


# --------------------------------------------------------------------------------------------------------------------
# Stages and the folder
# --------------------------------------------------------------------------------------------------------------------


def _read_results(rpath: Path, stage: StageView) -> dict[str, Any] | None:
    """The stage's ``results.json`` object, or None with the stage marked failed and why."""
    if not rpath.is_file():
        stage.status = "failed"
        stage.error = stage.error or f"{rpath}: no results.json (the stage did not finish)"
        return None
    try:
        doc = read_json(rpath)
    except InnerworksError as exc:
        stage.status, stage.error = "failed", str(exc)
        return None
    if not isinstance(doc, dict):
        stage.status, stage.error = "failed", f"{rpath}: expected a JSON object"
        return None
    return doc


def _load_stage(out: Path, name: str, rel: str, status: str, error: str | None, wall: Any) -> StageView:
    """One stage folder (``rel`` under ``out``; empty for ``out`` itself) into a :class:`StageView`."""
    rel = "" if rel in ("", ".") else rel
    stage_dir = out / rel if rel else out
    key = _slug(rel or name)
    stage = StageView(name=name, key=key, dir=rel or ".", status=status, error=error,
                      wall_time_s=wall if isinstance(wall, (int, float)) else None)
    figures, stage.notes = _load_figures(stage_dir, rel, key)
    rpath = stage_dir / "results.json"
    doc = _read_results(rpath, stage)
    cited: list[str] = []
    if doc is not None:
        stage.raw = doc
        cited = _claim_views(stage, doc.get("claims", []), figures, rpath)
        stage.thresholds = _thresholds(doc.get("thresholds"), rpath, stage.notes)
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


def _read_repro(out: Path, warnings: list[str]) -> dict[str, Any] | None:
    """``out/repro.json`` when it is a readable object; otherwise None (with a warning if it exists but is bad)."""
    if not (out / "repro.json").is_file():
        return None
    try:
        doc = read_json(out / "repro.json")
    except InnerworksError as exc:
        warnings.append(f"{exc}; showing the stage folders found")
        return None
    if not isinstance(doc, dict):
        warnings.append(f"{out / 'repro.json'}: expected a JSON object; showing the stage folders found")
        return None
    return doc


def load_report(out_dir: str | Path) -> Report:
    """Read an output folder (``repro all`` folder, or one stage folder) into a :class:`Report`.

    Raises :class:`InnerworksError` when the folder holds neither ``repro.json`` nor any ``results.json``.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InnerworksError(f"{out}: is a file, expected a reproduction output folder" if out.is_file()
                              else f"{out}: folder not found")
    warnings: list[str] = []
    repro = _read_repro(out, warnings)
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
