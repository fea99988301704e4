"""Flip-flop task generator: pulses, held targets, determinism, config validation."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from innerworks.data.flipflop import FlipFlopConfig, flipflop_targets, generate_flipflop
from innerworks.errors import DataError


def _reference_targets(inputs: torch.Tensor) -> torch.Tensor:
    """A plain loop: hold the last nonzero pulse per channel, 0 before the first."""
    out = torch.zeros_like(inputs)
    b, t, n = inputs.shape
    for i in range(b):
        for k in range(n):
            held = 0.0
            for s in range(t):
                if inputs[i, s, k] != 0:
                    held = float(inputs[i, s, k])
                out[i, s, k] = held
    return out


def test_shapes_values_and_targets() -> None:
    cfg = FlipFlopConfig(n_bits=4, n_time=60, pulse_prob=0.1)
    data = generate_flipflop(cfg, 16, generator=torch.Generator().manual_seed(3))
    assert data.inputs.shape == data.targets.shape == (16, 60, 4) and len(data) == 16
    assert data.inputs.dtype == torch.float32
    assert set(data.inputs.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.equal(data.targets, _reference_targets(data.inputs))
    # before a channel's first pulse the target is 0; after it, never 0
    first = torch.where(data.inputs != 0, torch.arange(60).view(1, -1, 1), 10**6).min(dim=1).values
    t = torch.arange(60).view(1, -1, 1)
    assert bool((data.targets[t.expand_as(data.targets) < first.unsqueeze(1)] == 0).all())
    assert bool((data.targets[t.expand_as(data.targets) >= first.unsqueeze(1)] != 0).all())


def test_pulse_rate_and_signs_follow_the_config() -> None:
    data = generate_flipflop(FlipFlopConfig(n_bits=3, n_time=200, pulse_prob=0.05), 200, generator=0)
    pulses = data.inputs != 0
    rate = float(pulses.float().mean())
    assert abs(rate - 0.05) < 0.005  # 120k draws: std of the rate is ~6e-4
    assert abs(float(data.inputs[pulses].mean())) < 0.05  # signs balanced


def test_pulse_at_start_means_no_zero_targets() -> None:
    data = generate_flipflop(FlipFlopConfig(n_time=30, pulse_prob=0.01, pulse_at_start=True), 8, generator=1)
    assert bool((data.inputs[:, 0] != 0).all()) and bool((data.targets != 0).all())


def test_deterministic_given_the_generator() -> None:
    cfg = FlipFlopConfig(n_time=40)
    a = generate_flipflop(cfg, 4, generator=torch.Generator().manual_seed(5))
    b = generate_flipflop(cfg, 4, generator=5)
    c = generate_flipflop(cfg, 4, generator=6)
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)


def test_bad_config_and_arguments() -> None:
    with pytest.raises(ValidationError):
        FlipFlopConfig(pulse_prob=0.0)
    with pytest.raises(ValidationError):
        FlipFlopConfig(n_bits=0)
    with pytest.raises(ValidationError):
        FlipFlopConfig(bits=3)
    with pytest.raises(DataError, match="n_trials"):
        generate_flipflop(FlipFlopConfig(), 0)
    with pytest.raises(DataError, match=r"\[B, T, N\]"):
        flipflop_targets(torch.zeros(3, 4))
