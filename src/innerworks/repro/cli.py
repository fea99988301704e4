"""``innerworks repro <lab>`` for every registered lab, with one set of options, and ``innerworks repro all``.

Thin: each command parses its options into :class:`~innerworks.repro.base.ReproOptions` and calls
:func:`~innerworks.repro.base.reproduce` (or :func:`~innerworks.repro.base.train_only`), then prints the outcome.
A command exits 1 unless every claim passed, so scripts can test the exit status.

>>> app = typer.Typer()
>>> register(app)
>>> sorted(c.name for c in app.registered_commands)
['all', 'attention', 'integration', 'wide']
"""

from __future__ import annotations

from pathlib import Path

import typer

from innerworks.repro.registry import LABS, LabEntry


def _lab_command(entry: LabEntry) -> object:
    def repro_cmd(
        out: Path = typer.Option(..., "--out", help="output folder"),
        quick: bool = typer.Option(False, "--quick", help="small models and data (CPU, a few minutes)"),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N (training)"),
        seed: int = typer.Option(0, "--seed", help="one seed drives every random source"),
        config: Path | None = typer.Option(None, "--config", help="a settings YAML instead of the built-in "
                                           f"{entry.name}_quick/_full.yaml"),
        jobs: int = typer.Option(1, "--jobs", help="train this many runs at once (worker processes)"),
        train_only: bool = typer.Option(False, "--train-only", help="train the runs into OUT/runs and stop"),
        ensembles: bool = typer.Option(False, "--ensembles", help="train runs of one architecture as batched "
                                       "ensembles (faster; equal to standalone runs up to float rounding)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        from innerworks.repro.base import ReproOptions, reproduce
        from innerworks.repro.base import train_only as train_runs
        from innerworks.repro.claims import outcome_lines
        from innerworks.utils.options import check_seed

        check_seed(seed)
        options = ReproOptions(out=out, quick=quick, device=device, seed=seed, config=config, jobs=jobs,
                               train_only=train_only, progress=not quiet, ensembles=ensembles)
        lab = entry.load()
        if train_only:
            records = train_runs(lab, options)
            for run, rec in records.items():
                typer.echo(f"{run}: " + (f"ok in {rec['wall_time_s']:.0f} s, test {rec['test']}"
                                         if rec["status"] == "ok" else f"FAILED: {rec['error']}"))
            if any(rec["status"] != "ok" for rec in records.values()):
                raise typer.Exit(1)
            return
        result = reproduce(lab, options)
        for line in outcome_lines(result, out):
            typer.echo(line)
        if not result.all_passed:
            raise typer.Exit(1)

    repro_cmd.__doc__ = (f"Reproduce {entry.title}; write results.json, summary.md, figures/ (and runs/). Exit 1 "
                         "unless every claim passed.")
    return repro_cmd


def register(repro: typer.Typer) -> None:
    """Add ``repro <lab>`` for each lab of the registry, and ``repro all``."""
    for entry in LABS:
        repro.command(entry.name)(_lab_command(entry))

    @repro.command("all")
    def repro_all(
        out: Path = typer.Option(Path("runs/repro"), "--out", help="output folder: one sub-folder per stage plus "
                                 "report.html"),
        quick: bool = typer.Option(False, "--quick", help="small settings that finish in minutes on a CPU"),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N"),
        seed: int = typer.Option(0, "--seed", help="one seed drives every random source"),
        stage: list[str] = typer.Option(None, "--stage", help="run only these stages (repeatable)"),
        jobs: int | None = typer.Option(None, "--jobs", help="stages run at once (default: one per CPU core on cpu)"),
    ) -> None:
        """Run every reproduction, print the claims table and write one self-contained report.html."""
        from innerworks.repro.all import run_all
        from innerworks.utils.options import check_int, check_seed

        if jobs is not None:
            check_int(jobs, "--jobs", lo=1)
        check_seed(seed)
        result = run_all(out, quick=quick, device=device, seed=seed, stages=stage or None, jobs=jobs)
        typer.echo(f"report: {result.report}")
        raise typer.Exit(0 if result.all_passed else 1)
