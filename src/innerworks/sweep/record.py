"""A sweep's folder: its checks, its record of every run (``sweep.json``, ``sweep.csv``) and the finished runs in it.

Layout of ``--out DIR``::

    DIR/sweep.yaml          the validated sweep (what --resume compares)
    DIR/sweep.json          provenance + one row per run, rewritten atomically as runs finish
    DIR/sweep.csv           the same rows, flat
    DIR/runs/<name>/        one training run directory per grid point
    DIR/analysis/<name>/    its analysis, when the sweep has ``analyze``

>>> row = RunRecord("seed-0", {"seed": 0}, "done", test=0.9, metric="accuracy").row()
>>> row["status"], row["test"], row["run_dir"]
('done', 0.9, 'runs/seed-0')
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from innerworks.errors import InnerworksError
from innerworks.sweep.spec import SweepRun, SweepSpec
from innerworks.train.config import recipe_to_yaml
from innerworks.utils.io import atomic_write_text, check_output_dir, read_json, write_json

SPEC_FILE = "sweep.yaml"
STATUSES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class RunRecord:
    """One run of a sweep: grid values, status, training wall time, test metric, analysis headlines.

    ``wall_time_s`` is the run's training time (``run.json``, summed over resumes); ``cpu_s`` the CPU seconds its
    last worker spent in this call (training and analysis; None for a reused run). ``reused`` marks a run found
    finished in the folder (not trained by this call); ``attempts`` counts the workers that started it in this call
    (more than 1: a worker died and the run resumed from its checkpoint).
    """

    name: str
    params: dict[str, Any]
    status: str = "pending"
    seed: int | None = None
    metric: str | None = None
    test: float | None = None
    wall_time_s: float | None = None
    cpu_s: float | None = None
    attempts: int = 0
    reused: bool = False
    resumed_from_step: int | None = None
    analysis: dict[str, Any] | None = None
    error: str | None = None

    def row(self) -> dict[str, Any]:
        """The ``sweep.json`` row (plus ``run_dir``, relative to the sweep folder)."""
        return {**asdict(self), "run_dir": f"runs/{self.name}"}

    def updated(self, rec: dict[str, Any]) -> RunRecord:
        """This record with a worker's record (:func:`~innerworks.sweep.worker.run_one`) applied.

        >>> RunRecord("a", {}).updated({"status": "failed", "error": "boom", "attempt": 2}).attempts
        2
        """
        keys = ("status", "metric", "test", "wall_time_s", "cpu_s", "resumed_from_step", "analysis", "error")
        changes = {k: rec[k] for k in keys if k in rec}
        return replace(self, attempts=max(self.attempts, int(rec.get("attempt", 1))), **changes)


@dataclass(frozen=True)
class SweepResult:
    """What :func:`~innerworks.sweep.run_sweep` returns: the folder, every run's record, the backend, the time.

    >>> r = SweepResult(Path("o"), (RunRecord("a", {}, "done"), RunRecord("b", {}, "failed")), "local", 1.0)
    >>> r.ok, r.counts()["failed"], [x.name for x in r.failed]
    (False, 1, ['b'])
    """

    out: Path
    runs: tuple[RunRecord, ...]
    backend: str
    wall_time_s: float
    json_path: Path | None = None
    csv_path: Path | None = None

    @property
    def ok(self) -> bool:
        """Every run finished."""
        return all(r.status == "done" for r in self.runs)

    @property
    def failed(self) -> tuple[RunRecord, ...]:
        """The runs that failed."""
        return tuple(r for r in self.runs if r.status == "failed")

    def counts(self) -> dict[str, int]:
        """How many runs are in each status (and how many of the done ones were reused)."""
        out = {s: sum(r.status == s for r in self.runs) for s in STATUSES}
        out["reused"] = sum(r.reused for r in self.runs)
        return out

    def run(self, name: str) -> RunRecord:
        """The record of run ``name``."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(name)


def spec_yaml(spec: SweepSpec) -> str:
    """The sweep as stored in ``DIR/sweep.yaml`` (canonical: what ``--resume`` compares).

    >>> print(spec_yaml(SweepSpec.model_validate({"base": "quick", "grid": {"seed": [0]}})).strip())
    base: quick
    grid:
      seed:
      - 0
    overrides: {}
    analyze: null
    """
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def check_sweep_dir(out: str | Path, spec: SweepSpec, resume: bool) -> Path:
    """Check ``--out`` before any work: not a file; an existing sweep folder only with ``--resume`` and the same
    sweep; a folder with other contents is refused.

    >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / "sweep.yaml").write_text("base: other")
    >>> check_sweep_dir(d, SweepSpec(base="quick", grid={"seed": [0]}), resume=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --out ...: holds a sweep already; pass --resume to continue it, or ...
    """
    p = check_output_dir(out)
    stored = p / SPEC_FILE
    if stored.is_file():
        if not resume:
            raise InnerworksError(f"--out {p}: holds a sweep already; pass --resume to continue it, or choose "
                                  "another --out")
        if stored.read_text(encoding="utf-8") != spec_yaml(spec):
            raise InnerworksError(f"--out {p}: holds a different sweep ({stored}); --resume continues only the "
                                  "same sweep; choose another --out")
    elif p.is_dir() and any(p.iterdir()):
        raise InnerworksError(f"--out {p}: folder is not empty and holds no sweep ({SPEC_FILE}); choose another --out")
    return p


def check_run_dirs(out: Path, runs: list[SweepRun]) -> None:
    """Every existing run directory must hold the same resolved recipe (e.g. the base recipe file did not change)."""
    for run in runs:
        cfg = out / "runs" / run.name / "config.yaml"
        if cfg.is_file() and cfg.read_text(encoding="utf-8") != recipe_to_yaml(run.recipe):
            raise InnerworksError(f"{cfg}: differs from the recipe of run {run.name} in this sweep (did the base "
                                  "recipe change?); choose another --out")


def finished_record(out: Path, run: SweepRun, lab: str | None) -> RunRecord | None:
    """The record of a run already finished in ``out`` (weights, ``metrics.json`` and, with ``analyze``, its
    ``analysis.json`` present), else None: a finished run is never trained again.

    >>> finished_record(Path("/nonexistent"), SweepRun("a", {}, None), None) is None
    True
    """
    from innerworks.sweep.worker import headlines

    run_dir = out / "runs" / run.name
    if not ((run_dir / "metrics.json").is_file() and (run_dir / "model.safetensors").is_file()):
        return None
    analysis = None
    if lab is not None:
        doc_path = out / "analysis" / run.name / "analysis.json"
        if not doc_path.is_file():
            return None
        analysis = headlines(lab, read_json(doc_path))
    metrics = read_json(run_dir / "metrics.json")
    info = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    metric = metrics.get("primary_metric", "accuracy")
    return RunRecord(run.name, run.params, "done", seed=run.recipe.seed, metric=metric,
                     test=metrics.get("test", {}).get(metric), wall_time_s=info.get("wall_time_s"), reused=True,
                     resumed_from_step=info.get("resumed_from_step"), analysis=analysis)


def csv_text(records: list[RunRecord] | tuple[RunRecord, ...], grid_keys: list[str]) -> str:
    """``sweep.csv``: one line per run; grid values and analysis headlines get a column each.

    >>> print(csv_text([RunRecord("a", {"seed": 0}, "done", analysis={"fixed_points": 3})], ["seed"]).strip())
    name,seed,status,run_seed,metric,test,wall_time_s,cpu_s,attempts,reused,resumed_from_step,error,run_dir,fixed_points
    a,0,done,,,,,,0,False,,,runs/a,3
    """
    heads = list(dict.fromkeys(k for r in records for k in (r.analysis or {})))
    cols = ["name", *grid_keys, "status", "run_seed", "metric", "test", "wall_time_s", "cpu_s", "attempts", "reused",
            "resumed_from_step", "error", "run_dir", *heads]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        row = r.row()
        w.writerow({**row, **{k: r.params.get(k) for k in grid_keys}, "run_seed": r.seed, **(r.analysis or {})})
    return buf.getvalue()


@dataclass
class SweepLog:
    """Writes ``sweep.json`` and ``sweep.csv`` (atomically) each time a run's record changes."""

    out: Path
    header: dict[str, Any]
    grid_keys: list[str]
    started: float = field(default_factory=time.time)

    def write(self, records: list[RunRecord], finished: bool = False) -> None:
        """Rewrite both files with the current records."""
        counts = {s: sum(r.status == s for r in records) for s in STATUSES}
        doc = {**self.header, "started": self.started, "updated": time.time(), "finished": finished,
               "counts": {**counts, "reused": sum(r.reused for r in records)},
               "runs": [r.row() for r in records]}
        write_json(self.out / "sweep.json", doc)
        atomic_write_text(self.out / "sweep.csv", csv_text(records, self.grid_keys))


__all__ = ["RunRecord", "SweepLog", "SweepResult", "check_run_dirs", "check_sweep_dir", "csv_text",
           "finished_record", "spec_yaml"]
