"""Manifold dimension measures and readout geometry on point clouds whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from innerworks.dynamics import (
    correlation_dimension,
    levina_bickel,
    local_participation_ratio,
    participation_ratio,
    pca_dimension,
    readout_angles,
    simplex_angle,
    span_fraction,
)
from innerworks.errors import InnerworksError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _embed(x: torch.Tensor, dim: int, seed: int = 0) -> torch.Tensor:
    """Place a point cloud isometrically in ``dim`` dimensions (random orthonormal frame)."""
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=_gen(seed), dtype=torch.float64))
    return x.double() @ q[: x.shape[1]]


def test_pca_dimension_thresholds_and_participation_ratio() -> None:
    g = _gen()
    # variances 10, 1, 0.01 (+ tiny noise) -> 90% at 1 PC... no: 10/11.01 = 0.908; 95% needs 2
    x = torch.randn(4000, 3, generator=g, dtype=torch.float64) * torch.tensor([10, 1, 0.1]).sqrt()
    r = pca_dimension(_embed(x, 20))
    assert r.dimensions == {0.9: 1, 0.95: 2}
    lam = torch.tensor([10.0, 1.0, 0.01])
    assert math.isclose(r.participation_ratio, float(lam.sum() ** 2 / (lam**2).sum()), rel_tol=0.05)
    assert "PR" in r.summary()
    # k equal directions give PR = k
    cube = torch.randn(5000, 4, generator=g, dtype=torch.float64)
    assert math.isclose(participation_ratio(_embed(cube, 10)), 4.0, rel_tol=0.05)
    with pytest.raises(InnerworksError, match="identical"):
        pca_dimension(torch.ones(5, 3))
    with pytest.raises(InnerworksError, match="thresholds"):
        pca_dimension(cube, thresholds=(1.5,))


def test_local_pr_sees_a_curve_as_one_dimensional() -> None:
    t = torch.linspace(0, 2 * math.pi, 2000, dtype=torch.float64)
    circle = _embed(torch.stack([t.cos(), t.sin()], 1), 8)
    assert math.isclose(participation_ratio(circle), 2.0, rel_tol=0.01)
    assert local_participation_ratio(circle, k=20, n_centres=20, generator=_gen(1)) < 1.01


def test_levina_bickel_and_correlation_dimension() -> None:
    g = _gen(2)
    plane = _embed(torch.rand(3000, 2, generator=g, dtype=torch.float64), 10)
    cube3 = _embed(torch.rand(3000, 3, generator=g, dtype=torch.float64), 10)
    line = _embed(torch.rand(1500, 1, generator=g, dtype=torch.float64), 6)
    assert abs(levina_bickel(plane, k=20) - 2.0) < 0.15
    assert abs(levina_bickel(cube3, k=20) - 3.0) < 0.25
    assert abs(levina_bickel(line, k=10) - 1.0) < 0.1
    assert levina_bickel(plane, k=20, average="mean") > levina_bickel(plane, k=20)  # the uncorrected mean reads high
    assert abs(correlation_dimension(line) - 1.0) < 0.1
    # the paper's 2.5-97.5 percentile range reads low on bounded sets; a narrower range is closer
    wide, narrow = correlation_dimension(plane), correlation_dimension(plane, low=1, high=20)
    assert 1.4 < wide < narrow < 2.1
    with pytest.raises(InnerworksError, match="more than 20 distinct"):
        levina_bickel(plane[:10], k=20)


def test_readout_geometry_of_a_regular_simplex() -> None:
    for n in (3, 4, 5):
        verts = torch.eye(n, dtype=torch.float64) - 1.0 / n  # centred simplex vertices, rank n-1
        w = _embed(verts, 12, seed=n) * 3.0
        geo = readout_angles(w)
        assert math.isclose(geo.simplex_angle, math.degrees(math.acos(-1 / (n - 1))))
        assert geo.deviation < 1e-6
        assert torch.allclose(geo.span_fraction, torch.ones(n, dtype=torch.float64), atol=1e-10)
    assert round(simplex_angle(4), 2) == 109.47 and round(simplex_angle(5), 2) == 104.48
    # orthogonal readouts: 90 degrees, no readout in the span of the others
    geo = readout_angles(torch.eye(3))
    assert torch.allclose(geo.angles[0, 1:], torch.tensor([90.0, 90.0], dtype=torch.float64))
    assert torch.equal(span_fraction(torch.eye(3)), torch.zeros(3, dtype=torch.float64))
    # half in the span: w3 = (e1 + e3)/sqrt(2) against e1, e2
    w = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 1.0]])
    assert math.isclose(float(span_fraction(w)[2]), 1 / math.sqrt(2), rel_tol=1e-9)
    assert "simplex" in geo.summary()


def test_geometry_bad_input() -> None:
    with pytest.raises(InnerworksError, match=r"\[N, D\]"):
        pca_dimension(torch.zeros(4))
    with pytest.raises(InnerworksError, match="NaN"):
        participation_ratio(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]))
    with pytest.raises(InnerworksError, match="at least 2"):
        readout_angles(torch.ones(1, 3))
    with pytest.raises(InnerworksError, match="'inverse' or 'mean'"):
        levina_bickel(torch.rand(50, 2), average="median")
