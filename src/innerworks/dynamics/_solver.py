"""Batched root finding for ``G(h) = M(h) - h`` with per-point stopping (the engine behind fixed points and orbits).

Two phases, both per point (never a batch mean):

1. Newton / Levenberg–Marquardt polishing with ``J = dM/dh − I``: a point takes Newton steps ``J δ = −r`` from LU
   factors of J. Factors are reused while they work (chord steps: after a step that cut ‖r‖ below a quarter, the
   next step is one triangular solve; a chord step that fails refactors), and a Newton step from fresh factors that
   misses the Armijo decrease is backtracked along its direction (fractions 2^-1 … 2^-12 in one batched map
   evaluation). Only when that fails too does the point switch to LM, ``(JᵀJ + λ·μ·I) δ = −Jᵀ r`` with
   ``μ = mean diag(JᵀJ)`` and its own damping ``λ`` (÷3 after an accepted step, ×8 after a rejected one, with ``JᵀJ``
   kept across rejections), returning to Newton when λ is small again. Every accepted step lowers ``‖r‖``.
2. rescue: failures (out of iterations, or stalled above ``slow_tol``) and one start per slow point where starts
   stalled below it (a root may sit next to a slow point; the other starts that ended there would repeat the same
   search) restart from their original state with ``search_steps`` Adam steps on their own
   ``q = ½‖M(h) − h‖²`` (the loss is the SUM of the per-point q, so every point gets exactly its own gradient; Adam's
   update is per coordinate), then phase 1 again. At most ``max(32, starts / 16)`` of them, evenly spread, so that a
   network where most starts end in slow valleys (a trained classifier) does not pay the search twice.

The two searches have opposite biases, so ``mode`` chooses. ``"newton"`` (Newton first, Adam only to rescue) keeps
each start near the root its linearisation points to: from visited states it finds the stable points (the memories)
reliably. Gradient descent on q drifts towards saddles instead (on a hand-built 3-bit flip-flop with 16 units, 200
Adam steps before Newton cut the starts reaching stable points from ~250 of 512 to ~30 and lost one of them), which
is what FixedPointFinder relies on to find saddles. ``"explore"`` runs the Adam search on every start first;
``"both"`` runs both from the same starts and keeps the union (twice the work, the best coverage).

Each point stops on its own: converged (``‖r‖ < tol``), stalled (in the search, its residual is not below half its value
8 iterations earlier, or not below 99% of its value 3 iterations earlier while ``‖Jᵀr‖ < 0.01·‖J‖_F‖r‖``: a local
minimum of q or a slow valley, i.e. a slow point or a failure; Newton near a root cuts it by orders of magnitude per
step), non-finite, or out of iterations; and once 90% of a chunk has finished, its slow tail gets a bounded number of
further iterations (:func:`search_options`). A point that comes within ``unique_tol`` of a point of its chunk that
already converged (or that converges there) stops and takes over that root (it could only add a duplicate; a stalled
point is not an answer to copy, so nothing merges into one); in the rescue pass a point also stops near a root the first
pass certified. Only the active points are evaluated: the loop works on a compact copy of the active rows (finished
rows are masked until a quarter of them is done), and Jacobians are recomputed only where the factors must be
refreshed. On small states the cost is the number of tensor operations per iteration (about a hundred), so the loop
keeps that low; on large ones it is LAPACK's, so the search factorises in float32 there (residuals, acceptance and the
certificate stay float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from innerworks.dynamics._dedupe import greedy_unique, nearest
from innerworks.dynamics._lm import (
    ACTIVE,
    CONVERGED,
    LINE_SEARCH,
    MAXITER,
    NONFINITE,
    STALLED,
    STATUS_NAMES,
    MapFn,
    RootResult,
    levenberg_marquardt,
)


def adam_search(map_fn: MapFn, x: torch.Tensor, h: torch.Tensor, steps: int, lr: float, tol: float) -> torch.Tensor:
    """``steps`` Adam steps on each point's own q; points with ‖r‖ <= tol or a non-finite q stop moving."""
    return adam_descent(map_fn, x, h, 0.5 * tol * tol, lr, steps, each=True, eps=1e-12)[0]


def adam_descent(map_fn: MapFn, x: torch.Tensor, h: torch.Tensor, q_tol: float, lr: float, max_iters: int, *,
                 each: bool = True, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Adam on each point's own ``q = ½‖M(h) − h‖²`` (the summed loss gives each point exactly its own gradient).

    ``each``: a point stops (and leaves the batch) when ``q <= q_tol``; otherwise all points move until the batch
    mean q is ``<= q_tol``, the rule of the slow-point authors. Non-finite points leave the batch either way.
    Returns final points, their q, a mask of the points whose own q reached ``q_tol``, and the steps run."""
    n = h.shape[0]
    out_h, out_q = h.clone(), torch.full((n,), float("inf"), dtype=h.dtype, device=h.device)
    done = torch.zeros(n, dtype=torch.bool, device=h.device)
    idx = torch.arange(n, device=h.device)
    cur, xs = h.clone(), x
    m, v = torch.zeros_like(cur), torch.zeros_like(cur)
    b1, b2 = 0.9, 0.999
    t = 0
    for t in range(1, max_iters + 1):
        with torch.enable_grad():
            hh = cur.detach().requires_grad_(True)
            r = map_fn(xs, hh) - hh
            q = 0.5 * (r * r).sum(-1)
            (g,) = torch.autograd.grad(q.sum(), hh)
        q = q.detach()
        finite = torch.isfinite(q) & torch.isfinite(g).all(-1)
        hit = finite & (q <= q_tol)
        stop = hit | ~finite
        if not each:  # the authors' rule: everyone moves on until the mean is small enough, then all stop
            done_all = bool(finite.any()) and float(q[finite].mean()) <= q_tol
            stop = torch.ones_like(hit) if done_all else ~finite
        if bool(stop.any()):
            out_h[idx[stop]] = cur[stop]
            out_q[idx[stop]] = torch.where(finite[stop], q[stop], torch.full_like(q[stop], float("inf")))
            done[idx[hit & stop]] = True
            keep = ~stop
            idx, cur, xs, m, v, g = idx[keep], cur[keep], xs[keep], m[keep], v[keep], g[keep]
            if idx.numel() == 0:
                break
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        cur = cur - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    if idx.numel():  # never stopped: keep where they ended; slow only if their own q made it
        with torch.no_grad():
            r = map_fn(xs, cur) - cur
            q = 0.5 * (r * r).sum(-1)
        out_h[idx] = cur
        out_q[idx] = q
        done[idx] = torch.isfinite(q) & (q <= q_tol)
    return out_h, out_q, done, t


def concat_results(parts: list[RootResult]) -> RootResult:
    """The rows of several results, in order."""
    return RootResult(points=torch.cat([p.points for p in parts]), residuals=torch.cat([p.residuals for p in parts]),
                      status=torch.cat([p.status for p in parts]), iterations=torch.cat([p.iterations for p in parts]),
                      jacobians=sum(p.jacobians for p in parts), factorizations=sum(p.factorizations for p in parts))


FLOAT32_FACTORS_FROM = 64  # state size from which the search factorises in float32 (LAPACK time dominates there)
MIN_DECREASE = 0.5  # a row stalls unless it halves its residual every ``patience`` iterations (Newton does far better)
RESCUE_MIN, RESCUE_SHARE = 32, 16  # the rescue retries at most max(32, starts / 16) starts of a chunk
TAIL = 10  # rows still running ``max(TAIL, t90)`` iterations after 90% of their chunk finished stop (slow valleys)


def search_options(state_size: int) -> dict[str, Any]:
    """The :func:`levenberg_marquardt` settings of the fixed-point search for states of this size: rows that do not
    halve their residual in ``patience`` iterations stall, the slow tail is bounded, and on large states the factors
    are float32 (half the time; the search and its certificate stay float64).

    >>> search_options(16)
    {'tail': 10, 'min_decrease': 0.5, 'factor_dtype': None}
    >>> search_options(256)["factor_dtype"]
    torch.float32
    """
    large = state_size >= FLOAT32_FACTORS_FROM
    return {"tail": TAIL, "min_decrease": MIN_DECREASE, "factor_dtype": torch.float32 if large else None}


def _newton_with_rescue(map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor, tol: float, max_iter: int,
                        damping: float, search_steps: int, search_lr: float, unique_tol: float = 0.0,
                        slow_tol: float = 0.0) -> RootResult:
    fast = search_options(h.shape[1])
    res = levenberg_marquardt(map_fn, jac_fn, x, h, tol=tol, max_iter=max_iter, damping=damping, merge_tol=unique_tol,
                              **fast)
    # rescue every failure (out of iterations, or stalled above slow_tol) and, of the starts that stalled at slow
    # points, one per slow point (within unique_tol): a root may sit next to a slow point, but the starts that ended
    # at the same one would only repeat the same search
    stalled = res.status == STALLED
    at_slow = stalled & (res.residuals < slow_tol)
    fail = (stalled & ~at_slow) | (res.status == MAXITER)
    slow_idx = at_slow.nonzero().squeeze(-1)
    if slow_idx.numel():
        key = torch.cat([res.points[slow_idx], x[slow_idx]], dim=1)
        lead = greedy_unique(key, res.residuals[slow_idx], max(unique_tol, 1e-12))[0]
        fail[slow_idx[lead]] = True
    fail = fail.nonzero().squeeze(-1)
    cap = max(RESCUE_MIN, h.shape[0] // RESCUE_SHARE)
    if fail.numel() > cap:  # an evenly spread subset: a root missed by many starts is still retried
        fail = fail[torch.linspace(0, fail.numel() - 1, cap, device=fail.device).round().long()]
    if search_steps > 0 and fail.numel():
        hs = adam_search(map_fn, x[fail], h[fail], search_steps, search_lr, tol)
        conv = (res.status == CONVERGED).nonzero().squeeze(-1)
        known = torch.cat([res.points[conv], x[conv]], dim=1)
        if unique_tol > 0 and known.shape[0]:  # one row per certified root keeps the distance test small
            conv = conv[greedy_unique(known, res.residuals[conv], 0.5 * unique_tol)[0]]
            known = torch.cat([res.points[conv], x[conv]], dim=1)
        use_known = unique_tol > 0 and known.shape[0] > 0
        again = levenberg_marquardt(map_fn, jac_fn, x[fail], hs, tol=tol, max_iter=max_iter, damping=damping,
                                    known=known if use_known else None, known_tol=unique_tol, merge_tol=unique_tol,
                                    **fast)
        won = again.status == CONVERGED
        w = fail[won]
        res.points[w], res.residuals[w], res.status[w] = again.points[won], again.residuals[won], CONVERGED
        if use_known:  # stopped near a certified root: the start is credited to that root (as a full run would be)
            key = torch.cat([again.points, x[fail]], dim=1)
            dist, near = nearest(key, known)
            hit = (again.status == STALLED) & (dist <= unique_tol)
            w, src = fail[hit], conv[near[hit]]
            res.points[w], res.residuals[w], res.status[w] = res.points[src], res.residuals[src], CONVERGED
        res.iterations[fail] += again.iterations
        res.jacobians += again.jacobians
        res.factorizations += again.factorizations
    return res


def solve_roots(map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h0: torch.Tensor, *, tol: float, max_iter: int,
                damping: float, search_steps: int, search_lr: float, batch_size: int, mode: str = "newton",
                on_chunk: Callable[[int], None] | None = None, unique_tol: float = 0.0,
                slow_tol: float = 0.0) -> RootResult:
    """Run the search over all starts, ``batch_size`` starts at a time (bounds the ``[B, S, S]`` memory).

    ``mode``: ``"newton"``: Newton/LM from every start, then an Adam search from the original start, followed by
    Newton/LM again, for the starts that stalled or ran out of iterations (a rescued start replaces its first result
    only if it is now certified). ``"explore"``: ``search_steps`` Adam steps from every start, then Newton/LM (with the
    same rescue). ``"both"``: both, from the same starts; the result holds ``2N`` rows (newton rows first).
    ``unique_tol > 0`` stops a rescued start once it is within that distance of a root its chunk already certified.
    Seeding from the roots found (the saddles between attractors) is a second stage: :func:`._seeds.solve_and_seed`.
    """
    if mode not in ("newton", "explore", "both"):
        raise ValueError(f"unknown mode {mode!r}")
    parts: list[RootResult] = []
    for start in range(0, h0.shape[0], batch_size):
        hc, xc = h0[start:start + batch_size], x[start:start + batch_size]
        if mode in ("newton", "both"):
            parts.append(_newton_with_rescue(map_fn, jac_fn, xc, hc, tol, max_iter, damping, search_steps, search_lr,
                                             unique_tol, slow_tol))
        if mode in ("explore", "both") and search_steps > 0:
            he = adam_search(map_fn, xc, hc, search_steps, search_lr, tol)
            parts.append(_newton_with_rescue(map_fn, jac_fn, xc, he, tol, max_iter, damping, search_steps, search_lr,
                                             unique_tol, slow_tol))
        if on_chunk is not None:
            on_chunk(hc.shape[0])
    if mode == "both":  # newton rows of every chunk first, then the explore rows, so rows i and N + i share a start
        parts = parts[0::2] + parts[1::2]
    return concat_results(parts)


__all__ = ["ACTIVE", "CONVERGED", "LINE_SEARCH", "MAXITER", "NONFINITE", "STALLED", "STATUS_NAMES", "MapFn",
           "RootResult", "adam_descent", "adam_search", "concat_results", "greedy_unique", "levenberg_marquardt",
           "search_options", "solve_roots"]
