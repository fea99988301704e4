"""The per-point Newton / Levenberg–Marquardt search of one chunk (:func:`levenberg_marquardt`), its result type and
status codes; :mod:`._solver` describes the whole search and re-exports all of them.

The search keeps a compact copy of the rows still running in :class:`_LMSearch`, whose methods are the stages of one
iteration: directions, backtracking, damping and the choice of factors for the next step, the stopping tests
(converged, stalled, near a known root, merged into a finished row), the slow-tail cut, compaction and refactorisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from innerworks.dynamics._dedupe import nearest

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



@dataclass(frozen=True)
class _Settings:
    """The tuning of one :func:`levenberg_marquardt` call (its keyword arguments, ``known`` aside)."""

    tol: float
    max_iter: int
    damping: float
    patience: int
    min_decrease: float
    newton_below: float
    known_tol: float
    chord_below: float
    line_search: tuple[float, ...]
    flat_window: int
    flat_decrease: float
    flat_gradient: float
    merge_tol: float
    tail: int
    factor_dtype: torch.dtype | None


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
    cfg = _Settings(tol=tol, max_iter=max_iter, damping=damping, patience=patience, min_decrease=min_decrease,
                    newton_below=newton_below, known_tol=known_tol, chord_below=chord_below, line_search=line_search,
                    flat_window=flat_window, flat_decrease=flat_decrease, flat_gradient=flat_gradient,
                    merge_tol=merge_tol, tail=tail, factor_dtype=factor_dtype)
    return _LMSearch(map_fn, jac_fn, x, h, known, cfg).run()


class _LMSearch:
    """One :func:`levenberg_marquardt` call: the outcome of every row (``out_h``, ``out_f``, ``status``, ``iters``)
    and a compact copy of the rows still being searched (the ``ROWS`` fields). On small states the cost is the number
    of tensor operations per iteration, not their size, so finished rows stay (masked by ``live``) until a quarter of
    the copy has finished, then are written back and dropped together (:meth:`keep`): moving the ``[a, S, S]``
    factors every iteration cost as much as factorising them."""

    # per active row: index into the outputs, point, residual vector and norm, input, LM damping (0: Newton),
    # iterations, status, the last ``patience`` norms (ring buffer; column 0 holds the start, inf = not yet reached),
    # whether to refactorise, ``mat`` (LU factors of J on Newton rows, JᵀJ on LM rows) with pivots, ``grad`` = Jᵀr,
    # whether q is flat there, whether the factors were taken at the current point, and whether the row still runs
    ROWS = ("idx", "h_a", "r_a", "f_a", "x_a", "lam_a", "it_a", "st_a", "past", "need", "mat", "piv", "grad",
            "flat_grad", "fresh", "live")

    def __init__(self, map_fn: MapFn, jac_fn: MapFn, x: torch.Tensor, h: torch.Tensor, known: torch.Tensor | None,
                 cfg: _Settings) -> None:
        self.map_fn, self.jac_fn, self.cfg = map_fn, jac_fn, cfg
        n, self.s = h.shape
        self.dev, self.dtype = h.device, h.dtype
        self.out_h = h.clone()
        r0, f0 = _residual(map_fn, x, self.out_h)
        self.out_f = f0
        self.status = torch.zeros(n, dtype=torch.int8, device=self.dev)
        self.status[~torch.isfinite(f0)] = NONFINITE
        self.status[f0 < cfg.tol] = CONVERGED
        self.iters = torch.zeros(n, dtype=torch.long, device=self.dev)
        self.idx = (self.status == ACTIVE).nonzero().squeeze(-1)
        self.counts = {"jacobians": 0, "factorizations": 0}
        if self.idx.numel():
            self._start(x, r0, f0, known)

    def _start(self, x: torch.Tensor, r0: torch.Tensor, f0: torch.Tensor, known: torch.Tensor | None) -> None:
        """The active copy of the unfinished rows, the known roots and the (empty) list of leaders."""
        cfg, s, dev, idx = self.cfg, self.s, self.dev, self.idx
        # one input for every row (the usual x*), and the known rows share it: distances on h alone, no [h, x] rows
        known_rows = known if known is not None and known.shape[0] > 0 else None
        const_x = x.shape[1] == 0 or bool((x == x[0]).all())
        if const_x and known_rows is not None and x.shape[1]:
            const_x = bool((known_rows[:, s:] == x[0]).all())
        if known_rows is not None and const_x:
            known_rows = known_rows[:, :s]
        self.known_rows, self.const_x = known_rows, const_x
        self.follow = torch.full((self.out_h.shape[0],), -1, dtype=torch.long, device=dev)  # merged into this row
        self.lead_ids = torch.zeros(0, dtype=torch.long, device=dev)  # rows that converged away from earlier roots
        self.lead_keys = self.key(self.out_h[:0], x[:0])
        self.lam_newton = cfg.damping * cfg.newton_below
        self.fdt = self.dtype if cfg.factor_dtype is None else cfg.factor_dtype
        self.alphas = torch.tensor(cfg.line_search, dtype=self.dtype, device=dev)
        self.h_a, self.r_a, self.f_a, self.x_a = self.out_h[idx], r0[idx], f0[idx], x[idx]
        self.a = a = idx.numel()  # rows at the start (the tail starts when 90% of them have finished)
        self.lam_a = torch.zeros(a, dtype=self.dtype, device=dev)
        self.it_a = torch.zeros(a, dtype=torch.long, device=dev)
        self.st_a = torch.zeros(a, dtype=torch.int8, device=dev)
        self.past = torch.full((a, cfg.patience), float("inf"), dtype=self.dtype, device=dev)
        self.past[:, 0] = self.f_a
        self.t90 = 0  # iteration at which 90% of the rows had finished (``tail``)
        self.n_lm = 0  # LM rows among the live ones (a Python count: the all-Newton iteration skips the LM branch)

    def key(self, hh: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return hh if self.const_x else torch.cat([hh, xx], dim=1)

    def run(self) -> RootResult:
        if self.idx.numel() == 0:
            return self.result()
        with torch.no_grad():
            self.mat, self.piv, self.grad, self.flat_grad = self.refresh(None)
            self.fresh = torch.ones(self.a, dtype=torch.bool, device=self.dev)
            self.live = torch.ones(self.a, dtype=torch.bool, device=self.dev)
            self.n_live = self.a
            for t in range(1, self.cfg.max_iter + 1):
                if self.n_live == 0:
                    break
                self.iterate(t)
            self.st_a = torch.where(self.st_a == ACTIVE, torch.full_like(self.st_a, MAXITER), self.st_a)
            self.write_back(torch.arange(self.idx.numel(), device=self.dev))
        fol = (self.follow >= 0).nonzero().squeeze(-1)
        if fol.numel():  # followers take their leader's final outcome (leaders never follow, so no chains)
            lead = self.follow[fol]
            self.out_h[fol], self.out_f[fol], self.status[fol] = self.out_h[lead], self.out_f[lead], self.status[lead]
        return self.result()

    def result(self) -> RootResult:
        return RootResult(points=self.out_h, residuals=self.out_f, status=self.status, iterations=self.iters,
                          **self.counts)

    def iterate(self, t: int) -> None:
        """Iteration ``t`` of every live row."""
        delta, newton, cand = self.directions()
        h_try, r_try, f_try = self.backtrack(delta, cand)
        acc = self.live & (f_try < self.f_a)
        f_old = self.f_a
        acc_c = acc.unsqueeze(-1)
        self.h_a = torch.where(acc_c, h_try, self.h_a)
        self.r_a = torch.where(acc_c, r_try, self.r_a)
        self.f_a = torch.where(acc, f_try, f_old)
        self.it_a.add_(self.live)
        to_lm = self.plan(acc, f_try, f_old, newton)
        self.stop(t)
        if self.n_lm or newton is None and bool(to_lm.any()):
            self.n_lm = int((self.live & (self.lam_a != 0)).sum())
        self.cut_tail(t)
        if self.n_live < 0.75 * self.live.numel():  # write back the finished rows, compact the active set (and factors)
            self.write_back((~self.live).nonzero().squeeze(-1))
            self.keep(self.live.nonzero().squeeze(-1))
        self.refactor()

    def directions(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Steps: Newton from the kept factors (chord or fresh), LM on LM rows; also the Newton rows (None: all) and
        the rows whose step may be backtracked."""
        fdt, dtype = self.fdt, self.dtype
        delta = torch.linalg.lu_solve(self.mat, self.piv, -self.r_a.to(fdt).unsqueeze(-1)).squeeze(-1).to(dtype)
        if self.n_lm:
            newton = self.lam_a == 0
            lm = (~newton & self.live).nonzero().squeeze(-1)
            delta[lm] = _lm_directions(self.mat[lm], self.grad[lm].to(fdt), self.lam_a[lm].to(fdt))[0].to(dtype)
            cand = self.fresh | ~newton
        else:
            newton, cand = None, self.fresh
        # a non-finite direction becomes a zero step, which cannot lower the residual and so is rejected
        return torch.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0), newton, cand

    def backtrack(self, delta: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The trial points with their residuals: the full steps, except that steps from fresh factors (Newton) and
        LM steps that missed the Armijo decrease take the best fraction in ``line_search`` if it does better (both
        directions descend q; near a slow point the full step overshoots its minimum by orders of magnitude)."""
        h_try = self.h_a + delta
        r_try, f_try = _residual(self.map_fn, self.x_a, h_try)
        ls = cand & self.live & (f_try > (1 - 1e-4) * self.f_a)  # residuals are never NaN (inf instead)
        li = ls.nonzero().squeeze(-1)
        alphas = self.alphas
        if li.numel() and alphas.numel():
            m, k = li.numel(), alphas.numel()
            hb = (self.h_a[li].unsqueeze(0) + alphas.view(k, 1, 1) * delta[li].unsqueeze(0)).reshape(k * m, -1)
            rb, fb = _residual(self.map_fn, self.x_a[li].repeat(k, 1), hb)
            best_f, best = fb.view(k, m).min(dim=0)
            better = best_f < f_try[li]
            sel = (best * m + torch.arange(m, device=self.dev))[better]
            lb = li[better]
            h_try[lb], r_try[lb], f_try[lb] = hb[sel], rb[sel], fb[sel]
        return h_try, r_try, f_try

    def plan(self, acc: torch.Tensor, f_try: torch.Tensor, f_old: torch.Tensor,
             newton: torch.Tensor | None) -> torch.Tensor:
        """What each row uses next: chord (keep the factors), fresh factors, or LM (with its damping); returns the
        rows that switch from Newton to LM."""
        fresh, live = self.fresh, self.live
        need = (acc & (f_try > self.cfg.chord_below * f_old)) | ~(acc | fresh)  # slow contraction / failed chord step
        to_lm = fresh & ~acc & live  # a Newton step from fresh factors failed even when backtracked
        lam_a = self.lam_a
        if newton is not None:
            need &= newton
            to_lm &= newton
            lm_acc = ~newton & acc
            la = lam_a / 3.0
            lam_a = torch.where(lm_acc, torch.where(la < self.lam_newton, torch.zeros_like(la), la), lam_a)
            lam_a = torch.where(~newton & ~acc & live, (lam_a * 8.0).clamp_max(1e30), lam_a)
            need |= lm_acc
        self.lam_a = lam_a.masked_fill(to_lm, self.cfg.damping)
        need |= to_lm
        self.need = need
        self.fresh = fresh & ~acc
        return to_lm

    def stop(self, t: int) -> None:
        """Stopping: converged, stalled, near a known root, or merged into a finished row."""
        cfg, live, f_a, past = self.cfg, self.live, self.f_a, self.past
        slot = t % cfg.patience
        stalled = f_a >= cfg.min_decrease * past[:, slot]  # too small a cut over the window (never NaN)
        if t >= cfg.flat_window:
            stalled |= (f_a >= cfg.flat_decrease * past[:, (t - cfg.flat_window) % cfg.patience]) & self.flat_grad
        past[:, slot] = f_a
        if self.known_rows is not None:
            stalled |= nearest(self.key(self.h_a, self.x_a), self.known_rows)[0] <= cfg.known_tol
        conv = live & (f_a < cfg.tol)
        stalled &= live & ~conv
        done = conv | stalled
        if cfg.merge_tol > 0 and self.lead_ids.numel():
            conv, done = self.merge(conv, stalled, done)
        self.st_a = self.st_a.masked_fill(conv, CONVERGED).masked_fill(stalled, STALLED)
        if cfg.merge_tol > 0:
            new_lead = conv.nonzero().squeeze(-1)  # converged on their own, away from earlier roots
            if new_lead.numel():
                self.lead_ids = torch.cat([self.lead_ids, self.idx[new_lead]])
                self.lead_keys = torch.cat([self.lead_keys, self.key(self.h_a[new_lead], self.x_a[new_lead])])
        self.live = live & ~done
        self.n_live = int(self.live.sum())

    def merge(self, conv: torch.Tensor, stalled: torch.Tensor,
              done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows within ``merge_tol`` of a leader stop and follow it (rows that converged next to an earlier root
        too: they take its exact point, one leader per root); returns the new leaders' candidates and the done rows."""
        dist, near = nearest(self.key(self.h_a, self.x_a), self.lead_keys)
        hit = (self.live & ~stalled) & (dist <= self.cfg.merge_tol)
        hi = hit.nonzero().squeeze(-1)
        if hi.numel():
            self.follow[self.idx[hi]] = self.lead_ids[near[hi]]
            conv = conv & ~hit  # leaders are converged rows; the follower takes its leader's point at the end
            done |= hit
            self.st_a[hi] = CONVERGED
        return conv, done

    def cut_tail(self, t: int) -> None:
        """The slow tail: rows still running ``max(tail, t90)`` iterations after 90% of the rows finished stop."""
        tail = self.cfg.tail
        if tail and self.t90 == 0 and self.n_live <= 0.1 * self.a:
            self.t90 = t
        if self.t90 and self.n_live and t >= self.t90 + max(tail, self.t90):
            self.st_a = self.st_a.masked_fill(self.live, STALLED)
            self.live = torch.zeros_like(self.live)
            self.n_live = 0
        self.need &= self.live

    def write_back(self, rows: torch.Tensor) -> None:
        ids = self.idx[rows]
        self.out_h[ids], self.out_f[ids] = self.h_a[rows], self.f_a[rows]
        self.status[ids], self.iters[ids] = self.st_a[rows], self.it_a[rows]

    def keep(self, rows: torch.Tensor) -> None:
        """Compaction: every per-row tensor of the active copy, re-indexed to ``rows`` at once."""
        for name in self.ROWS:
            setattr(self, name, getattr(self, name)[rows])

    def refactor(self) -> None:
        """New factors (and ``Jᵀr``) on the rows that need them."""
        pos = self.need.nonzero().squeeze(-1)
        if pos.numel() == self.need.numel():  # every row: new factors outright, no scatter
            self.mat, self.piv, self.grad, self.flat_grad = self.refresh(None)
            self.fresh = torch.ones_like(self.fresh)
        elif pos.numel():
            self.mat[pos], self.piv[pos], self.grad[pos], self.flat_grad[pos] = self.refresh(pos)
            self.fresh[pos] = True

    def refresh(self, rows: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """At ``h_a[rows]`` (all rows: None): LU factors and pivots of J (Newton rows), ``JᵀJ`` (LM rows),
        ``g = Jᵀr`` and whether ``‖Jᵀr‖ < flat_gradient · ‖J‖_F ‖r‖`` (q is flat there)."""
        s = self.s
        hh, xx, rr, lr = ((self.h_a, self.x_a, self.r_a, self.lam_a) if rows is None else
                          (self.h_a[rows], self.x_a[rows], self.r_a[rows], self.lam_a[rows]))
        jac = _jac_g(self.jac_fn, xx, hh)
        # Jᵀr: on small states a broadcast product beats bmm's per-matrix overhead
        g = (jac * rr.unsqueeze(-1)).sum(1) if s <= 32 else torch.bmm(jac.transpose(1, 2), rr.unsqueeze(-1)).squeeze(-1)
        flat = g.norm(dim=-1) < self.cfg.flat_gradient * (jac.flatten(1).norm(dim=-1) * rr.norm(dim=-1))
        jac = jac.to(self.fdt)
        self.counts["jacobians"] += hh.shape[0]
        nw = lr == 0
        n_nw = hh.shape[0] if self.n_lm == 0 else int(nw.sum())
        if n_nw == hh.shape[0]:
            jac, piv, _ = torch.linalg.lu_factor_ex(jac)
        else:
            # identity pivots on LM rows keep the all-rows triangular solve valid (its result there is discarded)
            piv = torch.arange(1, s + 1, dtype=torch.int32, device=self.dev).expand(hh.shape[0], s).clone()
            lm = ~nw
            jl = jac[lm]
            if n_nw:
                jac[nw], piv[nw], _ = torch.linalg.lu_factor_ex(jac[nw])
            jac[lm] = torch.bmm(jl.transpose(1, 2), jl)
        self.counts["factorizations"] += n_nw
        return jac, piv, g, flat


__all__ = ["ACTIVE", "CONVERGED", "LINE_SEARCH", "MAXITER", "NONFINITE", "STALLED", "STATUS_NAMES", "MapFn",
           "RootResult", "levenberg_marquardt"]
