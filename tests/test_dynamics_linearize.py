"""Linearisation: Jacobians, sorted eigenmodes, time constants, word projections and readout alignment."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from innerworks.dynamics import (
    eigsorted,
    input_jacobian,
    input_projections,
    linearize,
    mode_projections,
    readout_alignment,
    recurrent_jacobian,
    time_constants,
)
from innerworks.errors import InnerworksError
from innerworks.models.classifier import RNNClassifier


def test_vanilla_jacobians_match_the_closed_form() -> None:
    torch.manual_seed(0)
    rnn = nn.RNN(3, 4).double()
    h = torch.randn(5, 4, dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    pre = x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
    d = (1 - torch.tanh(pre) ** 2).unsqueeze(-1)
    assert torch.allclose(recurrent_jacobian(rnn, h, x), d * rnn.weight_hh_l0, atol=1e-12)
    assert torch.allclose(input_jacobian(rnn, h, x), d * rnn.weight_ih_l0, atol=1e-12)
    # a finite-difference check of the input Jacobian (independent of autodiff)
    eps = 1e-6
    e0 = torch.zeros(3, dtype=torch.float64)
    e0[0] = eps
    with torch.no_grad():
        fd = (rnn((x + e0).unsqueeze(0), h.unsqueeze(0).contiguous())[1][0]
              - rnn((x - e0).unsqueeze(0), h.unsqueeze(0).contiguous())[1][0]) / (2 * eps)
    assert torch.allclose(input_jacobian(rnn, h, x)[:, :, 0], fd, atol=1e-8)


def test_eigsorted_orders_by_magnitude_and_gives_biorthogonal_left_vectors() -> None:
    torch.manual_seed(1)
    j = torch.randn(6, 5, 5, dtype=torch.float64)
    e = eigsorted(j)
    mags = e.eigenvalues.abs()
    assert bool((mags[:, :-1] >= mags[:, 1:]).all())
    eye = torch.eye(5, dtype=torch.complex128).expand(6, 5, 5)
    assert torch.allclose(e.left.transpose(-2, -1) @ e.right, eye, atol=1e-10)
    # left eigenvectors satisfy l^T J = λ l^T; right ones J r = λ r
    jc = j.to(torch.complex128)
    assert torch.allclose(e.left.transpose(-2, -1) @ jc, e.eigenvalues.unsqueeze(-1) * e.left.transpose(-2, -1),
                          atol=1e-10)
    assert torch.allclose(jc @ e.right, e.right * e.eigenvalues.unsqueeze(-2), atol=1e-10)
    # a defective (Jordan) block does not crash: the pseudo-inverse stands in
    jordan = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
    assert torch.isfinite(eigsorted(jordan).left.abs()).all()
    with pytest.raises(InnerworksError, match="square"):
        eigsorted(torch.zeros(2, 3, 4))


def test_time_constants() -> None:
    lam = torch.tensor([1.0, math.exp(-1 / 20), 0.5, -0.5, 2.0, 0.0])
    tau = time_constants(lam)
    assert math.isinf(float(tau[0])) and math.isclose(float(tau[1]), 20.0, rel_tol=1e-5)
    assert math.isclose(float(tau[2]), float(tau[3])) and float(tau[4]) < 0 and float(tau[5]) == 0.0


def test_linearize_lstm_and_word_projections_of_a_classifier() -> None:
    torch.manual_seed(0)
    model = RNNClassifier(vocab_size=7, num_classes=3, cell="lstm", hidden_size=4, embed_dim=5)
    states = torch.randn(3, 8) * 0.3
    lin = linearize(model, states)
    assert lin.rec_jacobian.shape == (3, 8, 8) and lin.inp_jacobian.shape == (3, 8, 5)
    assert lin.left.shape == (3, 8, 8) and lin.time_constants.shape == (3, 8)
    words = model.word_vectors().detach()
    proj = input_projections(model, states, words)
    assert proj.shape == (3, 7, 8)
    assert torch.allclose(proj, torch.einsum("ksi,vi->kvs", lin.inp_jacobian, words.double()), atol=1e-12)
    assert torch.allclose(proj[:, 0], torch.zeros(3, 8, dtype=torch.float64))  # padding has a zero vector
    # the same through small chunks
    assert torch.allclose(input_projections(model, states, words, chunk_elements=10), proj, atol=1e-12)
    with pytest.raises(InnerworksError, match="word_vectors"):
        input_projections(model, states, torch.zeros(7, 4))


def test_mode_projections_and_readout_alignment_on_a_line_attractor() -> None:
    """A linear integrator h' = A h + b x with one slow mode along u: the readout along the left vector aligns."""
    u = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(2)
    v = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64) / math.sqrt(2)
    w = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    a = torch.outer(u, u) * 1.0 + torch.outer(v, v) * 0.3 + torch.outer(w, w) * 0.1
    b = torch.tensor([[2.0], [0.0], [0.0]], dtype=torch.float64)
    step = lambda x, h: h @ a.T + x @ b.T  # noqa: E731
    from innerworks.dynamics import as_step

    st = as_step(step, state_size=3, input_size=1)
    lin = linearize(st, torch.zeros(1, 3))
    assert torch.allclose(lin.eigenvalues.real[0], torch.tensor([1.0, 0.3, 0.1], dtype=torch.float64), atol=1e-12)
    readout = torch.stack([u, w])
    align = readout_alignment(lin.left, readout)
    assert align.shape == (1, 3, 2)
    assert math.isclose(float(align[0, 0, 0]), 1.0, abs_tol=1e-12) and float(align[0, 0, 1]) < 1e-12
    # the input pushes the slow mode by l1^T b = sqrt(2) (its "valence")
    proj = input_projections(st, torch.zeros(1, 3), torch.ones(1, 1))
    val = mode_projections(lin.left, proj, n_modes=1)
    assert val.shape == (1, 1, 1)
    assert math.isclose(abs(float(val.real[0, 0, 0])), math.sqrt(2), rel_tol=1e-12)
    with pytest.raises(InnerworksError, match="readout"):
        readout_alignment(lin.left, torch.zeros(2, 4))


def test_linearize_bad_input() -> None:
    with pytest.raises(InnerworksError, match="states must be"):
        linearize(nn.GRU(2, 3), torch.zeros(2, 4))
    with pytest.raises(InnerworksError, match="NaN"):
        linearize(nn.GRU(2, 3), torch.full((1, 3), float("nan")))
    with pytest.raises(InnerworksError, match="inputs must be"):
        linearize(nn.GRU(2, 3), torch.zeros(2, 3), inputs=torch.zeros(3, 2))
