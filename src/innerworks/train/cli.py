"""``innerworks train RECIPE --out RUN_DIR [--seed N] [--resume] [--device D]`` and ``innerworks recipes``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer, analyze: typer.Typer) -> None:
    """Add the ``train`` and ``recipes`` commands to the root app."""

    @app.command("recipes")
    def recipes_cmd() -> None:
        """List the built-in recipes (names ``innerworks train`` accepts)."""
        from innerworks.train.config import builtin_recipes

        for name in builtin_recipes():
            typer.echo(name)


    @app.command("train")
    def train_cmd(
        recipe: str = typer.Argument(..., help="recipe YAML path, or a built-in name (see `innerworks recipes`)"),
        out: Path = typer.Option(..., "--out", help="run directory to create"),
        seed: int | None = typer.Option(None, "--seed", help="override the recipe's seed"),
        resume: bool = typer.Option(False, "--resume", help="continue an interrupted run in --out"),
        device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N (overrides the recipe)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    ) -> None:
        """Train a model from a YAML recipe into a run directory."""
        from innerworks.train.config import load_recipe
        from innerworks.train.loop import train
        from innerworks.utils.device import resolve_device
        from innerworks.utils.io import check_output_dir
        from innerworks.utils.options import check_seed

        check_output_dir(out, "--out")
        if device is not None:
            resolve_device(device, "--device")
        r = load_recipe(recipe, overrides={"seed": check_seed(seed)})
        result = train(r, out, resume=resume, device=device, progress=not quiet)
        metric = result.metrics.get("primary_metric", "accuracy")
        typer.echo(f"{r.name}: test {metric} {result.metrics['test'][metric]:.4f}; run directory: {out}")
