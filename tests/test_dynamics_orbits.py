"""Periodic orbits and the attractor audit: the period-2 flip-flop that a fixed-point search alone misses."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from innerworks.dynamics import as_step, audit_attractors, find_fixed_points, find_periodic_orbits
from innerworks.dynamics.orbits import IncompleteAttractorsWarning, PeriodicOrbits
from innerworks.dynamics.toys import bistable_tanh, period_two_tanh, stable_level
from innerworks.errors import InnerworksError


def _uniform(n: int, s: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * 1.5


@pytest.fixture(scope="module")
def cycle_net():
    """3 bits stored as period-2 cycles (h' = -tanh(2h)), plus 5 driven units; its fixed points and orbits."""
    step = period_two_tanh(3, extra_units=5)
    starts = _uniform(256, 8)
    fps = find_fixed_points(step, starts)
    orbits = find_periodic_orbits(step, starts, max_period=3)
    return step, starts, fps, orbits


def test_fixed_points_alone_miss_the_cycles_and_the_audit_says_so(cycle_net) -> None:
    step, starts, fps, _ = cycle_net
    assert len(fps) == 1 and fps.unstable_histogram() == {3: 1}  # only the origin, a saddle with λ = -2
    with pytest.warns(IncompleteAttractorsWarning, match="4 period-2 cycles .*find_periodic_orbits.*max_period=2"):
        audit = audit_attractors(step, starts, fps)
    assert not audit.complete
    assert [a.period for a in audit.missing] == [2, 2, 2, 2]
    assert sum(a.n_trajectories for a in audit.attractors) == 256 and audit.n_unsettled == 0
    assert "INCOMPLETE" in audit.summary()


def test_period_two_orbits_are_found_certified_and_classified(cycle_net) -> None:
    step, starts, _, orbits = cycle_net
    # 3^3 roots of F^2 - I: the origin (period 1, dropped) and 26 points in 13 two-cycles; no 3-cycles exist
    assert len(orbits) == 13 and orbits.periods.tolist() == [2] * 13
    assert orbits.meta["per_period"]["3"]["orbits"] == 0
    assert bool(orbits.converged.all()) and float(orbits.residuals.max()) < 1e-8
    assert int(orbits.stable.sum()) == 4
    assert sorted(orbits.n_unstable.tolist()) == [0] * 4 + [1] * 6 + [2] * 3
    a = stable_level(2.0)
    st = as_step(step)
    for i in torch.nonzero(orbits.stable).flatten().tolist():
        pts = orbits.orbit(i)
        assert pts.shape == (2, 8)
        assert torch.allclose(pts[:, :3].abs(), torch.full((2, 3), a, dtype=torch.float64), atol=1e-8)
        assert torch.allclose(pts[1, :3], -pts[0, :3], atol=1e-8)          # the bits flip every step
        assert torch.allclose(st(st.zero_inputs(1), pts[:1]), pts[1:], atol=1e-8)
        # Floquet multipliers of the memory block: (w (1 - a^2))^2 per bit
        expected = (2 * (1 - a * a)) ** 2
        assert int(((orbits.multipliers[i].abs() - expected).abs() < 1e-8).sum()) == 3


def test_the_audit_is_complete_once_orbits_are_searched(cycle_net) -> None:
    step, starts, fps, orbits = cycle_net
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit = audit_attractors(step, starts, fps, orbits)
    assert audit.complete and len(audit.attractors) == 4
    assert all(a.found and a.period == 2 and a.match_stable for a in audit.attractors)


def test_bistable_network_audit_is_complete_with_fixed_points_only() -> None:
    step = bistable_tanh(3, extra_units=2)
    starts = _uniform(256, 5, seed=1)
    fps = find_fixed_points(step, starts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit = audit_attractors(step, starts, fps)
    assert audit.complete and len(audit.attractors) == 8
    assert all(a.period == 1 for a in audit.attractors)


def test_audit_flags_trajectories_that_never_settle() -> None:
    theta = 2 * math.pi * (math.sqrt(5) - 1) / 2  # an irrational rotation: quasi-periodic, never returns
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
                       dtype=torch.float64)
    step = as_step(lambda x, h: h @ rot.T, state_size=2, input_size=0)
    with pytest.warns(IncompleteAttractorsWarning, match="did not settle"):
        audit = audit_attractors(step, _uniform(8, 2), n_relax=100, max_relax=300)
    assert audit.n_unsettled == 8 and not audit.complete and audit.n_relax == 300


def test_orbits_save_and_load(cycle_net, tmp_path) -> None:
    _, _, _, orbits = cycle_net
    orbits.save(tmp_path / "orbits")
    back = PeriodicOrbits.load(tmp_path / "orbits.safetensors")
    for name in ("points", "orbit_index", "periods", "residuals", "converged", "multipliers", "multiplicity"):
        assert torch.equal(getattr(back, name), getattr(orbits, name)), name
    assert back.summary() == orbits.summary()
    with pytest.raises(InnerworksError, match="file not found"):
        PeriodicOrbits.load(tmp_path / "missing")


def test_bad_orbit_and_audit_arguments() -> None:
    step = period_two_tanh(1)
    with pytest.raises(InnerworksError, match="min_period"):
        find_periodic_orbits(step, torch.zeros(2, 1), max_period=1)
    with pytest.raises(InnerworksError, match="state size"):
        audit_attractors(step, torch.zeros(2, 3))
    with pytest.raises(InnerworksError, match="n_relax"):
        audit_attractors(step, torch.zeros(2, 1), n_relax=0)
    with pytest.raises(InnerworksError, match="NaN"):
        audit_attractors(step, torch.tensor([[float("nan")]]))
