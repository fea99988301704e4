"""Shared test fixtures: the data folder and small helpers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import typer


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ["INNERWORKS_DATA"])
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root


def _make_lab_app(register: Callable[..., None]) -> typer.Typer:
    """A root app with ``analyze`` and ``repro`` groups, one command module's commands and the ``repro`` commands,
    as ``innerworks.cli`` mounts them."""
    from innerworks.repro import cli as repro_cli

    root = typer.Typer()
    analyze, repro = typer.Typer(), typer.Typer()
    root.add_typer(analyze, name="analyze")
    root.add_typer(repro, name="repro")
    register(root, analyze)
    repro_cli.register(repro)
    return root


@pytest.fixture(scope="session")
def lab_app() -> Callable[[Callable[..., None]], typer.Typer]:
    """``lab_app(register)``: a local CLI app with one lab's commands (see ``_make_lab_app``)."""
    return _make_lab_app
