"""Cells: one batched step API; fused and step-by-step paths agree; vmap-safe steps."""

from __future__ import annotations

import pytest
import torch
from torch.func import jacrev, vmap

from innerworks.errors import InnerworksError
from innerworks.models.cells import CELL_TYPES, make_cell


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_scan_matches_step_by_step(kind: str) -> None:
    torch.manual_seed(0)
    cell = make_cell(kind, input_size=6, hidden_size=10)
    with torch.no_grad():
        cell.h0.normal_()
        for p in cell.parameters():
            p.add_(0.1 * torch.randn_like(p))
    xs = torch.randn(4, 13, 6)
    fused = cell.scan(xs)
    h, steps = cell.initial_state(4), []
    for t in range(xs.shape[1]):
        h = cell(xs[:, t], h)
        steps.append(h)
    assert fused.shape == (4, 13, cell.state_size)
    assert (fused - torch.stack(steps, 1)).abs().max().item() < 1e-5


def test_gru_and_vanilla_train_through_fused_kernels_lstm_keeps_nn_lstm_weights() -> None:
    assert isinstance(make_cell("gru", 3, 4).rnn, torch.nn.GRU)
    assert isinstance(make_cell("lstm", 3, 4).rnn, torch.nn.LSTM)
    assert isinstance(make_cell("vanilla", 3, 4).rnn, torch.nn.RNN)


def test_lstm_state_is_flat_h_c_and_matches_nn_lstm() -> None:
    torch.manual_seed(1)
    cell = make_cell("lstm", 3, 5)
    assert cell.state_size == 10
    xs = torch.randn(2, 7, 3)
    states = cell.scan(xs)
    ref, (hn, cn) = cell.rnn(xs)
    assert torch.allclose(states[..., :5], ref, atol=1e-6)
    assert torch.allclose(states[:, -1, 5:], cn[0], atol=1e-6)
    assert torch.equal(cell.hidden(states), states[..., :5])


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_step_is_vmap_safe(kind: str) -> None:
    cell = make_cell(kind, 3, 4).double()
    h = torch.randn(5, cell.state_size, dtype=torch.double)
    x = torch.zeros(3, dtype=torch.double)
    jac = vmap(jacrev(lambda hh: cell(x.unsqueeze(0), hh.unsqueeze(0)).squeeze(0)))(h)
    assert jac.shape == (5, cell.state_size, cell.state_size)
    # finite-difference check of one Jacobian column
    eps = 1e-6
    e = torch.zeros(cell.state_size, dtype=torch.double)
    e[0] = eps
    fd = (cell(x[None], (h[0] + e)[None]) - cell(x[None], (h[0] - e)[None]))[0] / (2 * eps)
    assert torch.allclose(jac[0][:, 0], fd, atol=1e-6)


def test_initial_state_is_trainable() -> None:
    cell = make_cell("ugrnn", 2, 3)
    out = cell.scan(torch.randn(1, 4, 2)).sum()
    out.backward()
    assert cell.h0.grad is not None and cell.h0.grad.abs().sum() > 0


def test_unknown_cell_and_bad_sizes() -> None:
    with pytest.raises(InnerworksError, match="unknown cell"):
        make_cell("elman", 2, 3)
    with pytest.raises(InnerworksError, match="positive"):
        make_cell("gru", 0, 3)
