"""The per-point root solver: early stops near certified roots (known roots, merging), chord steps, stall rules."""

from __future__ import annotations

import torch

from innerworks.dynamics._solver import CONVERGED, STALLED, levenberg_marquardt


def _bistable(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.tanh(2.0 * h)  # roots 0 and ±0.9575 per unit


def _bistable_jac(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(2.0 * (1.0 - torch.tanh(2.0 * h) ** 2))


def _solve(known: torch.Tensor | None, known_tol: float):
    h0 = torch.tensor([[0.90], [0.99], [-0.90]], dtype=torch.float64)
    x = torch.zeros(3, 1, dtype=torch.float64)
    return levenberg_marquardt(_bistable, _bistable_jac, x, h0, tol=1e-10, max_iter=50, damping=1e-3,
                               known=known, known_tol=known_tol)


def test_without_known_roots_every_start_converges() -> None:
    res = _solve(None, 0.0)
    assert (res.status == CONVERGED).all()
    assert torch.allclose(res.points.abs().squeeze(), torch.full((3,), 0.95750402, dtype=torch.float64), atol=1e-6)


def test_starts_near_a_known_root_stop_and_the_others_still_converge() -> None:
    root = _solve(None, 0.0).points[0]
    known = torch.cat([root, torch.zeros(1, dtype=torch.float64)]).unsqueeze(0)  # rows are [h, x]
    res = _solve(known, 0.1)
    assert res.status.tolist() == [STALLED, STALLED, CONVERGED]
    assert (res.iterations[:2] <= 1).all()  # stopped at the first check, not after converging
    assert abs(float(res.points[2, 0]) + 0.95750402) < 1e-6


def _starts(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    h0 = torch.linspace(0.5, 1.5, n, dtype=torch.float64).unsqueeze(1)
    return torch.zeros(n, 1, dtype=torch.float64), h0


def test_points_reaching_a_certified_root_take_it_over_and_save_work() -> None:
    x, h0 = _starts(64)
    plain = levenberg_marquardt(_bistable, _bistable_jac, x, h0, tol=1e-10, max_iter=50, damping=1e-3)
    merged = levenberg_marquardt(_bistable, _bistable_jac, x, h0, tol=1e-10, max_iter=50, damping=1e-3,
                                 merge_tol=0.05)
    for res in (plain, merged):
        assert (res.status == CONVERGED).all() and float(res.residuals.max()) < 1e-10
        assert torch.allclose(res.points, torch.full_like(res.points, 0.95750402), atol=1e-6)
    # followers stop as soon as they are within merge_tol of a finished root: fewer iterations in all
    assert int(merged.iterations.sum()) < int(plain.iterations.sum())
    assert merged.jacobians <= plain.jacobians


def test_chord_steps_reuse_factors() -> None:
    x, h0 = _starts(16)
    res = levenberg_marquardt(_bistable, _bistable_jac, x, h0, tol=1e-12, max_iter=50, damping=1e-3)
    assert (res.status == CONVERGED).all()
    # every iteration of every point took a step, but not every step needed a new LU factorisation
    assert 0 < res.factorizations < int(res.iterations.sum())


def test_a_slow_point_without_a_root_stalls_early_instead_of_running_out() -> None:
    """G(h) = −0.1 (h² + 0.01) has no root; |G| is smallest (1e-3) at h = 0: a slow point."""
    def slow(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h - 0.1 * (h * h + 0.01)

    def slow_jac(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return (1.0 - 0.2 * h).unsqueeze(-1)

    x, h0 = _starts(8)
    res = levenberg_marquardt(slow, slow_jac, x, h0, tol=1e-10, max_iter=100, damping=1e-3)
    assert (res.status == STALLED).all()
    assert float(res.points.abs().max()) < 0.05 and float(res.residuals.max()) < 1.1e-3
    assert int(res.iterations.max()) < 40  # the stall rules fire long before max_iter
