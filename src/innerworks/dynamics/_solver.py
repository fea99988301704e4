"""Batched root finding for ``G(h) = M(h) - h`` with per-point stopping (the engine behind fixed points and orbits).

Two phases, both per point (never a batch mean):

1. Newton / Levenberg–Marquardt polishing with ``J = dM/dh − I``: a point first takes Newton steps ``J δ = −r`` (one
   LU solve; quadratic convergence). When a Newton step fails to lower ``‖r‖`` the point switches to LM,
   ``(JᵀJ + λ·μ·I) δ = −Jᵀ r`` with ``μ = mean diag(JᵀJ)`` and its own damping ``λ`` (÷3 after an accepted step,
   ×8 after a rejected one), and returns to Newton when λ is small again. Every accepted step lowers ``‖r‖``; with
   large λ the step is a short gradient step on q (robust far from a root, and it settles on local minima of q:
   slow points).
2. rescue: starts that stalled or ran out of iterations restart from their original state with ``search_steps``
   Adam steps on their own ``q = ½‖M(h) − h‖²`` (the loss is the SUM of the per-point q, so every point gets exactly
   its own gradient; Adam's update is per coordinate), then phase 1 again.

The two searches have opposite biases, so ``mode`` chooses. ``"newton"`` (Newton first, Adam only to rescue) keeps
each start near the root its linearisation points to: from visited states it finds the stable points (the memories)
reliably. Gradient descent on q drifts towards saddles instead (on a hand-built 3-bit flip-flop with 16 units, 200
Adam steps before Newton cut the starts reaching stable points from ~250 of 512 to ~30 and lost one of them), which
is what FixedPointFinder relies on to find saddles. ``"explore"`` runs the Adam search on every start first;
``"both"`` runs both from the same starts and keeps the union (twice the work, the best coverage).

Each point stops on its own: converged (``‖r‖ < tol``), stalled (its residual is not below 90% of its value 8
iterations earlier, a sliding window: a local minimum of q or a slow valley, i.e. a slow point or a failure),
non-finite, or out of iterations. In the rescue pass a point also stops once it comes within ``unique_tol`` of a root
the first pass already certified (it would only add a duplicate; its row then holds that root). Only the active points
are evaluated: the active set is compacted every iteration, and Jacobians are recomputed only for points whose step
was accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

MapFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ACTIVE, CONVERGED, STALLED, MAXITER, NONFINITE = 0, 1, 2, 3, 4
STATUS_NAMES = {CONVERGED: "converged", STALLED: "stalled", MAXITER: "out of iterations", NONFINITE: "non-finite"}


@dataclass
class RootResult:
    """Per-start outcome: final points ``[N, S]``, residuals ``‖M(h) − h‖ [N]``, status codes and LM iterations."""

    points: torch.Tensor
    residuals: torch.Tensor
    status: torch.Tensor
    iterations: torch.Tensor

    def count(self, code: int) -> int:
        return int((self.status == code).sum())


def _residual(map_fn: MapFn, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        r = map_fn(x, h) - h
    f = r.norm(dim=-1)
    return r, torch.where(torch.isfinite(f), f, torch.full_like(f, float("inf")))


def adam_search(map_fn: MapFn, x: torch.Tensor, h: torch.Tensor, steps: int, lr: float, tol: float) -> torch.Tensor:
    """``steps`` Adam steps on each point's own q; points with ‖r‖ < tol or a non-finite q stop moving."""
    h = h.clone()
    m = torch.zeros_like(h)
    v = torch.zeros_like(h)
    b1, b2, eps = 0.9, 0.999, 1e-12
    frozen = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    for t in range(1, steps + 1):
        with torch.enable_grad():
            hh = h.detach().requires_grad_(True)
            r = map_fn(x, hh) - hh
            q = 0.5 * (r * r).sum(dim=-1)
            (g,) = torch.autograd.grad(q.sum(), hh)
        with torch.no_grad():
            bad = ~torch.isfinite(q) | ~torch.isfinite(g).all(dim=-1)
            frozen |= bad | (q.detach() < 0.5 * tol * tol)
            g = torch.where(frozen.unsqueeze(-1), torch.zeros_like(g), g)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            upd = lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
            h = h - torch.where(frozen.unsqueeze(-1), torch.zeros_like(upd), upd)
        if bool(frozen.all()):
            break
    return h


def _step_directions(jac: torch.Tensor, r: torch.Tensor, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton (``lam == 0``: LU solve of ``J δ = −r``) or LM (``(JᵀJ + λμI) δ = −Jᵀr``) steps.

    ``jac`` is ``J = dM/dh − I``. Returns the steps ``[a, S]`` and a per-point flag that the linear solve succeeded.
    """
    delta = torch.empty_like(r)
    ok = torch.ones(r.shape[0], dtype=torch.bool, device=r.device)
    newton = lam == 0
    if bool(newton.any()):
        sol, info = torch.linalg.solve_ex(jac[newton], -r[newton].unsqueeze(-1))
        delta[newton] = sol.squeeze(-1)
        ok[newton] = info == 0
    lm = ~newton
    if bool(lm.any()):
        j = jac[lm]
        a = torch.bmm(j.transpose(1, 2), j)
        g = torch.bmm(j.transpose(1, 2), r[lm].unsqueeze(-1))
        mu = a.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
        a.diagonal(dim1=-2, dim2=-1).add_((lam[lm] * mu).unsqueeze(-1))
        chol, info = torch.linalg.cholesky_ex(a)
        delta[lm] = torch.cholesky_solve(-g, chol).squeeze(-1)
        ok[lm] = info == 0
    return delta, ok & torch.isfinite(delta).all(dim=-1)


def _jac_g(jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``J = dM/dh − I`` at each point."""
    jac = jac_fn(x, h)
    jac.diagonal(dim1=-2, dim2=-1).sub_(1.0)
    return jac


def levenberg_marquardt(map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor, *, tol: float,
                        max_iter: int, damping: float, patience: int = 8, min_decrease: float = 0.9,
                        newton_below: float = 1e-3, known: torch.Tensor | None = None,
                        known_tol: float = 0.0) -> RootResult:
    """Per-point Newton / Levenberg–Marquardt on ``M(h) − h`` for one chunk.

    Every point starts in Newton mode (``λ = 0``: one LU solve, cheaper than forming JᵀJ). A Newton step that does
    not lower ``‖r‖`` switches the point to LM with ``λ = damping``; LM divides λ by 3 after an accepted step and
    multiplies it by 8 after a rejected one, and hands back to Newton once λ falls below ``damping · newton_below``.
    A point stalls when its residual is not below ``min_decrease`` times its value ``patience`` iterations earlier
    (Newton near a root cuts it far faster; a point sitting in a local minimum of q, or crawling along a slow valley,
    does not). On the bench's trained nets no start that converges under a 10-iteration rule is lost with 8, and
    stalled starts stop sooner. ``known`` (``[K, S + I]`` rows ``[h, x]``): a point within ``known_tol`` of one of
    them stops with status STALLED (it is heading for a root that is already certified).
    """
    n = h.shape[0]
    dev = h.device
    h = h.clone()
    r, f = _residual(map_fn, x, h)
    status = torch.zeros(n, dtype=torch.int8, device=dev)
    status[~torch.isfinite(f)] = NONFINITE
    status[f < tol] = CONVERGED
    iters = torch.zeros(n, dtype=torch.long, device=dev)
    lam = torch.zeros(n, dtype=h.dtype, device=dev)
    # residuals of the last ``patience`` iterations (ring buffer; slot 0 holds the start, inf = not yet reached)
    past = torch.full((n, patience), float("inf"), dtype=f.dtype, device=dev)
    past[:, 0] = f
    near_known = known is not None and known.shape[0] > 0
    lam_newton = damping * newton_below

    idx = (status == ACTIVE).nonzero().squeeze(-1)
    with torch.no_grad():
        jac = _jac_g(jac_fn, x[idx], h[idx]) if idx.numel() else None
    for _ in range(max_iter):
        if idx.numel() == 0:
            break
        with torch.no_grad():
            delta, solved = _step_directions(jac, r[idx], lam[idx])
            h_try = h[idx] + torch.where(solved.unsqueeze(-1), delta, torch.zeros_like(delta))
            r_try, f_try = _residual(map_fn, x[idx], h_try)
            f_old = f[idx]
            acc = solved & (f_try < f_old)
            iters[idx] += 1
            acc_idx, rej_idx = idx[acc], idx[~acc]
            h[acc_idx] = h_try[acc]
            r[acc_idx] = r_try[acc]
            f[acc_idx] = f_try[acc]
            la = lam[acc_idx] / 3.0
            lam[acc_idx] = torch.where(la < lam_newton, torch.zeros_like(la), la)
            lr = lam[rej_idx]
            lam[rej_idx] = torch.where(lr == 0, torch.full_like(lr, damping), (lr * 8.0).clamp_max(1e30))
            slot = iters[idx] % patience
            stalled = ~(f[idx] < min_decrease * past[idx, slot])  # no 10% cut over the window (NaN-safe)
            past[idx, slot] = f[idx]
            if near_known:
                key = torch.cat([h[idx], x[idx]], dim=1)
                stalled |= torch.cdist(key, known).min(dim=1).values <= known_tol
            st = status[idx]
            st = torch.where(f[idx] < tol, torch.full_like(st, CONVERGED), st)
            st = torch.where((st == ACTIVE) & stalled, torch.full_like(st, STALLED), st)
            status[idx] = st
            keep = st == ACTIVE
            if not bool(keep.all()):  # compact the active set (and its Jacobians)
                idx, acc, jac = idx[keep], acc[keep], jac[keep]
            if bool(acc.any()):  # new Jacobians only where the point moved
                upd = idx[acc]
                jac[acc] = _jac_g(jac_fn, x[upd], h[upd])
    status[status == ACTIVE] = MAXITER
    return RootResult(points=h, residuals=f, status=status, iterations=iters)


def _concat(parts: list[RootResult]) -> RootResult:
    return RootResult(points=torch.cat([p.points for p in parts]), residuals=torch.cat([p.residuals for p in parts]),
                      status=torch.cat([p.status for p in parts]), iterations=torch.cat([p.iterations for p in parts]))


def _newton_with_rescue(map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor, tol: float, max_iter: int,
                        damping: float, search_steps: int, search_lr: float, unique_tol: float = 0.0) -> RootResult:
    res = levenberg_marquardt(map_fn, jac_fn, x, h, tol=tol, max_iter=max_iter, damping=damping)
    fail = ((res.status == STALLED) | (res.status == MAXITER)).nonzero().squeeze(-1)
    if search_steps > 0 and fail.numel():
        hs = adam_search(map_fn, x[fail], h[fail], search_steps, search_lr, tol)
        conv = (res.status == CONVERGED).nonzero().squeeze(-1)
        known = torch.cat([res.points[conv], x[conv]], dim=1)
        if unique_tol > 0 and known.shape[0]:  # one row per certified root keeps the distance test small
            conv = conv[greedy_unique(known, res.residuals[conv], 0.5 * unique_tol)[0]]
            known = torch.cat([res.points[conv], x[conv]], dim=1)
        use_known = unique_tol > 0 and known.shape[0] > 0
        again = levenberg_marquardt(map_fn, jac_fn, x[fail], hs, tol=tol, max_iter=max_iter, damping=damping,
                                    known=known if use_known else None, known_tol=unique_tol)
        won = again.status == CONVERGED
        w = fail[won]
        res.points[w], res.residuals[w], res.status[w] = again.points[won], again.residuals[won], CONVERGED
        if use_known:  # stopped near a certified root: the start is credited to that root (as a full run would be)
            key = torch.cat([again.points, x[fail]], dim=1)
            dist, near = torch.cdist(key, known).min(dim=1)
            hit = (again.status == STALLED) & (dist <= unique_tol)
            w, src = fail[hit], conv[near[hit]]
            res.points[w], res.residuals[w], res.status[w] = res.points[src], res.residuals[src], CONVERGED
        res.iterations[fail] += again.iterations
    return res


def solve_roots(map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h0: torch.Tensor, *, tol: float, max_iter: int,
                damping: float, search_steps: int, search_lr: float, batch_size: int, mode: str = "newton",
                on_chunk: Callable[[int], None] | None = None, unique_tol: float = 0.0) -> RootResult:
    """Run the search over all starts, ``batch_size`` starts at a time (bounds the ``[B, S, S]`` memory).

    ``mode``: ``"newton"``: Newton/LM from every start, then an Adam search from the original start, followed by
    Newton/LM again, for the starts that stalled or ran out of iterations (a rescued start replaces its first result
    only if it is now certified). ``"explore"``: ``search_steps`` Adam steps from every start, then Newton/LM (with the
    same rescue). ``"both"``: both, from the same starts; the result holds ``2N`` rows (newton rows first).
    ``unique_tol > 0`` stops a rescued start once it is within that distance of a root its chunk already certified.
    """
    if mode not in ("newton", "explore", "both"):
        raise ValueError(f"unknown mode {mode!r}")
    parts: list[RootResult] = []
    for start in range(0, h0.shape[0], batch_size):
        hc, xc = h0[start:start + batch_size], x[start:start + batch_size]
        if mode in ("newton", "both"):
            parts.append(_newton_with_rescue(map_fn, jac_fn, xc, hc, tol, max_iter, damping, search_steps, search_lr,
                                             unique_tol))
        if mode in ("explore", "both") and search_steps > 0:
            he = adam_search(map_fn, xc, hc, search_steps, search_lr, tol)
            parts.append(_newton_with_rescue(map_fn, jac_fn, xc, he, tol, max_iter, damping, search_steps, search_lr,
                                             unique_tol))
        if on_chunk is not None:
            on_chunk(hc.shape[0])
    if mode == "both":  # newton rows of every chunk first, then the explore rows, so rows i and N + i share a start
        parts = parts[0::2] + parts[1::2]
    return _concat(parts)


def greedy_unique(points: torch.Tensor, order_key: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Leader clustering: visit points by ascending ``order_key``; keep one unless it lies within ``tol`` (Euclidean)
    of a kept point. Returns the kept indices and, for each, how many points it absorbed (itself included)."""
    if points.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=points.device)
        return empty, empty
    order = torch.argsort(order_key, stable=True)
    remaining = order
    kept, counts = [], []
    while remaining.numel():
        lead = remaining[0]
        d = (points[remaining] - points[lead]).norm(dim=-1)
        close = d <= tol
        kept.append(lead)
        counts.append(int(close.sum()))
        remaining = remaining[~close]
    return torch.stack(kept), torch.tensor(counts, dtype=torch.long, device=points.device)
