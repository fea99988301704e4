"""Nearest-point queries in bounded memory (the solver's merge tests and the root seeding), and the greedy
deduplication of the points found.

Why: ``torch.cdist(a, b).min(1)`` materialises ``[len(a), len(b)]``; with 16,384 starts that all converge to distinct
points (a flat patch of fixed points) it is 2 GiB of float64. :func:`nearest` walks ``a`` in blocks so the largest
temporary holds at most ``budget`` distances, whatever the sizes: memory O(len(a) + len(b) + budget), time
O(len(a)·len(b)·dim) as before.

>>> import torch
>>> a = torch.tensor([[0.0, 0.0], [3.0, 4.0]]); b = torch.tensor([[0.0, 1.0], [3.0, 3.0], [9.0, 9.0]])
>>> dist, idx = nearest(a, b, budget=2)
>>> dist.tolist(), idx.tolist()
([1.0, 1.0], [0, 1])
"""

from __future__ import annotations

import numpy as np
import torch

BUDGET = 1 << 22
"""Distances held at once (4M: 32 MiB of float64)."""


def nearest(a: torch.Tensor, b: torch.Tensor, budget: int = BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from each row of ``a`` to its nearest row of ``b`` and that row's index (``inf``/-1 if ``b`` is
    empty), computed ``max(1, budget // len(b))`` rows of ``a`` at a time."""
    n = a.shape[0]
    if b.shape[0] == 0 or n == 0:
        return (torch.full((n,), float("inf"), dtype=a.dtype, device=a.device),
                torch.full((n,), -1, dtype=torch.long, device=a.device))
    block = max(1, budget // b.shape[0])
    if block >= n:  # one block (the usual case): no concatenation
        d, i = torch.cdist(a, b).min(dim=1)
        return d, i
    dists, idxs = [], []
    for s in range(0, n, block):
        d, i = torch.cdist(a[s:s + block], b).min(dim=1)
        dists.append(d)
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def near_pairs(points: torch.Tensor, k: int, budget: int = BUDGET) -> torch.Tensor:
    """Pairs ``[P, 2]`` (``i < j``) of each point with its ``k`` nearest others, closest pairs first, in blocks of
    at most ``budget`` distances."""
    m = points.shape[0]
    k = min(k, m - 1)
    if k < 1:
        return torch.zeros(0, 2, dtype=torch.long, device=points.device)
    block = max(1, budget // m)
    rows, cols, dist = [], [], []
    for s in range(0, m, block):
        d = torch.cdist(points[s:s + block], points)
        d[torch.arange(d.shape[0]), torch.arange(s, s + d.shape[0])] = float("inf")
        dv, di = d.topk(k, dim=1, largest=False)
        rows.append(torch.arange(s, s + d.shape[0], device=points.device).unsqueeze(1).expand(-1, k).reshape(-1))
        cols.append(di.reshape(-1))
        dist.append(dv.reshape(-1))
    i, j, dd = torch.cat(rows), torch.cat(cols), torch.cat(dist)
    lo, hi = torch.minimum(i, j), torch.maximum(i, j)
    order = torch.argsort(dd, stable=True)
    lo, hi = lo[order], hi[order]
    uniq, inv = torch.unique(lo * m + hi, return_inverse=True)
    pos = torch.arange(lo.shape[0], device=points.device)
    first = torch.full((uniq.numel(),), lo.shape[0], dtype=torch.long, device=points.device)
    first.scatter_reduce_(0, inv, pos, reduce="amin")  # each pair once, at its first (closest) occurrence
    keep = torch.sort(first).values
    return torch.stack([lo[keep], hi[keep]], dim=1)


def greedy_unique(points: torch.Tensor, order_key: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Leader clustering: visit points by ascending ``order_key``; keep one unless it lies within ``tol`` (Euclidean)
    of a kept point. Returns the kept indices and, for each, how many points it absorbed (itself included).

    Rows that are exact copies (starts merged into a root carry its point) are grouped first, so the loop runs over
    distinct rows only; the result is the same as visiting every row.

    >>> pts = torch.tensor([[0.0], [5.0], [0.0], [0.5], [5.0]])
    >>> keep, counts = greedy_unique(pts, torch.tensor([1.0, 0.0, 1.0, 2.0, 0.0]), tol=0.6)
    >>> keep.tolist(), counts.tolist()
    ([1, 0], [2, 3])
    """
    n = points.shape[0]
    dev = points.device
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=dev)
        return empty, empty
    order = torch.argsort(order_key, stable=True)
    rows, weight = order, None
    if n > 1 and points.shape[1]:
        # exact copies have equal projections; a projection shared by unequal rows fails the check below
        proj = points @ torch.linspace(1.0, 2.0 ** 0.5, points.shape[1], dtype=points.dtype, device=dev)
        _, inv = torch.unique(proj, return_inverse=True)
        g = int(inv.max()) + 1
        if g < n:
            rank = torch.empty_like(order)
            rank[order] = torch.arange(n, device=dev)
            first = torch.full((g,), n, dtype=torch.long, device=dev).scatter_reduce_(0, inv, rank, reduce="amin")
            rep = order[first]  # each group's first row in visiting order
            if torch.equal(points, points[rep[inv]]):
                by_visit = torch.argsort(first)
                rows, weight = rep[by_visit], torch.bincount(inv, minlength=g)[by_visit]
    pts = points[rows].detach().cpu().double().numpy()
    w = np.ones(rows.numel(), dtype=np.int64) if weight is None else weight.cpu().numpy()
    remaining = np.arange(rows.numel())
    kept, counts = [], []
    while remaining.size:
        lead = remaining[0]
        close = np.sqrt(((pts[remaining] - pts[lead]) ** 2).sum(axis=1)) <= tol
        kept.append(lead)
        counts.append(int(w[remaining[close]].sum()))
        remaining = remaining[~close]
    return rows[torch.as_tensor(kept, dtype=torch.long, device=dev)], torch.tensor(counts, dtype=torch.long,
                                                                                  device=dev)


__all__ = ["BUDGET", "greedy_unique", "near_pairs", "nearest"]
