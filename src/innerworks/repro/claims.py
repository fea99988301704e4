"""The claims format every reproduction writes to ``results.json``, and what a claim rests on.

``{"claims": [{"id", "statement", "expected", "measured", "passed", "source", "reference", ...}], "counts": {...},
"provenance": {...}, ...}``. Each claim names its :class:`Source` (the paper itself, its predecessor, the authors'
code, or an extension of ours) so that a report never mixes extensions into the paper's count.

>>> c = Claim(id="demo", statement="x is small", expected="< 1", measured=0.5, passed=True,
...           source=Source.PAPER, reference="ICLR 2021 abstract")
>>> c.to_dict()["source"], c.to_dict()["passed"]
('paper', True)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from innerworks.utils.io import atomic_write_text, read_json, write_json
from innerworks.utils.provenance import provenance


class Source(str, Enum):
    """What a claim rests on, from most to least direct evidence for the paper's finding.

    >>> Source("author-code").label
    'author code'
    """

    PAPER = "paper"
    PREDECESSOR = "predecessor"
    AUTHOR_CODE = "author-code"
    EXTENSION = "extension"

    @property
    def label(self) -> str:
        """The word a table shows."""
        return self.value.replace("-", " ")


@dataclass
class Claim:
    """One checked scientific claim.

    Attributes:
        id: short stable identifier, e.g. ``"categorical_dim_n3"``.
        statement: the claim in words.
        expected: the rule it is checked against, as text (fixed before measuring).
        measured: the measured value (number, list, mapping or text).
        passed: whether ``measured`` meets ``expected``; None when it could not be measured.
        figure: relative path of the figure that shows it, if any.
        details: anything else worth keeping (per-run values, why it failed).
        source: what the claim rests on (:class:`Source`).
        reference: where, in a few words ("ICLR 2021 abstract", "NeurIPS 2019 §4.5", "notes §8.3").
    """

    id: str
    statement: str
    expected: str
    measured: Any
    passed: bool | None
    figure: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    source: Source = Source.PAPER
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = asdict(self)
        d["source"] = Source(self.source).value
        return d


@dataclass(frozen=True)
class Threshold:
    """A rule's number and the one-line reason it has that value."""

    value: float | int
    reason: str


class Thresholds(Mapping[str, Threshold]):
    """One table of a reproduction's thresholds: ``T.name`` is the number, ``T.reason("name")`` why.

    >>> T = Thresholds(accuracy_min=(0.99, "issue: '>= 99%'"))
    >>> T.accuracy_min, T.to_dict()["accuracy_min"]["reason"]
    (0.99, "issue: '>= 99%'")
    """

    def __init__(self, **rows: tuple[float | int, str]) -> None:
        self._rows = {k: Threshold(v, r) for k, (v, r) in rows.items()}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._rows[name].value
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Threshold:
        return self._rows[name]

    def __iter__(self) -> Any:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def reason(self, name: str) -> str:
        """Why ``name`` has its value."""
        return self._rows[name].reason

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{name: {"value", "reason"}}`` for ``results.json``."""
        return {k: {"value": t.value, "reason": t.reason} for k, t in self._rows.items()}


def source_counts(claims: Iterable[Claim | Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Passed and total claims per source, in :class:`Source` order (sources with no claim left out).

    >>> source_counts([Claim("a", "s", "e", 1, True), Claim("b", "s", "e", 0, False, source=Source.EXTENSION)])
    {'paper': {'passed': 1, 'total': 1}, 'extension': {'passed': 0, 'total': 1}}
    """
    counts = {s.value: {"passed": 0, "total": 0} for s in Source}
    for c in claims:
        src, ok = (c.get("source", "paper"), c.get("passed")) if isinstance(c, Mapping) else (c.source, c.passed)
        key = Source(src).value if src in {s.value for s in Source} else Source.PAPER.value
        counts[key]["total"] += 1
        counts[key]["passed"] += ok is True
    return {k: v for k, v in counts.items() if v["total"]}


def counts_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    """``"paper 21/24 · extension 9/10"``: the per-source counts in one line.

    >>> counts_line({"paper": {"passed": 2, "total": 3}, "extension": {"passed": 1, "total": 1}})
    'paper 2/3 · extension 1/1'
    """
    return " · ".join(f"{Source(k).label} {v['passed']}/{v['total']}" for k, v in counts.items()) or "no claims"


@dataclass
class ReproResult:
    """What a reproduction returns: its claims plus whatever extra results it saved."""

    name: str
    claims: list[Claim]
    extra: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0

    @property
    def all_passed(self) -> bool:
        """True when every claim passed."""
        return all(c.passed is True for c in self.claims)

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Passed/total per source (:func:`source_counts`)."""
        return source_counts(self.claims)

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` document."""
        return {
            "name": self.name,
            "claims": [c.to_dict() for c in self.claims],
            "all_passed": self.all_passed,
            "counts": self.counts,
            "figures": self.figures,
            "wall_time_s": self.wall_time_s,
            "provenance": provenance(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.extra,
        }


def write_results(out_dir: str | Path, result: ReproResult, summary: str | None = None) -> Path:
    """Write ``results.json`` and ``summary.md`` (``summary``, default :func:`claims_markdown`); return the JSON path.

    >>> import tempfile
    >>> r = ReproResult("demo", [Claim("a", "s", "> 0", 1.0, True)])
    >>> p = write_results(tempfile.mkdtemp(), r); p.name
    'results.json'
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    write_json(path, result.to_dict())
    atomic_write_text(out / "summary.md", summary if summary is not None else claims_markdown(result))
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the one inside a folder).

    >>> import tempfile
    >>> d = tempfile.mkdtemp(); _ = write_results(d, ReproResult("demo", []))
    >>> load_results(d)["name"]
    'demo'
    """
    p = Path(path)
    return read_json(p / "results.json" if p.is_dir() else p)


def outcome_lines(result: ReproResult, out_dir: str | Path) -> list[str]:
    """What a ``repro`` command prints when it finishes: the counts per source, then each claim that did not pass.

    >>> outcome_lines(ReproResult("demo", [Claim("a", "s", "> 0", -1.0, False)], wall_time_s=2.0), "out")
    ['demo: paper 0/1 claims passed in 2 s; results in out/results.json', '  not passed: a (paper): measured -1.0']
    """
    lines = [f"{result.name}: {counts_line(result.counts)} claims passed in {result.wall_time_s:.0f} s; "
             f"results in {Path(out_dir) / 'results.json'}"]
    lines += [f"  not passed: {c.id} ({Source(c.source).label}): measured {c.measured}"
              for c in result.claims if c.passed is not True]
    return lines


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v[:8]) + (", …" if len(v) > 8 else "") + "]"
    return str(v)


def claims_markdown(result: ReproResult) -> str:
    """A short Markdown summary: the counts per source, then one table row per claim.

    >>> print(claims_markdown(ReproResult("demo", [Claim("a", "s", "> 0", 1.0, True)])).splitlines()[0])
    # demo: paper 1/1 claims passed
    """
    lines = [
        f"# {result.name}: {counts_line(result.counts)} claims passed",
        "",
        "| claim | source | statement | expected | measured | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in result.claims:
        verdict = "PASS" if c.passed else ("n/a" if c.passed is None else "FAIL")
        src = Source(c.source).label + (f" ({c.reference})" if c.reference else "")
        lines.append(f"| `{c.id}` | {src} | {c.statement} | {c.expected} | {_fmt(c.measured)} | {verdict} |")
    return "\n".join(lines) + "\n"
