"""What the report page shows, as plain data: figures, claims grouped by source, thresholds, stages, the whole run.

:mod:`innerworks.report.load` fills these from an output folder; :mod:`innerworks.report.html` renders them. Kept apart
so that the page template and the terminal table read one model, and the folder reading can be tested without a page.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from innerworks.report.sources import GROUPS, Counts, group_of, source_label, tally

MAX_JSON_CHARS = 20_000  # extra results / claim details shown in the page are cut at this length


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


def pretty(obj: Any) -> str:
    """Indented JSON for the page, cut at :data:`MAX_JSON_CHARS` so one huge result cannot swamp it."""
    text = json.dumps(obj, indent=2, default=str, allow_nan=True)
    return text if len(text) <= MAX_JSON_CHARS else text[:MAX_JSON_CHARS] + "\n… (cut)"


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
    """One row of the claims table, with what the claim rests on (``source``) and where (``reference``)."""

    stage: str
    id: str
    statement: str
    expected: str
    measured: str
    passed: bool | None
    source: str = "paper"
    reference: str = ""
    figure_ref: str | None = None
    figure_anchor: str | None = None
    figure_png: str | None = None
    details: str | None = None

    @property
    def verdict(self) -> str:
        """``PASS``, ``FAIL`` or ``N/A`` (could not be measured)."""
        return "PASS" if self.passed is True else ("FAIL" if self.passed is False else "N/A")

    @property
    def source_label(self) -> str:
        """The source in words (``author code``)."""
        return source_label(self.source)


@dataclass
class ClaimGroup:
    """The claims of one stage that share a group of sources: paper-grounded, extensions, or unrecognised."""

    key: str
    title: str
    note: str
    claims: list[ClaimView]

    @property
    def counts(self) -> Counts:
        """Passed/total per source within the group."""
        return tally((c.source, c.passed) for c in self.claims)


@dataclass
class ThresholdView:
    """One row of a stage's thresholds table; ``reason`` is None for old files that saved plain numbers."""

    name: str
    value: str
    reason: str | None = None


@dataclass
class StageView:
    """One reproduction stage: its status, claims, thresholds, figures and provenance."""

    name: str
    key: str
    dir: str
    status: str
    error: str | None = None
    wall_time_s: float | None = None
    claims: list[ClaimView] = field(default_factory=list)  # paper-grounded first, then extensions, then the rest
    thresholds: list[ThresholdView] = field(default_factory=list)
    groups: list[FigureGroup] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] | None = None  # the results.json document, when it could be read

    @property
    def n_passed(self) -> int:
        """Claims that passed (all sources together)."""
        return sum(c.passed is True for c in self.claims)

    @property
    def counts(self) -> Counts:
        """Passed/total per source."""
        return tally((c.source, c.passed) for c in self.claims)

    @property
    def claim_groups(self) -> list[ClaimGroup]:
        """The claims split into the :data:`~innerworks.report.sources.GROUPS` that have any, in that order."""
        out = []
        for key, title, note in GROUPS:
            claims = [c for c in self.claims if group_of(c.source) == key]
            if claims:
                out.append(ClaimGroup(key, title, note, claims))
        return out

    @property
    def n_figures(self) -> int:
        """Figures in this stage."""
        return sum(len(g.figures) for g in self.groups)


@dataclass
class Report:
    """Everything the page shows, read from an output folder by :func:`innerworks.report.load.load_report`."""

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
        """Every claim of every stage, in page order."""
        return [c for s in self.stages for c in s.claims]

    @property
    def counts(self) -> Counts:
        """Passed/total per source over every stage: the headline numbers."""
        return tally((c.source, c.passed) for c in self.claims)

    @property
    def n_claims(self) -> int:
        """Number of claims, all sources together (secondary: the headline is :attr:`counts`)."""
        return len(self.claims)

    @property
    def n_passed(self) -> int:
        """Number of claims that passed, all sources together."""
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
        """Per stage, a ``results.json``-like dict (with ``status``/``error``) for the terminal claims table."""
        out = []
        for s in self.stages:
            doc = dict(s.raw) if s.raw else {"claims": []}
            doc.update({"name": s.name, "status": s.status, "error": s.error})
            out.append(doc)
        return out
