"""The sweep file: a base recipe, a grid of recipe fields, optional fixed overrides and an optional analysis.

.. code-block:: yaml

    base: quick                      # a recipe name or path (relative paths: from the sweep file's folder first)
    grid:                            # every combination becomes one run
      seed: [0, 1]
      model.hidden_size: [32, 64]
    overrides: {train.steps: 200}    # optional: set in every run (dotted keys or nested mappings)
    analyze: dynamics                # optional: `dynamics` or `attention`, or {dynamics: {n_starts: 256}}

:func:`plan_runs` turns a validated :class:`SweepSpec` into one :class:`SweepRun` per grid point, each with a
validated recipe, so every run is checked before any training starts.

>>> spec = SweepSpec.model_validate({"base": "quick", "grid": {"seed": [0, 1], "model.hidden_size": [8]}})
>>> [r.name for r in plan_runs(spec)]
['seed-0__hidden_size-8', 'seed-1__hidden_size-8']
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from innerworks.errors import ConfigError, format_validation_error
from innerworks.train.config import Recipe, load_recipe, parse_recipe
from innerworks.train.runspec import load_settings, merge_overrides

LABS = ("dynamics", "attention")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_MAX_NAME = 100


def _values(values: list[Any]) -> list[Any]:
    """A grid field's values: at least one, none twice."""
    if not values:
        raise ValueError("empty list; give at least one value")
    seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
    dup = next((v for v, s in zip(values, seen, strict=True) if seen.count(s) > 1), None)
    if dup is not None:
        raise ValueError(f"value {dup!r} appears more than once")
    return values


class AnalyzeSpec(BaseModel):
    """Which lab analyses each finished run, and its settings (the lab's own options)."""

    model_config = ConfigDict(extra="forbid")

    lab: Literal["dynamics", "attention"]
    settings: dict[str, Any] = Field(default_factory=dict)


class SweepSpec(BaseModel):
    """A validated sweep file (see the module docstring for the format).

    >>> SweepSpec.model_validate({"base": "quick", "grid": {"seed": [0]}, "analyze": "dynamics"}).analyze.lab
    'dynamics'
    """

    model_config = ConfigDict(extra="forbid")

    base: str = Field(min_length=1, description="recipe name or path")
    grid: dict[str, Annotated[list[Any], AfterValidator(_values)]] = Field(
        description="recipe field (dotted path) -> values; one run per combination")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fields set in every run")
    analyze: AnalyzeSpec | None = None

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not grid:
            raise ValueError("expected at least one field with a list of values")
        for key in grid:
            if not _KEY.fullmatch(key):
                raise ValueError(f"{key!r}: expected a recipe field such as 'seed' or 'model.hidden_size'")
            if key == "name":
                raise ValueError("'name': run names come from the grid values; it cannot be swept")
        return grid

    @field_validator("analyze", mode="before")
    @classmethod
    def _analyze(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v not in LABS:
                raise ValueError(f"expected one of {', '.join(LABS)} (or a mapping lab: settings), got {v!r}")
            return {"lab": v}
        if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in LABS:
            lab, settings = next(iter(v.items()))
            return {"lab": lab, "settings": settings or {}}
        return v



def check_analysis_settings(spec: AnalyzeSpec, source: str | Path = "sweep") -> None:
    """Validate ``analyze`` settings against the lab's own options (imports the lab); :class:`ConfigError` naming
    the sweep file and the setting.

    >>> check_analysis_settings(AnalyzeSpec(lab="attention", settings={"bogus": 1}), "s.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    innerworks.errors.ConfigError: s.yaml: field 'analyze.attention.bogus': unknown setting (expected batch_size, ...)
    """
    if spec.lab == "dynamics":
        from innerworks.dynamics.analyze import AnalysisSettings

        try:
            AnalysisSettings.model_validate(spec.settings)
        except ValidationError as exc:
            raise format_validation_error(exc, str(source), prefix="analyze.dynamics.") from None
        return
    allowed = ("batch_size", "k", "n_eval", "split")
    bad = sorted(set(spec.settings) - set(allowed))
    if bad:
        raise ConfigError(f"{source}: field 'analyze.attention.{bad[0]}': unknown setting "
                          f"(expected {', '.join(allowed)})")


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file; a :class:`ConfigError` naming the file and field (or line) on failure.

    >>> load_sweep("/nonexistent.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: /nonexistent.yaml: sweep file not found
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: sweep file not found")
    spec = load_settings(p, SweepSpec)  # YAML errors with their line, pydantic errors with their field
    if spec.analyze is not None:
        check_analysis_settings(spec.analyze, p)
    return spec


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{"model.hidden_size": 8}`` into ``{"model": {"hidden_size": 8}}`` (nested mappings merge).

    >>> nest({"model.hidden_size": 8, "model": {"cell": "gru"}, "seed": 1})
    {'model': {'hidden_size': 8, 'cell': 'gru'}, 'seed': 1}
    """
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        for part in reversed(key.split(".")[1:]):
            value = {part: value}
        out = merge_overrides(out, {key.split(".")[0]: value})
    return out


def _value_text(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int | float | str):
        return str(v)
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _short_hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_names(grid: dict[str, list[Any]]) -> list[str]:
    """One filesystem-safe, unique folder name per grid point (``label-value`` joined by ``__``), in grid order.

    The label is a key's last part (its full dotted path when two keys share a last part). A name that collides
    after cleaning, or runs longer than 100 characters, gets a short hash of its values.

    >>> run_names({"seed": [0, 1], "train.lr": [0.01]})
    ['seed-0__lr-0.01', 'seed-1__lr-0.01']
    >>> run_names({"data.path": ["a/b", "a b"]})
    ['path-a_b-94d6bf18', 'path-a_b-d19dc7e3']
    """
    keys = list(grid)
    last = [k.rsplit(".", 1)[-1] for k in keys]
    labels = [k.replace(".", "_") if last.count(lb) > 1 else lb for k, lb in zip(keys, last, strict=True)]
    points = list(itertools.product(*grid.values()))
    names = []
    for point in points:
        parts = (f"{lb}-{_value_text(v)}" for lb, v in zip(labels, point, strict=True))
        names.append(_SAFE.sub("_", "__".join(parts)).lstrip(".-") or "run")
    folded = [n.lower() for n in names]
    out = []
    for name, point in zip(names, points, strict=True):
        if folded.count(name.lower()) > 1 or len(name) > _MAX_NAME:
            name = f"{name[:_MAX_NAME - 9]}-{_short_hash(list(point))}"
        out.append(name)
    return out


@dataclass(frozen=True)
class SweepRun:
    """One grid point: its run name, its grid values (dotted key -> value) and its validated recipe."""

    name: str
    params: dict[str, Any]
    recipe: Recipe


def resolve_base(base: str, source: str | Path | None = None) -> str:
    """The base recipe as :func:`~innerworks.train.config.load_recipe` takes it: a path relative to the sweep file's
    folder when that file exists, else the name or path as written.

    >>> resolve_base("quick")
    'quick'
    """
    if source is not None:
        local = Path(source).parent / base
        for cand in (local, local.with_suffix(".yaml")):
            if cand.is_file() and not Path(base).is_absolute():
                return str(cand)
    return base


def plan_runs(spec: SweepSpec, source: str | Path = "sweep") -> list[SweepRun]:
    """Every run of ``spec`` with its validated recipe (``name`` set to the run name), in grid order.

    A grid or override key that is not a recipe field, or a value the recipe rejects, is a :class:`ConfigError`
    naming the sweep file and the field.

    >>> spec = SweepSpec.model_validate({"base": "quick", "grid": {"model.hidden_sise": [8]}})
    >>> plan_runs(spec, "s.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: s.yaml: field 'grid.model.hidden_sise': not a valid recipe field ...
    """
    base = resolve_base(spec.base, source if Path(str(source)).is_file() else None)
    try:
        base_raw = load_recipe(base).model_dump(mode="json")
    except ConfigError as exc:
        raise ConfigError(f"{source}: field 'base': {exc}") from None
    rsrc = f"recipe {spec.base}"
    for key, value in spec.overrides.items():  # each key on its own first, so an error names it
        _parse(merge_overrides(base_raw, nest({key: value})), rsrc, f"{source}: field 'overrides.{key}'")
    fixed = merge_overrides(base_raw, nest(spec.overrides))
    for key, values in spec.grid.items():
        for value in values:
            _parse(merge_overrides(fixed, nest({key: value})), rsrc, f"{source}: field 'grid.{key}'", value)
    runs = []
    for name, point in zip(run_names(spec.grid), itertools.product(*spec.grid.values()), strict=True):
        params = dict(zip(spec.grid, point, strict=True))
        raw = {**merge_overrides(fixed, nest(params)), "name": name}
        runs.append(SweepRun(name, params, _parse(raw, rsrc, f"{source}: run {name}")))
    return runs


_NO_VALUE = object()


def _parse(raw: dict[str, Any], recipe_source: str, where: str, value: Any = _NO_VALUE) -> Recipe:
    """The validated recipe; a recipe error is re-raised as one line that starts with ``where``."""
    try:
        return parse_recipe(raw, source=recipe_source)
    except ConfigError as exc:
        msg = str(exc).removeprefix(f"{recipe_source}: ")
        if "unknown field" in msg:
            raise ConfigError(f"{where}: not a valid recipe field ({msg})") from None
        shown = "" if value is _NO_VALUE else f" value {value!r}"
        raise ConfigError(f"{where}:{shown} rejected by {recipe_source} ({msg})") from None


__all__ = ["AnalyzeSpec", "SweepRun", "SweepSpec", "check_analysis_settings", "load_sweep", "nest", "plan_runs",
           "resolve_base", "run_names"]
