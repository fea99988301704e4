"""Training tasks: what a recipe's ``task:`` field names.

A :class:`Task` knows how to build its data and model from validated config sections, draw a training batch, compute
the loss and evaluate. The training loop (:mod:`innerworks.train.loop`) is the same for all of them. Tasks are
plugins: an entry point in the ``innerworks.tasks`` group (``name = "package.module:TaskClass"``) is loaded the first
time a recipe names it, so this module imports no task and the core never imports a lab (the built-in
``classification`` and the labs' ``seq2seq`` and ``flipflop`` are declared in ``pyproject.toml``; a third-party
package can do the same), and :func:`register_task` adds one at run time.

>>> sorted(available_tasks())[:1]
['classification']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from innerworks.errors import ConfigError


class Task(ABC):
    """One kind of supervised problem. Subclasses set the two config classes and implement the five methods.

    Attributes:
        name: the value of ``task:`` in a recipe.
        DataConfig: pydantic model validating the recipe's ``data:`` section.
        ModelConfig: pydantic model validating the recipe's ``model:`` section.
        primary_metric: the metric key reported first (e.g. ``accuracy``).
    """

    name: ClassVar[str]
    DataConfig: ClassVar[type[BaseModel]]
    ModelConfig: ClassVar[type[BaseModel]]
    primary_metric: ClassVar[str] = "accuracy"

    def validate_data(self, raw: dict[str, Any]) -> BaseModel:
        """Validate a recipe's ``data`` section (pydantic ``ValidationError`` on failure)."""
        return self.DataConfig.model_validate(raw)

    @abstractmethod
    def build_data(self, data_cfg: BaseModel, seed: int, run_dir: Path | None) -> Any:
        """Return an object with ``train``, ``val`` and ``test`` attributes (e.g. :class:`DataSplits`).

        Anything needed to rebuild the same data later (a fitted tokenizer) is saved under ``run_dir`` on the first
        call and reused when it is already there, so :func:`innerworks.train.load_run` gets identical data back.
        """

    @abstractmethod
    def build_model(self, model_cfg: BaseModel, data: Any) -> nn.Module:
        """Build a freshly initialised model sized for ``data``."""

    @abstractmethod
    def sample_batch(self, dataset: Any, batch_size: int, generator: torch.Generator) -> Any:
        """Draw one random training batch using only ``generator`` (so a resumed run draws the same batches)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> torch.Tensor:
        """Scalar training loss of ``model`` on ``batch`` (no L2 term: the loop adds it)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, dataset: Any, device: torch.device) -> dict[str, float]:
        """Metrics on a whole split (model already in eval mode, gradients off). Includes ``primary_metric``."""


_REGISTRY: dict[str, type[Task]] = {}
ENTRY_POINT_GROUP = "innerworks.tasks"


def _plugins() -> dict[str, Any]:
    """Installed task plugins: entry point name -> entry point."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` available as ``task: <cls.name>`` in recipes.

    >>> get_task("classification").name
    'classification'
    """
    _REGISTRY[cls.name] = cls
    return cls


def get_task(name: str) -> Task:
    """An instance of the task registered as ``name``; :class:`ConfigError` for an unknown name.

    >>> get_task("nope")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: field 'task': unknown task 'nope'; expected one of classification, ...
    """
    if name not in _REGISTRY and name in (plugins := _plugins()):
        cls = plugins[name].load()
        _REGISTRY.setdefault(name, cls)
    if name not in _REGISTRY:
        raise ConfigError(f"field 'task': unknown task {name!r}; expected one of {', '.join(available_tasks())}")
    return _REGISTRY[name]()


def available_tasks() -> list[str]:
    """Names usable as ``task:`` in a recipe."""
    return sorted(set(_REGISTRY) | set(_plugins()))

