"""Where attention looks: temporal-only attention, lags against the data's offset, and attention comparisons.

- :func:`temporal_attention`: ``softmax_t(scale * mu^D_s . mu^E_t)``; :func:`attention_match` compares it (or any
  reference attention) with per-sample attention.
- :func:`temporal_lag` and :func:`compare_lag_to_offset`: the lag ``argmax_t(mu^D_s . mu^E_t) - s`` against the
  data's mean encoder-minus-decoder offset; :func:`attention_lag`: the same lag read off each sample's own attention
  (``argmax_t alpha[s, t] - s``, averaged over samples per step), which says whether the network itself follows
  the offset at a step, whatever its temporal components do.
- :func:`correlation`: Pearson and Spearman correlation of two samples.

>>> import torch
>>> temporal_lag(torch.eye(4), torch.eye(4)[1:]).tolist()
[1, 1, 1]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from innerworks.attention.metrics.common import grow, masked_argmax, masks, squeeze, with_heads
from innerworks.errors import InnerworksError
from innerworks.models.masking import masked_softmax


class AttentionMatchAccumulator:
    """Streaming comparison of a reference attention (e.g. temporal-only) with per-sample attention.

    Two measures, averaged over every valid (sample, decoder step), per head:

    - ``tv``: total-variation distance ``0.5 * sum_t |p_t - q_t|`` over valid source positions (0 = identical,
      1 = disjoint supports);
    - ``argmax_agreement``: fraction of steps where both attend most to the same source position.

    ``per_sample_tv`` (``[N, (nh)]``, kept when ``keep_samples``) is each sample's mean distance over its steps.

    >>> import torch
    >>> p = torch.tensor([[[0.5, 0.5]]]); q = torch.tensor([[[1.0, 0.0]]])
    >>> r = AttentionMatchAccumulator().update(p, q).result(); r["tv"].item(), r["argmax_agreement"].item()
    (0.5, 1.0)
    """

    def __init__(self, keep_samples: bool = False) -> None:
        self.keep_samples = keep_samples
        self._tv: torch.Tensor | None = None
        self._agree: torch.Tensor | None = None
        self._count = 0
        self._samples: list[torch.Tensor] = []
        self._had_heads = False

    def update(self, reference: torch.Tensor, sample: torch.Tensor, src_lengths: torch.Tensor | None = None,
               tgt_lengths: torch.Tensor | None = None) -> AttentionMatchAccumulator:
        """Add one batch. ``sample`` is ``[B, (nh), T, S]``; ``reference`` broadcasts to it (e.g. ``[T, S]``)."""
        q, had = with_heads(sample.double(), 3, "sample attention")
        p = reference.double()
        if p.dim() == sample.dim() - 1 and had:
            p = p.unsqueeze(0)  # [nh, T, S] -> [1, nh, T, S]
        p, _ = with_heads(p, 3, "reference attention") if p.dim() == sample.dim() else (p, had)
        try:
            p, q = torch.broadcast_tensors(p, q)
        except RuntimeError:
            raise InnerworksError(f"reference attention {tuple(reference.shape)} does not broadcast to sample "
                                  f"attention {tuple(sample.shape)}") from None
        self._had_heads = had
        b, nh, t, s = q.shape
        src_m, tgt_m, _ = masks(b, t, s, src_lengths, tgt_lengths, q.device)
        pm, qm = torch.where(src_m, p, 0.0), torch.where(src_m, q, 0.0)
        tv = 0.5 * (pm - qm).abs().sum(-1)  # [B, nh, T]
        agree = (masked_argmax(p, src_m) == masked_argmax(q, src_m)).double()
        tm = tgt_m.expand(b, nh, t)
        tvs, ags = torch.where(tm, tv, 0.0).sum((0, 2)), torch.where(tm, agree, 0.0).sum((0, 2))
        if self._tv is None:
            self._tv, self._agree = tvs, ags
        else:
            if self._tv.shape != tvs.shape:
                raise InnerworksError("attention match: batches disagree on the number of heads")
            self._tv, self._agree = self._tv + tvs, self._agree + ags
        self._count += int(tgt_m.sum())
        if self.keep_samples:
            self._samples.append((torch.where(tm, tv, 0.0).sum(-1) / tm.sum(-1).clamp_min(1)).cpu())
        return self

    def result(self) -> dict[str, object]:
        """``{"tv": [(nh)], "argmax_agreement": [(nh)], "count": int, "per_sample_tv": [N, (nh)] | None}``."""
        if self._tv is None or self._agree is None or self._count == 0:
            raise InnerworksError("attention match: no valid (sample, step) was added")
        per_sample = None
        if self.keep_samples and self._samples:
            per_sample = squeeze(torch.cat(self._samples), self._had_heads, 1)
        return {
            "tv": squeeze(self._tv / self._count, self._had_heads),
            "argmax_agreement": squeeze(self._agree / self._count, self._had_heads),
            "count": self._count,
            "per_sample_tv": per_sample,
        }


def attention_match(reference: torch.Tensor, sample: torch.Tensor, src_lengths: torch.Tensor | None = None,
                    tgt_lengths: torch.Tensor | None = None) -> dict[str, object]:
    """One-shot :class:`AttentionMatchAccumulator` (mean total-variation distance and argmax agreement).

    >>> import torch
    >>> a = torch.tensor([[[0.2, 0.8], [0.9, 0.1]]])
    >>> attention_match(a[0], a)["tv"].item()
    0.0
    """
    return AttentionMatchAccumulator().update(reference, sample, src_lengths, tgt_lengths).result()


def temporal_scores(mu_enc: torch.Tensor, mu_dec: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Temporal-only scores ``scale * mu^D_s . mu^E_t``: ``[(nh), T, S]`` from ``mu_enc [(nh), S, D]``,
    ``mu_dec [(nh), T, D]``.

    >>> import torch
    >>> temporal_scores(torch.eye(2), torch.eye(2) * 3).tolist()
    [[3.0, 0.0], [0.0, 3.0]]
    """
    if mu_enc.dim() != mu_dec.dim() or mu_enc.shape[-1] != mu_dec.shape[-1] or mu_enc.dim() not in (2, 3):
        raise InnerworksError(f"mu_enc {tuple(mu_enc.shape)} and mu_dec {tuple(mu_dec.shape)} must be [(nh), S, D] "
                              "and [(nh), T, D]")
    return scale * (mu_dec @ mu_enc.transpose(-1, -2))


def temporal_attention(mu_enc: torch.Tensor, mu_dec: torch.Tensor, scale: float = 1.0,
                       src_lengths: torch.Tensor | None = None, enc_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Temporal-only attention ``softmax_t(scale * mu^D_s . mu^E_t)`` over valid source positions.

    With ``src_lengths [B]`` the result is per sample, ``[B, (nh), T, S]``, masked to ``t < src_lengths[b]``;
    otherwise ``[(nh), T, S]``, masked by ``enc_valid [S]`` (e.g. positions seen in the data) if given.

    >>> import torch
    >>> a = temporal_attention(torch.eye(3) * 10, torch.eye(3) * 10)
    >>> a.argmax(-1).tolist(), temporal_attention(torch.eye(3), torch.eye(3), src_lengths=torch.tensor([2])).shape
    ([0, 1, 2], torch.Size([1, 3, 3]))
    """
    sc = temporal_scores(mu_enc, mu_dec, scale)
    if src_lengths is not None:
        src_lengths = torch.as_tensor(src_lengths).to(sc.device)
        return masked_softmax(sc.unsqueeze(0).expand(src_lengths.shape[0], *sc.shape), src_lengths)
    if enc_valid is not None:
        m = torch.as_tensor(enc_valid, dtype=torch.bool, device=sc.device)
        return masked_softmax(sc, m.expand(sc.shape[0], -1))  # one mask row per leading index (head or step)
    return torch.softmax(sc, dim=-1)


def temporal_lag(mu_enc: torch.Tensor, mu_dec: torch.Tensor, scale: float = 1.0,
                 enc_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per decoder step, ``argmax_t(scale * mu^D_s . mu^E_t) - s`` (encoder minus decoder index): ``[(nh), T]``.

    ``enc_valid [S]`` restricts ``t`` to positions seen in the data (``mu`` is zero elsewhere).

    >>> import torch
    >>> e = torch.eye(5); d = torch.eye(5)[2:]  # decoder step s aligns with encoder position s + 2
    >>> temporal_lag(e, d).tolist()
    [2, 2, 2]
    """
    sc = temporal_scores(mu_enc, mu_dec, scale)
    if enc_valid is not None:
        m = torch.as_tensor(enc_valid, dtype=torch.bool, device=sc.device)
        sc = torch.where(m, sc, torch.full((), -math.inf, dtype=sc.dtype, device=sc.device))
    return sc.argmax(-1) - torch.arange(sc.shape[-2], device=sc.device)


class AttentionLagAccumulator:
    """Streaming lag of each sample's own attention: per decoder step ``s``, the mean over valid samples of
    ``argmax_t alpha[s, t] - s`` (valid ``t``), per head, with the number of samples behind each step.

    This is the network's actual alignment, the quantity the temporal lag (:func:`temporal_lag`) is meant to
    summarise: where the two agree but both leave the data's offset, the network itself does not follow the offset
    at that step.

    >>> import torch
    >>> w = torch.tensor([[[0.1, 0.9, 0.0], [0.0, 0.2, 0.8]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> r = AttentionLagAccumulator().update(w, torch.tensor([3, 2]), torch.tensor([2, 1])).result()
    >>> r["lag"].tolist(), r["step_counts"].tolist()
    ([0.5, 1.0], [2, 1])
    """

    def __init__(self) -> None:
        self._sum: torch.Tensor | None = None  # [nh, T]
        self._count: torch.Tensor | None = None  # [T]
        self._had_heads = False

    def update(self, attention: torch.Tensor, src_lengths: torch.Tensor | None = None,
               tgt_lengths: torch.Tensor | None = None) -> AttentionLagAccumulator:
        """Add one batch of attention weights (or scores) ``[B, (nh), T, S]``."""
        w, self._had_heads = with_heads(attention.double(), 3, "attention")
        b, nh, t, s = w.shape
        src_m, tgt_m, _ = masks(b, t, s, src_lengths, tgt_lengths, w.device)
        lag = (masked_argmax(w, src_m) - torch.arange(t, device=w.device)).double()  # [B, nh, T]
        tm = tgt_m.expand(b, nh, t)
        add = torch.where(tm, lag, 0.0).sum(0)
        cnt = tgt_m[:, 0, :].sum(0)
        if self._sum is None or self._count is None:
            self._sum, self._count = add, cnt
        else:
            if self._sum.shape[0] != nh:
                raise InnerworksError("attention lag: batches disagree on the number of heads")
            width = max(t, self._sum.shape[1])
            self._sum = grow(self._sum, width, 1) + grow(add, width, 1)
            self._count = grow(self._count, width, 0) + grow(cnt, width, 0)
        return self

    def result(self) -> dict[str, torch.Tensor]:
        """``{"lag": [(nh), T] (NaN at steps no sample reached), "step_counts": [T]}``, trimmed to the steps
        reached."""
        if self._sum is None or self._count is None or not bool((self._count > 0).any()):
            raise InnerworksError("attention lag: no valid (sample, step) was added")
        seen = int(torch.nonzero(self._count).max()) + 1
        cnt = self._count[:seen]
        lag = torch.where(cnt > 0, self._sum[:, :seen] / cnt.clamp_min(1), math.nan)
        return {"lag": squeeze(lag, self._had_heads), "step_counts": cnt.clone()}


def attention_lag(attention: torch.Tensor, src_lengths: torch.Tensor | None = None,
                  tgt_lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One-shot :class:`AttentionLagAccumulator`: mean ``argmax_t alpha[s, t] - s`` per decoder step.

    >>> import torch
    >>> attention_lag(torch.eye(3)[[1, 2, 0]][None])["lag"].tolist()
    [1.0, 1.0, -2.0]
    """
    return AttentionLagAccumulator().update(attention, src_lengths, tgt_lengths).result()


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or float(np.std(x)) == 0.0 or float(np.std(y)) == 0.0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def correlation(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of two 1-D samples (NaN when either is constant or too short).

    >>> correlation([1.0, 2.0, 3.0], [1.0, 4.0, 9.0])["spearman"]
    1.0
    """
    from scipy.stats import rankdata

    xa = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).ravel()
    ya = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise InnerworksError(f"correlation: x has {xa.size} values, y has {ya.size}")
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    return {"pearson": _pearson(xa, ya), "spearman": _pearson(rankdata(xa), rankdata(ya)), "n": int(xa.size)}


def compare_lag_to_offset(lag: torch.Tensor | np.ndarray, offset: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Compare the temporal lag per decoder step with the data's mean encoder-minus-decoder offset per step.

    Both are 1-D per decoder step; the shorter length is used. Returns the number of steps compared, Pearson
    correlation (NaN if either is constant), mean and max absolute difference, and both means.

    >>> r = compare_lag_to_offset([0, 1, 1, 2], [0.3, 1.0, 1.1, 2.0])
    >>> r["n"], round(r["mean_abs_diff"], 3), r["pearson"] > 0.9
    (4, 0.1, True)
    """
    la = np.asarray(lag.cpu() if isinstance(lag, torch.Tensor) else lag, dtype=np.float64).ravel()
    oa = np.asarray(offset.cpu() if isinstance(offset, torch.Tensor) else offset, dtype=np.float64).ravel()
    n = min(la.size, oa.size)
    if n == 0:
        raise InnerworksError("compare_lag_to_offset: lag and offset must be non-empty")
    la, oa = la[:n], oa[:n]
    ok = np.isfinite(la) & np.isfinite(oa)
    la, oa = la[ok], oa[ok]
    diff = np.abs(la - oa)
    return {"n": int(la.size), "pearson": _pearson(la, oa), "mean_abs_diff": float(diff.mean()),
            "max_abs_diff": float(diff.max()), "mean_lag": float(la.mean()), "mean_offset": float(oa.mean())}


__all__ = ["AttentionLagAccumulator", "AttentionMatchAccumulator", "attention_lag", "attention_match",
           "compare_lag_to_offset", "correlation", "temporal_attention", "temporal_lag", "temporal_scores"]
