"""``innerworks report DIR [--output FILE] [--quiet]``: re-render ``DIR/report.html`` from saved results."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer, analyze: typer.Typer) -> None:
    """Add the ``report`` command to the root app."""

    @app.command("report")
    def report_cmd(
        directory: Path = typer.Argument(..., help="a `repro all` output folder, or one stage folder"),
        output: Path | None = typer.Option(None, "--output", "-o", help="HTML file to write (default DIR/report.html)"),
        quiet: bool = typer.Option(False, "--quiet", help="do not print the claims table"),
    ) -> None:
        """Render the self-contained HTML report from saved results, without recomputing anything."""
        from innerworks.report.html import REPORT_NAME, load_report, print_claims_table, write_report
        from innerworks.utils.io import check_output_file

        if output is not None or directory.is_dir():  # a missing DIR is load_report's error
            check_output_file(output if output is not None else directory / REPORT_NAME, "--output")
        report = load_report(directory)
        path = write_report(report, output)
        if not quiet:
            print_claims_table(report.results())
            for w in report.warnings:
                typer.echo(f"note: {w}", err=True)
        typer.echo(f"report: {path}")
