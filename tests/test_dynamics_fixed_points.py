"""Fixed points: known answers on hand-built networks, per-point stopping, slow points, persistence, bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from innerworks.data.flipflop import FlipFlopConfig, generate_flipflop
from innerworks.dynamics import _solver as S
from innerworks.dynamics import as_step, audit_attractors, find_fixed_points
from innerworks.dynamics.fixed_points import FixedPoints, FixedPointWarning
from innerworks.dynamics.toys import bistable_tanh, expected_unstable_counts, stable_level
from innerworks.errors import InnerworksError
from innerworks.models.cells import make_cell


def _uniform(n: int, s: int, seed: int = 0, scale: float = 1.5) -> torch.Tensor:
    return (torch.rand(n, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * scale


@pytest.mark.parametrize("extra_units", [0, 13])
def test_three_bit_flipflop_lattice_is_recovered_exactly(extra_units: int) -> None:
    """h' = tanh(2h) per memory unit: 27 points, 8 stable and 12/6/1 with 1/2/3 unstable modes, all certified."""
    step = bistable_tanh(3, extra_units=extra_units)
    fps = find_fixed_points(step, _uniform(512, 3 + extra_units))
    assert len(fps) == 27
    assert fps.unstable_histogram() == expected_unstable_counts(3) == {0: 8, 1: 12, 2: 6, 3: 1}
    assert bool(fps.converged.all()) and float(fps.residuals.max()) < 1e-8
    # the memory coordinates are exactly {-a, 0, +a}^3, and the stable points are the 8 corners
    a = stable_level(2.0)
    bits = fps.points[:, :3]
    levels = torch.tensor([-a, 0.0, a], dtype=torch.float64)
    assert float((bits.unsqueeze(-1) - levels).abs().min(dim=-1).values.max()) < 1e-8
    corners = (bits.abs() > a / 2).all(dim=1)
    assert torch.equal(corners, fps.stable)
    assert len({tuple(torch.sign(b).tolist()) for b in bits[fps.stable]}) == 8
    # the memory block contributes w(1 - a^2) per stable bit and w per unstable one; time constant -1/log|λ|
    lam_stable = 2.0 * (1 - a * a)
    at_stable = (fps.eigenvalues.abs() - lam_stable).abs() < 1e-8
    at_unstable = (fps.eigenvalues.abs() - 2.0).abs() < 1e-8
    assert torch.equal(at_stable.sum(1) + at_unstable.sum(1), torch.full((27,), 3))
    assert torch.equal(at_unstable.sum(1), fps.n_unstable)
    tau = fps.time_constants[at_stable]
    assert torch.allclose(tau, torch.full_like(tau, -1 / math.log(lam_stable)))
    assert int(fps.multiplicity.sum()) == fps.meta["outcomes"]["converged"]
    assert "27 fixed points" in fps.summary() and "1 mode: 12" in fps.summary()


def test_every_point_stops_on_its_own() -> None:
    """A start already at a root takes 0 iterations; work is spent only on unconverged points."""
    step = bistable_tanh(2, extra_units=2)
    st = as_step(step)
    starts = _uniform(200, 4).double()
    a = stable_level()
    # start 0 sits on the stable point (a, -a, *): relax the two driven units onto it
    starts[0] = st.iterate(st.zero_inputs(1), torch.tensor([[a, -a, 0.0, 0.0]], dtype=torch.float64), 300)[0]
    rows = []

    def counting_jacobian(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        rows.append(h.shape[0])
        return st.jacobian(x, h)

    res = S.levenberg_marquardt(st, counting_jacobian, st.zero_inputs(200), st.cast(starts), tol=1e-8, max_iter=100,
                                damping=1e-3)
    assert res.count(S.CONVERGED) == 200
    assert int(res.iterations[0]) == 0
    slowest = int(res.iterations.max())
    assert slowest > 3
    # compaction: far fewer Jacobian rows than (all points) x (iterations of the slowest point)
    assert sum(rows) < 0.6 * 200 * slowest
    assert sum(rows) <= int(res.iterations.sum()) + 200


def test_slow_points_are_reported_separately_with_their_speed() -> None:
    """h' = h + c + h^2 has no fixed point; its ghost at h = 0 is a slow point of speed c."""
    c = 1e-3
    step = as_step(lambda x, h: h + c + h**2, state_size=1, input_size=0)
    with pytest.warns(FixedPointWarning, match="no fixed point certified"):
        fps = find_fixed_points(step, torch.linspace(-0.8, 0.8, 17).unsqueeze(1))
    assert len(fps) == 0 and len(fps.slow) == 1
    assert abs(float(fps.slow.points[0, 0])) < 1e-4
    assert math.isclose(float(fps.slow.speeds[0]), c, rel_tol=1e-4)
    assert not bool(fps.slow.converged.any())
    assert "slow points with speed" in fps.meta["notes"][0]
    # a ghost faster than slow_tol is not a slow point
    with pytest.warns(FixedPointWarning):
        fast = find_fixed_points(as_step(lambda x, h: h + 0.1 + h**2, state_size=1, input_size=0),
                                 torch.linspace(-0.8, 0.8, 17).unsqueeze(1))
    assert len(fast) == 0 and len(fast.slow) == 0


def test_duplicates_merge_within_unique_tol() -> None:
    """F(h) - h = -100 h (h - 1e-3): two roots 1e-3 apart (|G'| = 0.1 there, so a 1e-8 residual pins each to 1e-7)."""
    step = as_step(lambda x, h: h - 100 * h * (h - 1e-3), state_size=1, input_size=0)
    starts = torch.linspace(-0.05, 0.05, 41).unsqueeze(1)
    merged = find_fixed_points(step, starts, unique_tol=1e-2)
    split = find_fixed_points(step, starts, unique_tol=1e-5)
    assert len(merged) == 1 and len(split) == 2
    assert sorted(round(v, 6) for v in split.points[:, 0].tolist()) == [0.0, 1e-3]
    assert int(merged.multiplicity.sum()) == int(split.multiplicity.sum()) == merged.meta["outcomes"]["converged"]
    # λ = 1.1 at 0 (unstable), 0.9 at 1e-3 (stable)
    assert sorted(split.n_unstable.tolist()) == [0, 1]


def test_eigenvectors_reconstruct_the_jacobian_and_persist(tmp_path) -> None:
    torch.manual_seed(1)
    gru = nn.GRU(2, 6)
    with torch.no_grad():
        gru.weight_hh_l0.mul_(3.0)
    fps = find_fixed_points(gru, _uniform(128, 6, seed=3), vectors=True)
    assert len(fps) >= 1
    st = as_step(gru)
    jac = st.jacobian(st.zero_inputs(len(fps)), fps.points).to(torch.complex128)
    rebuilt = fps.right @ torch.diag_embed(fps.eigenvalues) @ fps.left.transpose(-2, -1)
    assert torch.allclose(rebuilt, jac, atol=1e-9)
    paths = fps.save(tmp_path / "fps")
    back = FixedPoints.load(paths[0])
    for name in ("points", "residuals", "converged", "eigenvalues", "multiplicity", "right", "left", "inputs"):
        assert torch.equal(getattr(back, name), getattr(fps, name)), name
    assert back.meta["tol"] == 1e-8 and len(back.slow) == len(fps.slow)
    assert back.summary() == fps.summary()


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(InnerworksError, match="file not found"):
        FixedPoints.load(tmp_path / "nothing")
    fps = find_fixed_points(bistable_tanh(1), torch.linspace(-2, 2, 9).unsqueeze(1))
    st, js = fps.save(tmp_path / "a.safetensors")
    js.write_text('{"format": "something else"}')
    with pytest.raises(InnerworksError, match="format"):
        FixedPoints.load(st)
    fps.save(tmp_path / "a")
    st.write_bytes(b"not safetensors")
    with pytest.raises(InnerworksError, match="safetensors"):
        FixedPoints.load(tmp_path / "a.json")


def test_lstm_states_are_flat_h_c() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 5, batch_first=True)
    with torch.no_grad():
        out, (h, c) = lstm(torch.randn(8, 20, 2))
    states = torch.cat([h[0], c[0]], dim=1)
    fps = find_fixed_points(lstm, states)
    assert fps.state_size == 10 and len(fps) >= 1
    st = as_step(lstm)
    nxt = st(st.zero_inputs(len(fps)), fps.points)
    assert float((nxt - fps.points).norm(dim=1).max()) < 1e-8
    with pytest.raises(InnerworksError, match=r"\[h; c\]"):
        find_fixed_points(lstm, h[0])


def test_per_start_inputs_keep_points_apart() -> None:
    step = bistable_tanh(2)
    starts = _uniform(256, 2)
    x = torch.zeros(256, 2)
    x[128:, 0] = 1.0  # a held +1 input on bit 0: only its upper state survives
    fps = find_fixed_points(step, starts, inputs=x)
    assert fps.inputs.shape == (len(fps), 2)
    assert int((fps.inputs[:, 0] == 0).sum()) == 9 and int((fps.inputs[:, 0] == 1).sum()) == 3


def _train_flipflop_gru(hidden: int = 12, steps: int = 120, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    cfg = FlipFlopConfig(n_bits=3, n_time=40, pulse_prob=0.08, pulse_at_start=True)
    cell = make_cell("gru", 3, hidden)
    readout = nn.Linear(hidden, 3)
    opt = torch.optim.Adam([*cell.parameters(), *readout.parameters()], lr=2e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        d = generate_flipflop(cfg, 32, gen)
        loss = ((readout(cell.scan(d.inputs)) - d.targets) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        states = cell.scan(generate_flipflop(cfg, 48, gen).inputs)
    return cell, states


def test_briefly_trained_gru_converges_and_covers_its_attractors() -> None:
    cell, states = _train_flipflop_gru()
    fps = find_fixed_points(cell, states, n_starts=512)
    assert len(fps) >= 1 and int(fps.stable.sum()) >= 1
    assert float(fps.residuals.max()) < 1e-8
    # most starts are certified, the rest are accounted for
    assert fps.meta["outcomes"].get("converged", 0) >= 0.75 * 512
    assert sum(fps.meta["outcomes"].values()) == 512
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an incomplete audit would raise here
        audit = audit_attractors(cell, states[:, -1], fps)
    assert audit.complete and all(a.period == 1 and a.match_stable for a in audit.attractors)


# ----------------------------------------------------------------------------------------------- bad input (part 9)
def test_bad_states_and_inputs_raise_clear_errors() -> None:
    step = bistable_tanh(2)
    with pytest.raises(InnerworksError, match="state size is 2"):
        find_fixed_points(step, torch.zeros(4, 3))
    bad = torch.zeros(5, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(InnerworksError, match=r"1 of 5 states contain NaN or inf \(first: row 3\)"):
        find_fixed_points(step, bad)
    with pytest.raises(InnerworksError, match="empty"):
        find_fixed_points(step, torch.zeros(0, 2))
    with pytest.raises(InnerworksError, match="expected \\[S\\], \\[N, S\\] or \\[B, T, S\\]"):
        find_fixed_points(step, torch.zeros(2, 2, 2, 2))
    with pytest.raises(InnerworksError, match="constant input"):
        find_fixed_points(step, torch.zeros(4, 2), inputs=torch.zeros(3, 2))
    with pytest.raises(InnerworksError, match="features"):
        find_fixed_points(step, torch.zeros(4, 2), inputs=torch.zeros(5))
    with pytest.raises(InnerworksError, match="NaN"):
        find_fixed_points(step, torch.zeros(4, 2), inputs=torch.tensor([0.0, float("inf")]))


def test_bad_steps_raise_clear_errors() -> None:
    h = torch.zeros(4, 3)
    with pytest.raises(InnerworksError, match=r"returned shape \(2, 2\) for states of shape \(2, 3\)"):
        find_fixed_points(as_step(lambda x, s: s[:, :2], input_size=0), h)
    with pytest.raises(InnerworksError, match="step\\(x, h\\) failed .*RuntimeError"):
        find_fixed_points(as_step(lambda x, s: s @ torch.ones(2, 2), input_size=0), h)
    with pytest.raises(InnerworksError, match="tuple"):
        find_fixed_points(as_step(lambda x, s: (s, s), input_size=0), h)
    with pytest.raises(InnerworksError, match="input size is unknown"):
        find_fixed_points(lambda x, s: s, h)
    with pytest.raises(InnerworksError, match="failed.*float64"):  # float32 weights inside a plain function
        w = torch.eye(3)
        find_fixed_points(as_step(lambda x, s: torch.tanh(s @ w), input_size=0), h)


def test_bad_options_raise_clear_errors() -> None:
    step = bistable_tanh(1)
    with pytest.raises(InnerworksError, match="'tolerance'.*valid options: tol"):
        find_fixed_points(step, torch.zeros(2, 1), tolerance=1e-3)
    with pytest.raises(InnerworksError, match="'tol'"):
        find_fixed_points(step, torch.zeros(2, 1), tol=-1.0)
    with pytest.raises(InnerworksError, match="slow_tol"):
        find_fixed_points(step, torch.zeros(2, 1), tol=1e-2, slow_tol=1e-3)


def test_overflowing_starts_and_low_precision_are_explained() -> None:
    # h' = exp(h) - 2 has roots near -1.84 and 1.15; a start at 1000 overflows to inf
    step = as_step(lambda x, h: torch.exp(h) - 2, state_size=1, input_size=0)
    starts = torch.tensor([[1000.0], [-1.5], [1.0], [-3.0]])
    fps = find_fixed_points(step, starts, search_steps=0)
    assert len(fps) == 2 and fps.meta["outcomes"]["non-finite"] == 1
    assert any("NaN/inf" in n for n in fps.meta["notes"])
    with pytest.warns(RuntimeWarning, match="needs float64"):
        find_fixed_points(bistable_tanh(1), torch.zeros(2, 1), dtype="float32", search_steps=0)
    low = find_fixed_points(bistable_tanh(1), torch.linspace(-2, 2, 9).unsqueeze(1), dtype="float32", tol=1e-6)
    assert low.points.dtype == torch.float32 and len(low) == 3


def test_empty_result_is_explained_and_saveable(tmp_path) -> None:
    step = as_step(lambda x, h: h + 1.0, state_size=2, input_size=0)  # a pure drift: nothing to find
    with pytest.warns(FixedPointWarning) as rec:
        fps = find_fixed_points(step, torch.zeros(3, 2), max_iter=5)
    assert len(fps) == 0 and len(fps.slow) == 0 and fps.points.shape == (0, 2)
    assert "no start reached a residual below tol=1e-08 (best residual 1.41e+00" in str(rec[0].message)
    assert "0 fixed points" in fps.summary() and "note:" in fps.summary()
    fps.save(tmp_path / "empty")
    back = FixedPoints.load(tmp_path / "empty")
    assert len(back) == 0 and back.eigenvalues.shape == (0, 2)


def test_modes_from_visited_states_of_the_hand_built_flipflop() -> None:
    """From states visited while the flip-flop runs (memories only), Newton finds the memories; adding the Adam
    exploration and noise recovers the full 27-point skeleton with its saddles."""
    rnn = bistable_tanh(3, extra_units=5)
    data = generate_flipflop(FlipFlopConfig(n_bits=3, n_time=64, pulse_prob=0.05, pulse_at_start=True), 64,
                             generator=0)
    with torch.no_grad():
        visited, _ = rnn(data.inputs)
    # every visited state sits near a memory: without root seeding Newton finds only the memories ...
    assert find_fixed_points(rnn, visited, n_starts=512, seed_rounds=0).unstable_histogram() == {0: 8}
    # ... and the default call reaches the saddles from midpoints between the roots it found (issue 14)
    newton = find_fixed_points(rnn, visited, n_starts=512)
    assert newton.unstable_histogram() == {0: 8, 1: 12, 2: 6, 3: 1}
    assert float(newton.residuals.max()) < 1e-8 and sum(newton.meta["outcomes"].values()) == 512
    full = find_fixed_points(rnn, visited, n_starts=512, mode="both", noise_scale=1.0)
    assert full.unstable_histogram() == {0: 8, 1: 12, 2: 6, 3: 1}
    assert float(full.residuals.max()) < 1e-8
    assert sum(full.meta["outcomes"].values()) == 1024 and full.meta["n_starts"] == 512
    with pytest.raises(InnerworksError, match="needs search_steps > 0"):
        find_fixed_points(rnn, visited, mode="explore", search_steps=0)
