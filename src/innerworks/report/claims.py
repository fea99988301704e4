"""The shared claims format every reproduction writes to ``results.json``.

``{"claims": [{"id", "statement", "expected", "measured", "passed", ...}], "provenance": {...}, ...}``

>>> c = Claim(id="demo", statement="x is small", expected="< 1", measured=0.5, passed=True)
>>> c.to_dict()["passed"]
True
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from innerworks.utils.io import read_json, write_json
from innerworks.utils.provenance import provenance


@dataclass
class Claim:
    """One checked scientific claim.

    Attributes:
        id: short stable identifier, e.g. ``"categorical_dim_gru_n3"``.
        statement: the claim in words.
        expected: the threshold or value expected, as text (set from the notes before measuring).
        measured: the measured value (number, list or text).
        passed: whether ``measured`` meets ``expected``; None when it could not be measured.
        figure: relative path of the figure that shows it, if any.
        details: anything else worth keeping (per-cell values, explanation of a failure).
    """

    id: str
    statement: str
    expected: str
    measured: Any
    passed: bool | None
    figure: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` document."""
        return {
            "name": self.name,
            "claims": [c.to_dict() for c in self.claims],
            "all_passed": self.all_passed,
            "figures": self.figures,
            "wall_time_s": self.wall_time_s,
            "provenance": provenance(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.extra,
        }


def write_results(out_dir: str | Path, result: ReproResult) -> Path:
    """Write ``results.json`` and ``summary.md`` into ``out_dir``; return the JSON path.

    >>> import tempfile
    >>> r = ReproResult("demo", [Claim("a", "s", "> 0", 1.0, True)])
    >>> p = write_results(tempfile.mkdtemp(), r); p.name
    'results.json'
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    write_json(path, result.to_dict())
    from innerworks.utils.io import atomic_write_text

    atomic_write_text(out / "summary.md", claims_markdown(result))
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
    """What a ``repro`` command prints when it finishes: the pass count, then each claim that did not pass.

    >>> outcome_lines(ReproResult("demo", [Claim("a", "s", "> 0", -1.0, False)], wall_time_s=2.0), "out")
    ['demo: 0/1 claims passed in 2 s; results in out/results.json', '  not passed: a: measured -1.0']
    """
    n_pass = sum(c.passed is True for c in result.claims)
    lines = [f"{result.name}: {n_pass}/{len(result.claims)} claims passed in {result.wall_time_s:.0f} s; "
             f"results in {Path(out_dir) / 'results.json'}"]
    lines += [f"  not passed: {c.id}: measured {c.measured}" for c in result.claims if c.passed is not True]
    return lines


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v[:8]) + (", …" if len(v) > 8 else "") + "]"
    return str(v)


def claims_markdown(result: ReproResult) -> str:
    """A short Markdown summary: one table row per claim.

    >>> print(claims_markdown(ReproResult("demo", [Claim("a", "s", "> 0", 1.0, True)])).splitlines()[0])
    # demo: 1/1 claims passed
    """
    n_pass = sum(c.passed is True for c in result.claims)
    lines = [
        f"# {result.name}: {n_pass}/{len(result.claims)} claims passed",
        "",
        "| claim | statement | expected | measured | result |",
        "|---|---|---|---|---|",
    ]
    for c in result.claims:
        verdict = "PASS" if c.passed else ("n/a" if c.passed is None else "FAIL")
        lines.append(f"| `{c.id}` | {c.statement} | {c.expected} | {_fmt(c.measured)} | {verdict} |")
    return "\n".join(lines) + "\n"
