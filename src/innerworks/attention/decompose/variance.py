"""The second pass over a fitted decomposition: how much of a vector population each part explains.

:class:`VarianceStats` streams batches through a fitted :class:`TemporalInputDecomposition` and gives a
:class:`VarianceReport`: the variance explained by ``mu`` and by ``mu + chi``, per-word variance before and after
removing ``mu``, and per-step total variance and participation ratio. :func:`to_plain` turns reports (and any
nesting of tensors) into JSON-ready values.

>>> import torch
>>> h = torch.tensor([[[0.0], [2.0]], [[2.0], [4.0]]], dtype=torch.float64); tok = torch.tensor([[3, 3], [3, 3]])
>>> d = TemporalInputDecomposition().fit(h, tok, torch.tensor([2, 2]))
>>> float(VarianceStats(d).update(h, tok, torch.tensor([2, 2])).result().r2_mu)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from innerworks.attention.decompose.estimator import TemporalInputDecomposition, prepare_states
from innerworks.errors import InnerworksError


def to_plain(obj: Any) -> Any:
    """JSON-ready copy of ``obj``: tensors become lists or floats, NaN and infinities None, mappings dicts with
    string keys, objects with ``to_dict`` their dict.

    >>> to_plain({"a": torch.tensor([1.0, float("nan")]), 2: (torch.tensor(3),)})
    {'a': [1.0, None], '2': [3]}
    """
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        return to_plain(obj.item() if obj.dim() == 0 else obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


@dataclass
class VarianceReport:
    """How much of a vector population each part explains (from :class:`VarianceStats`).

    All values are float64 tensors; a head axis leads when the decomposition had heads.

    Attributes:
        n_states: number of valid vectors seen.
        total_variance: ``sum ||h - global_mean||^2 / N`` (trace of the covariance around the fitted global mean).
        fractions: ``{"mu", "chi", "delta", "cross"}``: ``sum ||mu - global_mean||^2``, ``sum ||chi||^2``,
            ``sum ||delta||^2`` and the remaining cross terms, each over the total; they sum to 1.
        r2_mu: ``1 - sum ||h - mu||^2 / total``: variance explained by the temporal part alone.
        r2_mu_chi: ``1 - sum ||delta||^2 / total``: explained by temporal + input parts.
        word_counts: ``[V]`` valid occurrences per token in this pass.
        word_variance_before / word_variance_after: ``[(nh), V]`` ``trace(cov)`` of all vectors of a word
            before / after subtracting ``mu[t]`` (NaN for words seen < 2 times or with no variance).
        variance_ratio: ``mean_w(after / before)`` over eligible words (the paper's variance reduction number).
        step_counts: ``[L]`` valid samples per position.
        step_total_variance / step_participation_ratio: ``[(nh), L]`` trace of the across-sample covariance at
            each position, and its participation ratio ``(sum l)^2 / sum l^2`` over the eigenvalues (None when
            ``per_step=False``; NaN at positions with < 2 samples).
    """

    n_states: int
    total_variance: torch.Tensor
    fractions: dict[str, torch.Tensor]
    r2_mu: torch.Tensor
    r2_mu_chi: torch.Tensor
    word_counts: torch.Tensor
    word_variance_before: torch.Tensor
    word_variance_after: torch.Tensor
    variance_ratio: torch.Tensor
    step_counts: torch.Tensor | None = None
    step_total_variance: torch.Tensor | None = None
    step_participation_ratio: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and floats, ready for JSON.

        >>> import torch
        >>> VarianceReport(1, torch.tensor(1.0), {}, torch.tensor(0.5), torch.tensor(0.9), torch.ones(2),
        ...                torch.ones(2), torch.ones(2), torch.tensor(1.0)).to_dict()["r2_mu"]
        0.5
        """
        return to_plain({k: getattr(self, k) for k in self.__dataclass_fields__})


class VarianceStats:
    """Second-pass statistics of a fitted :class:`TemporalInputDecomposition` (streaming, float64).

    Feed the same batches as the fit (or any other set) through :meth:`update`; :meth:`result` gives a
    :class:`VarianceReport`. Per-step covariances cost ``L * D * D`` floats per head (``per_step=False`` skips
    them). Word variances are taken around the fitted word means, so they are exact ``trace(cov)`` values when
    the second pass sees the fitted data; tokens never seen in the fit are left out of the per-word numbers.

    >>> import torch
    >>> g = torch.Generator().manual_seed(1)
    >>> h = torch.randn(50, 4, 3, generator=g, dtype=torch.float64); tok = torch.randint(3, 6, (50, 4), generator=g)
    >>> n = torch.full((50,), 4)
    >>> d = TemporalInputDecomposition().fit(h, tok, n)
    >>> r = VarianceStats(d).update(h, tok, n).result()
    >>> bool(abs(sum(float(v) for v in r.fractions.values()) - 1) < 1e-12)
    True
    """

    def __init__(self, decomposition: TemporalInputDecomposition, per_step: bool = True) -> None:
        c = decomposition.components  # raises when not fitted
        self.decomposition = decomposition
        self.per_step = per_step
        nh, alloc_l, dim = c.mu.shape
        v = c.chi.shape[1]
        z = c.mu.new_zeros
        self._ss = z(5, nh)  # total, mu, chi, delta, h - mu
        self._n = 0
        self._word_before = z(nh, v)
        self._word_after = z(nh, v)
        self._word_counts = torch.zeros(v, dtype=torch.long, device=c.mu.device)
        self._step_cov = z(nh, alloc_l, dim, dim) if per_step else None
        self._step_counts = torch.zeros(alloc_l, dtype=torch.long, device=c.mu.device)
        self._fitted_states = c.n_states

    def update(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> VarianceStats:
        """Add one batch (same shapes as the fit)."""
        d, where = self.decomposition, "VarianceStats.update"
        c = d.components
        if c.n_states != self._fitted_states:
            raise InnerworksError(f"{where}: the decomposition changed after VarianceStats was created; finish "
                                  "fitting first (two passes)")
        p = prepare_states(states, tokens, lengths, where).to(c.mu.device)
        if p.had_heads != c.had_heads:
            raise InnerworksError(f"{where}: head axis must match the fitted decomposition")
        # Positions beyond the fitted width are left out of the statistics.
        p = d.clip(p, where).truncate(c.mu.shape[1])
        mu, chi, delta = d.parts(p, where)
        x, tok, mask = p.x, p.tok, p.mask
        length = x.shape[2]
        m4 = mask[:, None, :, None]
        gm = c.global_mean[None, :, None, :]

        def sq(t: torch.Tensor) -> torch.Tensor:  # per-vector squared norm at valid positions: [B, nh, L]
            return torch.where(mask[:, None, :], (t * t).sum(-1), 0.0)

        x0 = torch.where(m4, x, 0.0)  # garbage (even NaN) at pads never enters a sum
        self._ss += torch.stack([sq(x0 - gm), sq(mu - gm), sq(chi), sq(delta), sq(x0 - mu)]).sum((1, 3))
        self._n += int(mask.sum())
        v = c.chi.shape[1]
        known = mask & (tok < v)
        tokc = tok.clamp(max=v - 1)
        known &= (c.token_counts[tokc] > 0)
        before = torch.where(known[:, None, :], ((x0 - c.token_means[:, tokc].permute(1, 0, 2, 3)) ** 2).sum(-1), 0.0)
        after = torch.where(known[:, None, :], (delta * delta).sum(-1), 0.0)
        idx = tokc[known]
        self._word_before.index_add_(1, idx, before.permute(1, 0, 2)[:, known])
        self._word_after.index_add_(1, idx, after.permute(1, 0, 2)[:, known])
        self._word_counts += torch.bincount(idx, minlength=v)
        self._step_counts[:length] += mask.sum(0)
        if self._step_cov is not None:
            y = torch.where(m4, x0 - mu, 0.0)
            self._step_cov[:, :length] += torch.einsum("bhld,bhle->hlde", y, y)
        return self

    def result(self) -> VarianceReport:
        """The :class:`VarianceReport` of everything added so far."""
        if self._n == 0:
            raise InnerworksError("VarianceStats: no valid vector was added")
        had = self.decomposition.components.had_heads

        def sq(t: torch.Tensor) -> torch.Tensor:
            return t if had else t.squeeze(0)

        total, s_mu, s_chi, s_delta, s_hmu = self._ss
        tot = total.clamp_min(1e-300)
        fr = {"mu": s_mu / tot, "chi": s_chi / tot, "delta": s_delta / tot}
        fr["cross"] = 1.0 - fr["mu"] - fr["chi"] - fr["delta"]
        wc = self._word_counts.to(total.dtype)
        ok = (wc >= 2)[None, :] & (self._word_before > 0)
        before = torch.where(ok, self._word_before / wc.clamp_min(1), math.nan)
        after = torch.where(ok, self._word_after / wc.clamp_min(1), math.nan)
        ratio = torch.nanmean(after / before, dim=1)
        step_tv = step_pr = None
        # Trim per-step arrays to the positions the data reached, so results do not depend on padding width.
        seen = int(torch.nonzero(self._step_counts).max()) + 1
        if self._step_cov is not None:
            n_t = self._step_counts.to(total.dtype)
            cov = self._step_cov / n_t.clamp_min(1)[None, :, None, None]
            tr = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)  # [nh, L]
            fro2 = (cov * cov).sum((-1, -2))
            good = (n_t >= 2)[None, :]
            step_tv = torch.where(good, tr, math.nan)
            # PR = (sum l)^2 / sum l^2 = trace(C)^2 / ||C||_F^2 for a symmetric C: no eigendecomposition needed.
            step_pr = torch.where(good & (fro2 > 0), tr * tr / fro2.clamp_min(1e-300), math.nan)
            step_tv, step_pr = sq(step_tv[:, :seen]), sq(step_pr[:, :seen])
        return VarianceReport(
            n_states=self._n,
            total_variance=sq(total / self._n),
            fractions={k: sq(v) for k, v in fr.items()},
            r2_mu=sq(1.0 - s_hmu / tot),
            r2_mu_chi=sq(1.0 - s_delta / tot),
            word_counts=self._word_counts.clone(),
            word_variance_before=sq(before),
            word_variance_after=sq(after),
            variance_ratio=sq(ratio),
            step_counts=self._step_counts[:seen].clone(),
            step_total_variance=step_tv,
            step_participation_ratio=step_pr,
        )



__all__ = ["VarianceReport", "VarianceStats", "to_plain"]
