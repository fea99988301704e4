"""Completeness of the default fixed-point search from FixedPointFinder-style starts (visited states plus noise 0.5),
the bounded-memory nearest-point queries and the greedy deduplication behind it, and certification when the
search factorises in float32."""

from __future__ import annotations

import pytest
import torch

from innerworks.data.flipflop import FlipFlopConfig, generate_flipflop
from innerworks.dynamics import find_fixed_points
from innerworks.dynamics._dedupe import greedy_unique, near_pairs, nearest
from innerworks.dynamics._solver import search_options
from innerworks.dynamics.toys import bistable_tanh


def _fpf_starts(rnn, n: int, noise: float, seed: int = 0) -> torch.Tensor:
    """FixedPointFinder's sample_states: visited states picked at random, plus Gaussian noise."""
    data = generate_flipflop(FlipFlopConfig(n_bits=3, n_time=64, pulse_prob=0.05, pulse_at_start=True), 64,
                             generator=seed)
    with torch.no_grad():
        visited, _ = rnn(data.inputs)
    visited = visited.reshape(-1, visited.shape[-1]).double()
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(visited.shape[0], generator=gen)[:n]
    return visited[pick] + noise * torch.randn(n, visited.shape[1], generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_default_call_finds_the_whole_flipflop_lattice(noise: float) -> None:
    rnn = bistable_tanh(3, extra_units=13)
    fps = find_fixed_points(rnn, _fpf_starts(rnn, 1024, noise))
    assert fps.unstable_histogram() == {0: 8, 1: 12, 2: 6, 3: 1}
    assert bool(fps.converged.all()) and float(fps.residuals.max()) < 1e-8
    assert sum(fps.meta["outcomes"].values()) == 1024  # seeded roots are not counted as starts


def test_seeding_can_be_turned_off_and_adds_no_duplicates() -> None:
    rnn = bistable_tanh(3, extra_units=5)
    starts = _fpf_starts(rnn, 256, 0.0)
    plain = find_fixed_points(rnn, starts, seed_rounds=0)
    seeded = find_fixed_points(rnn, starts)
    assert len(plain) <= len(seeded) == 27
    d = torch.cdist(seeded.points, seeded.points) + torch.eye(27, dtype=torch.float64) * 10
    assert float(d.min()) > 1e-3


def test_nearest_in_blocks_equals_the_full_distance_matrix() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 7, generator=gen), torch.randn(50, 7, generator=gen)
    full_d, full_i = torch.cdist(a, b).min(dim=1)
    for budget in (1, 49, 50, 10_000):
        d, i = nearest(a, b, budget=budget)
        assert torch.equal(i, full_i) and torch.allclose(d, full_d)
    d, i = nearest(a, b[:0])
    assert bool(torch.isinf(d).all()) and bool((i == -1).all())


def test_near_pairs_are_unique_and_closest_first() -> None:
    pts = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    pairs = near_pairs(pts, 2, budget=4)
    assert pairs.tolist() == [[0, 1], [1, 2], [0, 2], [2, 3], [1, 3]]
    assert near_pairs(pts[:1], 3).shape == (0, 2)


def _plain_greedy(points: torch.Tensor, key: torch.Tensor, tol: float) -> tuple[list[int], list[int]]:
    """The leader loop over every row, as a reference."""
    remaining = torch.argsort(key, stable=True).tolist()
    kept, counts = [], []
    while remaining:
        lead = remaining[0]
        close = [i for i in remaining if float((points[i] - points[lead]).norm()) <= tol]
        kept.append(lead)
        counts.append(len(close))
        remaining = [i for i in remaining if i not in close]
    return kept, counts


def test_greedy_unique_with_exact_copies_equals_the_plain_leader_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        base = torch.randn(12, 3, generator=gen, dtype=torch.float64) * 0.3
        pts = base[torch.randint(0, 12, (80,), generator=gen)]  # exact copies, as merged starts carry
        jitter = torch.rand(80, 1, generator=gen) < 0.3
        pts = pts + jitter * torch.randn(80, 3, generator=gen, dtype=torch.float64) * 0.05
        key = torch.randint(0, 4, (80,), generator=gen).double()  # ties, broken by row order
        keep, counts = greedy_unique(pts, key, 0.1)
        assert (keep.tolist(), counts.tolist()) == _plain_greedy(pts, key, 0.1), trial


def test_large_states_factorised_in_float32_are_still_certified_in_float64() -> None:
    assert search_options(64)["factor_dtype"] is torch.float32
    rnn = bistable_tanh(3, extra_units=61)  # 64 units: the search factorises in float32
    fps = find_fixed_points(rnn, _fpf_starts(rnn, 1024, 0.5))
    assert fps.unstable_histogram() == {0: 8, 1: 12, 2: 6, 3: 1}
    assert float(fps.residuals.max()) < 1e-8 and fps.points.dtype == torch.float64
