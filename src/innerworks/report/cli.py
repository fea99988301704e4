"""``innerworks report DIR [--output FILE] [--quiet]``: re-render ``DIR/report.html`` from saved results.

Also :func:`add_repro_command`, the ``innerworks repro <lab>`` command shared by the labs whose reproduction
function takes ``(out, quick, device, seed, progress, config)``.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import typer


def add_repro_command(repro: typer.Typer, name: str, run: str, what: str) -> None:
    """Register ``innerworks repro NAME [--quick] [--device] [--seed] [--config] [--quiet] --out DIR``.

    ``run`` is ``"module:function"``, imported only when the command runs (the CLI starts without the labs);
    ``function(out, quick=, device=, seed=, progress=, config=)`` returns a
    :class:`~innerworks.report.claims.ReproResult`. The command prints :func:`outcome_lines` and exits 1 unless every
    claim passed. ``what`` names the findings in the help text.

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
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        from innerworks.report.claims import outcome_lines

        module, function = run.split(":")
        run_fn = getattr(import_module(module), function)
        result = run_fn(out, quick=quick, device=device, seed=seed, progress=not quiet, config=config)
        for line in outcome_lines(result, out):
            typer.echo(line)
        if not result.all_passed:
            raise typer.Exit(1)

    repro_cmd.__doc__ = f"Reproduce {what}; write results.json, summary.md, runs/ and figures/."
    repro.command(name)(repro_cmd)


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
