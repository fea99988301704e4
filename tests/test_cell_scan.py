"""Whole-sequence scans (hand-written backward passes) against the step-by-step reference ``cell(x, h)``."""

from __future__ import annotations

import pytest
import torch

from innerworks.models import _scan
from innerworks.models.cells import CELL_TYPES, RecurrentCell, make_cell
from innerworks.models.classifier import RNNClassifier


def _reference_scan(cell: RecurrentCell, xs: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """The base class's loop over ``cell(x, h)``: plain autograd through every step."""
    return RecurrentCell.scan(cell, xs, h0)


def _perturbed_cell(kind: str, dtype: torch.dtype, seed: int = 0) -> RecurrentCell:
    torch.manual_seed(seed)
    cell = make_cell(kind, input_size=3, hidden_size=5).to(dtype)
    with torch.no_grad():
        cell.h0.normal_()
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    if hasattr(cell, "gate_bias"):
        cell.gate_bias = 0.7  # exercise the gate bias term
    return cell


def _states_and_grads(cell: RecurrentCell, xs: torch.Tensor, h0: torch.Tensor | None, weight: torch.Tensor,
                      reference: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    states = _reference_scan(cell, xs, h0) if reference else cell.scan(xs, h0)
    inputs = [xs, *([h0] if h0 is not None else []), *cell.parameters()]
    grads = torch.autograd.grad((states * weight).sum() + states.sum(), inputs, allow_unused=True)
    return states.detach(), [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


@pytest.mark.parametrize("block", [None, 1, 40])  # one block (the default), one step per block, uneven blocks
@pytest.mark.parametrize("give_h0", [False, True])
@pytest.mark.parametrize("steps", [1, 9])
@pytest.mark.parametrize("kind", CELL_TYPES)
def test_scan_states_and_gradients_match_step_by_step_float64(kind: str, steps: int, give_h0: bool,
                                                              block: int | None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if block is not None:
        monkeypatch.setattr(_scan, "BLOCK_ELEMENTS", block)
    cell = _perturbed_cell(kind, torch.float64)
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(4, steps, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    h0 = torch.randn(4, cell.state_size, dtype=torch.float64, generator=gen, requires_grad=True) if give_h0 else None
    weight = torch.randn(4, steps, cell.state_size, dtype=torch.float64, generator=gen)
    fast, fast_grads = _states_and_grads(cell, xs, h0, weight, reference=False)
    ref, ref_grads = _states_and_grads(cell, xs, h0, weight, reference=True)
    assert fast.shape == (4, steps, cell.state_size)
    assert torch.allclose(fast, ref, atol=1e-12, rtol=0)
    names = ["xs", *(["h0 (given)"] if give_h0 else []), *(n for n, _ in cell.named_parameters())]
    for name, a, b in zip(names, fast_grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-10, rtol=0), f"{kind}: gradient of {name} differs"
    assert any(g.abs().sum() > 0 for g in fast_grads[1:]), "the parameters must receive a gradient"


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_scan_gradients_match_step_by_step_float32(kind: str) -> None:
    cell = _perturbed_cell(kind, torch.float32, seed=2)
    gen = torch.Generator().manual_seed(3)
    xs = torch.randn(8, 30, 3, generator=gen, requires_grad=True)
    weight = torch.randn(8, 30, cell.state_size, generator=gen)
    fast, fast_grads = _states_and_grads(cell, xs, None, weight, reference=False)
    ref, ref_grads = _states_and_grads(cell, xs, None, weight, reference=True)
    assert torch.allclose(fast, ref, atol=1e-5, rtol=0)
    for a, b in zip(fast_grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_scan_without_gradients_matches_scan_with_them(kind: str) -> None:
    cell = _perturbed_cell(kind, torch.float64, seed=4)
    xs = torch.randn(3, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = cell.scan(xs)
    tracked = cell.scan(xs)
    assert not plain.requires_grad and tracked.requires_grad
    assert torch.allclose(plain, tracked.detach(), atol=1e-14, rtol=0)


def test_scan_backward_is_once_differentiable() -> None:
    cell = _perturbed_cell("ugrnn", torch.float64)
    xs = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(cell.scan(xs).pow(2).sum(), xs, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward"):
        grad.sum().backward()


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_classifier_trains_as_with_the_step_by_step_scan(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def train(reference: bool) -> list[float]:
        torch.manual_seed(7)
        model = RNNClassifier(vocab_size=6, num_classes=3, cell=kind, hidden_size=6, embed_dim=4).double()
        if reference:
            monkeypatch.setattr(model.cell, "scan", lambda xs, h0=None: _reference_scan(model.cell, xs, h0))
        gen = torch.Generator().manual_seed(8)
        tokens = torch.randint(1, 6, (5, 12), generator=gen)
        lengths = torch.randint(1, 13, (5,), generator=gen)
        labels = torch.randint(0, 3, (5,), generator=gen)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        losses = []
        for _ in range(4):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model.last_logits(model(tokens), lengths), labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    fast, ref = train(reference=False), train(reference=True)
    assert fast[-1] < fast[0]  # it learns
    assert fast == pytest.approx(ref, abs=1e-10, rel=0)


@pytest.mark.parametrize("steps,step_numel,expected", [
    (5, 10, [(0, 5)]),
    (5, 1 << 16, [(4, 5), (0, 4)]),
    (5, 1 << 17, [(4, 5), (2, 4), (0, 2)]),
    (3, 1 << 20, [(2, 3), (1, 2), (0, 1)]),
])
def test_blocks_cover_every_step_last_first(steps: int, step_numel: int, expected: list[tuple[int, int]]) -> None:
    assert _scan._blocks(steps, step_numel) == expected
