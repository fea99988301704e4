"""Slow points (Aitken's protocol, integration notes §3): tolerance rule, stopping rules, manifold extent, errors."""

from __future__ import annotations

import math

import pytest
import torch

from innerworks.dynamics import find_fixed_points
from innerworks.dynamics.slow_points import aitken_q_tol, find_slow_points, mean_step_size
from innerworks.dynamics.toys import bistable_tanh, line_attractor
from innerworks.errors import InnerworksError


def test_mean_step_size_counts_the_first_move_and_ignores_padding() -> None:
    h0 = torch.tensor([0.0, 0.0])
    hs = torch.tensor([[[3.0, 4.0], [3.0, 4.0], [100.0, 0.0]],     # moves 5, 0; third is padding
                       [[0.0, 1.0], [0.0, 3.0], [0.0, 6.0]]])      # moves 1, 2, 3
    assert mean_step_size(hs, torch.tensor([2, 3]), h0) == pytest.approx((5 + 0 + 1 + 2 + 3) / 5)
    assert aitken_q_tol(2.2) == pytest.approx(0.05 * 0.5 * 2.2**2)
    with pytest.raises(InnerworksError, match="all lengths are 0"):
        mean_step_size(hs, torch.tensor([0, 0]), h0)
    with pytest.raises(InnerworksError, match=r"\[B, T, S\]"):
        mean_step_size(hs[0], torch.tensor([2]), h0)


def test_slow_points_keep_the_line_that_newton_collapses() -> None:
    """On a line attractor with a slow drift along the line, Newton finds the single exact root, while the slow
    points keep the whole line: the dimension-1 object the notes measure."""
    step = line_attractor(4, decay=0.3)
    drift = 1e-4  # the line is slow, not fixed: h1' = h1 - drift * h1 has one root, at 0

    def slow_line(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        out = step(x, h)
        return torch.cat([out[:, :1] * (1 - drift), out[:, 1:]], 1)

    starts = torch.randn(300, 4, generator=torch.Generator().manual_seed(1)) * torch.tensor([3.0, 1, 1, 1])
    fps = find_fixed_points(slow_line, starts, inputs=torch.zeros(0), unique_tol=0.025)
    assert len(fps) == 1 and float(fps.points.abs().max()) < 1e-8
    q_tol = 1e-6
    each = find_slow_points(slow_line, starts, inputs=torch.zeros(0), q_tol=q_tol, stop="each")
    assert each.meta["n_converged"] == 300 and len(each) > 50
    # the authors' rule stops everyone once the mean q is small enough; the points still above it are dropped
    sp = find_slow_points(slow_line, starts, inputs=torch.zeros(0), q_tol=q_tol)
    assert 0.8 * 300 <= sp.meta["n_converged"] < 300 and len(sp) > 50
    assert sp.meta["n_converged"] + sp.meta["n_not_converged"] == 300
    assert bool((sp.speeds <= math.sqrt(2 * q_tol) + 1e-12).all())
    # on the line (off-line modes contracted) and spread along it. Adam's per-coordinate scaling also moves points
    # along the slow direction (about lr per step) until they stop: per-point stopping keeps most of the extent; the
    # mean rule runs longer, so its points creep further toward the root, but still span the line
    for res in (each, sp):
        assert float(res.points[:, 1:].norm(dim=1).max()) < math.sqrt(2 * q_tol) / 0.7 + 1e-9
    assert float(each.points[:, 0].std()) > 0.5 * float(starts[:, 0].std())
    assert float(sp.points[:, 0].max() - sp.points[:, 0].min()) > 5.0
    # unique: no two kept points closer than the merge distance
    d = torch.cdist(sp.points, sp.points) + torch.eye(len(sp)) * 1e9
    assert float(d.min()) > 0.025 and int(sp.multiplicity.sum()) == sp.meta["n_converged"]


def test_points_that_never_get_slow_are_dropped_and_counted() -> None:
    starts = torch.tensor([[0.5], [0.6], [-0.7]], dtype=torch.float64)
    sp = find_slow_points(bistable_tanh(n_bits=1), starts, q_tol=1e-30, max_iters=5)
    assert len(sp) == 0 and sp.meta["n_not_converged"] == 3 and "0 unique slow points" in sp.summary()
    ok = find_slow_points(bistable_tanh(n_bits=1), starts, q_tol=1e-12, stop="each")
    assert len(ok) == 2 and ok.meta["n_converged"] == 3
    with pytest.raises(InnerworksError, match="stop must be"):
        find_slow_points(bistable_tanh(n_bits=1), starts, q_tol=1e-12, stop="first")  # type: ignore[arg-type]


@pytest.mark.parametrize(("starts", "q_tol", "match"), [
    (torch.full((2, 1), float("nan")), 1e-6, "NaN or inf"),
    (torch.zeros(2, 3), 1e-6, "have 3 units per state, but the step's state size is 1"),
    (torch.zeros(0, 1), 1e-6, "empty .*need at least one start state"),
    (torch.zeros(2, 1), 0.0, "positive finite"),
    (torch.zeros(2, 1), float("nan"), "positive finite"),
])
def test_bad_input_is_refused(starts: torch.Tensor, q_tol: float, match: str) -> None:
    with pytest.raises(InnerworksError, match=match):
        find_slow_points(bistable_tanh(n_bits=1), starts, q_tol=q_tol)
