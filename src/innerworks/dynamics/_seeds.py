"""Seeding from found roots: Newton from the midpoints between certified fixed points reaches the saddles.

Why: starts drawn from visited states sit near the memories, so Newton from them certifies the stable points and
only the saddles some start happened to be near. A saddle of a multistable network sits between the attractors it
separates (on a flip-flop: midway between two memories one bit apart; a 2-unstable saddle between two such saddles;
the centre at the centroid), so each round starts Newton from the midpoints of near pairs of roots (each root with
its ``k`` nearest, closest pairs first, pairs touching a root new in the last round) plus, in the first round, the
centroid. A round costs at most ``cap`` starts, a quarter of the first pass by default, so the seeding keeps the
cost linear in the number of starts; the rounds stop when one finds nothing new. Roots that look like a continuum
(more than 64 distinct and more than an eighth of the certified starts) are not seeded from.

>>> import torch
>>> from innerworks.dynamics import _solver as S
>>> fn = lambda x, h: torch.tanh(2 * h)
>>> jac = lambda x, h: torch.diag_embed(2 * (1 - torch.tanh(2 * h) ** 2))
>>> starts = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)
>>> x = torch.zeros(4, 0, dtype=torch.float64)
>>> res = S.levenberg_marquardt(fn, jac, x, starts, tol=1e-10, max_iter=50, damping=1e-3)
>>> extra, _ = seed_from_roots(fn, jac, x, res, tol=1e-10, max_iter=50, damping=1e-3, unique_tol=1e-3)
>>> len(extra.points)  # the 4 one-bit saddles and the centre
5
"""

from __future__ import annotations

import torch

from innerworks.dynamics import _solver as S
from innerworks.dynamics._dedupe import near_pairs, nearest


def _distinct_roots(res: S.RootResult, x: torch.Tensor, unique_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    conv = (res.status == S.CONVERGED).nonzero().squeeze(-1)
    key = torch.cat([res.points[conv], x[conv]], dim=1)
    lead = conv[S.greedy_unique(key, res.residuals[conv], unique_tol)[0]] if conv.numel() else conv
    return res.points[lead], x[lead]


def seed_from_roots(map_fn: S.MapFn, jac_fn: S.MapFn, x: torch.Tensor, res: S.RootResult, *, tol: float,
                    max_iter: int, damping: float, unique_tol: float, rounds: int = 3, k: int = 6,
                    cap: int | None = None) -> tuple[S.RootResult, torch.Tensor]:
    """New roots (one certified row each) found from midpoints of the roots in ``res`` (rows' inputs ``x``).

    Returns the new rows (``RootResult``; possibly empty) and their inputs. Pairs only join roots of equal input.
    """
    roots_h, roots_x = _distinct_roots(res, x, max(unique_tol, 1e-12))
    n_conv = res.count(S.CONVERGED)
    if roots_h.shape[0] > max(64, n_conv // 8):  # a continuum (flat patch): midpoints would only add more of it
        rounds = 0
    cap = cap if cap is not None else max(64, res.points.shape[0] // 4)
    out_h, out_x, out_f, out_it = [], [], [], []
    counts = {"jacobians": 0, "factorizations": 0}
    new_from = 0
    for rnd in range(rounds):
        m = roots_h.shape[0]
        if m < 2:
            break
        pairs = near_pairs(torch.cat([roots_h, roots_x], dim=1), k)
        sel = (pairs.max(dim=1).values >= new_from) & (roots_x[pairs[:, 0]] == roots_x[pairs[:, 1]]).all(dim=1)
        pairs = pairs[sel][:cap]
        hs = 0.5 * (roots_h[pairs[:, 0]] + roots_h[pairs[:, 1]])
        xs = roots_x[pairs[:, 0]]
        if rnd == 0:
            same = (roots_x == roots_x[0]).all(dim=1)
            hs, xs = torch.cat([hs, roots_h[same].mean(0, keepdim=True)]), torch.cat([xs, roots_x[:1]])
        if hs.shape[0] == 0:
            break
        known = torch.cat([roots_h, roots_x], dim=1)
        r = S.levenberg_marquardt(map_fn, jac_fn, xs, hs, tol=tol, max_iter=max_iter, damping=damping,
                                  known=known, known_tol=unique_tol, merge_tol=unique_tol,
                                  **S.search_options(hs.shape[1]))
        counts["jacobians"] += r.jacobians
        counts["factorizations"] += r.factorizations
        conv = (r.status == S.CONVERGED).nonzero().squeeze(-1)
        key = torch.cat([r.points[conv], xs[conv]], dim=1)
        fresh = conv[nearest(key, known)[0] > unique_tol]
        if fresh.numel() == 0:
            break
        fkey = torch.cat([r.points[fresh], xs[fresh]], dim=1)
        fresh = fresh[S.greedy_unique(fkey, r.residuals[fresh], max(unique_tol, 1e-12))[0]]
        out_h.append(r.points[fresh])
        out_x.append(xs[fresh])
        out_f.append(r.residuals[fresh])
        out_it.append(r.iterations[fresh])
        new_from = m
        roots_h, roots_x = torch.cat([roots_h, r.points[fresh]]), torch.cat([roots_x, xs[fresh]])
    if not out_h:
        empty = res.points[:0]
        return S.RootResult(empty, res.residuals[:0], res.status[:0], res.iterations[:0], **counts), x[:0]
    pts = torch.cat(out_h)
    status = torch.full((pts.shape[0],), S.CONVERGED, dtype=res.status.dtype, device=pts.device)
    return S.RootResult(pts, torch.cat(out_f), status, torch.cat(out_it), **counts), torch.cat(out_x)


__all__ = ["seed_from_roots"]


def solve_and_seed(map_fn: S.MapFn, jac_fn: S.MapFn, x: torch.Tensor, h0: torch.Tensor, *, seed_rounds: int = 3,
                   **options: object) -> S.RootResult:
    """:func:`~innerworks.dynamics._solver.solve_roots` from every start, then ``seed_rounds`` of Newton from
    midpoints between the certified roots (with ``unique_tol > 0``), which reaches the saddles between attractors;
    each new root is appended as one certified row, its input in ``seed_inputs``."""
    res = S.solve_roots(map_fn, jac_fn, x, h0, **options)  # type: ignore[arg-type]
    unique_tol = float(options.get("unique_tol", 0.0))  # type: ignore[arg-type]
    if seed_rounds <= 0 or unique_tol <= 0:
        return res
    x_rows = torch.cat([x, x]) if options.get("mode") == "both" else x
    extra, x_extra = seed_from_roots(map_fn, jac_fn, x_rows, res, tol=options["tol"], max_iter=options["max_iter"],
                                     damping=options["damping"], unique_tol=unique_tol, rounds=seed_rounds)
    res = S.concat_results([res, extra])
    res.seed_inputs = x_extra
    return res
