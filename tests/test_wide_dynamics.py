"""Finite-width dynamics: the tower at initialisation against autodiff, the ODE predictions against their
definitions, and the order-1/n correction on real (small) training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import grad, jvp

from innerworks.errors import InnerworksError
from innerworks.wide.dynamics import (
    predict_corrected,
    predict_linearised,
    run_dynamics,
    tower_at_init,
    train_gradient_flow,
)
from innerworks.wide.estimators import default_dataset
from innerworks.wide.networks import MLPConfig, mlp_apply, sphere_points
from innerworks.wide.workspace import FAST_PATHS, Workspace

DT = torch.float64


def _autodiff_tower(cfg, params, Z):
    """Θ, O3 = dΘ/dθ·J, O4 = dO3/dθ·J by nested autodiff of whole functions of θ (no hand-written formulas)."""
    def J(th, a):
        return grad(lambda q: mlp_apply(cfg, q, Z[a:a + 1]).sum())(th)

    def dot(u, v):
        return sum((u[k] * v[k]).reshape(u[k].shape[0], -1).sum(1) for k in u)

    def theta(th, a, b):
        return dot(J(th, a), J(th, b))

    def o3(th, i, j, k):
        return jvp(lambda q: theta(q, i, j), (th,), (J(th, k),))[1]

    def o4(th, i, j, k, l):
        return jvp(lambda q: o3(q, i, j, k), (th,), (J(th, l),))[1]

    return theta, o3, o4


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_tower_matches_nested_autodiff(act):
    cfg = MLPConfig(width=5, depth=2, activation=act, d_in=3)
    p = cfg.init_params(2, seed=1, dtype=DT)
    Z = sphere_points(3, 3, seed=2)
    t = tower_at_init(cfg, p, Z, n_train=2)
    theta, o3, o4 = _autodiff_tower(cfg, p, Z)
    for i in range(3):
        for j in range(2):
            assert torch.allclose(t.theta0[:, i, j], theta(p, i, j), atol=1e-12)
            for k in range(2):
                assert torch.allclose(t.o3[:, i, j, k], o3(p, i, j, k), atol=1e-12)
                for l in range(2):
                    assert torch.allclose(t.o4[:, i, j, k, l], o4(p, i, j, k, l), atol=1e-12)
    # the named fast paths give the same O3 / O4 entries
    ws = Workspace(cfg, p, {"x1": Z[2], "x2": Z[0], "x3": Z[1], "x4": Z[0]})
    assert torch.allclose(FAST_PATHS["o3"](ws, 0), t.o3[:, 2, 0, 1], atol=1e-12)
    assert torch.allclose(FAST_PATHS["o4"](ws, 0), t.o4[:, 2, 0, 1, 0], atol=1e-12)


def test_tower_gives_the_initial_time_derivatives_of_training():
    # d f/dt = -Θ r and dΘ/dt = -O3 r at t = 0, checked against the trained net by finite differences in time.
    cfg = MLPConfig(width=6, depth=2, activation="tanh")
    X, y = default_dataset(4, seed=0)
    p = cfg.init_params(2, seed=3, dtype=DT)
    t = tower_at_init(cfg, p, X, n_train=4)
    r0 = t.f0 - y
    h = 1e-4
    f_h, _, snaps = train_gradient_flow(cfg, p, X, y, X, t_max=h, step=h, snapshots=[h])
    dfdt = (f_h - t.f0) / h
    assert torch.allclose(dfdt, -torch.einsum("szd,sd->sz", t.theta0, r0), rtol=1e-3, atol=1e-6)
    t_h = tower_at_init(cfg, snaps[h], X, n_train=4)
    dthdt = (t_h.theta0 - t.theta0) / h
    assert torch.allclose(dthdt, -torch.einsum("szjk,sk->szj", t.o3, r0), rtol=1e-2, atol=1e-5)


def test_predictions_are_exact_for_a_linear_model():
    # With O3 = O4 = 0 both predictions solve df/dt = -Θ0 (f - y) exactly: f(t) = y + exp(-Θ0 t)(f0 - y).
    cfg = MLPConfig(width=4, depth=1, activation="tanh")
    X, y = default_dataset(4, seed=0)
    t = tower_at_init(cfg, cfg.init_params(1, seed=0, dtype=DT), X, n_train=4)
    t.o3.zero_()
    t.o4.zero_()
    exact = y + torch.matrix_exp(-t.theta0[0]) @ (t.f0[0] - y)
    assert torch.allclose(predict_linearised(t, y, 1.0, 0.01)[0], exact, atol=1e-9)
    assert torch.allclose(predict_corrected(t, y, 1.0, 0.01)[0], exact, atol=1e-9)


def test_correction_beats_linearisation_and_drift_shrinks_with_width():
    # Real training runs (tanh, one hidden layer): the corrected prediction is far closer to the trained net than
    # the linearised one, and its error falls faster with width. Full-size slopes are checked by `repro wide`.
    r = run_dynamics([64, 256, 1024], activation="tanh", depth=1, num_nets=16, t_max=1.0, step=0.02, seed=0,
                     n_boot=300, progress=False)
    lin, cor, drift = r.rms("linearised"), r.rms("corrected"), r.rms("drift")
    assert all(c < 0.5 * li for c, li in zip(cor, lin, strict=True))
    assert drift[0] > drift[1] > drift[2]
    assert r.fits["corrected"].slope < r.fits["linearised"].slope - 0.5
    assert -1.4 < r.fits["linearised"].slope < -0.6
    assert np.all(np.isfinite(r.errors_corrected[0])) and r.example["width"] == 64


def test_dynamics_input_validation():
    with pytest.raises(InnerworksError, match="at least 3"):
        run_dynamics([64, 128], num_nets=2, progress=False)
    with pytest.raises(InnerworksError, match="num_nets"):
        run_dynamics([8, 16, 32], num_nets=1, progress=False)
