"""Slow points by Gauss–Newton (method="gauss_newton"): the same object as Adam's, every point below the
tolerance, on known attractors and a small trained GRU; the closed-form Jacobian products; errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from innerworks.dynamics import as_step
from innerworks.dynamics._slow_solver import _autograd_ops, _cell_ops, residual_ops
from innerworks.dynamics.geometry import participation_ratio
from innerworks.dynamics.slow_points import SlowMethod, aitken_q_tol, find_slow_points, mean_step_size
from innerworks.dynamics.toys import line_attractor
from innerworks.errors import InnerworksError
from innerworks.train import train


def _pairs(a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    """End points of the starts that both results kept, in the same order."""
    rows = sorted(set(a.start_index.tolist()) & set(b.start_index.tolist()))  # type: ignore[attr-defined]
    pos_a = {int(s): i for i, s in enumerate(a.start_index.tolist())}  # type: ignore[attr-defined]
    pos_b = {int(s): i for i, s in enumerate(b.start_index.tolist())}  # type: ignore[attr-defined]
    return (a.points[[pos_a[r] for r in rows]], b.points[[pos_b[r] for r in rows]])  # type: ignore[attr-defined]


def test_line_attractor_points_lie_on_the_line_and_keep_its_extent() -> None:
    step = line_attractor(size=4, decay=0.5)
    starts = torch.randn(300, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q_tol = 1e-8
    fast = find_slow_points(step, starts, q_tol=q_tol, unique_tol=0.0, method=SlowMethod.GAUSS_NEWTON)
    adam = find_slow_points(step, starts, q_tol=q_tol, unique_tol=0.0, stop="each")
    assert fast.meta["n_converged"] == adam.meta["n_converged"] == 300 and len(fast) == len(adam) == 300
    assert fast.meta["method"] == "gauss_newton" and fast.meta["iterations"] < 20
    assert bool((fast.speeds <= math.sqrt(2 * q_tol)).all())
    # on the line: the speed is 0.5·‖h⊥‖, so ‖h⊥‖ <= 2·speed
    assert float(fast.points[:, 1:].norm(dim=1).max()) <= 2 * math.sqrt(2 * q_tol) + 1e-12
    # the correction is across the line only: each point keeps its start's position along it
    pa, pf = _pairs(adam, fast)
    st = starts[fast.start_index]
    assert float((fast.points[:, 0] - st[:, 0]).abs().max()) < 1e-6
    assert float(pf[:, 0].std()) == pytest.approx(float(pa[:, 0].std()), rel=0.05)


def test_plane_attractor_through_autograd_products() -> None:
    """A user function (no closed form): a plane of fixed points in 5-D with coupled contracting modes."""
    w = torch.tensor([[0.3, 0.2, 0.0], [-0.1, 0.4, 0.1], [0.0, 0.2, 0.5]], dtype=torch.float64)

    def plane(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + 0.5 * torch.tanh(h[:, :2].sum(1, keepdim=True))  # the contraction varies along the plane
        fast = torch.tanh(gain * (h[:, 2:] @ w.T))
        return torch.cat([h[:, :2], fast], dim=1)

    starts = torch.randn(200, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q_tol = 1e-10
    fast = find_slow_points(plane, starts, inputs=torch.zeros(0), q_tol=q_tol, unique_tol=0.0, method="gauss_newton")
    adam = find_slow_points(plane, starts, inputs=torch.zeros(0), q_tol=q_tol, unique_tol=0.0, stop="each")
    assert len(fast) == 200 and len(adam) >= 190
    assert bool((fast.speeds <= math.sqrt(2 * q_tol)).all())
    assert float(fast.points[:, 2:].abs().max()) < 1e-4
    # the starts' own spread on the plane is kept: points move mostly across the plane (off it, q also depends on
    # the position along it, so a little along it too); Adam's per-coordinate steps distort the cloud more
    truth = participation_ratio(starts[:, :2])
    assert participation_ratio(fast.points) == pytest.approx(truth, rel=0.01)
    moved = (fast.points[:, :2] - starts[fast.start_index, :2]).norm(dim=1)
    assert float(moved.median()) < 0.25 * float(starts[:, :2].std(0).norm())
    assert participation_ratio(adam.points) == pytest.approx(truth, rel=0.1)


@pytest.mark.parametrize("cell", ["gru", "ugrnn", "rnn"])
def test_closed_form_products_match_the_jacobian(cell: str) -> None:
    torch.manual_seed(0)
    module = {"gru": torch.nn.GRU, "rnn": torch.nn.RNN}.get(cell)
    if module is not None:
        step = as_step(module(3, 6, batch_first=True), dtype=torch.float64)
    else:
        from innerworks.models.cells import make_cell
        step = as_step(make_cell("ugrnn", 3, 6), dtype=torch.float64)
    assert _cell_ops(step.module) is not None  # the closed form, not autograd
    ops = residual_ops(step)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    u, v = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    r, jv, jtu = ops(x, h)
    jac = step.jacobian(x, h) - torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(r, step(x, h) - h)
    f32 = {"rtol": 1e-5, "atol": 1e-5}  # the closed-form products run in float32
    torch.testing.assert_close(jv(v), (jac @ v.unsqueeze(-1)).squeeze(-1), **f32)
    torch.testing.assert_close(jtu(u), (jac.transpose(1, 2) @ u.unsqueeze(-1)).squeeze(-1), **f32)
    rows = torch.tensor([3, 1])
    torch.testing.assert_close(jv(v[rows], rows), jv(v)[rows])
    generic = _autograd_ops(step.fn)(x, h)  # float64 throughout
    torch.testing.assert_close(generic[1](v), (jac @ v.unsqueeze(-1)).squeeze(-1))
    torch.testing.assert_close(generic[2](u[rows], rows), (jac.transpose(1, 2) @ u.unsqueeze(-1)).squeeze(-1)[rows])


@pytest.fixture(scope="module")
def tiny_gru(tmp_path_factory: pytest.TempPathFactory, tiny3_recipe: object) -> tuple[object, torch.Tensor, float]:
    """A 3-class categorical GRU-24 trained for 300 steps; its visited states and mean token step."""
    res = train(tiny3_recipe, Path(tmp_path_factory.mktemp("runs")) / "tiny3", progress=False)
    model = res.model.eval()
    test = res.data.test
    with torch.no_grad():
        hs = model.states(test.tokens[:100]).double()
    lengths = test.lengths[:100]
    mask = torch.arange(hs.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return model, hs[mask], mean_step_size(hs, lengths, torch.zeros(24, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["aitken", "tight"])
def test_trained_gru_same_manifold_as_adam(tiny_gru: tuple[object, torch.Tensor, float], kind: str) -> None:
    model, states, step_size = tiny_gru
    gen = torch.Generator().manual_seed(1)
    starts = states[torch.randperm(states.shape[0], generator=gen)[:300]]
    starts = starts + 0.4 * torch.randn(starts.shape, generator=gen, dtype=torch.float64)
    q_tol = aitken_q_tol(step_size) if kind == "aitken" else 1e-6
    fast = find_slow_points(model, starts, q_tol=q_tol, unique_tol=0.0, method="gauss_newton")
    adam = find_slow_points(model, starts, q_tol=q_tol, unique_tol=0.0, stop="each")
    assert bool((fast.speeds <= math.sqrt(2 * q_tol)).all())
    # every start that per-point Adam makes slow, Gauss–Newton does too (within 5%)
    assert len(fast) >= 0.95 * len(adam) and len(adam) >= 0.9 * 300
    pa, pf = _pairs(adam, fast)
    radius = float((pa - pa.mean(0)).norm(dim=1).pow(2).mean().sqrt())
    # the same start ends at nearby points; at the tight tolerance both sit on the thin manifold
    limit = 0.5 if kind == "aitken" else 0.05
    assert float((pa - pf).norm(dim=1).median()) < limit * radius
    assert participation_ratio(pf) == pytest.approx(participation_ratio(pa), rel=0.15)
    # their own points (not a fixed-point collapse): still spread like Adam's
    assert float(pf.std(0).norm()) == pytest.approx(float(pa.std(0).norm()), rel=0.15)


@pytest.mark.parametrize("method", ["lm", "newton", 3])
def test_bad_method_is_refused(method: object) -> None:
    with pytest.raises(InnerworksError, match="method must be one of"):
        find_slow_points(line_attractor(2), torch.zeros(2, 2), q_tol=1e-6, method=method)  # type: ignore[arg-type]


def test_default_is_the_authors_adam_bit_for_bit() -> None:
    step = line_attractor(size=3, decay=0.5)
    starts = torch.randn(50, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a = find_slow_points(step, starts, q_tol=1e-6)
    b = find_slow_points(step, starts, q_tol=1e-6, method="adam")
    assert a.meta["method"] == "adam" and torch.equal(a.points, b.points) and torch.equal(a.speeds, b.speeds)
    assert a.meta["iterations"] == b.meta["iterations"] > 20


def test_gauss_newton_on_maps_without_a_gated_jacobian_uses_autograd() -> None:
    """The renn GRU map subclasses the UGRNN map but its Jacobian is not of the gated form: autograd products."""
    from innerworks.models.cells import make_cell

    torch.manual_seed(0)
    cell = make_cell("gru_renn", 3, 4)
    assert _cell_ops(as_step(cell).module) is None
    assert _cell_ops(as_step(make_cell("ugrnn", 3, 4)).module) is not None
    starts = torch.randn(20, 4, dtype=torch.float64)
    sp = find_slow_points(cell, starts, q_tol=1e-8, method="gauss_newton", unique_tol=0.0)
    assert sp.meta["n_converged"] == 20 and float(sp.speeds.max()) <= (2e-8) ** 0.5
