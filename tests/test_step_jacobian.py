"""Closed-form recurrent Jacobians of the known cells equal autodiff through the same map (float64, 1e-10)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from innerworks.dynamics.step import as_step, batch_jacobian
from innerworks.models.cells import CELL_TYPES, make_cell

I, H, B = 3, 6, 5


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    """Non-zero biases and gate biases, so every term of the Jacobian is exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.7)
    if hasattr(module, "gate_bias"):
        module.gate_bias = 0.4
    return module


def _check(module: nn.Module, seed: int) -> None:
    step = as_step(module)
    assert step.analytic
    gen = torch.Generator().manual_seed(100 + seed)
    h = torch.randn(B, step.state_size, generator=gen, dtype=torch.float64) * 1.5
    x = torch.randn(B, step.input_size, generator=gen, dtype=torch.float64)
    auto = batch_jacobian(lambda hh, xx: step(xx, hh), h, x)
    assert torch.allclose(step.jacobian(x, h), auto, atol=1e-10, rtol=0)
    # and the map itself is the module's own step
    ref = module.double()
    with torch.no_grad():
        assert torch.allclose(step(x, h), ref(x, h), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", CELL_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_cell_kind_has_an_exact_closed_form_jacobian(kind: str, seed: int) -> None:
    _check(_randomize(make_cell(kind, I, H), seed), seed)


@pytest.mark.parametrize("make", [lambda: nn.RNNCell(I, H), lambda: nn.RNNCell(I, H, nonlinearity="relu"),
                                  lambda: nn.GRUCell(I, H)])
def test_torch_cells_have_an_exact_closed_form_jacobian(make) -> None:
    _check(_randomize(make(), 3), 3)


def test_lstm_cell_jacobian_on_the_flat_state() -> None:
    cell = _randomize(nn.LSTMCell(I, H), 4)
    step = as_step(cell)
    gen = torch.Generator().manual_seed(5)
    h = torch.randn(B, 2 * H, generator=gen, dtype=torch.float64)
    x = torch.randn(B, I, generator=gen, dtype=torch.float64)
    auto = batch_jacobian(lambda hh, xx: step(xx, hh), h, x)
    assert step.analytic and torch.allclose(step.jacobian(x, h), auto, atol=1e-10, rtol=0)
