"""N-bit flip-flop task (Sussillo & Barak 2013): remember the sign of the last pulse on each channel.

Inputs are ``{−1, 0, +1}`` per channel and step. At each step each channel independently gets a pulse with
probability ``pulse_prob`` (sign ±1 with equal odds); otherwise it is 0. The target of a channel is the sign of its
most recent pulse, held until the next one, and **0 before the channel's first pulse** (the network has nothing to
remember yet). ``pulse_at_start=True`` pulses every channel at t = 0 (FixedPointFinder's convention), so no target is
ever 0.

Sparse pulses (CtDB uses 0.01 per step; FixedPointFinder's example uses a dense 0.5) give long holding periods, so
the trained network's memories are clean attractors. Everything is drawn from one ``torch.Generator``.

>>> cfg = FlipFlopConfig(n_bits=3, n_time=50, pulse_prob=0.1)
>>> data = generate_flipflop(cfg, 4, generator=0)
>>> data.inputs.shape, data.targets.shape
(torch.Size([4, 50, 3]), torch.Size([4, 50, 3]))
>>> bool(torch.equal(data.targets, flipflop_targets(data.inputs)))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field

from innerworks.errors import DataError


class FlipFlopConfig(BaseModel):
    """Flip-flop task settings.

    >>> FlipFlopConfig().n_bits
    3
    """

    model_config = ConfigDict(extra="forbid")

    n_bits: int = Field(3, ge=1, description="channels (bits to remember)")
    n_time: int = Field(100, ge=1, description="steps per trial")
    pulse_prob: float = Field(0.05, gt=0, le=1, description="pulse probability per step and channel")
    pulse_at_start: bool = Field(False, description="pulse every channel at t = 0 (no zero targets)")


@dataclass
class FlipFlopData:
    """A batch of flip-flop trials.

    Attributes:
        inputs: ``[B, T, N]`` float32 in ``{−1, 0, +1}``.
        targets: ``[B, T, N]`` float32 in ``{−1, 0, +1}``: the last pulse so far, 0 before the first.
        config: the :class:`FlipFlopConfig` that made them.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    config: FlipFlopConfig

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def flipflop_targets(inputs: torch.Tensor) -> torch.Tensor:
    """The target of each step: the most recent nonzero input of each channel (0 before the first).

    >>> flipflop_targets(torch.tensor([[[0.], [1.], [0.], [-1.], [0.]]])).flatten().tolist()
    [0.0, 1.0, 1.0, -1.0, -1.0]
    """
    if inputs.dim() != 3:
        raise DataError(f"flip-flop inputs must be [B, T, N], got {tuple(inputs.shape)}")
    t = torch.arange(inputs.shape[1], device=inputs.device).view(1, -1, 1)
    # index of the last pulse at or before each step (-1 if none), via a running max over pulse times
    last = torch.where(inputs != 0, t, torch.full_like(t, -1)).cummax(dim=1).values
    held = torch.gather(inputs, 1, last.clamp_min(0))
    return torch.where(last >= 0, held, torch.zeros_like(held))


def generate_flipflop(config: FlipFlopConfig, n_trials: int,
                      generator: torch.Generator | int | None = None) -> FlipFlopData:
    """Draw ``n_trials`` trials; deterministic given the generator (or an int seed; default seed 0).

    >>> a = generate_flipflop(FlipFlopConfig(n_time=20), 2, generator=7).inputs
    >>> b = generate_flipflop(FlipFlopConfig(n_time=20), 2, generator=torch.Generator().manual_seed(7)).inputs
    >>> bool(torch.equal(a, b))
    True
    """
    if n_trials < 1:
        raise DataError(f"n_trials must be >= 1, got {n_trials}")
    if generator is None or isinstance(generator, int):
        generator = torch.Generator().manual_seed(0 if generator is None else int(generator))
    shape = (n_trials, config.n_time, config.n_bits)
    pulse = torch.rand(shape, generator=generator) < config.pulse_prob
    sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
    if config.pulse_at_start:
        pulse[:, 0] = True
    inputs = torch.where(pulse, sign, torch.zeros(shape))
    return FlipFlopData(inputs=inputs, targets=flipflop_targets(inputs), config=config)


__all__ = ["FlipFlopConfig", "FlipFlopData", "flipflop_targets", "generate_flipflop"]
