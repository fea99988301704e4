"""The per-point root solver: points heading for an already-certified root stop early (the rescue-pass dedupe)."""

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
