"""``innerworks report DIR [--output FILE] [--quiet]``: re-render ``DIR/report.html`` from saved results.

Also :func:`add_repro_command`, the ``innerworks repro <lab>`` command shared by the labs whose reproduction
function takes ``(out, quick, device, seed, progress, config)``.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType

import typer


def add_repro_command(repro: typer.Typer, name: str, run: str, what: str) -> None:
    """Register ``innerworks repro NAME [--quick] [--device] [--seed] [--config] [--jobs N] [--train-only] [--quiet]
    --out DIR``.

    ``run`` is ``"module:function"``, imported only when the command runs (the CLI starts without the labs);
    ``function(out, quick=, device=, seed=, progress=, config=, jobs=)`` returns a
    :class:`~innerworks.report.claims.ReproResult`. The command prints :func:`outcome_lines` and exits 1 unless every
    claim passed. ``--train-only`` trains the runs (``module:stage_recipes``) with
    :func:`innerworks.train.parallel.train_many` and stops: train on a GPU box, analyse elsewhere with the same
    ``--out``. ``what`` names the findings in the help text.

    >>> app = typer.Typer()
    >>> add_repro_command(app, "demo", "innerworks.dynamics.repro:run_integration_repro", "the demo findings")
    >>> [c.name for c in app.registered_commands]
    ['demo']
    """

    def repro_cmd(
        out: Path = typer.Option(..., "--out", help="output folder"),
        quick: bool = typer.Option(False, "--quick", help="small models and data (CPU, a few minutes)"),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda (training)"),
        seed: int = typer.Option(0, "--seed", help="one seed drives every run"),
        config: Path | None = typer.Option(None, "--config", help="settings YAML instead of "
                                           f"configs/repro/{name}_{{quick,full}}.yaml"),
        jobs: int = typer.Option(1, "--jobs", min=1, help="train this many runs at once (worker processes)"),
        train_only: bool = typer.Option(False, "--train-only", help="train the runs into OUT/runs and stop"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        from innerworks.report.claims import outcome_lines

        module, function = run.split(":")
        lab = import_module(module)
        if train_only:
            _train_only(lab, out, quick, device, seed, config, jobs, quiet)
            return
        result = getattr(lab, function)(out, quick=quick, device=device, seed=seed, progress=not quiet,
                                        config=config, jobs=jobs)
        for line in outcome_lines(result, out):
            typer.echo(line)
        if not result.all_passed:
            raise typer.Exit(1)

    repro_cmd.__doc__ = f"Reproduce {what}; write results.json, summary.md, runs/ and figures/."
    repro.command(name)(repro_cmd)


def _train_only(lab: ModuleType, out: Path, quick: bool, device: str, seed: int, config: Path | None, jobs: int,
                quiet: bool) -> None:
    """``--train-only``: train every run of the lab's settings into ``out/runs``; exit 1 if one failed."""
    from innerworks.train.parallel import train_many

    _, recipes = lab.stage_recipes(quick=quick, seed=seed, config=config)
    records = train_many(recipes, out / "runs", device=device, jobs=jobs, progress=not quiet)
    for run, rec in records.items():
        outcome = (f"ok in {rec['wall_time_s']:.0f} s, test {rec['test']}" if rec["status"] == "ok"
                   else f"FAILED: {rec['error']}")
        typer.echo(f"{run}: {outcome}")
    if any(rec["status"] != "ok" for rec in records.values()):
        raise typer.Exit(1)


def register(app: typer.Typer, analyze: typer.Typer, repro: typer.Typer) -> None:
    """Add the ``report`` command to the root app."""

    @app.command("report")
    def report_cmd(
        directory: Path = typer.Argument(..., help="a `repro all` output folder, or one stage folder"),
        output: Path | None = typer.Option(None, "--output", "-o", help="HTML file to write (default DIR/report.html)"),
        quiet: bool = typer.Option(False, "--quiet", help="do not print the claims table"),
    ) -> None:
        """Render the self-contained HTML report from saved results, without recomputing anything."""
        from innerworks.report.html import load_report, print_claims_table, write_report

        report = load_report(directory)
        path = write_report(report, output)
        if not quiet:
            print_claims_table(report.results())
            for w in report.warnings:
                typer.echo(f"note: {w}", err=True)
        typer.echo(f"report: {path}")
