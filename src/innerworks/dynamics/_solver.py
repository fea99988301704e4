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
from dataclasses import dataclass
from typing import Any

import torch

from innerworks.dynamics._dedupe import greedy_unique, nearest

MapFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ACTIVE, CONVERGED, STALLED, MAXITER, NONFINITE = 0, 1, 2, 3, 4
# backtracking fractions of a Newton step, tried in one batched map evaluation (down to 2^-12: near a slow point the
# full step overshoots by orders of magnitude, and the best fraction at least halves the distance to the minimum of q)
LINE_SEARCH = tuple(2.0**-k for k in range(1, 13))
STATUS_NAMES = {CONVERGED: "converged", STALLED: "stalled", MAXITER: "out of iterations", NONFINITE: "non-finite"}


@dataclass
class RootResult:
    """Per-start outcome: final points ``[N, S]``, residuals ``‖M(h) − h‖ [N]``, status codes and LM iterations."""

    points: torch.Tensor
    residuals: torch.Tensor
    status: torch.Tensor
    iterations: torch.Tensor
    jacobians: int = 0
    factorizations: int = 0
    seed_inputs: torch.Tensor | None = None  # inputs of the rows appended by root seeding (after the start rows)

    def count(self, code: int) -> int:
        return int((self.status == code).sum())


def _residual(map_fn: MapFn, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        r = map_fn(x, h) - h
    return r, torch.nan_to_num(r.norm(dim=-1), nan=float("inf"), posinf=float("inf"))  # non-finite: inf


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


def _lu_directions(lu: torch.Tensor, piv: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton steps ``δ = −J⁻¹ r`` from LU factors of ``J`` (fresh or kept from an earlier point: a chord step)."""
    delta = torch.linalg.lu_solve(lu, piv, -r.unsqueeze(-1)).squeeze(-1)
    return delta, torch.isfinite(delta).all(dim=-1)


def _lm_directions(jtj: torch.Tensor, g: torch.Tensor, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LM steps ``(JᵀJ + λμI) δ = −g`` (``g = Jᵀr``, ``μ = mean diag(JᵀJ)``; Cholesky). ``JᵀJ`` and ``g`` are kept
    from the point's last accepted step, so a rejected step costs one Cholesky factorisation, not a new ``JᵀJ``."""
    a = jtj.clone()
    mu = a.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    a.diagonal(dim1=-2, dim2=-1).add_((lam * mu).unsqueeze(-1))
    chol, info = torch.linalg.cholesky_ex(a)
    delta = torch.cholesky_solve(-g.unsqueeze(-1), chol).squeeze(-1)
    return delta, (info == 0) & torch.isfinite(delta).all(dim=-1)


def _jac_g(jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``J = dM/dh − I`` at each point."""
    jac = jac_fn(x, h)
    jac.diagonal(dim1=-2, dim2=-1).sub_(1.0)
    return jac


def levenberg_marquardt(map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor, *, tol: float,
                        max_iter: int, damping: float, patience: int = 8, min_decrease: float = 0.9,
                        newton_below: float = 1e-3, known: torch.Tensor | None = None, known_tol: float = 0.0,
                        chord_below: float = 0.25, line_search: tuple[float, ...] = LINE_SEARCH,
                        flat_window: int = 3, flat_decrease: float = 0.99, flat_gradient: float = 1e-2,
                        merge_tol: float = 0.0, tail: int = 0,
                        factor_dtype: torch.dtype | None = None) -> RootResult:
    """Per-point Newton / Levenberg–Marquardt on ``M(h) − h`` for one chunk.

    Newton points (``λ = 0``) step with ``δ = −J⁻¹ r`` from LU factors of ``J``. The factors are kept while they
    work: after a step that cut ``‖r‖`` below ``chord_below`` times its old value, the next step reuses them (a chord
    step: one triangular solve instead of a new Jacobian and factorisation); a chord step that does not lower ``‖r‖``
    refreshes them at the current point. A Newton step from fresh factors (or an LM step) that misses the Armijo
    decrease is backtracked along its direction (the residual at each fraction in ``line_search``, one batched map
    evaluation; the best is taken): the Newton direction descends q wherever ``J`` is invertible. Only a fresh
    Newton step that fails even so switches the point to LM with ``λ = damping`` (LM costs ``JᵀJ`` plus a
    Cholesky factorisation, about 3x an LU one); LM divides λ by 3 after an accepted step and multiplies it by 8
    after a rejected one (reusing ``JᵀJ``), and hands back to Newton once ``λ`` falls below ``damping ·
    newton_below``. Every accepted step lowers ``‖r‖``.

    A point stalls (a local minimum of q, i.e. a slow point, or a slow valley) when its residual is not below
    ``min_decrease`` times its value ``patience`` iterations earlier, or sooner, when it is not below
    ``flat_decrease`` times its value ``flat_window`` iterations earlier while the gradient of q is tiny,
    ``‖Jᵀr‖ < flat_gradient · ‖J‖_F ‖r‖`` (moving points sit at 0.03–0.1 on the bench nets, slow points at 1e-3 and
    below). ``known`` (``[K, S + I]`` rows ``[h, x]``): a point within ``known_tol`` of one of them stops with status
    STALLED (it is heading for a root that is already certified). ``merge_tol > 0``: a point that comes within
    ``merge_tol`` of a point of this chunk that has already converged stops and takes over that root (it could only
    add a duplicate). ``tail > 0`` bounds the slow tail: once 90% of the rows have finished (at iteration t90), the
    rows still running after ``max(tail, t90)`` more iterations stop as STALLED (they creep along a slow valley, where
    each takes ~100 iterations for one more point of a continuum). ``factor_dtype`` (e.g. float32 under a float64
    search) is the dtype of the factorisations only: residuals, acceptance and the certificate stay in the working
    dtype, so a less precise direction costs at most an extra iteration (on large states float32 factorisations take
    about half the time).
    """
    # One function on purpose: every stage of an iteration (directions, backtracking, damping, stall and merge tests,
    # compaction, refactorisation) reads and writes the same per-point tensors, and compaction re-indexes all of them
    # at once; split apart, each stage would take a dozen of them as arguments. The stages are marked by comments.
    # The loop works on a compact copy of the active rows (``*_a``) and writes rows back only when they are dropped:
    # on small states the cost is the number of tensor operations per iteration, not their size.
    n, s = h.shape
    dev = h.device
    out_h = h.clone()
    r0, f0 = _residual(map_fn, x, out_h)
    out_f = f0
    status = torch.zeros(n, dtype=torch.int8, device=dev)
    status[~torch.isfinite(f0)] = NONFINITE
    status[f0 < tol] = CONVERGED
    iters = torch.zeros(n, dtype=torch.long, device=dev)
    idx = (status == ACTIVE).nonzero().squeeze(-1)
    counts = {"jacobians": 0, "factorizations": 0}
    if idx.numel() == 0:
        return RootResult(points=out_h, residuals=out_f, status=status, iterations=iters)
    # one input for every row (the usual x*), and the known rows share it: distances on h alone, no [h, x] rows
    known_rows = known if known is not None and known.shape[0] > 0 else None
    const_x = x.shape[1] == 0 or bool((x == x[0]).all())
    if const_x and known_rows is not None and x.shape[1]:
        const_x = bool((known_rows[:, s:] == x[0]).all())
    if known_rows is not None and const_x:
        known_rows = known_rows[:, :s]

    def key(hh: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return hh if const_x else torch.cat([hh, xx], dim=1)

    follow = torch.full((n,), -1, dtype=torch.long, device=dev)  # merged into this finished point (merge_tol)
    lead_ids = torch.zeros(0, dtype=torch.long, device=dev)
    lead_keys = key(out_h[:0], x[:0])
    lam_newton = damping * newton_below
    fdt = h.dtype if factor_dtype is None else factor_dtype
    alphas = torch.tensor(line_search, dtype=h.dtype, device=dev)
    h_a, r_a, f_a, x_a = out_h[idx], r0[idx], f0[idx], x[idx]
    a = idx.numel()
    lam_a = torch.zeros(a, dtype=h.dtype, device=dev)
    it_a = torch.zeros(a, dtype=torch.long, device=dev)
    st_a = torch.zeros(a, dtype=torch.int8, device=dev)
    # residuals of the last ``patience`` iterations (ring buffer; column 0 holds the start, inf = not yet reached)
    past = torch.full((a, patience), float("inf"), dtype=h.dtype, device=dev)
    past[:, 0] = f_a
    t90 = 0  # iteration at which 90% of the rows had finished (``tail``)
    n_lm = 0  # LM rows among the live ones (a Python count: the all-Newton iteration skips the LM branch)

    def refresh(rows: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """At ``h_a[rows]`` (all rows: None): LU factors and pivots of J (Newton rows), ``JᵀJ`` (LM rows),
        ``g = Jᵀr`` and whether ``‖Jᵀr‖ < flat_gradient · ‖J‖_F ‖r‖`` (q is flat there)."""
        hh, xx, rr, lr = (h_a, x_a, r_a, lam_a) if rows is None else (h_a[rows], x_a[rows], r_a[rows], lam_a[rows])
        jac = _jac_g(jac_fn, xx, hh)
        # Jᵀr: on small states a broadcast product beats bmm's per-matrix overhead
        g = (jac * rr.unsqueeze(-1)).sum(1) if s <= 32 else torch.bmm(jac.transpose(1, 2), rr.unsqueeze(-1)).squeeze(-1)
        flat = g.norm(dim=-1) < flat_gradient * (jac.flatten(1).norm(dim=-1) * rr.norm(dim=-1))
        jac = jac.to(fdt)
        counts["jacobians"] += hh.shape[0]
        nw = lr == 0
        n_nw = hh.shape[0] if n_lm == 0 else int(nw.sum())
        if n_nw == hh.shape[0]:
            jac, piv, _ = torch.linalg.lu_factor_ex(jac)
        else:
            # identity pivots on LM rows keep the all-rows triangular solve valid (its result there is discarded)
            piv = torch.arange(1, s + 1, dtype=torch.int32, device=dev).expand(hh.shape[0], s).clone()
            lm = ~nw
            jl = jac[lm]
            if n_nw:
                jac[nw], piv[nw], _ = torch.linalg.lu_factor_ex(jac[nw])
            jac[lm] = torch.bmm(jl.transpose(1, 2), jl)
        counts["factorizations"] += n_nw
        return jac, piv, g, flat

    def write_back(rows: torch.Tensor) -> None:
        ids = idx[rows]
        out_h[ids], out_f[ids], status[ids], iters[ids] = h_a[rows], f_a[rows], st_a[rows], it_a[rows]

    with torch.no_grad():
        # per live row: ``mat`` holds LU factors of J (Newton rows) or JᵀJ (LM rows), ``grad`` Jᵀr, ``fresh`` says
        # whether they were taken at the current h
        mat, piv, grad, flat_grad = refresh(None)
        fresh = torch.ones(a, dtype=torch.bool, device=dev)
        # finished rows stay (masked by ``live``) until a quarter of the rows are dead: moving the [a, S, S] factors
        # every iteration cost as much as factorising them
        live = torch.ones(a, dtype=torch.bool, device=dev)
        n_live = a
        for t in range(1, max_iter + 1):
            if n_live == 0:
                break
            # ---- directions: Newton from the kept factors (chord or fresh), LM on LM rows
            delta = torch.linalg.lu_solve(mat, piv, -r_a.to(fdt).unsqueeze(-1)).squeeze(-1).to(h.dtype)
            if n_lm:
                newton = lam_a == 0
                lm = (~newton & live).nonzero().squeeze(-1)
                delta[lm] = _lm_directions(mat[lm], grad[lm].to(fdt), lam_a[lm].to(fdt))[0].to(h.dtype)
                cand = fresh | ~newton
            else:
                newton, cand = None, fresh
            # a non-finite direction becomes a zero step, which cannot lower the residual and so is rejected
            delta = torch.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
            h_try = h_a + delta
            r_try, f_try = _residual(map_fn, x_a, h_try)
            # ---- backtracking: steps from fresh factors (Newton) and LM steps that missed the Armijo decrease (both
            # directions descend q; near a slow point the full step overshoots its minimum by orders of magnitude)
            ls = cand & live & (f_try > (1 - 1e-4) * f_a)  # residuals are never NaN (inf instead)
            li = ls.nonzero().squeeze(-1)
            if li.numel() and alphas.numel():
                m, k = li.numel(), alphas.numel()
                hb = (h_a[li].unsqueeze(0) + alphas.view(k, 1, 1) * delta[li].unsqueeze(0)).reshape(k * m, -1)
                rb, fb = _residual(map_fn, x_a[li].repeat(k, 1), hb)
                best_f, best = fb.view(k, m).min(dim=0)
                better = best_f < f_try[li]
                sel = (best * m + torch.arange(m, device=dev))[better]
                lb = li[better]
                h_try[lb], r_try[lb], f_try[lb] = hb[sel], rb[sel], fb[sel]
            acc = live & (f_try < f_a)
            f_old = f_a
            acc_c = acc.unsqueeze(-1)
            h_a, r_a, f_a = torch.where(acc_c, h_try, h_a), torch.where(acc_c, r_try, r_a), torch.where(acc, f_try, f_a)
            it_a.add_(live)
            # ---- what each row uses next: chord (keep the factors), fresh factors, or LM
            need = (acc & (f_try > chord_below * f_old)) | ~(acc | fresh)  # slow contraction / failed chord step
            to_lm = fresh & ~acc & live  # a Newton step from fresh factors failed even when backtracked
            if newton is not None:
                need &= newton
                to_lm &= newton
                lm_acc = ~newton & acc
                la = lam_a / 3.0
                lam_a = torch.where(lm_acc, torch.where(la < lam_newton, torch.zeros_like(la), la), lam_a)
                lam_a = torch.where(~newton & ~acc & live, (lam_a * 8.0).clamp_max(1e30), lam_a)
                need |= lm_acc
            lam_a = lam_a.masked_fill(to_lm, damping)
            need |= to_lm
            fresh = fresh & ~acc
            # ---- stopping: converged, stalled, near a known root, or merged into a finished row
            slot = t % patience
            stalled = f_a >= min_decrease * past[:, slot]  # too small a cut over the window (never NaN)
            if t >= flat_window:
                stalled |= (f_a >= flat_decrease * past[:, (t - flat_window) % patience]) & flat_grad
            past[:, slot] = f_a
            if known_rows is not None:
                stalled |= nearest(key(h_a, x_a), known_rows)[0] <= known_tol
            conv = live & (f_a < tol)
            stalled &= live & ~conv
            done = conv | stalled
            if merge_tol > 0 and lead_ids.numel():
                dist, near = nearest(key(h_a, x_a), lead_keys)
                # rows that converged next to an earlier root follow it too: its exact point, one leader per root
                hit = (live & ~stalled) & (dist <= merge_tol)
                hi = hit.nonzero().squeeze(-1)
                if hi.numel():
                    follow[idx[hi]] = lead_ids[near[hi]]
                    conv = conv & ~hit  # leaders are converged rows; the follower takes its leader's point below
                    done |= hit
                    st_a[hi] = CONVERGED
            st_a = st_a.masked_fill(conv, CONVERGED).masked_fill(stalled, STALLED)
            if merge_tol > 0:
                new_lead = conv.nonzero().squeeze(-1)  # converged on their own, away from earlier roots
                if new_lead.numel():
                    lead_ids = torch.cat([lead_ids, idx[new_lead]])
                    lead_keys = torch.cat([lead_keys, key(h_a[new_lead], x_a[new_lead])])
            live = live & ~done
            n_live = int(live.sum())
            if n_lm or newton is None and bool(to_lm.any()):
                n_lm = int((live & (lam_a != 0)).sum())
            if tail and t90 == 0 and n_live <= 0.1 * a:
                t90 = t
            if t90 and n_live and t >= t90 + max(tail, t90):  # the slow tail: stop it
                st_a = st_a.masked_fill(live, STALLED)
                live = torch.zeros_like(live)
                n_live = 0
            need &= live
            if n_live < 0.75 * live.numel():  # write back the finished rows, compact the active set (and factors)
                write_back((~live).nonzero().squeeze(-1))
                keep = live.nonzero().squeeze(-1)
                idx, h_a, r_a, f_a, x_a, lam_a, it_a, st_a = (v[keep] for v in (idx, h_a, r_a, f_a, x_a, lam_a,
                                                                                 it_a, st_a))
                past, need, mat, piv, grad, flat_grad, fresh = (v[keep] for v in (past, need, mat, piv, grad,
                                                                                  flat_grad, fresh))
                live = live[keep]
            pos = need.nonzero().squeeze(-1)
            if pos.numel() == need.numel():  # every row: new factors outright, no scatter
                mat, piv, grad, flat_grad = refresh(None)
                fresh = torch.ones_like(fresh)
            elif pos.numel():
                mat[pos], piv[pos], grad[pos], flat_grad[pos] = refresh(pos)
                fresh[pos] = True
        st_a = torch.where(st_a == ACTIVE, torch.full_like(st_a, MAXITER), st_a)
        write_back(torch.arange(idx.numel(), device=dev))
    fol = (follow >= 0).nonzero().squeeze(-1)
    if fol.numel():  # followers take their leader's final outcome (leaders never follow, so no chains)
        lead = follow[fol]
        out_h[fol], out_f[fol], status[fol] = out_h[lead], out_f[lead], status[lead]
    return RootResult(points=out_h, residuals=out_f, status=status, iterations=iters, **counts)


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
