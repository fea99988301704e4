"""The attractor manifold of a trained classifier and the statistics that read its dimension (integration issue 12).

The manifold's points are approximate fixed points (the authors' slow points, co-author protocol): starts are
visited states plus Gaussian noise, the input is zero (no word), ``q(h) = ½‖F(h) − h‖²`` is minimised jointly with
Adam until the batch mean of q is at most ``speed_tol`` (renn's "speed" is this q), points whose own q is above the
tolerance are dropped, and so are points beyond the outlier distance. Exact roots are few on trained text
classifiers and never decide a dimension (they are reported apart, with their stability).

Statistics of the manifold points (every one from their PCA around their mean):

- :func:`participation_ratio` ``(Σλ)² / Σλ²`` of the PCA eigenvalues;
- :func:`readout_r2_curve` / :func:`readout_dimension` ``d_read``: project each final state onto the affine
  subspace through the mean spanned by the top n PCs, re-read the logits, and take the smallest n whose logits keep
  at least 95% of the variance of the full logits (R², logits centred over the test set). It asks how many
  manifold directions the readout needs, which the 95%-variance count cannot: a thin but wide cloud passes PCA's
  variance count with extra dimensions the readout never uses;
- :func:`accuracy_by_dimension` the co-author's test: accuracy when final states are restricted to the top n PCs;
- :func:`slow_mode_counts` the number of modes whose time constant ``τ = −1/log|λ|`` is at least a document.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> pts = torch.randn(300, 2, generator=g) @ torch.tensor([[3.0, 0, 0, 0], [0, 1.0, 0, 0]])   # a 2-D plane in 4-D
>>> mean, comps, var = pca_basis(pts)
>>> w = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])                     # the readout reads both directions
>>> states = torch.randn(100, 4, generator=g)
>>> curve = readout_r2_curve(states, mean, comps, w, None, 3)
>>> readout_dimension(curve), round(participation_ratio(var), 2) < 2
(2, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from innerworks.dynamics.geometry import centroid_distance_ratio, levina_bickel
from innerworks.dynamics.slow_points import SlowMethod, SlowPoints, find_slow_points
from innerworks.errors import InnerworksError

R2_MIN = 0.95  # the readout dimension's criterion (issue 12): projected logits keep >= 95% of the variance


def find_manifold_points(step: Any, states: torch.Tensor, *, n_starts: int, noise: float, speed_tol: float,
                         outlier_scale: float, lr: float = 0.01, max_iters: int = 10_000, unique_tol: float = 0.0,
                         batch_size: int = 1024, seed: int = 0,
                         method: SlowMethod | str = SlowMethod.ADAM) -> tuple[SlowPoints, dict[str, Any]]:
    """Approximate fixed points at zero input from ``n_starts`` visited states plus N(0, noise²) noise.

    Joint Adam descent of q (stopping when the batch mean q ≤ ``speed_tol``), points with q above it dropped, then
    points farther than ``outlier_scale`` × the states' mean distance from their centroid dropped (no trajectory
    goes there). ``method="gauss_newton"`` descends each point with Gauss–Newton instead of Adam (same tolerance
    and starts, 10-50x faster, every start converged; :class:`~innerworks.dynamics.SlowMethod`). Returns the kept
    points and a record (starts, kept, dropped as slow-but-far, as not converged).

    >>> from innerworks.dynamics.toys import line_attractor
    >>> sp, rec = find_manifold_points(line_attractor(size=3, decay=0.5), torch.randn(50, 3), n_starts=40,
    ...                                noise=0.1, speed_tol=1e-8, outlier_scale=10.0)
    >>> rec["n_kept"] == len(sp) > 10
    True
    """
    if states.dim() != 2 or states.shape[0] == 0:
        raise InnerworksError(f"find_manifold_points: expected visited states [N, S] with N >= 1, got "
                              f"{tuple(states.shape)}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(states.shape[0], (n_starts,), generator=gen) if n_starts > states.shape[0] else \
        torch.randperm(states.shape[0], generator=gen)[:n_starts]
    starts = states[idx].double()
    starts = starts + noise * torch.randn(starts.shape, generator=gen, dtype=starts.dtype)
    sp = find_slow_points(step, starts, q_tol=speed_tol, lr=lr, max_iters=max_iters, unique_tol=unique_tol,
                          stop="mean", batch_size=batch_size, method=method)
    near = centroid_distance_ratio(sp.points, states.double()) <= outlier_scale if len(sp) else \
        torch.zeros(0, dtype=torch.bool)
    kept = SlowPoints(sp.points[near], sp.speeds[near], sp.multiplicity[near], sp.q_tol, dict(sp.meta))
    record = {"n_starts": n_starts, "noise": noise, "speed_tol": speed_tol, "n_converged": sp.meta["n_converged"],
              "n_not_converged": sp.meta["n_not_converged"], "n_outliers": int((~near).sum()),
              "n_kept": len(kept), "iterations": sp.meta["iterations"], "outlier_scale": outlier_scale,
              "input": "zero vector (no word)", "method": sp.meta["method"]}
    return kept, record


def pca_basis(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean ``[S]``, principal directions ``[r, S]`` (rows) and PCA eigenvalues ``[r]`` of ``points [N, S]``."""
    if points.dim() != 2 or points.shape[0] < 2:
        raise InnerworksError(f"pca_basis: need at least 2 points [N, S], got {tuple(points.shape)}")
    x = points.double()
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    return mean, vh, s**2 / (x.shape[0] - 1)


def participation_ratio(eigenvalues: torch.Tensor) -> float:
    """``(Σλ)² / Σλ²`` of PCA eigenvalues: k for k equal directions, between 1 and k for unequal ones.

    >>> participation_ratio(torch.tensor([1.0, 1.0, 0.0]))
    2.0
    """
    lam = eigenvalues.double().clamp_min(0)
    tot = float(lam.sum())
    return 0.0 if tot <= 0 else tot**2 / float((lam**2).sum())


def _logits(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    out = states.double() @ weight.double().T
    return out if bias is None else out + bias.double()


def project(states: torch.Tensor, mean: torch.Tensor, comps: torch.Tensor, n: int) -> torch.Tensor:
    """``states`` projected onto the affine subspace through ``mean`` spanned by the first ``n`` rows of ``comps``."""
    c = comps[:n].double()
    return mean + ((states.double() - mean) @ c.T) @ c


def readout_r2_curve(states: torch.Tensor, mean: torch.Tensor, comps: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None, n_max: int) -> list[float]:
    """R² of the logits of the projected states against the full logits, for n = 1..n_max PCs.

    Logits are centred over the documents (each class's mean logit removed); R² = 1 − SS_res / SS_tot summed over
    documents and classes. A constant-logit readout (SS_tot = 0) gives R² = 1 for every n.
    """
    full = _logits(states, weight, bias)
    fc = full - full.mean(0)
    tot = float((fc**2).sum())
    curve = []
    for n in range(1, min(n_max, comps.shape[0]) + 1):
        pl = _logits(project(states, mean, comps, n), weight, bias)
        res = float(((pl - pl.mean(0)) - fc).pow(2).sum())
        curve.append(1.0 if tot == 0 else 1.0 - res / tot)
    return curve


def readout_dimension(curve: Sequence[float], r2_min: float = R2_MIN) -> int | None:
    """The smallest n (1-based) whose R² reaches ``r2_min``; None when no n in the curve does.

    >>> readout_dimension([0.4, 0.96, 0.99]), readout_dimension([0.4, 0.5])
    (2, None)
    """
    for n, r2 in enumerate(curve, start=1):
        if r2 >= r2_min:
            return n
    return None


def accuracy_by_dimension(states: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, comps: torch.Tensor,
                          weight: torch.Tensor, bias: torch.Tensor | None, n_max: int = 8) -> list[float]:
    """Accuracy of the readout on final states restricted to the top n PCs, n = 1..n_max (the co-author's test)."""
    out = []
    for n in range(1, min(n_max, comps.shape[0]) + 1):
        pred = _logits(project(states, mean, comps, n), weight, bias).argmax(-1)
        out.append(float((pred == labels).double().mean()))
    return out


def time_constants(eigenvalues: torch.Tensor) -> torch.Tensor:
    """``τ = −1/log|λ|`` in steps (``inf`` at ``|λ| = 1``, negative for growing modes)."""
    a = eigenvalues.abs().double()
    with torch.no_grad():
        return torch.where(a == 1, torch.full_like(a, math.inf), -1.0 / a.log())


def slow_mode_counts(eigenvalues: torch.Tensor, length: float) -> torch.Tensor:
    """Per point (rows of ``eigenvalues [K, S]``), the number of modes with ``τ ≥ length`` (growing modes, τ < 0,
    are not counted: they are reported apart as unstable).

    >>> slow_mode_counts(torch.tensor([[0.999, 0.99, 0.5], [1.0, 0.2, 0.1]]), 50.0).tolist()
    [2, 1]
    """
    return (time_constants(eigenvalues) >= length).sum(-1)


def random_alignment_null(dim: int, n_points: int, reference: torch.Tensor, n_draws: int = 1000,
                          q: float = 0.99, seed: int = 0) -> float:
    """The ``q`` quantile of ``median_i |cos(u_i, reference)|`` over ``n_draws`` sets of ``n_points`` random unit
    vectors ``u_i`` in ``dim`` dimensions: the chance level of a median alignment across manifold points."""
    gen = torch.Generator().manual_seed(seed)
    r = reference.double() / reference.double().norm()
    meds = torch.empty(n_draws, dtype=torch.float64)
    for i in range(n_draws):
        u = torch.randn(n_points, dim, generator=gen, dtype=torch.float64)
        meds[i] = ((u @ r).abs() / u.norm(dim=1)).median()
    return float(torch.quantile(meds, q))


def abs_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|cos|`` between the rows of ``a [K, S]`` (real or complex) and a real vector ``b [S]``."""
    a2 = a if a.dim() == 2 else a.unsqueeze(0)
    bb = b.to(a2.dtype)
    num = (a2 @ bb).abs()
    den = a2.abs().pow(2).sum(-1).sqrt() * bb.abs().pow(2).sum().sqrt()
    return (num / den.clamp_min(1e-300)).real.double()


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Area under the ROC curve of scores ``pos`` against ``neg`` (ties count half).

    >>> auc(torch.tensor([3.0, 2.0]), torch.tensor([1.0, 2.0]))
    0.875
    """
    p, n = pos.double().reshape(-1, 1), neg.double().reshape(1, -1)
    return float((p > n).double().mean() + 0.5 * (p == n).double().mean())


def bow_logistic_coefficients(tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, vocab_size: int,
                              l2: float = 1e-3, steps: int = 200) -> torch.Tensor:
    """Per-word coefficients ``[V]`` of an L2-regularised bag-of-words logistic regression for label 1 vs 0
    (word counts per document; padding id 0 excluded; L-BFGS). Positive = evidence for class 1."""
    mask = (torch.arange(tokens.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)) & (tokens > 0)
    rows = torch.arange(tokens.shape[0]).unsqueeze(1).expand_as(tokens)[mask]
    # sparse document × word counts: a dense matrix of 40,000 sentences × 10,000 words would need 3 GB
    x = torch.sparse_coo_tensor(torch.stack([rows, tokens[mask]]), torch.ones(rows.shape[0], dtype=torch.float64),
                                (tokens.shape[0], vocab_size)).coalesce()
    y = labels.double()
    w = torch.zeros(vocab_size, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = torch.sparse.mm(x, w.unsqueeze(1)).squeeze(1) + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def manifold_statistics(points: torch.Tensor, final_states: torch.Tensor, labels: torch.Tensor,
                        weight: torch.Tensor, bias: torch.Tensor | None, n_accuracy: int = 8) -> dict[str, Any]:
    """The manifold's dimension statistics (plain JSON): PR, d_read with its R² curve, the 95%-variance dimension,
    explained variance, accuracy restricted to the top n PCs, and Levina-Bickel. None values below 2 points."""
    none = {"n_points": int(points.shape[0]), "participation_ratio": None, "readout_dimension": None,
            "readout_r2": [], "dimension_95": None, "explained_variance": [], "accuracy_by_dimension": [],
            "levina_bickel": None}
    if points.shape[0] < 2 or float((points - points.mean(0)).abs().max()) == 0.0:
        return none
    mean, comps, var = pca_basis(points)
    frac = var / var.sum()
    cum = torch.cumsum(frac, 0)
    curve = readout_r2_curve(final_states, mean, comps, weight, bias, comps.shape[0])
    lab = labels if labels.dim() == 1 else labels.argmax(-1)
    k = min(20, points.shape[0] - 1)
    try:
        lb = levina_bickel(points, k=k) if k >= 2 else None
    except InnerworksError:  # too few distinct points for k neighbours
        lb = None
    return {**none, "participation_ratio": round(participation_ratio(var), 4),
            "readout_dimension": readout_dimension(curve), "readout_r2": [round(v, 5) for v in curve[:10]],
            "readout_r2_min": R2_MIN, "dimension_95": int((cum < 0.95 - 1e-12).sum()) + 1,
            "explained_variance": [round(float(v), 6) for v in frac[:10]],
            "accuracy_by_dimension": [round(v, 4) for v in accuracy_by_dimension(
                final_states, lab, mean, comps, weight, bias, n_accuracy)],
            "levina_bickel": None if lb is None else round(lb, 3)}


def _valence_auc(step: Any, model: Any, point: torch.Tensor, left1: torch.Tensor, train: Any,
                 n_words: int) -> dict[str, Any]:
    """AUC of ``ℓ₁ᵀ J_inp x_w`` separating the ``n_words`` most positive from the most negative words of a
    bag-of-words logistic regression (the predecessor's valence test). The sign of ℓ₁ is arbitrary, so the AUC is
    taken in the better orientation, ``max(AUC, 1 − AUC)``."""
    h = step.cast(point.unsqueeze(0))
    jin = step.input_jacobian(step.zero_inputs(1), h)[0].double().cpu()          # [S, I]
    proj = (left1.to(torch.complex128) @ jin.to(torch.complex128)).real           # [I]
    with torch.no_grad():
        vecs = model.word_vectors().detach().double().cpu()                        # [V, I]
    score = vecs @ proj
    coef = bow_logistic_coefficients(train.tokens, train.lengths, train.labels, vecs.shape[0])
    seen = torch.zeros(vecs.shape[0], dtype=torch.bool)
    seen[train.tokens[train.tokens > 0].unique()] = True
    ids = torch.nonzero(seen).squeeze(1)
    k = min(n_words, ids.numel() // 2)
    order = ids[torch.argsort(coef[ids], descending=True)]
    pos, neg = order[:k], order[-k:]
    a = auc(score[pos], score[neg])
    return {"valence_auc": round(max(a, 1 - a), 4), "valence_auc_signed": round(a, 4), "n_words": k}


def line_attractor_statistics(model: Any, points: torch.Tensor, lin_points: torch.Tensor, lin: dict[str, Any],
                              readout: torch.Tensor, mean_len: float, train: Any, n_words: int = 100,
                              seed: int = 0) -> dict[str, Any]:
    """The predecessor's line-attractor measurements on a binary run (plain JSON).

    ``readout_alignment`` ``|cos(m, w)|`` of the manifold's first PC m and the readout direction ``w = w₁ − w₀``;
    ``right_eigvec_alignment`` the median over linearised points of ``|cos(r₁, m)|`` and its random-unit-vector
    null's 99th percentile; ``tau_slowest`` / ``tau_second`` the median slowest and second-slowest time constants
    and ``tau_ratio`` their ratio; ``valence_auc`` (see :func:`_valence_auc`, at the point nearest the mean).
    """
    from innerworks.dynamics.step import as_step

    mean, comps, _ = pca_basis(points)
    m = comps[0]
    w = readout[-1] - readout[0]
    right = abs_cos(lin["right1"], m)
    tau = time_constants(lin["eigenvalues"][:, :2])
    t1, t2 = float(tau[:, 0].median()), float(tau[:, 1].median()) if tau.shape[1] > 1 else float("nan")
    i = int((lin_points - mean).norm(dim=1).argmin())
    val = _valence_auc(as_step(model), model, lin_points[i], lin["left"][i, :, 0], train, n_words)
    return {"readout_alignment": round(float(abs_cos(m.unsqueeze(0), w)[0]), 4),
            "right_eigvec_alignment": round(float(right.median()), 4),
            "right_eigvec_null_p99": round(random_alignment_null(points.shape[1], right.numel(), m, seed=seed), 4),
            "tau_slowest": t1, "tau_second": t2, "tau_ratio": t1 / t2 if t2 > 0 else float("inf"),
            "mean_document_length": mean_len, **val}


__all__ = ["R2_MIN", "abs_cos", "accuracy_by_dimension", "auc", "bow_logistic_coefficients", "find_manifold_points",
           "line_attractor_statistics", "manifold_statistics", "participation_ratio", "pca_basis", "project",
           "random_alignment_null", "readout_dimension", "readout_r2_curve", "slow_mode_counts", "time_constants"]
