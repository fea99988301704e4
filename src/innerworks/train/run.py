"""Loading a finished run back: one call returns the model, its data and what was recorded.

>>> import tempfile
>>> from innerworks.train.config import load_recipe
>>> from innerworks.train.loop import train
>>> r = load_recipe("quick"); r = r.model_copy(update={"train": r.train.model_copy(update={"steps": 2})})
>>> d = tempfile.mkdtemp(); _ = train(r, d, progress=False)
>>> run = load_run(d); run.recipe.name, type(run.model).__name__
('quick', 'RNNClassifier')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from innerworks.errors import InnerworksError
from innerworks.train.checkpoint import load_model
from innerworks.train.config import Recipe, parse_recipe
from innerworks.train.tasks import get_task
from innerworks.utils.io import read_json


@dataclass
class Run:
    """A trained run: ``model`` (eval mode, CPU), ``data`` (train/val/test), ``recipe``, ``metrics``, ``info``."""

    model: nn.Module
    data: Any
    recipe: Recipe
    metrics: dict[str, Any]
    info: dict[str, Any]
    run_dir: Path


def load_run(run_dir: str | Path, load_data: bool = True) -> Run:
    """Load ``run_dir`` (written by :func:`innerworks.train.train`): model weights, rebuilt data, metrics."""
    run_dir = Path(run_dir)
    cfg_path, weights = run_dir / "config.yaml", run_dir / "model.safetensors"
    if not cfg_path.is_file():
        raise InnerworksError(f"{run_dir}: not a run directory (no config.yaml)")
    if not weights.is_file():
        raise InnerworksError(f"{run_dir}: run is not finished (no model.safetensors); resume it with --resume")
    recipe = parse_recipe(yaml.safe_load(cfg_path.read_text(encoding="utf-8")), source=str(cfg_path))
    task = get_task(recipe.task)
    data = task.build_data(task.validate_data(recipe.data), recipe.seed, run_dir)
    model = task.build_model(task.ModelConfig.model_validate(recipe.model), data)
    load_model(weights, model).eval()
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    info = read_json(run_dir / "run.json") if (run_dir / "run.json").exists() else {}
    return Run(model, data if load_data else None, recipe, metrics, info, run_dir)


def training_record(run_dir: str | Path) -> dict[str, Any]:
    """What ``run.json`` says of how a finished run was trained: ``wall_time_s`` (the training itself, also when
    the run is reused later), ``device`` and ``resumed_from_step``; empty for a run that is not finished.

    >>> training_record("/nonexistent")
    {}
    """
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return {}
    info = read_json(path)
    return {k: info.get(k) for k in ("wall_time_s", "device", "resumed_from_step")}


def training_timing(run_dir: str | Path, measured_s: float, device: str) -> dict[str, Any]:
    """``train_wall_s`` and ``trained_on`` for a reproduction's timing table: what :func:`training_record` says when
    the run is finished (its real training time, also when it was reused), else what the caller measured.

    >>> training_timing("/nonexistent", 1.234, "cpu")
    {'train_wall_s': 1.23, 'trained_on': 'cpu'}
    """
    rec = training_record(run_dir)
    return {"train_wall_s": rec.get("wall_time_s", round(measured_s, 2)), "trained_on": rec.get("device", device)}
