"""Manifold geometry of hidden states or fixed points, and readout geometry.

Dimension measures (the paper's set; integration notes §3):

- :func:`pca_dimension`: PCA variance profile, the number of PCs reaching each variance threshold (90%, 95%), and the
  participation ratio ``PR = (Σλ)² / Σλ²``;
- :func:`participation_ratio`; :func:`local_participation_ratio`: PR of the k nearest neighbours of random centres,
  averaged;
- :func:`levina_bickel`: maximum-likelihood intrinsic dimension from k-NN distances (Levina & Bickel 2005);
- :func:`correlation_dimension`: Grassberger–Procaccia, the log-log slope of the correlation sum C(r) between the
  2.5th and 97.5th percentiles of the pairwise distances.

Readout geometry: :func:`readout_angles` (pairwise angles against the regular-simplex angle ``arccos(−1/(N−1))``) and
:func:`span_fraction` (the fraction of each readout vector lying in the span of the others: 1 for a simplex, whose
readouts sum to 0).

Measure the manifold on the fixed (or slow) points: all visited states include transients and are far from
low-dimensional (integration notes §8).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> plane = torch.randn(500, 2, generator=g) @ torch.randn(2, 10, generator=g)   # a 2-D plane in 10-D
>>> pca_dimension(plane).dimensions, round(levina_bickel(plane, k=20), 1)
({0.9: 2, 0.95: 2}, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from innerworks.errors import InnerworksError


def _matrix(x: torch.Tensor, name: str = "X", min_rows: int = 2) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() == 3:
        x = x.reshape(-1, x.shape[-1])
    if x.dim() != 2:
        raise InnerworksError(f"{name} must be [N, D] (or [B, T, D]), got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise InnerworksError(f"{name} needs at least {min_rows} points, got {x.shape[0]}")
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise InnerworksError(f"{name} contains NaN or inf")
    return x


def pca_variances(x: torch.Tensor) -> torch.Tensor:
    """PCA variances (eigenvalues of the covariance), descending, ``[min(N, D)]``.

    >>> pca_variances(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])).round(decimals=6).tolist()
    [1.0, 0.0]
    """
    x = _matrix(x)
    xc = x - x.mean(dim=0)
    s = torch.linalg.svdvals(xc)
    return s**2 / max(x.shape[0] - 1, 1)


def _pr(var: torch.Tensor) -> float:
    tot = float(var.sum())
    return 0.0 if tot <= 0 else tot**2 / float((var**2).sum())


def participation_ratio(x: torch.Tensor) -> float:
    """``(Σλ)² / Σλ²`` of the PCA variances: ~k for k equal directions.

    >>> participation_ratio(torch.eye(3).repeat(10, 1))
    2.0
    """
    return _pr(pca_variances(x))


@dataclass
class PCAResult:
    """PCA of a point cloud.

    Attributes:
        explained: fraction of variance per PC, descending ``[min(N, D)]``.
        dimensions: ``{threshold: number of PCs whose cumulative variance reaches it}``.
        participation_ratio: ``(Σλ)² / Σλ²``.
    """

    explained: torch.Tensor
    dimensions: dict[float, int]
    participation_ratio: float

    def summary(self, top: int = 5) -> str:
        dims = ", ".join(f"{int(round(t * 100))}%: {d}" for t, d in self.dimensions.items())
        head = ", ".join(f"{v:.3f}" for v in self.explained[:top].tolist())
        return f"PCA dims ({dims}); PR {self.participation_ratio:.2f}; top PCs [{head}]"


def pca_dimension(x: torch.Tensor, thresholds: Sequence[float] = (0.9, 0.95)) -> PCAResult:
    """Number of PCs needed to reach each variance threshold, the variance profile and the participation ratio.

    >>> r = pca_dimension(torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]))
    >>> r.dimensions, r.participation_ratio
    ({0.9: 2, 0.95: 2}, 2.0)
    """
    var = pca_variances(x)
    tot = float(var.sum())
    if tot <= 0:
        raise InnerworksError("all points are identical: PCA dimension is undefined")
    explained = var / tot
    cum = torch.cumsum(explained, 0)
    dims = {}
    for t in thresholds:
        if not 0 < t <= 1:
            raise InnerworksError(f"variance thresholds must be in (0, 1], got {t}")
        # small slack so that e.g. exactly 90.0% counts as reaching 0.9
        dims[float(t)] = int((cum < t - 1e-12).sum()) + 1
    return PCAResult(explained, {k: min(v, len(var)) for k, v in dims.items()}, _pr(var))


def _sample(n: int, k: int, generator: torch.Generator | None) -> torch.Tensor:
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return torch.randperm(n, generator=gen)[:k]


def local_participation_ratio(x: torch.Tensor, k: int = 50, n_centres: int = 20,
                              generator: torch.Generator | None = None) -> float:
    """Mean PR of the ``k`` nearest neighbours (centre included) of ``n_centres`` random points.

    The paper's setting uses ``k = 50·N`` neighbours for N classes and 20 centres.

    >>> t = torch.linspace(0, 6.28, 400)
    >>> circle = torch.stack([t.cos(), t.sin()], 1)
    >>> round(local_participation_ratio(circle, k=10), 2)    # locally a curve: ~1
    1.0
    """
    x = _matrix(x)
    k = min(int(k), x.shape[0])
    if k < 2:
        raise InnerworksError(f"local PR needs k >= 2 neighbours, got {k}")
    centres = _sample(x.shape[0], min(n_centres, x.shape[0]), generator)
    d = torch.cdist(x[centres], x)
    nn_idx = d.topk(k, largest=False).indices
    return sum(participation_ratio(x[i]) for i in nn_idx) / len(nn_idx)


def levina_bickel(x: torch.Tensor, k: int = 20, average: str = "inverse") -> float:
    """Levina–Bickel maximum-likelihood intrinsic dimension with ``k`` neighbours.

    Per point, ``m_k(x) = [ (1/(k−1)) Σ_{j<k} log(T_k(x)/T_j(x)) ]⁻¹`` with ``T_j`` the distance to the j-th
    neighbour. ``average="inverse"`` (default) combines points as ``1 / mean(1/m_k(x))``, MacKay & Ghahramani's
    correction, which removes most of the upward bias of ``average="mean"`` (Levina & Bickel's plain mean of
    ``m_k(x)``; on a 2-D Gaussian plane with k = 20 it gives 2.16 instead of 2.01). Duplicate points are removed.

    >>> g = torch.Generator().manual_seed(1)
    >>> round(levina_bickel(torch.rand(2000, 3, generator=g), k=20), 1)
    2.9
    """
    if average not in ("inverse", "mean"):
        raise InnerworksError(f"average must be 'inverse' or 'mean', got {average!r}")
    x = _matrix(x)
    x = torch.unique(x, dim=0)
    if k < 2:
        raise InnerworksError(f"Levina–Bickel needs k >= 2, got {k}")
    if x.shape[0] <= k:
        raise InnerworksError(f"Levina–Bickel with k={k} needs more than {k} distinct points, got {x.shape[0]}")
    inv = []  # 1 / m_k(x) per point
    for s in range(0, x.shape[0], 2048):
        d = torch.cdist(x[s:s + 2048], x).topk(k + 1, largest=False).values[:, 1:]  # drop self
        inv.append(torch.log(d[:, -1:] / d[:, :-1]).sum(dim=1) / (k - 1))
    t = torch.cat(inv)
    return float(1.0 / t.mean()) if average == "inverse" else float((1.0 / t).mean())


def correlation_dimension(x: torch.Tensor, low: float = 2.5, high: float = 97.5, n_radii: int = 20,
                          max_points: int = 2000, generator: torch.Generator | None = None) -> float:
    """Grassberger–Procaccia correlation dimension: slope of ``log C(r)`` vs ``log r``.

    ``C(r)`` is the fraction of point pairs closer than ``r``; the slope is a least-squares fit over ``n_radii``
    log-spaced radii between the ``low`` and ``high`` percentiles of the pairwise distances (the paper's range). At
    most ``max_points`` points are used (a seeded subsample). The wide default range reaches radii where C(r)
    saturates, so bounded sets read low (a uniform square: 1.6); a narrower range (``high=20``) reads closer to the
    true dimension.

    >>> g = torch.Generator().manual_seed(0)
    >>> square = torch.rand(1500, 2, generator=g)
    >>> round(correlation_dimension(square), 1), round(correlation_dimension(square, low=1, high=20), 1)
    (1.6, 1.9)
    """
    x = _matrix(x)
    if x.shape[0] > max_points:
        x = x[_sample(x.shape[0], max_points, generator)]
    d = torch.pdist(x)
    d = d[d > 0]
    if d.numel() < 10:
        raise InnerworksError("correlation dimension needs at least 10 distinct pairwise distances")
    ds = torch.sort(d).values
    lo, hi = (float(ds[int(round(q / 100 * (ds.numel() - 1)))]) for q in (low, high))
    if not hi > lo > 0:
        raise InnerworksError("correlation dimension: the percentile radii are degenerate")
    radii = torch.logspace(math.log10(lo), math.log10(hi), n_radii, dtype=torch.float64)
    c = torch.searchsorted(ds, radii).to(torch.float64) / ds.numel()
    lr, lc = radii.log(), c.clamp_min(1e-300).log()
    lr, lc = lr - lr.mean(), lc - lc.mean()
    return float((lr * lc).sum() / (lr * lr).sum())


def centroid_distance_ratio(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Each point's distance from the centroid of ``reference``, over the reference points' mean such distance.

    FixedPointFinder's outlier rule keeps fixed points with a ratio of at most 10 (relative to the starts); far
    beyond the visited states (e.g. saturated gates, where every state is slow) no trajectory goes.

    >>> import torch
    >>> ref = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> centroid_distance_ratio(torch.tensor([[0.0, 0.0], [0.0, 3.0]]), ref).tolist()
    [0.0, 3.0]
    """
    centre = reference.mean(0)
    radius = (reference - centre).norm(dim=1).mean()
    return (points.to(reference.dtype) - centre).norm(dim=1) / radius


def simplex_angle(n: int) -> float:
    """The angle between vertices of a regular simplex with ``n`` vertices, seen from its centre, in degrees.

    >>> round(simplex_angle(3), 2), round(simplex_angle(4), 2)
    (120.0, 109.47)
    """
    if n < 2:
        raise InnerworksError(f"a simplex needs at least 2 vertices, got {n}")
    return math.degrees(math.acos(-1.0 / (n - 1)))


@dataclass
class ReadoutGeometry:
    """Pairwise readout angles compared with the regular simplex.

    Attributes:
        angles: ``[C, C]`` degrees (diagonal 0).
        simplex_angle: ``arccos(−1/(C−1))`` in degrees.
        deviation: mean ``|angle − simplex_angle|`` over pairs, degrees.
        span_fraction: ``[C]``, see :func:`span_fraction`.
    """

    angles: torch.Tensor
    simplex_angle: float
    deviation: float
    span_fraction: torch.Tensor

    def summary(self) -> str:
        c = self.angles.shape[0]
        iu = torch.triu_indices(c, c, 1)
        pairs = ", ".join(f"{a:.1f}" for a in self.angles[iu[0], iu[1]].tolist())
        spans = ", ".join(f"{s:.3f}" for s in self.span_fraction.tolist())
        return (f"readout angles [{pairs}] deg vs simplex {self.simplex_angle:.2f} "
                f"(mean |dev| {self.deviation:.2f}); span fractions [{spans}]")


def span_fraction(w: torch.Tensor) -> torch.Tensor:
    """For each row ``w_i``, ``‖P w_i‖ / ‖w_i‖`` with P the projection onto the span of the other rows.

    >>> w = torch.tensor([[1.0, 0.0], [-0.5, 0.866], [-0.5, -0.866]])   # a 3-class simplex
    >>> [round(v, 3) for v in span_fraction(w).tolist()]
    [1.0, 1.0, 1.0]
    >>> span_fraction(torch.eye(2)).tolist()
    [0.0, 0.0]
    """
    w = _matrix(w, "readout", min_rows=2)
    out = []
    for i in range(w.shape[0]):
        others = torch.cat([w[:i], w[i + 1:]])
        q, r = torch.linalg.qr(others.T)
        keep = r.diagonal().abs() > 1e-10 * max(float(r.abs().max()), 1e-300)
        q = q[:, keep]
        proj = q @ (q.T @ w[i])
        out.append(float(proj.norm() / w[i].norm().clamp_min(1e-300)))
    return torch.tensor(out, dtype=torch.float64)


def readout_angles(w: torch.Tensor) -> ReadoutGeometry:
    """Pairwise angles between readout rows ``w [C, S]`` (e.g. ``model.readout.weight``) and their simplex distance.

    >>> w = torch.tensor([[1.0, 0.0], [-0.5, 0.75 ** 0.5], [-0.5, -0.75 ** 0.5]])
    >>> g = readout_angles(w)
    >>> round(g.simplex_angle, 1), round(g.deviation, 3)
    (120.0, 0.0)
    """
    w = _matrix(w, "readout", min_rows=2)
    wn = w / w.norm(dim=1, keepdim=True).clamp_min(1e-300)
    cos = (wn @ wn.T).clamp(-1.0, 1.0)
    ang = torch.rad2deg(torch.arccos(cos))
    ang.fill_diagonal_(0.0)
    c = w.shape[0]
    iu = torch.triu_indices(c, c, 1)
    sa = simplex_angle(c)
    dev = float((ang[iu[0], iu[1]] - sa).abs().mean())
    return ReadoutGeometry(ang, sa, dev, span_fraction(w))


__all__ = [
    "centroid_distance_ratio",
    "PCAResult",
    "ReadoutGeometry",
    "correlation_dimension",
    "levina_bickel",
    "local_participation_ratio",
    "participation_ratio",
    "pca_dimension",
    "pca_variances",
    "readout_angles",
    "simplex_angle",
    "span_fraction",
]
