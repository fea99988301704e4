"""``innerworks repro all``: run the three reproductions, write ``repro.json``, render one ``report.html``.

Each stage is a function ``run_<stage>_repro(out, quick, device, seed, progress) -> ReproResult`` in its lab. A stage
that raises is recorded as failed and the others still run. The return value says whether every claim passed.

>>> [s.name for s in STAGES]
['integration', 'attention', 'wide']
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from rich.console import Console

from innerworks.errors import InnerworksError
from innerworks.utils.io import write_json
from innerworks.utils.provenance import provenance


@dataclass(frozen=True)
class Stage:
    """One reproduction: its name, and the module + function that runs it."""

    name: str
    module: str
    function: str

    def load(self) -> Any:
        """The stage's ``run_*_repro`` function."""
        return getattr(import_module(self.module), self.function)


STAGES = (
    Stage("integration", "innerworks.dynamics.repro", "run_integration_repro"),
    Stage("attention", "innerworks.attention.repro", "run_attention_repro"),
    Stage("wide", "innerworks.wide.repro", "run_wide_repro"),
)


@dataclass
class ReproAllResult:
    """Outcome of :func:`run_all`: per-stage records, all claims, and the report path."""

    stages: list[dict[str, Any]]
    results: list[dict[str, Any]]
    report: Path | None

    @property
    def all_passed(self) -> bool:
        """True when every stage ran and every claim passed."""
        ok = all(s["status"] == "ok" for s in self.stages)
        return ok and all(c.get("passed") is True for r in self.results for c in r.get("claims", []))


def run_all(out: str | Path, quick: bool = True, device: str = "cpu", seed: int = 0,
            stages: list[str] | None = None, progress: bool = True, console: Console | None = None
            ) -> ReproAllResult:
    """Run the selected stages (default all) into ``out/<stage>/``, then write ``repro.json`` and ``report.html``.

    >>> run_all("/tmp/x", stages=["nope"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: unknown stage 'nope'; expected integration, attention, wide
    """
    console = console or Console(stderr=True)
    names = [s.name for s in STAGES]
    chosen = stages or names
    for name in chosen:
        if name not in names:
            raise InnerworksError(f"unknown stage {name!r}; expected {', '.join(names)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    records: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for stage in STAGES:
        if stage.name not in chosen:
            continue
        console.rule(f"[bold]repro {stage.name}")
        t0 = time.perf_counter()
        record: dict[str, Any] = {"name": stage.name, "dir": stage.name, "status": "ok", "error": None}
        try:
            result = stage.load()(out / stage.name, quick=quick, device=device, seed=seed, progress=progress)
            results.append({"stage": stage.name, **result.to_dict()})
        except Exception as exc:  # a failing stage must not stop the others
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            (out / stage.name).mkdir(parents=True, exist_ok=True)
            (out / stage.name / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            results.append({"stage": stage.name, "status": "failed", "error": record["error"], "claims": []})
            console.print(f"[red]stage {stage.name} failed:[/] {record['error']}")
        record["wall_time_s"] = round(time.perf_counter() - t0, 2)
        records.append(record)
    write_json(out / "repro.json", {
        "stages": records, "provenance": provenance(), "config": {"quick": quick, "device": device, "seed": seed,
                                                                  "stages": chosen},
        "seed": seed, "device": device, "quick": quick, "total_wall_time_s": round(time.perf_counter() - t_all, 2),
    })
    from innerworks.report.html import print_claims_table, render_report

    print_claims_table(results, console=console)
    report = render_report(out)
    return ReproAllResult(records, results, report)
