"""The ``innerworks`` command line. Thin: it parses arguments and calls the library.

Every user error (:class:`~innerworks.errors.InnerworksError`) becomes a one-line message and exit code 2.
"""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from innerworks.errors import InnerworksError, TrainingError
from innerworks.repro import cli as repro_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Open up trained neural networks.")

# Each command group adds its commands from its own ``cli`` module through ``register(app, analyze)``.
_COMMAND_MODULES = (
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

for _name in _COMMAND_MODULES:
    import_module(_name).register(app=app, analyze=analyze_app)
repro_cli.register(repro_app)


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
