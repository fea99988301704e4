"""``innerworks repro all``: run every registered reproduction, write ``repro.json``, render one ``report.html``.

The stages are the labs of :data:`innerworks.repro.registry.LABS`, each run with
:func:`innerworks.repro.base.reproduce`. A stage that raises is recorded as failed and the others still run. On a
multi-core CPU the stages run side by side in worker processes (one torch thread each), which is what keeps the
quick reproduction within minutes on 2 cores.

>>> [s.name for s in LABS]
['integration', 'attention', 'wide']
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from innerworks.errors import InnerworksError
from innerworks.repro.base import ReproOptions, check_options, reproduce
from innerworks.repro.claims import source_counts
from innerworks.repro.registry import LABS, LabEntry
from innerworks.utils.io import write_json
from innerworks.utils.provenance import provenance
from innerworks.utils.workers import run_in_workers


@dataclass
class ReproAllResult:
    """Outcome of :func:`run_all`: per-stage records, each stage's results, and the report path."""

    stages: list[dict[str, Any]]
    results: list[dict[str, Any]]
    report: Path | None

    @property
    def all_passed(self) -> bool:
        """True when every stage ran and every claim passed."""
        ok = all(s["status"] == "ok" for s in self.stages)
        return ok and all(c.get("passed") is True for r in self.results for c in r.get("claims", []))


def _run_stage(stage: LabEntry, out: Path, quick: bool, device: str, seed: int, progress: bool,
               threads: int | None, log: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one stage (in this process or a worker); never raises. Returns (record, results-dict)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    stage_dir = out / stage.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"name": stage.name, "dir": stage.name, "status": "ok", "error": None}
    t0 = time.perf_counter()
    log_cm: Any = contextlib.nullcontext()
    if log:  # worker processes: keep the terminal for the parent's progress display
        fh = open(stage_dir / "log.txt", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        log_cm = contextlib.ExitStack()
        log_cm.enter_context(fh)
        log_cm.enter_context(contextlib.redirect_stdout(fh))
        log_cm.enter_context(contextlib.redirect_stderr(fh))
    with log_cm:
        try:
            result = reproduce(stage.load(), ReproOptions(out=stage_dir, quick=quick, device=device, seed=seed,
                                                          progress=progress))
            results = {"stage": stage.name, **result.to_dict()}
        except Exception as exc:  # a failing stage must not stop the others
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            (stage_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            results = {"stage": stage.name, "status": "failed", "error": record["error"], "claims": []}
    record["wall_time_s"] = round(time.perf_counter() - t0, 2)
    return record, results


def run_all(out: str | Path, quick: bool = True, device: str = "cpu", seed: int = 0,
            stages: list[str] | None = None, jobs: int | None = None, progress: bool = True,
            console: Console | None = None, registry: tuple[LabEntry, ...] = LABS) -> ReproAllResult:
    """Run the selected stages (default all) into ``out/<stage>/``, then write ``repro.json`` and ``report.html``.

    Args:
        out: output folder.
        quick: small settings that finish in minutes on a CPU.
        device: ``cpu`` or ``cuda``.
        seed: one seed for every stage.
        stages: subset of stage names.
        jobs: stages run at once; default: one per CPU core on ``cpu`` (at most the number of stages), 1 on cuda.
        progress: show progress.
        registry: the stages to choose from (default :data:`~innerworks.repro.registry.LABS`).

    >>> run_all("/tmp/x", stages=["nope"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: unknown stage 'nope'; expected integration, attention, wide
    """
    console = console or Console(stderr=True)
    names = [s.name for s in registry]
    chosen = stages or names
    for name in chosen:
        if name not in names:
            raise InnerworksError(f"unknown stage {name!r}; expected {', '.join(names)}")
    todo = [s for s in registry if s.name in chosen]
    check_options(ReproOptions(out=Path(out), device=device))
    if jobs is None:
        jobs = 1 if device.startswith("cuda") else max(1, min(len(todo), os.cpu_count() or 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    done: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    if jobs <= 1:
        for stage in todo:
            console.rule(f"[bold]repro {stage.name}")
            done[stage.name] = _run_stage(stage, out, quick, device, seed, progress, None, log=False)
    else:
        done = run_in_workers({s.name: (_run_stage, (s, out, quick, device, seed, False, 1, True)) for s in todo},
                              max_workers=jobs, label="repro", progress=progress, console=console,
                              running=lambda name: f"running (log: {out / name / 'log.txt'})")
    records = [done[s.name][0] for s in todo]
    results = [done[s.name][1] for s in todo]
    for rec in records:
        if rec["status"] != "ok":
            console.print(f"[red]stage {rec['name']} failed:[/] {rec['error']} (see {out / rec['name']}/error.txt)")
    write_json(out / "repro.json", {
        "stages": records, "provenance": provenance(),
        "config": {"quick": quick, "device": device, "seed": seed, "stages": chosen, "jobs": jobs},
        "seed": seed, "device": device, "quick": quick, "total_wall_time_s": round(time.perf_counter() - t_all, 2),
        "counts": source_counts(c for r in results for c in r.get("claims", [])),
    })
    from innerworks.report.html import print_claims_table, render_report

    print_claims_table(results, console=console)
    report = render_report(out)
    return ReproAllResult(records, results, report)
