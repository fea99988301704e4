"""``innerworks sweep SWEEP.yaml --out DIR [--backend local|ray] [--address ADDR] [--jobs N] [--resume] ...``.

Thin: parse the options, call :func:`innerworks.sweep.run_sweep`, print one line per failed run and a summary.
Exit status 0 when every run finished, 1 when some failed; a bad sweep file or option exits 2 with one line.

>>> app = typer.Typer(); register(app)
>>> [c.name for c in app.registered_commands]
['sweep']
"""

from __future__ import annotations

from pathlib import Path

import typer

from innerworks.sweep.runner import Backend


def register(app: typer.Typer, analyze: typer.Typer | None = None) -> None:
    """Add the ``sweep`` command to the root app (``analyze`` is accepted, unused, like the labs' ``register``)."""

    @app.command("sweep")
    def sweep_cmd(
        sweep: Path = typer.Argument(..., help="sweep YAML: base recipe, grid of recipe fields, optional analyze"),
        out: Path = typer.Option(..., "--out", help="sweep folder: runs/<name>/, sweep.json, sweep.csv"),
        backend: Backend = typer.Option(Backend.LOCAL, "--backend", help="local worker processes, or Ray tasks"),
        address: str | None = typer.Option(None, "--address", help="Ray: 'auto' or ray://HOST:10001 joins a "
                                           "cluster; default: start Ray on this machine"),
        jobs: int | None = typer.Option(None, "--jobs", help="runs at once (local default: CPUs / --threads; "
                                        "1 trains in this process; Ray default: as resources allow)"),
        threads: int = typer.Option(1, "--threads", help="CPU threads per run (Ray: the task's num_cpus)"),
        gpus_per_run: float = typer.Option(0.0, "--gpus-per-run", help="Ray: GPU share per run (0.125: eight "
                                           "runs per GPU); implies --device cuda"),
        max_retries: int = typer.Option(3, "--max-retries", help="restarts of a run whose worker died (it "
                                        "resumes from its last checkpoint)"),
        resume: bool = typer.Option(False, "--resume", help="continue the sweep in --out; finished runs are kept"),
        device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N for every run"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress line"),
        ensembles: bool = typer.Option(False, "--ensembles", help="local: train runs of one architecture as "
                                       "batched ensembles first (faster; equal to standalone up to rounding)"),
    ) -> None:
        """Train every combination of a grid of recipe fields, locally or on a Ray cluster, resumably."""
        from innerworks.sweep.runner import run_sweep

        result = run_sweep(sweep, out, backend, address=address, jobs=jobs, threads=threads,
                           gpus_per_run=gpus_per_run, max_retries=max_retries, resume=resume, device=device,
                           progress=not quiet, ensembles=ensembles)
        c = result.counts()
        for r in result.failed:
            typer.echo(f"{r.name}: failed: {r.error}", err=True)
        typer.echo(f"sweep: {len(result.runs)} runs, {c['done']} done ({c['reused']} reused), {c['failed']} failed "
                   f"in {result.wall_time_s:.1f} s on {result.backend}; wrote {result.json_path} and {result.csv_path}")
        if not result.ok:
            raise typer.Exit(1)


__all__ = ["register"]
