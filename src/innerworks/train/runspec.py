"""Runs inside a reproduction: a recipe reference plus overrides, turned into a validated :class:`Recipe`.

Reproduction settings (``innerworks/repro/settings/*.yaml``) list their training runs as :class:`RunSpec` entries, so
the runs stay ordinary recipes and the settings stay YAML, not code.

>>> r = build_recipe(RunSpec(recipe="quick", overrides={"train": {"steps": 5}}), "demo", seed=3)
>>> r.name, r.seed, r.train.steps
('demo', 3, 5)
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from innerworks.errors import ConfigError, format_validation_error
from innerworks.train.config import Recipe, parse_recipe, resolve_recipe_path

M = TypeVar("M", bound=BaseModel)


class RunSpec(BaseModel):
    """One training run: a recipe (path, or a built-in name such as ``synthetic/categorical3_gru``) and
    overrides deep-merged into its ``data``/``model``/``train`` sections."""

    model_config = ConfigDict(extra="forbid")

    recipe: str
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _sections(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(v) - {"data", "model", "train"})
        if bad:
            raise ValueError(f"overrides may only touch data, model and train, got {bad}")
        return v


def merge_overrides(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` into a copy of ``base`` (nested dicts merge; anything else replaces).

    >>> merge_overrides({"train": {"steps": 1, "lr": 0.1}}, {"train": {"steps": 2}})
    {'train': {'steps': 2, 'lr': 0.1}}
    """
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_overrides(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_recipe(spec: RunSpec, name: str, seed: int, base: Path | None = None,
                 tasks: Collection[str] | None = None, lab: str = "this reproduction") -> Recipe:
    """The validated recipe of one run: its recipe file with the overrides merged in, ``name`` set to the run name
    and ``seed`` to the reproduction's seed.

    Args:
        spec: the run's recipe reference and overrides.
        name: run name (also the run directory's name).
        seed: the reproduction's seed.
        base: folder to resolve a relative ``spec.recipe`` against first (e.g. the settings file's folder).
        tasks: allowed ``task`` values; another task is a :class:`ConfigError`.
        lab: how errors name the caller.
    """
    local = (base / spec.recipe) if base is not None else None
    if local is not None and local.is_file():
        path = local
    elif local is not None and local.with_suffix(".yaml").is_file():
        path = local.with_suffix(".yaml")
    else:
        path = resolve_recipe_path(spec.recipe)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise ConfigError(f"{path}: invalid YAML") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a recipe mapping")
    raw = merge_overrides(raw, spec.overrides)
    raw.update(name=name, seed=int(seed))
    recipe = parse_recipe(raw, source=f"{path} (run {name})")
    if tasks is not None and recipe.task not in tasks:
        allowed = " and ".join(repr(t) for t in sorted(tasks))
        raise ConfigError(f"{path}: run {name} has task {recipe.task!r}; {lab} trains {allowed} recipes")
    return recipe


def check_run_names(runs: dict[str, RunSpec]) -> dict[str, RunSpec]:
    """Validator for a settings file's ``runs`` mapping: names become folder names, so keep them plain.

    >>> check_run_names({"Bad Name": RunSpec(recipe="quick")})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: run name 'Bad Name': use lowercase letters, digits and '_'
    """
    for name in runs:
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"run name {name!r}: use lowercase letters, digits and '_'")
    return runs


def load_settings(path: Path, cls: type[M]) -> M:
    """Read a reproduction settings YAML into the pydantic model ``cls``; one-line :class:`ConfigError` naming the
    file (and line or field) on failure.

    >>> load_settings(Path("/nonexistent.yaml"), RunSpec)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: /nonexistent.yaml: repro settings not found (pass --config PATH)
    """
    if not path.is_file():
        raise ConfigError(f"{path}: repro settings not found (pass --config PATH)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, str(path)) from None
