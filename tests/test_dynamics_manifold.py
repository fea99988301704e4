"""The manifold's statistics on constructed geometry (PR, readout dimension, accuracy by dimension, slow modes, the
random-alignment null, valence pieces) and the marginal classification of a flat patch of fixed points."""

from __future__ import annotations

import warnings

import pytest
import torch

from innerworks.dynamics import find_fixed_points
from innerworks.dynamics.fixed_points import FixedPointWarning, stability_counts
from innerworks.dynamics.manifold import (
    accuracy_by_dimension,
    auc,
    bow_logistic_coefficients,
    find_manifold_points,
    manifold_statistics,
    participation_ratio,
    pca_basis,
    random_alignment_null,
    readout_dimension,
    readout_r2_curve,
    slow_mode_counts,
)
from innerworks.dynamics.toys import bistable_tanh, line_attractor


def _plane(n: int = 400, seed: int = 0) -> torch.Tensor:
    """Points on a 2-D plane in 5-D: std 3 along e1, std 1 along e2."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return torch.cat([3 * z[:, :1], z[:, 1:], torch.zeros(n, 3, dtype=torch.float64)], 1)


def test_pr_and_readout_dimension_on_a_known_plane() -> None:
    pts = _plane()
    mean, comps, var = pca_basis(pts)
    # PR of variances 9 and 1: 100 / 82
    assert participation_ratio(var) == pytest.approx(100 / 82, rel=0.08)
    states = torch.randn(300, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    e = torch.eye(5, dtype=torch.float64)
    # a readout that sees only the wide direction needs 1 PC; one that sees only the narrow direction needs 2
    wide = torch.stack([e[0], -e[0]])
    narrow = torch.stack([e[1], -e[1]])
    c_wide = readout_r2_curve(states, mean, comps, wide, None, 4)
    c_narrow = readout_r2_curve(states, mean, comps, narrow, torch.tensor([0.5, 0.0], dtype=torch.float64), 4)
    assert readout_dimension(c_wide) == 1 and c_wide[0] > 0.99
    assert readout_dimension(c_narrow) == 2 and c_narrow[0] < 0.05 and c_narrow[1] > 0.99
    # a readout along a direction the manifold does not span is never recovered
    assert readout_dimension(readout_r2_curve(states, mean, comps, torch.stack([e[3], -e[3]]), None, 2)) is None
    # accuracy restricted to the top n PCs: labels decided by the narrow direction need both PCs
    labels = (states[:, 1] < 0).long()
    acc = accuracy_by_dimension(states, labels, mean, comps, narrow, None, 3)
    assert acc[1] == 1.0 and acc[0] < 0.8
    stats = manifold_statistics(pts, states, labels, narrow, None, 3)
    assert stats["readout_dimension"] == 2 and stats["dimension_95"] == 2 and stats["n_points"] == 400
    assert len(stats["accuracy_by_dimension"]) == 3 and 1.6 < stats["levina_bickel"] < 2.4
    assert manifold_statistics(pts[:1], states, labels, narrow, None)["participation_ratio"] is None


def test_slow_modes_null_and_valence_pieces() -> None:
    ev = torch.tensor([[0.999, 0.995, 0.5], [0.99, 0.1, 0.1], [1.01, 0.999, 0.2]], dtype=torch.complex128)
    # τ = -1/log|λ|: 999.5, 199.5, 1.4 | 99.5 | growing (not counted), 999.5
    assert slow_mode_counts(ev, 100.0).tolist() == [2, 0, 1]
    ref = torch.zeros(16, dtype=torch.float64)
    ref[0] = 1
    p99 = random_alignment_null(16, 50, ref, n_draws=300)
    assert 0.12 < p99 < 0.35         # median |cos| of random unit vectors in 16-D is ~0.17
    assert auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    # a bag of words whose word 1 is positive and word 2 negative
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=g)
    noise = torch.randint(3, 6, (200, 4), generator=g)
    tokens = torch.cat([torch.where(labels.bool(), 1, 2).unsqueeze(1), noise], 1)
    coef = bow_logistic_coefficients(tokens, torch.full((200,), 5), labels, 6)
    assert coef[1] > 1 and coef[2] < -1 and coef[0] == 0


def test_manifold_points_fill_a_line_attractor() -> None:
    step = line_attractor(size=3, decay=0.5)
    states = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sp, rec = find_manifold_points(step, states, n_starts=150, noise=0.4, speed_tol=5e-6, outlier_scale=10.0)
    assert rec["n_kept"] == len(sp) >= 100 and rec["noise"] == 0.4
    assert float((2 * sp.q_tol) ** 0.5) >= float(sp.speeds.max())
    _, _, var = pca_basis(sp.points)
    assert participation_ratio(var) < 1.05      # one line


def test_gauss_newton_manifold_is_the_same_line_with_every_start_kept() -> None:
    from innerworks.dynamics.analyze import AnalysisSettings

    step = line_attractor(size=3, decay=0.5)
    states = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kw = dict(n_starts=150, noise=0.4, speed_tol=5e-6, outlier_scale=10.0)
    adam, _ = find_manifold_points(step, states, **kw)
    gn, rec = find_manifold_points(step, states, method="gauss_newton", **kw)
    assert rec["method"] == "gauss_newton" and rec["n_kept"] == len(gn) == 150    # every start converges
    assert float(gn.speeds.max()) <= float((2 * gn.q_tol) ** 0.5)
    assert float(gn.points[:, 1:].norm(dim=1).max()) < 1e-2                         # on the line (speed 0.5·‖h⊥‖)
    spread = gn.points[:, 0].std() / adam.points[:, 0].std()
    assert 0.9 < float(spread) < 1.1                                                 # spread along it like Adam's
    assert AnalysisSettings(slow_method="gauss_newton").slow_method.value == "gauss_newton"
    with pytest.raises(ValueError):
        AnalysisSettings(slow_method="newton")


def test_flat_patch_is_marginal_and_flagged_as_a_continuum() -> None:
    """A line of fixed points (|λ| = 1 along it): every point is marginal, not an isolated stable point, and the count
    of distinct points grows with the number of starts."""
    step = line_attractor(size=2, decay=0.5)
    starts = torch.rand(400, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4 - 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fps = find_fixed_points(step, starts)
    assert len(fps) > 20 and set(fps.classes()) == {"marginal"}
    assert fps.meta["continuum"] and any(issubclass(w.category, FixedPointWarning) for w in caught)
    text = fps.summary()
    assert "marginal: " in text and "WARNING" in text and "continuum" in text
    counts = stability_counts(fps)
    assert counts["marginal"] == len(fps) and counts["marginal_tol"] == 1e-3
    # isolated points (a bistable unit): stable and saddle, no continuum, however many starts
    iso = find_fixed_points(bistable_tanh(n_bits=1), torch.linspace(-2, 2, 400).unsqueeze(1))
    assert sorted(iso.classes()) == ["stable", "stable", "unstable_1"] and not iso.meta["continuum"]
