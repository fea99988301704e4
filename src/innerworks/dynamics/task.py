"""The ``flipflop`` training task: an N-bit flip-flop learnt by one recurrent cell with a linear readout per step.

A recipe with ``task: flipflop`` trains :class:`FlipFlopModel` on :func:`innerworks.data.flipflop.generate_flipflop`
trials with the shared loop (:func:`innerworks.train.train`):

- ``data``: :class:`FlipFlopDataConfig` (the generator's settings plus the sizes of the fixed val/test sets).
  Training batches are drawn FRESH from the loop's generator every step (infinite data, exactly reproducible and
  resumable); ``train``/``val``/``test`` are fixed seeded sets used for the reported metrics.
- ``model``: :class:`FlipFlopModelConfig`, one cell (a :class:`~innerworks.models.cells.CellType`: ``vanilla`` =
  tanh, ``gru``, ``lstm``, ``ugrnn``, ...) and a linear readout applied at every step.
- loss: mean squared error over every step and channel (the standard flip-flop loss; FixedPointFinder's example).
- metrics: ``accuracy`` = fraction of (trial, step, channel) entries after the channel's first pulse where the
  output has the target's sign; ``mse`` on all steps.

Built-in recipes: ``flipflop/tanh16`` (3 bits, tanh, 16 units) and ``flipflop/gru16``.

>>> import torch
>>> task = FlipFlopTask()
>>> data = task.build_data(task.validate_data({"n_bits": 2, "n_time": 20, "n_val": 4, "n_test": 4}), 0, None)
>>> model = task.build_model(FlipFlopModelConfig(cell="vanilla", hidden_size=8), data)
>>> batch = task.sample_batch(data.train, 3, torch.Generator().manual_seed(0))
>>> model(batch.inputs).shape, task.loss(model, batch, torch.device("cpu")).dim()
(torch.Size([3, 20, 2]), 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from innerworks.data.flipflop import FlipFlopConfig, FlipFlopData, generate_flipflop
from innerworks.errors import InnerworksError
from innerworks.models.cells import RecurrentCell, make_cell
from innerworks.models.hooks import NamesFilter, run_rnn_with_cache
from innerworks.models.names import CellType
from innerworks.train.tasks import Task, register_task


class FlipFlopDataConfig(BaseModel):
    """Data section of a ``task: flipflop`` recipe.

    >>> FlipFlopDataConfig(n_bits=3).generator_config().pulse_at_start
    True
    """

    model_config = ConfigDict(extra="forbid")

    n_bits: int = Field(3, ge=1, description="channels (bits to remember)")
    n_time: int = Field(100, ge=1, description="steps per trial")
    pulse_prob: float = Field(0.05, gt=0, le=1, description="pulse probability per step and channel")
    pulse_at_start: bool = Field(True, description="pulse every channel at t = 0, so every target is ±1 (no "
                                 "'unset' state to remember; FixedPointFinder's convention)")
    n_train: int = Field(512, ge=1, description="fixed training trials used for the reported train metrics "
                         "(batches are drawn fresh every step)")
    n_val: int = Field(256, ge=1)
    n_test: int = Field(512, ge=1)

    def generator_config(self) -> FlipFlopConfig:
        """The :class:`~innerworks.data.flipflop.FlipFlopConfig` of the trials."""
        return FlipFlopConfig(n_bits=self.n_bits, n_time=self.n_time, pulse_prob=self.pulse_prob,
                              pulse_at_start=self.pulse_at_start)


class FlipFlopModelConfig(BaseModel):
    """Model section: one recurrent cell and a linear readout at every step.

    >>> FlipFlopModelConfig().cell
    'vanilla'
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    cell: CellType = Field(CellType.VANILLA, validate_default=True)
    hidden_size: int = Field(16, ge=1)


@dataclass
class FlipFlopSplits:
    """Fixed train/val/test trial sets (each a :class:`~innerworks.data.flipflop.FlipFlopData`)."""

    train: FlipFlopData
    val: FlipFlopData
    test: FlipFlopData
    config: FlipFlopDataConfig


class FlipFlopModel(nn.Module):
    """``inputs [B, T, N]`` → one recurrent cell → ``readout`` at every step → outputs ``[B, T, N]``.

    ``model.cell`` is the step the dynamics analyses use (``find_fixed_points(model, states)`` picks it up).

    >>> m = FlipFlopModel(n_bits=3, cell="gru", hidden_size=4)
    >>> m.states(torch.zeros(2, 5, 3)).shape, m(torch.zeros(2, 5, 3)).shape
    (torch.Size([2, 5, 4]), torch.Size([2, 5, 3]))
    """

    def __init__(self, n_bits: int, cell: str | CellType = "vanilla", hidden_size: int = 16) -> None:
        super().__init__()
        if n_bits < 1:
            raise InnerworksError(f"n_bits must be >= 1, got {n_bits}")
        self.n_bits = int(n_bits)
        self.cell: RecurrentCell = make_cell(cell, self.n_bits, hidden_size)
        self.readout = nn.Linear(self.cell.state_size, self.n_bits)

    def _checked(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs [B, T, n_bits]`` in the model's dtype."""
        if inputs.dim() != 3 or inputs.shape[-1] != self.n_bits:
            raise InnerworksError(f"flip-flop inputs must be [B, T, {self.n_bits}], got {tuple(inputs.shape)}")
        return inputs.to(self.readout.weight.dtype)

    def states(self, inputs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """All cell states ``[B, T, state_size]``."""
        return self.cell.scan(self._checked(inputs), h0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Outputs at every step, ``[B, T, n_bits]``."""
        return self.readout(self.states(inputs))

    def run_with_cache(self, batch: torch.Tensor | FlipFlopData, names_filter: NamesFilter = None,
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Outputs ``[B, T, n_bits]`` plus the cache of :data:`~innerworks.models.hooks.RNN_HOOK_NAMES` (the
        outputs under ``logits``), for ``inputs [B, T, n_bits]`` or a :class:`FlipFlopData`; no gradients.

        >>> m = FlipFlopModel(n_bits=2, hidden_size=3)
        >>> m.run_with_cache(torch.zeros(1, 4, 2), names_filter=["rnn.hook_states"])[1]["rnn.hook_states"].shape
        torch.Size([1, 4, 3])
        """
        inputs = batch.inputs if isinstance(batch, FlipFlopData) else batch
        return run_rnn_with_cache(self.cell, self.readout, self._checked(inputs), names_filter)


def sign_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of entries with a nonzero target (after the channel's first pulse) whose output has its sign.

    >>> sign_accuracy(torch.tensor([[[0.5], [-0.2], [0.3]]]), torch.tensor([[[1.0], [1.0], [0.0]]]))
    0.5
    """
    mask = targets != 0
    n = int(mask.sum())
    if n == 0:
        return float("nan")
    return float((torch.sign(outputs[mask]) == targets[mask]).float().mean())


@register_task
class FlipFlopTask(Task):
    """N-bit flip-flop: MSE on every step; metric ``accuracy`` = sign accuracy after the first pulse."""

    name = "flipflop"
    DataConfig = FlipFlopDataConfig
    ModelConfig = FlipFlopModelConfig
    primary_metric = "accuracy"

    def build_data(self, data_cfg: BaseModel, seed: int, run_dir: Path | None) -> FlipFlopSplits:
        cfg = FlipFlopDataConfig.model_validate(data_cfg.model_dump() if isinstance(data_cfg, BaseModel)
                                                else data_cfg)
        gen_cfg = cfg.generator_config()
        # Evaluation sets from their own generator (offset seed), so they never depend on the training batches.
        gen = torch.Generator().manual_seed(int(seed) + 1_000_003)
        return FlipFlopSplits(generate_flipflop(gen_cfg, cfg.n_train, gen), generate_flipflop(gen_cfg, cfg.n_val, gen),
                              generate_flipflop(gen_cfg, cfg.n_test, gen), cfg)

    def build_model(self, model_cfg: BaseModel, data: FlipFlopSplits) -> FlipFlopModel:
        cfg = FlipFlopModelConfig.model_validate(model_cfg.model_dump() if isinstance(model_cfg, BaseModel)
                                                 else model_cfg)
        return FlipFlopModel(data.config.n_bits, cell=cfg.cell, hidden_size=cfg.hidden_size)

    def sample_batch(self, dataset: FlipFlopData, batch_size: int, generator: torch.Generator) -> FlipFlopData:
        # fresh trials from the loop's generator: the same batches on every run and after a resume
        return generate_flipflop(dataset.config, batch_size, generator)

    def loss(self, model: nn.Module, batch: FlipFlopData, device: torch.device) -> torch.Tensor:
        out = model(batch.inputs.to(device))
        return ((out - batch.targets.to(device)) ** 2).mean()

    def evaluate(self, model: nn.Module, dataset: FlipFlopData, device: torch.device,
                 batch_size: int = 512) -> dict[str, float]:
        outs = [model(dataset.inputs[i:i + batch_size].to(device)).cpu() for i in range(0, len(dataset), batch_size)]
        out = torch.cat(outs)
        return {"accuracy": sign_accuracy(out, dataset.targets), "mse": float(((out - dataset.targets) ** 2).mean()),
                "n": float(len(dataset))}


def flipflop_states(model: FlipFlopModel, data: FlipFlopData, n_trials: int | None = None) -> torch.Tensor:
    """Visited states ``[B, T, S]`` of ``model`` on (the first ``n_trials`` of) ``data``, without gradients.

    >>> m = FlipFlopModel(2, hidden_size=3)
    >>> d = generate_flipflop(FlipFlopConfig(n_bits=2, n_time=6), 4, generator=0)
    >>> flipflop_states(m, d, 2).shape
    torch.Size([2, 6, 3])
    """
    x = data.inputs if n_trials is None else data.inputs[:n_trials]
    with torch.no_grad():
        return model.states(x)


def describe(model: Any) -> str:
    """``"vanilla-16"`` style label of a flip-flop model."""
    return f"{model.cell.kind}-{model.cell.hidden_size}"


__all__ = ["FlipFlopDataConfig", "FlipFlopModel", "FlipFlopModelConfig", "FlipFlopSplits", "FlipFlopTask",
           "flipflop_states", "sign_accuracy"]
