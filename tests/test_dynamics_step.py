"""Step adapters: every wrapped recurrent thing must compute exactly what the original computes, in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from innerworks.dynamics.step import Step, as_step, batch_jacobian
from innerworks.errors import InnerworksError
from innerworks.models.cells import make_cell
from innerworks.models.classifier import RNNClassifier

I, H, B = 3, 5, 4


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _torch_step(module: nn.Module, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One step of a PyTorch recurrent module through its own (fused) forward, state flattened like as_step's."""
    seq = x.unsqueeze(1) if getattr(module, "batch_first", False) else x.unsqueeze(0)  # one time step
    if isinstance(module, nn.LSTM):
        hh, cc = h[:, :H], h[:, H:]
        _, (h1, c1) = module(seq, (hh.unsqueeze(0).contiguous(), cc.unsqueeze(0).contiguous()))
        return torch.cat([h1[0], c1[0]], dim=-1)
    if isinstance(module, nn.LSTMCell):
        h1, c1 = module(x, (h[:, :H], h[:, H:]))
        return torch.cat([h1, c1], dim=-1)
    if isinstance(module, nn.RNNBase):
        return module(seq, h.unsqueeze(0).contiguous())[1][0]
    return module(x, h)


TORCH_MODULES = [
    lambda: nn.RNN(I, H, nonlinearity="tanh"),
    lambda: nn.RNN(I, H, nonlinearity="relu", batch_first=True),
    lambda: nn.RNN(I, H, bias=False),
    lambda: nn.GRU(I, H),
    lambda: nn.LSTM(I, H),
    lambda: nn.RNNCell(I, H),
    lambda: nn.RNNCell(I, H, nonlinearity="relu"),
    lambda: nn.GRUCell(I, H),
    lambda: nn.LSTMCell(I, H, bias=False),
]


@pytest.mark.parametrize("make", TORCH_MODULES)
def test_torch_module_adapters_match_the_module(make) -> None:
    torch.manual_seed(0)
    module = make().double()
    step = as_step(module)
    s = step.state_size
    h = torch.randn(B, s, dtype=torch.float64, generator=_gen(1))
    x = torch.randn(B, I, dtype=torch.float64, generator=_gen(2))
    with torch.no_grad():
        expected = _torch_step(module, x, h)
    assert torch.allclose(step(x, h), expected, atol=1e-12, rtol=0)
    # closed-form Jacobian agrees with autodiff through the same map
    auto = batch_jacobian(lambda hh, xx: step(xx, hh), h, x)
    assert step.analytic
    assert torch.allclose(step.jacobian(x, h), auto, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["vanilla", "gru", "lstm", "ugrnn"])
def test_innerworks_cells_match_forward_scan_and_autodiff(kind: str) -> None:
    torch.manual_seed(0)
    cell = make_cell(kind, I, H).double()
    step = as_step(cell)
    assert step.state_size == cell.state_size and step.input_size == I and step.analytic
    h = torch.randn(B, cell.state_size, dtype=torch.float64, generator=_gen(1))
    x = torch.randn(B, I, dtype=torch.float64, generator=_gen(2))
    with torch.no_grad():
        assert torch.allclose(step(x, h), cell(x, h), atol=1e-12, rtol=0)
        xs = torch.randn(B, 6, I, dtype=torch.float64, generator=_gen(3))
        scanned = cell.scan(xs, h)
    hh = h
    for t in range(6):  # stepping the adapter reproduces the fused scan
        hh = step(xs[:, t], hh)
    assert torch.allclose(hh, scanned[:, -1], atol=1e-10, rtol=0)
    auto = batch_jacobian(lambda v, u: cell(u, v), h, x)
    assert torch.allclose(step.jacobian(x, h), auto, atol=1e-12, rtol=0)
    assert torch.allclose(step.input_jacobian(x, h), batch_jacobian(lambda u, v: cell(u, v), x, h), atol=1e-12)


def test_as_step_copies_to_float64_and_leaves_the_model_alone() -> None:
    model = RNNClassifier(vocab_size=6, num_classes=3, cell="gru", hidden_size=4, embed_dim=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = as_step(model)  # a model with a .cell
    assert step.name == "gru" and step.dtype == torch.float64
    assert step.module.w_hh.dtype == torch.float64
    assert all(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        step.module.w_hh.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    h32 = torch.randn(2, 4)
    x32 = torch.randn(2, 3)
    with torch.no_grad():
        ref = model.cell(x32, h32).double()
    assert torch.allclose(as_step(model)(x32.double(), h32.double()), ref, atol=1e-6)


def test_user_module_and_function_steps() -> None:
    class Leaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(2, 2)
            self.state_size, self.input_size = 2, 1

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return 0.5 * h + torch.tanh(self.w(h)) + x

    step = as_step(Leaky())
    assert step.name == "module:Leaky" and step.state_size == 2 and not step.analytic
    h = torch.randn(3, 2, dtype=torch.float64)
    x = torch.zeros(3, 1, dtype=torch.float64)
    w = step.module.w.weight
    expected = 0.5 * torch.eye(2, dtype=torch.float64) + (1 - torch.tanh(step.module.w(h)) ** 2).unsqueeze(-1) * w
    assert torch.allclose(step.jacobian(x, h), expected, atol=1e-12)

    fstep = as_step(lambda x, h: torch.tanh(2 * h), state_size=2, input_size=0)
    assert fstep.zero_inputs(3).shape == (3, 0)
    assert torch.allclose(fstep.jacobian(fstep.zero_inputs(1), torch.zeros(1, 2, dtype=torch.float64)),
                          2 * torch.eye(2, dtype=torch.float64).unsqueeze(0))


def test_non_vmap_safe_steps_fall_back_to_a_correct_loop() -> None:
    def step_fn(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if bool((h.abs() > 100).any()):  # data-dependent control flow: vmap cannot batch this
            return h
        return torch.tanh(h @ torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=h.dtype))

    step = as_step(step_fn, state_size=2, input_size=0)
    h = torch.tensor([[0.1, -0.2], [0.3, 0.4]], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="not vmap-safe"):
        jac = step.jacobian(step.zero_inputs(2), h)
    w = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
    expected = (1 - torch.tanh(h @ w) ** 2).unsqueeze(-1) * w.T
    assert torch.allclose(jac, expected, atol=1e-12)


@pytest.mark.parametrize("bad, match", [
    (lambda: nn.GRU(2, 3, num_layers=2), "one-layer"),
    (lambda: nn.LSTM(2, 3, bidirectional=True), "one-direction"),
    (lambda: nn.LSTM(2, 4, proj_size=2), "proj_size"),
    (lambda: 42, "cannot build a recurrent step"),
])
def test_unsupported_objects_raise_clear_errors(bad, match: str) -> None:
    with pytest.raises(InnerworksError, match=match):
        as_step(bad())


def test_step_cast_and_unknown_input_size() -> None:
    step = Step(lambda x, h: h, state_size=2)
    with pytest.raises(InnerworksError, match="input size is unknown"):
        step.zero_inputs(1)
    s32 = as_step(nn.GRU(2, 3), dtype=torch.float32)
    assert s32.dtype == torch.float32 and as_step(s32).dtype == torch.float64
