"""The ``innerworks`` command line. Thin: it parses arguments and calls the library.

Every user error (:class:`~innerworks.errors.InnerworksError`) becomes a one-line message and exit code 2.
"""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from innerworks.errors import InnerworksError, TrainingError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Open up trained neural networks.")

# Each lab adds its commands from its own ``cli`` module through ``register(app, analyze, repro)``.
_LAB_CLIS = (
    "innerworks.train.cli",
    "innerworks.dynamics.cli",
    "innerworks.attention.cli",
    "innerworks.wide.cli",
    "innerworks.report.cli",
)

analyze_app = typer.Typer(no_args_is_help=True, help="Analyse a trained run directory.")
repro_app = typer.Typer(no_args_is_help=True, help="Reproduce a paper's findings and check each claim.")
app.add_typer(analyze_app, name="analyze")
app.add_typer(repro_app, name="repro")


def _mount() -> None:
    for module_name in _LAB_CLIS:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that lab is not built yet
                continue
            raise
        module.register(app=app, analyze=analyze_app, repro=repro_app)


_mount()


@repro_app.command("all")
def repro_all(
    out: str = typer.Option("runs/repro", "--out", help="output folder: one sub-folder per stage plus report.html"),
    quick: bool = typer.Option(False, "--quick", help="small settings that finish in minutes on a CPU"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    seed: int = typer.Option(0, "--seed", help="one seed drives every random source"),
    stage: list[str] = typer.Option(None, "--stage", help="run only these stages (repeatable)"),
    jobs: int = typer.Option(None, "--jobs", help="stages run at once (default: one per CPU core on cpu)"),
) -> None:
    """Run every reproduction, print the claims table and write one self-contained report.html."""
    from innerworks.repro import run_all

    result = run_all(out, quick=quick, device=device, seed=seed, stages=stage or None, jobs=jobs)
    typer.echo(f"report: {result.report}")
    raise typer.Exit(0 if result.all_passed else 1)


def main() -> None:
    """Console entry point: run the app; user errors exit 2 with one line on stderr."""
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc != 0:  # typer.Exit(code) comes back as a return value here
            sys.exit(rc)
    except InnerworksError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except TrainingError as exc:
        typer.echo(f"training stopped: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors surface here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
