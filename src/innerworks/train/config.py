"""Recipes: YAML files validated by pydantic.

A recipe has a ``name``, a ``task`` (default ``classification``), a ``seed`` and three sections: ``data`` and ``model``
(validated by the task's own config classes) and ``train`` (:class:`TrainConfig`, shared by all tasks).

>>> r = parse_recipe({"name": "demo", "data": {"source": "synthetic", "task": "categorical", "num_classes": 3},
...                   "model": {"cell": "gru", "hidden_size": 8}, "train": {"steps": 5}})
>>> r.train.steps, r.task
(5, 'classification')
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from innerworks.errors import ConfigError, format_validation_error


def recipes_dir() -> Path:
    """The folder of the built-in recipes, inside the installed package (``innerworks/recipes``).

    >>> (recipes_dir() / "quick.yaml").is_file()
    True
    """
    return Path(str(files("innerworks").joinpath("recipes")))


class TrainConfig(BaseModel):
    """Optimiser and schedule: Adam, global-norm clipping, L2, per-step exponential LR decay, periodic evaluation.

    >>> TrainConfig(steps=10).lr
    0.001
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, ge=1, description="optimiser steps")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_decay: float = Field(1.0, gt=0, le=1, description="learning rate multiplier per step: lr * lr_decay**step")
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    clip: float | None = Field(10.0, gt=0, description="global gradient-norm clip; null disables")
    l2: float = Field(0.0, ge=0, description="adds l2 * sum(theta**2) to the loss")
    eval_every: int = Field(200, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    eval_batch_size: int = Field(512, ge=1)
    device: str = "cpu"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("cpu", "cuda") and not v.startswith("cuda:"):
            raise ValueError("expected 'cpu', 'cuda' or 'cuda:N'")
        return v


class Recipe(BaseModel):
    """A whole training recipe. ``data`` and ``model`` are validated again by the task's config classes."""

    model_config = ConfigDict(extra="forbid")

    name: str
    task: str = "classification"
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds every random source (NumPy's range)")
    data: dict[str, Any]
    model: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)


def parse_recipe(raw: Any, source: str = "recipe") -> Recipe:
    """Validate a recipe given as a dict (already parsed YAML), including the task's data/model sections.

    >>> parse_recipe({"name": "x", "data": {}, "bogus": 1})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: recipe: field 'bogus': unknown field
    """
    from innerworks.train.tasks import get_task

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of fields at the top level, got {type(raw).__name__}")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None
    try:
        task = get_task(recipe.task)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for section, validate in (("data", task.validate_data), ("model", task.ModelConfig.model_validate)):
        try:
            validate(getattr(recipe, section))
        except ValidationError as exc:
            raise format_validation_error(exc, source, prefix=f"{section}.") from None
    return recipe


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    """A recipe path, or the name of a built-in recipe (``quick``, ``synthetic/categorical3_gru``: a file
    ``<name>.yaml`` under :func:`recipes_dir`).

    >>> resolve_recipe_path("quick").name
    'quick.yaml'
    """
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: is a folder, expected a recipe YAML file" if p.is_dir()
                              else f"{p}: recipe file not found")
        return p
    cand = recipes_dir() / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    raise ConfigError(f"{name_or_path}: no such recipe file or built-in recipe (`innerworks recipes` lists them)")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a YAML recipe; ``overrides`` (e.g. ``{"seed": 3}``) replace top-level fields.

    >>> load_recipe("quick").name
    'quick'
    """
    p = resolve_recipe_path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    if raw is None:
        raise ConfigError(f"{p}: recipe file is empty")
    if isinstance(raw, dict) and overrides:
        raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    return parse_recipe(raw, source=str(p))


def builtin_recipes() -> list[str]:
    """The names of the built-in recipes (what :func:`load_recipe` accepts besides a path).

    >>> "synthetic/categorical3_gru" in builtin_recipes()
    True
    """
    root = recipes_dir()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (what a run directory stores as ``config.yaml``)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
