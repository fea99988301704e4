"""Slow points by inexact Gauss–Newton: each point relaxes onto the slow manifold along its fast directions only.

The residual is ``r(h) = F(h) − h`` and ``q = ½‖r‖²``; its Jacobian ``J = dF/dh − I`` is nearly singular along the
manifold (slow directions: eigenvalues of ``dF`` near 1) and well conditioned across it (fast, contracting
directions). Each outer iteration solves the Gauss–Newton problem ``min ‖J δ + r‖²`` with a few CGLS iterations
(conjugate gradients on the normal equations, from ``δ = 0``), stopped per point as soon as the linear model predicts
``q ≤ target · q_tol``. CGLS builds ``δ`` from the Krylov space of ``JᵀJ``, which picks up the large singular
directions first; truncated early it is the regularised, near minimum-norm correction that moves the point across
the manifold and barely along it. (A full Newton step ``δ = −J⁻¹ r`` would divide by the small singular values and
throw the point along the manifold towards an exact root.) A step that does not lower q is shortened (fractions
``4^-k`` in one batched evaluation); a point with no shorter step that lowers q stops as stalled. Each point stops as
soon as its own ``q ≤ q_tol``; a point whose step does not at least halve q gets twice the CGLS iterations next
time (the residual left lies in slower directions), up to a cap, and one that still creeps stops as stalled.

Products ``J v`` and ``Jᵀ u`` never build ``J``: for the GRU, UGRNN and vanilla cell maps they are one matrix
product with the recurrent weights each (closed forms below, in float32: the inner solve is truncated anyway, and
the residual and every test of q stay in the step's dtype); any other step uses autograd (a vector-Jacobian product,
and the Jacobian-vector product as the derivative of that linear map). A CGLS iteration costs about one Adam step on
q, and a point needs a handful of steps of a few iterations each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Vec = Callable[..., torch.Tensor]  # (v, rows=None): rows selects the points v belongs to
Ops = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, Vec, Vec]]
SHORTEN = tuple(4.0**-k for k in range(1, 7))  # step fractions tried when the full step does not lower q


def _gated_ops(w: torch.Tensor, coef: torch.Tensor, diag: torch.Tensor) -> tuple[Vec, Vec]:
    """``J = Σ_g diag(coef_g) W_g + diag(diag) − I`` with ``W_hh = [W_1; …; W_k]`` (k gate blocks of S rows).

    The products run in float32 (the matrix products are most of the solver's time, and a truncated inner solve
    needs no more); the residual and every test of q stay in the step's dtype."""
    k = coef.shape[-1] // w.shape[1]
    w32, c32, dm1 = w.float(), coef.float(), diag - 1.0

    def jv(v: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        c, d = (c32, dm1) if rows is None else (c32[rows], dm1[rows])
        return ((v.float() @ w32.T) * c).unflatten(-1, (k, -1)).sum(-2).to(v.dtype) + d * v

    def jtu(u: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        c, d = (c32, dm1) if rows is None else (c32[rows], dm1[rows])
        return ((c * u.float().repeat(1, k)) @ w32).to(u.dtype) + d * u

    return jv, jtu


def _cell_ops(m: Any) -> Ops | None:
    """Closed-form residual and Jacobian products for cell maps with a gated Jacobian (``gated_factors``: the GRU,
    UGRNN and vanilla maps of :mod:`innerworks.dynamics.step`); None for anything else."""
    factors = getattr(m, "gated_factors", None)
    if factors is None:
        return None

    def ops(x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, Vec, Vec]:
        r, coef, diag = factors(x, h)
        return r, *_gated_ops(m.w_hh, coef, diag)
    return ops


def _autograd_ops(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Ops:
    """Residual and Jacobian products of any differentiable step, by autograd."""
    def ops(x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, Vec, Vec]:
        with torch.enable_grad():
            hh = h.detach().requires_grad_(True)
            y = fn(x, hh)
            u0 = torch.zeros_like(y, requires_grad=True)
            (g,) = torch.autograd.grad(y, hh, u0, create_graph=True)  # Jᵀu0, linear in u0

        def _rows(f: Vec, a: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
            if rows is None:
                return f(a)
            full = torch.zeros_like(hh)
            full[rows] = a
            return f(full)[rows]

        def jtu(u: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
            with torch.enable_grad():
                return _rows(lambda a: torch.autograd.grad(y, hh, a, retain_graph=True)[0], u, rows) - u

        def jv(v: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
            with torch.enable_grad():
                return _rows(lambda a: torch.autograd.grad(g, u0, a, retain_graph=True)[0], v, rows) - v

        return (y - hh).detach(), jv, jtu
    return ops


def residual_ops(step: Any) -> Ops:
    """``ops(x, h) -> (r, v ↦ J v, u ↦ Jᵀ u)`` for a :class:`~innerworks.dynamics.step.Step` at rows ``h``."""
    return _cell_ops(step.module) or _autograd_ops(step.fn)


def cgls(jv: Vec, jtu: Vec, r: torch.Tensor, budget: torch.Tensor, target: float) -> tuple[torch.Tensor, int]:
    """Per row, ``δ`` from at most ``budget[row]`` CGLS iterations on ``min ‖J δ + r‖²`` from ``δ = 0``; a row
    stops once its linear model ``½‖J δ + r‖²`` is at most ``target``. Finished rows leave the products (the
    working set is compacted when a quarter of it is done). Returns ``δ`` and the products computed (rows × 2)."""
    d = torch.zeros_like(r)
    rows = torch.arange(r.shape[0], device=r.device)
    res = -r
    s = jtu(res)
    p = s
    gamma = (s * s).sum(-1)
    dk = torch.zeros_like(r)
    live = torch.ones(r.shape[0], dtype=torch.bool, device=r.device)
    n_prod, k = r.shape[0], 0
    while True:
        k += 1
        jp = jv(p, rows)
        den = (jp * jp).sum(-1)
        alpha = torch.where(live & (den > 0), gamma / den.clamp_min(1e-300), torch.zeros_like(den))
        dk = dk + alpha.unsqueeze(-1) * p
        res = res - alpha.unsqueeze(-1) * jp
        live &= (0.5 * (res * res).sum(-1) > target) & torch.isfinite(alpha) & (budget[rows] > k)
        n_prod += 2 * rows.numel()
        if not bool(live.any()):
            break
        if int(live.sum()) < 0.75 * live.numel():  # compact: write finished rows back, keep the live ones
            d[rows] = dk
            rows, res, p, gamma, dk, live = rows[live], res[live], p[live], gamma[live], dk[live], live[live]
        s = jtu(res, rows)
        g_new = (s * s).sum(-1)
        p = s + (g_new / gamma.clamp_min(1e-300)).unsqueeze(-1) * p
        gamma = g_new
    d[rows] = dk
    return torch.where(torch.isfinite(d), d, torch.zeros_like(d)), n_prod


def _q(ops: Ops, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    r = ops(x, h)[0]
    q = 0.5 * (r * r).sum(-1)
    return torch.where(torch.isfinite(q), q, torch.full_like(q, float("inf")))


def _shorten(ops: Ops, x: torch.Tensor, h: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The best of the fractions ``SHORTEN`` of each step (one batched evaluation): new points and their q."""
    k, m = len(SHORTEN), h.shape[0]
    fr = torch.tensor(SHORTEN, dtype=h.dtype, device=h.device).view(k, 1, 1)
    hb = (h.unsqueeze(0) + fr * d.unsqueeze(0)).reshape(k * m, -1)
    qb = _q(ops, x.repeat(k, 1), hb).view(k, m)
    best_q, best = qb.min(0)
    return hb.view(k, m, -1)[best, torch.arange(m, device=h.device)], best_q


def gauss_newton_descent(ops: Ops, x: torch.Tensor, h: torch.Tensor, q_tol: float, max_iters: int, *,
                         inner: tuple[int, int] = (4, 64), target: float = 0.5,
                         patience: int = 4, min_decrease: float = 0.7,
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, int]]:
    """Per-point inexact Gauss–Newton on ``q`` (module docstring): each point stops at its own ``q ≤ q_tol``.

    ``inner``: each point starts with ``inner[0]`` CGLS iterations per step and doubles them (up to ``inner[1]``)
    after a step that did not halve its q (the residual left is in slower directions, which need more iterations).
    ``target``: each inner solve aims at ``q ≤ target · q_tol`` in the linear model (a margin for its error). A point
    stalls (stops, not converged) when no fraction of its step lowers q, or when, at the full budget, its q is not
    below ``min_decrease`` times its value ``patience`` steps earlier: such a point creeps along a slow valley whose
    floor may lie above the tolerance (on an AG News GRU-256 at q ≤ 5e-6, most starts do; a looser rule converged
    108 of 512 starts instead of 75 at 2.2x the time, a stricter one 55). Returns the final points, their q, a mask of
    the points whose q reached ``q_tol`` and counters (steps, map evaluations, Jacobian products, stalled points)."""
    n, dev = h.shape[0], h.device
    out_h, out_q = h.clone(), torch.full((n,), float("inf"), dtype=h.dtype, device=dev)
    idx = torch.arange(n, device=dev)
    cur, xs = h.clone(), x
    budget = torch.full((n,), inner[0], dtype=torch.long, device=dev)
    past = torch.full((n, patience), float("inf"), dtype=h.dtype, device=dev)  # q of the last steps (ring)
    stuck = torch.zeros(n, dtype=torch.bool, device=dev)  # no fraction of the last step lowered q
    stats = {"iterations": 0, "evaluations": 0, "products": 0, "stalled": 0}
    with torch.no_grad():
        r, jv, jtu = ops(xs, cur)
        q = 0.5 * (r * r).sum(-1)
        for it in range(max_iters + 1):
            stats["evaluations"] += idx.numel()
            stop = ~torch.isfinite(q) | (q <= q_tol) | stuck
            stop |= (budget == inner[1]) & ~(q < min_decrease * past[:, it % patience])
            stats["stalled"] += int((stop & (q > q_tol)).sum()) if it < max_iters else 0
            if it == max_iters:
                stop = torch.ones_like(stop)
            if bool(stop.any()):
                out_h[idx[stop]] = cur[stop]
                out_q[idx[stop]] = torch.where(torch.isfinite(q[stop]), q[stop], torch.full_like(q[stop], float("inf")))
                keep = ~stop
                idx, cur, xs, q, budget, past = idx[keep], cur[keep], xs[keep], q[keep], budget[keep], past[keep]
                stuck = stuck[keep]
                if idx.numel() == 0:
                    break
                r, jv, jtu = ops(xs, cur)  # the products at the remaining rows
            stats["iterations"] = it + 1
            past[:, it % patience] = q
            d, prods = cgls(jv, jtu, r, budget, target * q_tol)
            stats["products"] += prods
            new = cur + d
            r_new, jv, jtu = ops(xs, new)
            q_new = 0.5 * (r_new * r_new).sum(-1)
            bad = ~(q_new < q)
            if bool(bad.any()):  # shorten the step; when no fraction lowers q the point stays and stalls
                bi = bad.nonzero().squeeze(-1)
                hb, qb = _shorten(ops, xs[bi], cur[bi], d[bi])
                stats["evaluations"] += bi.numel() * len(SHORTEN)
                ok = qb < q[bi]
                new[bi] = torch.where(ok.unsqueeze(-1), hb, cur[bi])
                r_new, jv, jtu = ops(xs, new)
                q_new = torch.where(torch.isfinite(r_new).all(-1), 0.5 * (r_new * r_new).sum(-1),
                                    torch.full_like(q_new, float("inf")))
                stuck[bi[~ok]] = True
            budget = torch.where(q_new > 0.5 * q, (2 * budget).clamp_max(inner[1]), budget)
            cur, q, r = new, q_new, r_new
    done = torch.isfinite(out_q) & (out_q <= q_tol)
    return out_h, out_q, done, stats
