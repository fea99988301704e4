"""Finite-width training dynamics: NTK drift and the order-1/n corrected prediction of f(t) (notes §4, §8.9-10).

Nets of several widths are trained by MSE gradient flow (``dθ/dt = -∇L``, integrated with RK4 in float64 so the
integration error is far below the 1/n² effects measured) on a small regression set. For each net we compare the
trained f(t) at training and test points with two predictions built from the *same* net at initialisation:

- linearised (NTK): ``df/dt = -Θ0 r`` with the empirical Θ0, whose error is O(1/n);
- order-1/n corrected (the O3/O4 tower of [DG], truncated at order 1/n): with r0 the zeroth-order residual,

  ``dO3⁽¹⁾/dt = -O4(0)·r0``, ``dΘ⁽¹⁾/dt = -O3⁽¹⁾·r0``, ``df⁽¹⁾/dt = -Θ0 f⁽¹⁾_train - Θ⁽¹⁾ r0``,

  with ``O3⁽¹⁾(0) = O3(0)``, ``Θ⁽¹⁾(0) = f⁽¹⁾(0) = 0``. Per net, O3 and O4 are O(1/n) and O5 is O(1/n²) (their
  squares' cluster graphs give n^-2, n^-2 and n^-4), so f⁽⁰⁾ + f⁽¹⁾ should miss the trained f by O(1/n²)
  for smooth σ. (The notes give the same quantities as integrals; these ODEs are their derivatives.)

The NTK drift ``‖Θ_T - Θ_0‖_F`` over the same points is recorded too.

>>> r = run_dynamics([8, 16, 32], activation="tanh", depth=1, num_nets=4, t_max=0.5, step=0.05, seed=0,
...                  progress=False)
>>> sorted(r.fits), r.widths
(['corrected', 'drift', 'linearised'], [8, 16, 32])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.func import grad

from innerworks.errors import InnerworksError
from innerworks.wide.estimators import auto_batch_size, default_dataset
from innerworks.wide.networks import MLPConfig, Params, derive_seed, mlp_apply, sphere_points
from innerworks.wide.sweep import SlopeFit, _progress, fit_loglog, parse_widths
from innerworks.wide.workspace import HV, J, Workspace


@dataclass
class TowerAtInit:
    """The tower at initialisation for a batch of S nets on points Z (training points first, ``n_train`` of them).

    Shapes: ``f0 [S, Z]``, ``theta0 [S, Z, Z]``, ``o3 [S, Z, D, D]`` (O3(z, x, x')), ``o4 [S, Z, D, D, D]``.
    """

    f0: torch.Tensor
    theta0: torch.Tensor
    o3: torch.Tensor
    o4: torch.Tensor
    n_train: int


def tower_at_init(cfg: MLPConfig, params: Params, Z: torch.Tensor, n_train: int) -> TowerAtInit:
    """Θ, O3 and O4 at initialisation, matrix-free.

    With M_ab = H(z_a) J(z_b): ``O3(i,j,k) = J_k·(M_ij + M_ji)`` and
    ``O4(i,j,k,l) = D³f_i[J_j,J_k,J_l] + D³f_j[J_i,J_k,J_l] + M_ik·M_jl + M_ij·M_kl + M_jk·M_il + M_ji·M_kl``.

    >>> cfg = MLPConfig(width=4, depth=1, activation="tanh")
    >>> t = tower_at_init(cfg, cfg.init_params(2, dtype=torch.float64), sphere_points(3, 4, 0), n_train=2)
    >>> tuple(t.o4.shape), bool(torch.allclose(t.theta0, t.theta0.transpose(1, 2)))
    ((2, 3, 2, 2, 2), True)
    """
    nz = Z.shape[0]
    nd = n_train
    names = [f"z{a}" for a in range(nz)]
    ws = Workspace(cfg, params, {n: Z[a] for a, n in enumerate(names)})
    S = ws.S
    f0 = torch.stack([ws.f(n) for n in names], dim=1)
    theta = torch.zeros(S, nz, nz, dtype=ws.dtype, device=ws.device)
    for a in range(nz):
        for b in range(a, nz):
            theta[:, a, b] = theta[:, b, a] = ws.dot(J(names[a]), J(names[b]))
    o3 = torch.zeros(S, nz, nd, nd, dtype=ws.dtype, device=ws.device)
    for i in range(nz):
        for j in range(nd):
            for k in range(nd):
                jk = J(names[k])
                o3[:, i, j, k] = ws.dot(jk, HV(names[i], J(names[j]))) + ws.dot(jk, HV(names[j], J(names[i])))
    # Third-derivative pieces: T3[a, b, k, l] = D³f_a[J_b, J_k, J_l], from one vector ∇D²f_a[J_k, J_l] per (a, k<=l).
    t3 = torch.zeros(S, nz, nz, nd, nd, dtype=ws.dtype, device=ws.device)
    for a in range(nz):
        for k in range(nd):
            for l in range(k, nd):
                key = ("T", names[a], tuple(sorted((J(names[k]), J(names[l])), key=repr)))
                for b in range(nz):
                    t3[:, a, b, k, l] = t3[:, a, b, l, k] = ws.dot(key, J(names[b]))
                ws._vecs.pop(key, None)  # stream: keep memory at O(P) vectors

    def m(a: int, b: int) -> tuple:
        return HV(names[a], J(names[b]))

    o4 = torch.zeros(S, nz, nd, nd, nd, dtype=ws.dtype, device=ws.device)
    for i in range(nz):
        for j in range(nd):
            for k in range(nd):
                for l in range(nd):
                    o4[:, i, j, k, l] = (t3[:, i, j, k, l] + t3[:, j, i, k, l]
                                         + ws.dot(m(i, k), m(j, l)) + ws.dot(m(i, j), m(k, l))
                                         + ws.dot(m(j, k), m(i, l)) + ws.dot(m(j, i), m(k, l)))
    ws.clear()
    return TowerAtInit(f0, theta, o3, o4, nd)


def _rk4(state: list[torch.Tensor], deriv: Callable[[list[torch.Tensor]], list[torch.Tensor]], h: float
         ) -> list[torch.Tensor]:
    k1 = deriv(state)
    k2 = deriv([s + 0.5 * h * k for s, k in zip(state, k1, strict=True)])
    k3 = deriv([s + 0.5 * h * k for s, k in zip(state, k2, strict=True)])
    k4 = deriv([s + h * k for s, k in zip(state, k3, strict=True)])
    return [s + h / 6.0 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4, strict=True)]


def _n_steps(t_max: float, step: float) -> int:
    return max(1, int(round(t_max / step)))


def predict_linearised(tower: TowerAtInit, y: torch.Tensor, t_max: float, step: float) -> torch.Tensor:
    """f(t_max) at every point of Z under the linearised (constant empirical NTK) dynamics, ``[S, Z]``."""
    nd = tower.n_train
    th = tower.theta0[:, :, :nd]

    def deriv(s: list[torch.Tensor]) -> list[torch.Tensor]:
        r0 = s[0][:, :nd] - y
        return [-torch.einsum("szd,sd->sz", th, r0)]

    state = [tower.f0.clone()]
    h = t_max / _n_steps(t_max, step)
    for _ in range(_n_steps(t_max, step)):
        state = _rk4(state, deriv, h)
    return state[0]


def predict_corrected(tower: TowerAtInit, y: torch.Tensor, t_max: float, step: float) -> torch.Tensor:
    """f⁽⁰⁾ + f⁽¹⁾ at t_max at every point of Z: the order-1/n solution of the O3/O4 tower, ``[S, Z]``."""
    nd = tower.n_train
    th = tower.theta0[:, :, :nd]

    def deriv(s: list[torch.Tensor]) -> list[torch.Tensor]:
        f0, a3, b1, f1 = s
        r0 = f0[:, :nd] - y
        return [
            -torch.einsum("szd,sd->sz", th, r0),
            -torch.einsum("szjkl,sl->szjk", tower.o4, r0),
            -torch.einsum("szjk,sk->szj", a3, r0),
            -torch.einsum("szd,sd->sz", th, f1[:, :nd]) - torch.einsum("szd,sd->sz", b1, r0),
        ]

    S, nz = tower.f0.shape
    state = [tower.f0.clone(), tower.o3.clone(), torch.zeros_like(th), torch.zeros_like(tower.f0)]
    h = t_max / _n_steps(t_max, step)
    for _ in range(_n_steps(t_max, step)):
        state = _rk4(state, deriv, h)
    return state[0] + state[3]


def train_gradient_flow(cfg: MLPConfig, params: Params, X: torch.Tensor, y: torch.Tensor, Z: torch.Tensor,
                        t_max: float, step: float, snapshots: Sequence[float] = ()
                        ) -> tuple[torch.Tensor, Params, dict[float, Params]]:
    """Integrate MSE gradient flow ``dθ/dt = -∇ ½Σ(f(X) - y)²`` with RK4 for S nets at once; return
    ``(f(Z) at t_max [S, Z], final params, {t: params at t for t in snapshots})`` (a snapshot time is rounded to
    the nearest step).

    >>> cfg = MLPConfig(width=8, depth=1, activation="tanh")
    >>> X = sphere_points(3, 4, 0); y = torch.zeros(3, dtype=torch.float64)
    >>> p = cfg.init_params(2, dtype=torch.float64)
    >>> fz, _, snaps = train_gradient_flow(cfg, p, X, y, X, t_max=5.0, step=0.05, snapshots=[1.0])
    >>> bool(fz.abs().max() < mlp_apply(cfg, p, X).abs().max()), list(snaps)   # training shrinks the residual
    (True, [1.0])
    """
    names = list(params)

    def loss(th: Params) -> torch.Tensor:
        r = mlp_apply(cfg, th, X) - y
        return 0.5 * (r * r).sum()

    g = grad(loss)

    def deriv(s: list[torch.Tensor]) -> list[torch.Tensor]:
        gr = g(dict(zip(names, s, strict=True)))
        return [-gr[k] for k in names]

    state = [params[k].clone() for k in names]
    n_steps = _n_steps(t_max, step)
    h = t_max / n_steps
    at_step = {min(n_steps, int(round(t / h))): t for t in snapshots}
    snaps: dict[float, Params] = {}
    if 0 in at_step:
        snaps[at_step[0]] = dict(zip(names, state, strict=True))
    for i in range(1, n_steps + 1):
        state = _rk4(state, deriv, h)
        if i in at_step:
            snaps[at_step[i]] = dict(zip(names, state, strict=True))
    final = dict(zip(names, state, strict=True))
    with torch.no_grad():
        fz = mlp_apply(cfg, final, Z)
    return fz, final, snaps


def _ntk_gram(cfg: MLPConfig, params: Params, Z: torch.Tensor) -> torch.Tensor:
    names = [f"z{a}" for a in range(Z.shape[0])]
    ws = Workspace(cfg, params, {n: Z[a] for a, n in enumerate(names)})
    out = torch.zeros(ws.S, len(names), len(names), dtype=ws.dtype, device=ws.device)
    for a in range(len(names)):
        for b in range(a, len(names)):
            out[:, a, b] = out[:, b, a] = ws.dot(J(names[a]), J(names[b]))
    return out


@dataclass
class DynamicsResult:
    """Per-width errors of the two predictions and the NTK drift, with log-log fits (kind ``"rms"``).

    Attributes:
        widths: the widths.
        errors_linearised, errors_corrected: per width, per net: RMS over the points of f_pred(T) - f_net(T).
        drift: per width, per net: ``‖Θ_t - Θ_0‖_F`` over the points at ``config["drift_time"]``.
        fits: ``"linearised"``, ``"corrected"``, ``"drift"`` -> :class:`~innerworks.wide.sweep.SlopeFit` of the
            RMS over nets.
        config: the settings.
        example: one net's numbers at the smallest width (for figures).
    """

    widths: list[int]
    errors_linearised: list[np.ndarray]
    errors_corrected: list[np.ndarray]
    drift: list[np.ndarray]
    fits: dict[str, SlopeFit]
    config: dict[str, Any]
    example: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def rms(self, which: str) -> list[float]:
        """RMS over nets at each width of ``"linearised"``, ``"corrected"`` or ``"drift"``."""
        data = {"linearised": self.errors_linearised, "corrected": self.errors_corrected, "drift": self.drift}[which]
        return [float(np.sqrt((a**2).mean())) for a in data]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (per-net values included: they are few)."""
        return {
            "widths": self.widths,
            "config": self.config,
            "rms": {k: self.rms(k) for k in ("linearised", "corrected", "drift")},
            "fits": {k: f.to_dict() for k, f in self.fits.items()},
            "errors_linearised": [a.tolist() for a in self.errors_linearised],
            "errors_corrected": [a.tolist() for a in self.errors_corrected],
            "drift": [a.tolist() for a in self.drift],
            "example": self.example,
            "warnings": self.warnings,
        }


def run_dynamics(widths: Sequence[int] | str, *, activation: str = "tanh", depth: int = 1, num_nets: int = 32,
                 t_max: float = 1.0, step: float = 0.01, drift_time: float | None = 0.5, n_train: int = 4,
                 n_test: int = 2, d_in: int = 4,
                 seed: int = 0, device: str = "cpu", n_boot: int = 2000, memory_budget: float = 1.0e9,
                 progress: bool = True) -> DynamicsResult:
    """Train ``num_nets`` nets per width by gradient flow to ``t_max``; measure the linearised and corrected
    predictions' errors at ``t_max`` and the NTK drift at ``drift_time`` (the notes measure it at t = 0.5, §8.9);
    fit each against width.

    Everything runs in float64. Training set: :func:`~innerworks.wide.estimators.default_dataset` (points on the
    sphere |x|² = d_in, N(0,1) targets); ``n_test`` more points on the sphere are predicted too.
    """
    ws_list = parse_widths(widths) if isinstance(widths, str) else parse_widths(list(widths))
    if num_nets < 2:
        raise InnerworksError(f"num_nets: need at least 2 nets per width, got {num_nets}")
    if t_max <= 0 or step <= 0:
        raise InnerworksError(f"t_max and step must be positive, got {t_max}, {step}")
    dtype = torch.float64
    X, y = default_dataset(d_in, seed, n_train)
    Xt = sphere_points(n_test, d_in, seed, "test") if n_test else X[:0]
    Z = torch.cat([X, Xt]).to(device)
    X, y = X.to(device), y.to(device)
    base = MLPConfig(ws_list[0], depth, d_in, activation)
    err_lin, err_cor, drift = [], [], []
    example: dict[str, Any] = {}
    with _progress(progress) as bar:
        for w in ws_list:
            cfg = base.with_width(w)
            task = bar.add_task(f"dynamics {activation} d={depth} n={w}", total=num_nets) if bar else None
            vecs = Z.shape[0] * (1 + 2 * n_train) + 8
            bs = auto_batch_size(cfg, num_nets, vecs, dtype, memory_budget)
            el, ec, dr = [], [], []
            done = 0
            while done < num_nets:
                cur = min(bs, num_nets - done)
                params = cfg.init_params(cur, seed=derive_seed(seed, "dynamics", activation, depth, w),
                                         device=device, dtype=dtype, first_sample=done)
                tower = tower_at_init(cfg, params, Z, n_train)
                f_lin = predict_linearised(tower, y, t_max, step / 4)
                f_cor = predict_corrected(tower, y, t_max, step / 4)
                t_drift = t_max if drift_time is None else min(drift_time, t_max)
                f_net, _final, snaps = train_gradient_flow(cfg, params, X, y, Z, t_max, step, snapshots=[t_drift])
                theta_t = _ntk_gram(cfg, snaps[t_drift], Z)
                el.append(((f_lin - f_net) ** 2).mean(1).sqrt())
                ec.append(((f_cor - f_net) ** 2).mean(1).sqrt())
                dr.append(((theta_t - tower.theta0) ** 2).sum((1, 2)).sqrt())
                if w == ws_list[0] and done == 0:
                    example = {"width": w, "f_init": tower.f0[0].tolist(), "f_net": f_net[0].tolist(),
                               "f_linearised": f_lin[0].tolist(), "f_corrected": f_cor[0].tolist(),
                               "targets": y.tolist(), "n_train": n_train}
                done += cur
                if bar is not None:
                    bar.update(task, completed=done)
            err_lin.append(torch.cat(el).cpu().numpy())
            err_cor.append(torch.cat(ec).cpu().numpy())
            drift.append(torch.cat(dr).cpu().numpy())
    warnings: list[str] = []
    fits: dict[str, SlopeFit] = {}
    for name, data in (("linearised", err_lin), ("corrected", err_cor), ("drift", drift)):
        bad = [w for w, a in zip(ws_list, data, strict=True) if not np.all(np.isfinite(a))]
        if bad:
            warnings.append(f"{name}: non-finite values at widths {bad} (training diverged?)")
        fits[name] = fit_loglog(ws_list, [a[np.isfinite(a)] for a in data], kind="rms", n_boot=n_boot,
                                seed=derive_seed(seed, "dynfit", name))
    config = {"activation": activation, "depth": depth, "num_nets": num_nets, "t_max": t_max, "step": step,
              "drift_time": t_max if drift_time is None else min(drift_time, t_max),
              "n_train": n_train, "n_test": n_test, "d_in": d_in, "seed": seed}
    return DynamicsResult(ws_list, err_lin, err_cor, drift, fits, config, example, warnings)
