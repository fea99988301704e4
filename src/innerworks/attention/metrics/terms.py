"""Which score terms drive attention: dot ratios and signed shares of the nine terms, and residual norms.

- :func:`dot_ratios`: ``|term| / sum |terms|`` at the top-k encoder positions by full score, averaged over the k
  positions, then over samples per decoder step, then over steps (the paper's ``calculate_dot_ratios``).
- :func:`signed_shares_at_max`: ``mean(term) / mean(full)`` at the maximal alignment ``argmax_t full[s, t]``.
- :func:`residual_norm_fractions`: ``||h - mu|| / ||h||`` and ``||h - mu - chi|| / ||h||``, weighted by
  :func:`aligned_position_counts` (how often a position is among the top-k).

>>> import torch
>>> terms = {n: torch.zeros(1, 1, 2) for n in TERM_NAMES}
>>> terms["muE_muD"], terms["chiE_chiD"] = torch.tensor([[[3.0, 0.0]]]), torch.tensor([[[1.0, 0.0]]])
>>> full = terms["muE_muD"] + terms["chiE_chiD"]
>>> [round(signed_shares_at_max(terms, full)["shares"][n].item(), 2) for n in ("muE_muD", "chiE_chiD")]
[0.75, 0.25]
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from innerworks.attention.metrics.common import (
    TINY,
    grow,
    masked_argmax,
    masks,
    squeeze,
    terms_and_full,
    top_k_valid,
    with_heads,
)
from innerworks.attention.scores import TERM_NAMES
from innerworks.errors import InnerworksError


class DotRatioAccumulator:
    """Streaming dot ratios ``|term| / sum_terms |term|`` at the top-``k`` encoder positions by full score.

    For each sample and valid decoder step, the ratio is averaged over the ``min(k, src_length)`` best positions;
    then averaged over samples per step (``per_step``), then over steps (``mean``). With ``keep_samples=True``
    the per-sample average over its valid steps is kept too (``per_sample``, ``[N, (nh)]`` per term).

    >>> import torch
    >>> acc = DotRatioAccumulator(k=2)
    >>> terms = {n: torch.ones(1, 1, 3) for n in TERM_NAMES}
    >>> acc.update(terms, torch.tensor([[[0.0, 2.0, 1.0]]])).result()["mean"]["chiE_chiD"].item()
    0.1111111111111111
    """

    def __init__(self, k: int = 5, keep_samples: bool = False) -> None:
        if k < 1:
            raise InnerworksError(f"dot ratios: k must be >= 1, got {k}")
        self.k = int(k)
        self.keep_samples = keep_samples
        self._step_sum: torch.Tensor | None = None  # [9, nh, T]
        self._step_count: torch.Tensor | None = None  # [T]
        self._samples: list[torch.Tensor] = []
        self._had_heads = False

    def update(self, terms: Mapping[str, torch.Tensor], full: torch.Tensor, src_lengths: torch.Tensor | None = None,
               tgt_lengths: torch.Tensor | None = None) -> DotRatioAccumulator:
        """Add one batch: nine terms and the full score, each ``[B, (nh), T, S]``."""
        a, f, self._had_heads = terms_and_full(terms, full)
        _, b, nh, t, s = a.shape
        src_m, tgt_m, src_len = masks(b, t, s, src_lengths, tgt_lengths, f.device)
        a = a.abs()
        ratio = a / a.sum(0, keepdim=True).clamp_min(TINY)
        idx, pick_ok = top_k_valid(f, src_m, src_len, self.k)  # [B, nh, T, kk], [B, 1, 1, kk]
        r = ratio.gather(-1, idx.unsqueeze(0).expand(9, *idx.shape))  # [9, B, nh, T, kk]
        per_ns = torch.where(pick_ok, r, 0.0).sum(-1) / pick_ok.sum(-1).clamp_min(1)  # [9, B, nh, T]
        per_ns = torch.where(tgt_m, per_ns, 0.0)
        if self._step_sum is None:
            self._step_sum = per_ns.new_zeros(9, nh, t)
            self._step_count = per_ns.new_zeros(t)
        if self._step_sum.shape[1] != nh:
            raise InnerworksError(f"dot ratios: batches disagree on the number of heads ({self._step_sum.shape[1]} "
                                  f"vs {nh})")
        self._step_sum = grow(self._step_sum, t, 2)
        self._step_count = grow(self._step_count, t, 0)
        self._step_sum[:, :, :t] += per_ns.sum(1)
        self._step_count[:t] += tgt_m[:, 0, :].sum(0)
        if self.keep_samples:
            n_steps = tgt_m.sum(-1).clamp_min(1)  # [B, 1]
            self._samples.append((per_ns.sum(-1) / n_steps).permute(1, 2, 0).cpu())  # [B, nh, 9]
        return self

    def result(self) -> dict[str, object]:
        """``{"per_step": {term: [(nh), T]}, "mean": {term: [(nh)]}, "step_counts": [T], "per_sample": ...}``."""
        if self._step_sum is None or self._step_count is None:
            raise InnerworksError("dot ratios: no batch was added")
        # Trim to the steps the data reached, so results do not depend on the padding width of the batches.
        seen = int(torch.nonzero(self._step_count).max()) + 1 if bool((self._step_count > 0).any()) else 0
        if seen == 0:
            raise InnerworksError("dot ratios: no valid (sample, step) was added")
        cnt = self._step_count[:seen]
        per_step = torch.where(cnt > 0, self._step_sum[:, :, :seen] / cnt.clamp_min(1), math.nan)  # [9, nh, T]
        used = cnt > 0
        mean = per_step[:, :, used].mean(-1)  # [9, nh]
        out: dict[str, object] = {
            "per_step": {n: squeeze(per_step[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "mean": {n: squeeze(mean[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "step_counts": cnt.clone(),
            "per_sample": None,
        }
        if self.keep_samples and self._samples:
            ps = torch.cat(self._samples)  # [N, nh, 9]
            out["per_sample"] = {n: squeeze(ps[..., i], self._had_heads, 1) for i, n in enumerate(TERM_NAMES)}
        return out


def dot_ratios(terms: Mapping[str, torch.Tensor], full_scores: torch.Tensor, src_lengths: torch.Tensor | None = None,
               tgt_lengths: torch.Tensor | None = None, k: int = 5) -> dict[str, object]:
    """One-shot :class:`DotRatioAccumulator` on a single batch (see there for the averaging order).

    >>> import torch
    >>> t = {n: torch.zeros(1, 1, 2) for n in TERM_NAMES}; t["chiE_chiD"] = torch.tensor([[[1.0, -3.0]]])
    >>> dot_ratios(t, t["chiE_chiD"], k=1)["mean"]["chiE_chiD"].item()
    1.0
    """
    return DotRatioAccumulator(k=k).update(terms, full_scores, src_lengths, tgt_lengths).result()


class SignedShareAccumulator:
    """Streaming ``mean(term) / mean(full)`` at the maximal alignment ``t* = argmax_t full[s, t]`` (valid t).

    Means run over every valid (sample, decoder step). Shares of the nine terms sum to 1. When ``update`` gets the
    encoder tokens (``key_tokens [B, S]``), each share is also split by the token at ``t*``: ``by_key_token`` holds
    ``{term: [(nh), V]}`` whose sum over tokens is the share (which input words the term's share comes from).

    >>> import torch
    >>> t = {n: torch.zeros(1, 1, 2) for n in TERM_NAMES}
    >>> t["muE_muD"] = torch.tensor([[[3.0, 0.0]]]); t["chiE_muD"] = torch.tensor([[[1.0, 0.0]]])
    >>> r = SignedShareAccumulator().update(t, t["muE_muD"] + t["chiE_muD"]).result()
    >>> r["shares"]["muE_muD"].item(), r["mean_full"].item()
    (0.75, 4.0)
    """

    def __init__(self) -> None:
        self._term_sum: torch.Tensor | None = None  # [9, nh]
        self._full_sum: torch.Tensor | None = None  # [nh]
        self._tok_sum: torch.Tensor | None = None  # [9, nh, V] (only when key tokens are given)
        self._count = 0
        self._had_heads = False

    def update(self, terms: Mapping[str, torch.Tensor], full: torch.Tensor, src_lengths: torch.Tensor | None = None,
               tgt_lengths: torch.Tensor | None = None,
               key_tokens: torch.Tensor | None = None) -> SignedShareAccumulator:
        """Add one batch: nine terms and the full score, each ``[B, (nh), T, S]``; optionally the encoder tokens
        ``[B, S]`` (non-negative ids at valid positions) for the split by token."""
        a, f, self._had_heads = terms_and_full(terms, full)
        _, b, nh, t, s = a.shape
        src_m, tgt_m, _ = masks(b, t, s, src_lengths, tgt_lengths, f.device)
        idx = masked_argmax(f, src_m)[..., None]  # [B, nh, T, 1]
        at_max = a.gather(-1, idx.unsqueeze(0).expand(9, *idx.shape)).squeeze(-1)  # [9, B, nh, T]
        f_max = f.gather(-1, idx).squeeze(-1)
        tm = tgt_m.expand(b, nh, t)
        ts = torch.where(tm, at_max, 0.0).sum((1, 3))
        fs = torch.where(tm, f_max, 0.0).sum((0, 2))
        if key_tokens is not None:
            self._add_by_token(at_max, tm, idx.squeeze(-1), key_tokens, (b, s))
        if self._term_sum is None:
            self._term_sum, self._full_sum = ts, fs
        else:
            if self._term_sum.shape != ts.shape:
                raise InnerworksError("signed shares: batches disagree on the number of heads")
            self._term_sum = self._term_sum + ts
            self._full_sum = self._full_sum + fs
        self._count += int(tgt_m.sum())
        return self

    def _add_by_token(self, at_max: torch.Tensor, tm: torch.Tensor, idx: torch.Tensor, key_tokens: torch.Tensor,
                      bs: tuple[int, int]) -> None:
        """Add the terms at ``t*`` (``[9, B, nh, T]``) to per-token sums keyed by the encoder token at ``t*``."""
        tok = torch.as_tensor(key_tokens).to(at_max.device).long()
        if tuple(tok.shape) != bs:
            raise InnerworksError(f"signed shares: key_tokens must be [B, S] = {bs}, got {tuple(tok.shape)}")
        nh, t = idx.shape[1], idx.shape[2]
        w = tok.gather(1, idx.reshape(bs[0], nh * t)).view(bs[0], nh, t)  # token at t*, [B, nh, T]
        w = torch.where(tm, w, 0)
        if bool(tm.any()) and int(w[tm].min()) < 0:
            raise InnerworksError("signed shares: negative key token id at a maximal alignment")
        v = int(w.max()) + 1 if w.numel() else 1
        head = torch.arange(nh, device=w.device)[None, :, None].expand_as(w)
        flat = (head * v + w)[tm]  # [M] over (head, token)
        sums = at_max.new_zeros(9, nh * v)
        sums.index_add_(1, flat, at_max[:, tm])
        sums = sums.view(9, nh, v)
        if self._tok_sum is None:
            self._tok_sum = sums
        else:
            width = max(v, self._tok_sum.shape[2])
            self._tok_sum = grow(self._tok_sum, width, 2) + grow(sums, width, 2)

    def result(self) -> dict[str, object]:
        """``{"shares": {term: [(nh)]}, "mean_terms": {term: [(nh)]}, "mean_full": [(nh)], "count": int,
        "by_key_token": {term: [(nh), V]} | None}``."""
        if self._term_sum is None or self._full_sum is None or self._count == 0:
            raise InnerworksError("signed shares: no valid (sample, step) was added")
        shares = self._term_sum / self._full_sum
        means = self._term_sum / self._count
        by_tok = None
        if self._tok_sum is not None:
            bt = self._tok_sum / self._full_sum[None, :, None]
            by_tok = {n: squeeze(bt[i], self._had_heads) for i, n in enumerate(TERM_NAMES)}
        return {
            "shares": {n: squeeze(shares[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "mean_terms": {n: squeeze(means[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "mean_full": squeeze(self._full_sum / self._count, self._had_heads),
            "count": self._count,
            "by_key_token": by_tok,
        }


def signed_shares_at_max(terms: Mapping[str, torch.Tensor], full: torch.Tensor,
                         src_lengths: torch.Tensor | None = None,
                         tgt_lengths: torch.Tensor | None = None) -> dict[str, object]:
    """One-shot :class:`SignedShareAccumulator`: ``mean(term) / mean(full)`` at ``argmax_t full``.

    >>> import torch
    >>> t = {n: torch.zeros(1, 1, 2) for n in TERM_NAMES}; t["muE_muD"] = torch.tensor([[[2.0, 1.0]]])
    >>> signed_shares_at_max(t, t["muE_muD"])["shares"]["muE_muD"].item()
    1.0
    """
    return SignedShareAccumulator().update(terms, full, src_lengths, tgt_lengths).result()


def aligned_position_counts(full: torch.Tensor, src_lengths: torch.Tensor | None = None,
                            tgt_lengths: torch.Tensor | None = None, k: int = 5) -> torch.Tensor:
    """How often each encoder position is among the top-``k`` by full score, over valid decoder steps:
    ``[B, (nh), S]`` counts (weights for :func:`residual_norm_fractions` "at the aligned positions").

    >>> import torch
    >>> aligned_position_counts(torch.tensor([[[0.0, 5.0, 1.0], [9.0, 0.0, 1.0]]]), k=1).tolist()
    [[1.0, 1.0, 0.0]]
    """
    f, had = with_heads(full.double(), 3, "full scores")
    b, nh, t, s = f.shape
    src_m, tgt_m, src_len = masks(b, t, s, src_lengths, tgt_lengths, f.device)
    idx, ok = top_k_valid(f, src_m, src_len, k)  # [B, nh, T, kk]
    kk = idx.shape[-1]
    ok = ok & tgt_m[..., None]
    counts = f.new_zeros(b, nh, s)
    counts.scatter_add_(-1, idx.reshape(b, nh, t * kk), ok.expand(b, nh, t, kk).reshape(b, nh, t * kk).double())
    return squeeze(counts, had, 1)


class ResidualNormAccumulator:
    """Streaming weighted means of ``||h - mu|| / ||h||`` and ``||h - mu - chi|| / ||h||`` (``= ||delta|| / ||h||``).

    ``weights [B, (nh), L]`` say how much each position counts (0 = ignored), e.g. the top-k alignment counts of
    :func:`aligned_position_counts`, or a validity mask. Positions with ``h = 0`` are skipped.

    >>> import torch
    >>> h = torch.tensor([[[3.0, 4.0]]]); mu = torch.tensor([[[3.0, 0.0]]]); chi = torch.zeros(1, 1, 2)
    >>> r = ResidualNormAccumulator().update(h, mu, chi, torch.ones(1, 1)).result()
    >>> r["h_minus_mu"].item(), r["delta"].item()
    (0.8, 0.8)
    """

    def __init__(self) -> None:
        self._sums: torch.Tensor | None = None  # [3, nh]: sum w*r1, sum w*r2, sum w
        self._had_heads = False

    def update(self, h: torch.Tensor, mu: torch.Tensor, chi: torch.Tensor,
               weights: torch.Tensor) -> ResidualNormAccumulator:
        """Add one batch of vectors ``[B, (nh), L, D]`` with weights ``[B, (nh), L]``."""
        hh, had = with_heads(h.double(), 3, "h")
        mm, _ = with_heads(mu.double(), 3, "mu")
        cc, _ = with_heads(chi.double(), 3, "chi")
        w, _ = with_heads(torch.as_tensor(weights).double().to(hh.device), 2, "weights")
        w = w.expand(hh.shape[:-1])
        self._had_heads = had
        nh_ = torch.linalg.vector_norm(hh, dim=-1)
        ok = (w > 0) & (nh_ > 0)
        r1 = torch.linalg.vector_norm(hh - mm, dim=-1) / nh_.clamp_min(TINY)
        r2 = torch.linalg.vector_norm(hh - mm - cc, dim=-1) / nh_.clamp_min(TINY)
        w = torch.where(ok, w, 0.0)
        s = torch.stack([(torch.where(ok, r1, 0.0) * w).sum((0, 2)), (torch.where(ok, r2, 0.0) * w).sum((0, 2)),
                         w.sum((0, 2))])
        if self._sums is None:
            self._sums = s
        elif self._sums.shape != s.shape:
            raise InnerworksError("residual norms: batches disagree on the number of heads")
        else:
            self._sums = self._sums + s
        return self

    def result(self) -> dict[str, torch.Tensor]:
        """``{"h_minus_mu": [(nh)], "delta": [(nh)], "weight": [(nh)]}``."""
        if self._sums is None:
            raise InnerworksError("residual norms: no batch was added")
        w = self._sums[2]
        return {"h_minus_mu": squeeze(self._sums[0] / w, self._had_heads),
                "delta": squeeze(self._sums[1] / w, self._had_heads),
                "weight": squeeze(w, self._had_heads)}


def residual_norm_fractions(h: torch.Tensor, mu: torch.Tensor, chi: torch.Tensor,
                            weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-shot :class:`ResidualNormAccumulator`: weighted mean ``||h-mu||/||h||`` and ``||h-mu-chi||/||h||``.

    >>> import torch
    >>> residual_norm_fractions(torch.ones(1, 2, 2), torch.ones(1, 2, 2), torch.zeros(1, 2, 2),
    ...                         torch.ones(1, 2))["h_minus_mu"].item()
    0.0
    """
    return ResidualNormAccumulator().update(h, mu, chi, weights).result()


__all__ = ["DotRatioAccumulator", "ResidualNormAccumulator", "SignedShareAccumulator", "aligned_position_counts",
           "dot_ratios", "residual_norm_fractions", "signed_shares_at_max"]
