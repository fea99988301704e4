"""The ``innerworks`` command line. Thin: it parses arguments and calls the library.

Every user error becomes one line ``error: ...`` on stderr and exit code 2, never a traceback: an
:class:`~innerworks.errors.InnerworksError` (bad file, field, spec or option value, checked before any work), a usage
error from the parser (unknown option or command, a value of the wrong type, a missing argument; the line names the
command whose ``--help`` lists the options) and a path that cannot be read or written. Running out of memory exits 1
with one line. A bug still shows its traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import NoReturn

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
    "innerworks.sweep.cli",
)

analyze_app = typer.Typer(no_args_is_help=True, help="Analyse a trained run directory.")
repro_app = typer.Typer(no_args_is_help=True, help="Reproduce a paper's findings and check each claim.")
app.add_typer(analyze_app, name="analyze")
app.add_typer(repro_app, name="repro")

for _name in _COMMAND_MODULES:
    import_module(_name).register(app=app, analyze=analyze_app)
repro_cli.register(repro_app)


def _click_modules() -> list[ModuleType]:
    """The ``exceptions`` modules of the click that typer raises from: typer's vendored copy (``typer._click``
    in recent typer; its classes do not subclass click's) and click itself when installed."""
    mods = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            mods.append(import_module(name))
        except ImportError:
            continue
    return mods


def _classes(attr: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(m, attr) for m in _click_modules() if hasattr(m, attr))


_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(text: str) -> str:
    """``text`` with every line break shown as its escape, so an error message stays on one line.

    >>> one_line("a\\nb")
    'a\\\\nb'
    """
    return str(text).translate(_LINE_BREAKS)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _usage_error(exc: Exception) -> NoReturn:
    """One line for a click usage error (unknown option, bad value, missing argument, unknown command): the
    message and the command whose ``--help`` lists the options; exit 2. With no arguments at all (``no_args_is_help``)
    the help is shown instead."""
    if isinstance(exc, _classes("NoArgsIsHelpError")):
        exc.show()  # type: ignore[attr-defined]
        sys.exit(2)
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message()  # type: ignore[attr-defined]
    option = getattr(exc, "option_name", None)
    if option and not str(option).startswith("--"):  # `wide predict -zzz`: maybe an argument, not an option
        message = f"{message}; an argument that starts with - goes after --"
    if ctx is not None:
        message = f"{message.rstrip('.')} (see {ctx.command_path} --help)"
    _fail(message, int(getattr(exc, "exit_code", 2)))


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app on ``argv`` (default ``sys.argv[1:]``). A user error (bad input, a usage
    error, a path that cannot be written) prints ``error: <one line>`` on stderr and exits 2; a run that fails or
    runs out of memory exits 1 with one line; Ctrl-C exits 130."""
    try:
        rc = app(args=argv, prog_name="innerworks", standalone_mode=False)
        if isinstance(rc, int) and rc != 0:  # typer.Exit(code) comes back as a return value here
            sys.exit(rc)
    except InnerworksError as exc:
        _fail(str(exc), 2)
    except TrainingError as exc:
        typer.echo(f"training stopped: {one_line(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `innerworks wide list | head -1`
        sys.exit(1)
    except Exception as exc:
        if isinstance(exc, _classes("ClickException")):
            _usage_error(exc)
        if isinstance(exc, _classes("Abort") + (typer.Abort,)):
            _fail("aborted", 1)
        if isinstance(exc, _classes("Exit")):
            sys.exit(int(getattr(exc, "exit_code", 0)))
        if _out_of_memory(exc):
            _fail(f"out of memory ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); try smaller "
                  "sizes", 1)
        if isinstance(exc, OSError) and exc.filename is not None:  # a path that cannot be read or written
            _fail(f"{exc.filename}: {exc.strerror or exc}", 2)
        raise


if __name__ == "__main__":
    main()
