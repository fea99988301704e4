"""Slow points: the approximate fixed points that trace an attractor manifold (Aitken et al.'s protocol).

A trained classifier integrates evidence along a continuous manifold of *slow* points, where the state barely moves
under the no-word input x*. Its exact fixed points are few (often 1-4 isolated roots) and say little about the
manifold's dimension. The authors measure the manifold on slow points instead (integration notes §3):

- descend each point's own ``q(h) = ½‖F(x*, h) − h‖²`` with Adam (lr 0.01) from visited states, up to 10,000
  steps;
- stop at ``q ≤ fraction · ½ · s̄²``, with ``fraction = 0.05`` and ``s̄`` the mean per-token step ``‖h_{t+1} − h_t‖``
  along real trajectories (``h0`` included). This is a speed of at most ``√0.05 ≈ 22%`` of a typical token's move;
- drop any later point within 0.025 of a kept one (``keep_unique_fixed_points``).

Stopping (``stop=``): ``"mean"`` (default, the authors' rule) descends every point until the batch *mean* q is at
most the tolerance, then keeps the points whose own q is (renn's pitfall, notes §5: the mean rule alone lets
individual points stay fast, so we filter on each point's speed). ``"each"`` stops every point as soon as its own q
reaches the tolerance: fewer steps, but each point then sits at the edge of the slow region rather than inside it,
so the cloud is thicker (on a 2-class GRU-64 the top PC held 93.6% against the mean rule's 94.0%). Points that never
reach the tolerance are dropped and counted, never kept.

Gradient descent on q relaxes a start onto the slow manifold near where it began (the fast directions contract
first), so the points keep most of the manifold's extent. (Adam scales each coordinate's step to about ``lr``,
so a point also creeps along a slow direction until it stops; starts far off the manifold lose some extent.) A
Newton solver would instead jump to the few exact roots; use :func:`~innerworks.dynamics.find_fixed_points` for
those (the certified skeleton).

``method="gauss_newton"`` (:class:`SlowMethod`) reaches the same tolerance from the same starts by per-point
inexact Gauss–Newton instead (a few conjugate-gradient iterations on the linearised residual per step; see
:mod:`innerworks.dynamics._slow_solver`): the correction moves a point across the manifold, along its fast
directions, and barely along it, and every point stops at its own q. On trained GRUs (``bench/slow_points.py``) it is
10-20x faster than the authors' Adam and converges every start; under the mean rule Adam leaves 40% of the starts
above the authors' tolerance (dropped), so the counts differ by that much, while per-point Adam (``stop="each"``)
keeps the same count as Gauss–Newton. At a tight tolerance (5e-6 on a 4-class GRU-128) the same start ends within 2%
of the cloud's radius of Adam's point.

At the authors' tolerance the cloud is about a token step thick. On trained synthetic classifiers that thickness
held 5-10% of the variance, so a 95%-variance dimension of these points overstates the manifold's; their
participation ratio stays near it (``docs/dynamics.md`` records the measurements).

>>> import torch
>>> from innerworks.dynamics.toys import line_attractor
>>> step = line_attractor(size=3, decay=0.5)           # a line of fixed points along the first axis
>>> starts = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
>>> sp = find_slow_points(step, starts, q_tol=1e-6)
>>> len(sp) > 20, bool((sp.speeds <= (2e-6) ** 0.5).all())
(True, True)
>>> float(sp.points[:, 1:].norm(dim=1).max()) < 3e-3    # on the line: speed 0.5·‖h⊥‖ ≤ 1.41e-3
True
>>> float(sp.points[:, 0].std() / starts[:, 0].std()) > 0.9   # and spread along it as the starts were
True
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from innerworks.dynamics._prepare import prepare
from innerworks.dynamics._slow_solver import gauss_newton_descent, residual_ops
from innerworks.dynamics._solver import adam_descent, greedy_unique
from innerworks.errors import InnerworksError

AITKEN_FRACTION = 0.05
AITKEN_LR = 0.01
AITKEN_MAX_ITERS = 10_000
AITKEN_UNIQUE_TOL = 0.025
GN_MAX_ITERS = 200  # Gauss–Newton iterations per point (a point needs a handful; stalled points stop earlier)


class SlowMethod(str, enum.Enum):
    """How :func:`find_slow_points` descends q.

    ``ADAM``: the authors' protocol, per-point Adam (lr 0.01) with the batch-mean or per-point stopping rule.
    ``GAUSS_NEWTON``: per-point inexact Gauss–Newton (a few conjugate-gradient iterations on the linearised
    residual per step, :mod:`innerworks.dynamics._slow_solver`): the correction moves each point across the manifold
    along its fast directions and barely along it, and each point stops at its own ``q ≤ q_tol``. It reaches the
    tolerance in a handful of steps (10-50x faster than Adam on trained GRUs) and converges every start, where the
    mean rule drops the points still above the tolerance when the batch mean gets there.

    >>> SlowMethod("gauss_newton") is SlowMethod.GAUSS_NEWTON, SlowMethod.ADAM.value
    (True, 'adam')
    """

    ADAM = "adam"
    GAUSS_NEWTON = "gauss_newton"


def mean_step_size(states: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor) -> float:
    """The mean per-token move ``‖h_{t+1} − h_t‖`` over real trajectories, the first step from ``h0`` included.

    ``states`` are ``[B, T, S]`` (state after each token), ``lengths`` ``[B]`` the valid lengths, ``h0`` ``[S]``.

    >>> import torch
    >>> hs = torch.tensor([[[1.0, 0.0], [1.0, 2.0], [9.0, 9.0]]])       # third state is padding
    >>> mean_step_size(hs, torch.tensor([2]), torch.zeros(2))
    1.5
    """
    if states.dim() != 3 or lengths.shape[0] != states.shape[0]:
        raise InnerworksError(f"mean_step_size: expected states [B, T, S] and lengths [B], got "
                              f"{tuple(states.shape)} and {tuple(lengths.shape)}")
    h0b = h0.to(states.dtype).reshape(1, 1, -1).expand(states.shape[0], 1, states.shape[2])
    path = torch.cat([h0b, states], dim=1)
    moves = (path[:, 1:] - path[:, :-1]).norm(dim=-1)
    valid = torch.arange(states.shape[1], device=states.device).unsqueeze(0) < lengths.unsqueeze(1)
    if not bool(valid.any()):
        raise InnerworksError("mean_step_size: every trajectory is empty (all lengths are 0)")
    return float(moves[valid].double().mean())


def aitken_q_tol(step_size: float, fraction: float = AITKEN_FRACTION) -> float:
    """The slow-point tolerance on ``q``: ``fraction · ½ · step_size²``.

    >>> aitken_q_tol(2.0)
    0.1
    """
    return fraction * 0.5 * step_size**2


@dataclass
class SlowPoints:
    """Slow points found by :func:`find_slow_points`.

    Attributes:
        points: ``[K, S]`` unique slow points (float64).
        speeds: ``[K]`` their speeds ``‖F(x*, h) − h‖`` (each ``≤ √(2 q_tol)``).
        multiplicity: ``[K]`` how many converged starts each absorbed.
        q_tol: the tolerance on ``q`` that defines "slow".
        meta: starts, how many converged, iterations, unique tolerance, ...
        start_index: ``[K]`` the row of ``initial_states`` each point descended from (None when not recorded).

    >>> import torch
    >>> from innerworks.dynamics.toys import bistable_tanh
    >>> sp = find_slow_points(bistable_tanh(n_bits=1), torch.tensor([[0.5], [-0.7]]), q_tol=1e-10, stop="each")
    >>> len(sp), sp.summary().split(" (")[0]
    (2, '2 unique slow points')
    """

    points: torch.Tensor
    speeds: torch.Tensor
    multiplicity: torch.Tensor
    q_tol: float
    meta: dict[str, Any] = field(default_factory=dict)
    start_index: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def summary(self) -> str:
        """One line: how many points, from how many starts, at which tolerance."""
        m = self.meta
        return (f"{len(self)} unique slow points (q <= {self.q_tol:.3g}, speed <= {math.sqrt(2 * self.q_tol):.3g}) "
                f"from {m.get('n_converged', '?')}/{m.get('n_starts', '?')} converged starts, "
                f"{m.get('iterations', '?')} {'Gauss-Newton' if m.get('method') == 'gauss_newton' else 'Adam'} steps")


def find_slow_points(step: Any, initial_states: torch.Tensor, inputs: torch.Tensor | None = None, *,
                     q_tol: float, lr: float = AITKEN_LR, max_iters: int = AITKEN_MAX_ITERS,
                     unique_tol: float = AITKEN_UNIQUE_TOL, stop: Literal["mean", "each"] = "mean",
                     batch_size: int = 1024, method: SlowMethod | str = SlowMethod.ADAM) -> SlowPoints:
    """Slow points of ``h ↦ step(x*, h)`` reached by per-point Adam descent of ``q`` from ``initial_states``.

    Args:
        step: anything :func:`~innerworks.dynamics.as_step` accepts (a cell, an ``nn.GRU``, a classifier, a
            function).
        initial_states: ``[N, S]`` starts, normally visited states (every one is used; subsample before).
        inputs: the constant input x*, ``[I]`` (default zeros: no word).
        q_tol: a point is slow when ``q = ½‖F(h) − h‖² ≤ q_tol``; :func:`aitken_q_tol` gives the authors' rule.
        lr, max_iters: Adam step size and the most steps per point (the authors' 0.01 and 10,000). Gauss–Newton
            ignores ``lr`` and caps its own steps at ``min(max_iters, GN_MAX_ITERS)``.
        unique_tol: converged points within this distance of a kept (slower) one are merged.
        stop: ``"mean"`` (the authors' batch-mean rule, then a per-point filter) or ``"each"`` (per-point stopping);
            see the module docstring. Adam only: Gauss–Newton always stops each point on its own.
        batch_size: starts descended at once (the mean rule's batch).
        method: :class:`SlowMethod` (or its value): ``"adam"`` (default, the authors' protocol) or
            ``"gauss_newton"`` (same tolerance, same starts, far fewer steps).

    >>> import torch
    >>> from innerworks.dynamics.toys import bistable_tanh
    >>> starts = torch.tensor([[0.5], [0.6], [-0.7]])
    >>> sp = find_slow_points(bistable_tanh(n_bits=1), starts, q_tol=1e-10, stop="each")
    >>> sorted(round(v, 2) for v in sp.points[:, 0].tolist()), sp.multiplicity.tolist()
    ([-0.96, 0.96], [2, 1])
    >>> fast = find_slow_points(bistable_tanh(n_bits=1), starts, q_tol=1e-10, method="gauss_newton")
    >>> sorted(round(v, 2) for v in fast.points[:, 0].tolist()), fast.meta["method"]
    ([-0.96, 0.96], 'gauss_newton')
    """
    try:
        method = SlowMethod(method)
    except ValueError:
        raise InnerworksError(f"find_slow_points: method must be one of {[m.value for m in SlowMethod]}, got "
                              f"{method!r}") from None
    if stop not in ("mean", "each"):
        raise InnerworksError(f"find_slow_points: stop must be 'mean' or 'each', got {stop!r}")
    if not (isinstance(q_tol, (int, float)) and math.isfinite(q_tol) and q_tol > 0):
        raise InnerworksError(f"find_slow_points: q_tol must be a positive finite number, got {q_tol!r}")
    # the finders' shared checks: state shape and width, finite starts, x* shape, a working step
    s, h, x, _ = prepare(step, initial_states, inputs, torch.float64, math.sqrt(2 * q_tol))
    pts, qs, conv, iters = [], [], [], 0
    extra: dict[str, int] = {}
    ops = residual_ops(s) if method is SlowMethod.GAUSS_NEWTON else None
    for i in range(0, h.shape[0], batch_size):
        if ops is None:
            p, q, c, t = adam_descent(s, x[i:i + batch_size], h[i:i + batch_size], q_tol, lr, max_iters,
                                      each=stop == "each")
        else:
            p, q, c, st = gauss_newton_descent(ops, x[i:i + batch_size], h[i:i + batch_size], q_tol,
                                               min(max_iters, GN_MAX_ITERS))
            t = st.pop("iterations")
            extra = {k: extra.get(k, 0) + v for k, v in st.items()}
        pts.append(p)
        qs.append(q)
        conv.append(c)
        iters = max(iters, t)
    p, q, c = torch.cat(pts), torch.cat(qs), torch.cat(conv)
    kept, counts = greedy_unique(p[c], q[c], unique_tol)
    sel = torch.nonzero(c).squeeze(1)[kept] if kept.numel() else kept
    meta = {"n_starts": int(h.shape[0]), "n_converged": int(c.sum()), "n_not_converged": int((~c).sum()),
            "iterations": iters, "method": method.value, "stop": stop if ops is None else "each", "lr": lr,
            "max_iters": max_iters, "unique_tol": unique_tol,
            "input": "zeros" if inputs is None else "given", **extra}
    return SlowPoints(points=p[sel].cpu(), speeds=(2 * q[sel]).sqrt().cpu(), multiplicity=counts.cpu(),
                      q_tol=float(q_tol), meta=meta, start_index=sel.cpu())


__all__ = ["SlowMethod", "SlowPoints", "aitken_q_tol", "find_slow_points", "mean_step_size"]
