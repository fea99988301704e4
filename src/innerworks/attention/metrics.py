"""Metrics that say which of the nine score terms drives attention (§2 of ``papers/attention.md``).

Every metric comes as a streaming accumulator (``update`` per batch, ``result`` at the end) plus a one-shot
function that runs the accumulator on a single batch, so streamed and one-shot results agree by construction.
Inputs take an optional head axis: terms and scores ``[B, (nh), T, S]``; results keep the head axis only when
the inputs had one. Validity: source positions ``t < src_lengths[b]``, decoder steps ``s < tgt_lengths[b]``
(``None`` means every position is valid).

- :func:`dot_ratios`: ``|term| / sum |terms|`` at the top-k encoder positions by full score, averaged over the k
  positions, then over samples per decoder step, then over steps (the paper's ``calculate_dot_ratios``).
- :func:`signed_shares_at_max`: ``mean(term) / mean(full)`` at the maximal alignment ``argmax_t full[s, t]``.
- :func:`temporal_attention`: ``softmax_t(scale * mu^D_s . mu^E_t)``; :func:`attention_match` compares it (or any
  reference attention) with per-sample attention.
- :func:`temporal_lag` and :func:`compare_lag_to_offset`: the lag ``argmax_t(mu^D_s . mu^E_t) - s`` against the
  data's mean encoder-minus-decoder offset; :func:`attention_lag`: the same lag read off each sample's own attention
  (``argmax_t alpha[s, t] - s``, averaged over samples per step), which says whether the network itself follows
  the offset at a step, whatever its temporal components do.
- :func:`residual_norm_fractions`: ``||h - mu|| / ||h||`` and ``||h - mu - chi|| / ||h||``.

>>> import torch
>>> from innerworks.attention.scores import TERM_NAMES
>>> terms = {n: torch.zeros(1, 2, 3) for n in TERM_NAMES}
>>> terms["muE_muD"] = torch.eye(2, 3)[None] * 5
>>> dot_ratios(terms, terms["muE_muD"], k=1)["mean"]["muE_muD"].item()
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from innerworks.attention.scores import TERM_NAMES, masked_softmax, valid_mask
from innerworks.errors import InnerworksError

_TINY = 1e-300


def _with_heads(x: torch.Tensor, base_dim: int, name: str) -> tuple[torch.Tensor, bool]:
    """Return ``x`` with a head axis at dim 1, and whether it had one."""
    if x.dim() == base_dim:
        return x.unsqueeze(1), False
    if x.dim() == base_dim + 1:
        return x, True
    raise InnerworksError(f"{name}: expected {base_dim} dims (or {base_dim + 1} with a head axis), got "
                          f"shape {tuple(x.shape)}")


def _masks(b: int, t: int, s: int, src_lengths: torch.Tensor | None, tgt_lengths: torch.Tensor | None,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``src [B,1,1,S]``, ``tgt [B,1,T]`` masks and the source lengths ``[B]``."""
    src_len = (torch.full((b,), s, device=device) if src_lengths is None
               else torch.as_tensor(src_lengths).to(device).clamp(max=s))
    tgt_len = (torch.full((b,), t, device=device) if tgt_lengths is None
               else torch.as_tensor(tgt_lengths).to(device).clamp(max=t))
    if src_len.shape != (b,) or tgt_len.shape != (b,):
        raise InnerworksError(f"src_lengths/tgt_lengths must have shape ({b},), got {tuple(src_len.shape)} and "
                              f"{tuple(tgt_len.shape)}")
    src_m = valid_mask(src_len, s)[:, None, None, :]
    tgt_m = valid_mask(tgt_len, t)[:, None, :] & (src_len > 0)[:, None, None]
    return src_m, tgt_m, src_len


def _grow(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Zero-pad ``x`` along ``dim`` up to ``size`` (streamed batches may have different widths)."""
    if x.shape[dim] >= size:
        return x
    pad_shape = list(x.shape)
    pad_shape[dim] = size - x.shape[dim]
    return torch.cat([x, x.new_zeros(pad_shape)], dim=dim)


def _squeeze(x: torch.Tensor, had_heads: bool, dim: int = 0) -> torch.Tensor:
    return x if had_heads else x.squeeze(dim)


def _stack_terms(terms: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, bool]:
    """``[9, B, nh, T, S]`` float64 stack in :data:`TERM_NAMES` order."""
    missing = [n for n in TERM_NAMES if n not in terms]
    if missing:
        raise InnerworksError(f"terms dict lacks {missing}; expected the 9 names {list(TERM_NAMES)}")
    xs = [_with_heads(terms[n].double(), 3, f"terms[{n!r}]") for n in TERM_NAMES]
    if len({x.shape for x, _ in xs}) != 1:
        raise InnerworksError("all nine terms must share one shape")
    return torch.stack([x for x, _ in xs]), xs[0][1]


def _masked_argmax(f: torch.Tensor, src_m: torch.Tensor) -> torch.Tensor:
    neg = torch.full((), -math.inf, dtype=f.dtype, device=f.device)
    return torch.where(src_m, f, neg).argmax(dim=-1)


def _terms_and_full(terms: Mapping[str, torch.Tensor], full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Stack the nine terms ``[9, B, nh, T, S]`` and the full scores ``[B, nh, T, S]`` (float64), checking shapes;
    also say whether the input had a head axis."""
    a, had = _stack_terms(terms)
    f, _ = _with_heads(full.double(), 3, "full scores")
    if f.shape != a.shape[1:]:
        raise InnerworksError(f"full scores {tuple(f.shape)} do not match terms {tuple(a.shape[1:])}")
    return a, f, had


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
        a, f, self._had_heads = _terms_and_full(terms, full)
        _, b, nh, t, s = a.shape
        src_m, tgt_m, src_len = _masks(b, t, s, src_lengths, tgt_lengths, f.device)
        a = a.abs()
        ratio = a / a.sum(0, keepdim=True).clamp_min(_TINY)
        kk = min(self.k, s)
        neg = torch.full((), -math.inf, dtype=f.dtype, device=f.device)
        idx = torch.where(src_m, f, neg).topk(kk, dim=-1).indices  # [B, nh, T, kk]
        pick_ok = torch.arange(kk, device=f.device)[None, :] < src_len[:, None]  # [B, kk]
        pick_ok = pick_ok[:, None, None, :]
        r = ratio.gather(-1, idx.unsqueeze(0).expand(9, *idx.shape))  # [9, B, nh, T, kk]
        per_ns = torch.where(pick_ok, r, 0.0).sum(-1) / pick_ok.sum(-1).clamp_min(1)  # [9, B, nh, T]
        per_ns = torch.where(tgt_m, per_ns, 0.0)
        if self._step_sum is None:
            self._step_sum = per_ns.new_zeros(9, nh, t)
            self._step_count = per_ns.new_zeros(t)
        if self._step_sum.shape[1] != nh:
            raise InnerworksError(f"dot ratios: batches disagree on the number of heads ({self._step_sum.shape[1]} "
                                  f"vs {nh})")
        self._step_sum = _grow(self._step_sum, t, 2)
        self._step_count = _grow(self._step_count, t, 0)
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
            "per_step": {n: _squeeze(per_step[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "mean": {n: _squeeze(mean[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "step_counts": cnt.clone(),
            "per_sample": None,
        }
        if self.keep_samples and self._samples:
            ps = torch.cat(self._samples)  # [N, nh, 9]
            out["per_sample"] = {n: _squeeze(ps[..., i], self._had_heads, 1) for i, n in enumerate(TERM_NAMES)}
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
        a, f, self._had_heads = _terms_and_full(terms, full)
        _, b, nh, t, s = a.shape
        src_m, tgt_m, _ = _masks(b, t, s, src_lengths, tgt_lengths, f.device)
        idx = _masked_argmax(f, src_m)[..., None]  # [B, nh, T, 1]
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
            grow = max(v, self._tok_sum.shape[2])
            self._tok_sum = _grow(self._tok_sum, grow, 2) + _grow(sums, grow, 2)

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
            by_tok = {n: _squeeze(bt[i], self._had_heads) for i, n in enumerate(TERM_NAMES)}
        return {
            "shares": {n: _squeeze(shares[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "mean_terms": {n: _squeeze(means[i], self._had_heads) for i, n in enumerate(TERM_NAMES)},
            "mean_full": _squeeze(self._full_sum / self._count, self._had_heads),
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
        q, had = _with_heads(sample.double(), 3, "sample attention")
        p = reference.double()
        if p.dim() == sample.dim() - 1 and had:
            p = p.unsqueeze(0)  # [nh, T, S] -> [1, nh, T, S]
        p, _ = _with_heads(p, 3, "reference attention") if p.dim() == sample.dim() else (p, had)
        try:
            p, q = torch.broadcast_tensors(p, q)
        except RuntimeError:
            raise InnerworksError(f"reference attention {tuple(reference.shape)} does not broadcast to sample "
                                  f"attention {tuple(sample.shape)}") from None
        self._had_heads = had
        b, nh, t, s = q.shape
        src_m, tgt_m, _ = _masks(b, t, s, src_lengths, tgt_lengths, q.device)
        pm, qm = torch.where(src_m, p, 0.0), torch.where(src_m, q, 0.0)
        tv = 0.5 * (pm - qm).abs().sum(-1)  # [B, nh, T]
        agree = (_masked_argmax(p, src_m) == _masked_argmax(q, src_m)).double()
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
            per_sample = _squeeze(torch.cat(self._samples), self._had_heads, 1)
        return {
            "tv": _squeeze(self._tv / self._count, self._had_heads),
            "argmax_agreement": _squeeze(self._agree / self._count, self._had_heads),
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
        return _softmax_where(sc, torch.as_tensor(enc_valid, dtype=torch.bool, device=sc.device))
    return torch.softmax(sc, dim=-1)


def _softmax_where(sc: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Softmax over the positions where ``m`` (any pattern) is True."""
    out = torch.softmax(torch.where(m, sc, torch.full((), -math.inf, dtype=sc.dtype, device=sc.device)), dim=-1)
    return torch.where(m, out, 0.0)


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
        w, self._had_heads = _with_heads(attention.double(), 3, "attention")
        b, nh, t, s = w.shape
        src_m, tgt_m, _ = _masks(b, t, s, src_lengths, tgt_lengths, w.device)
        lag = (_masked_argmax(w, src_m) - torch.arange(t, device=w.device)).double()  # [B, nh, T]
        tm = tgt_m.expand(b, nh, t)
        add = torch.where(tm, lag, 0.0).sum(0)
        cnt = tgt_m[:, 0, :].sum(0)
        if self._sum is None or self._count is None:
            self._sum, self._count = add, cnt
        else:
            if self._sum.shape[0] != nh:
                raise InnerworksError("attention lag: batches disagree on the number of heads")
            width = max(t, self._sum.shape[1])
            self._sum = _grow(self._sum, width, 1) + _grow(add, width, 1)
            self._count = _grow(self._count, width, 0) + _grow(cnt, width, 0)
        return self

    def result(self) -> dict[str, torch.Tensor]:
        """``{"lag": [(nh), T] (NaN at steps no sample reached), "step_counts": [T]}``, trimmed to the steps
        reached."""
        if self._sum is None or self._count is None or not bool((self._count > 0).any()):
            raise InnerworksError("attention lag: no valid (sample, step) was added")
        seen = int(torch.nonzero(self._count).max()) + 1
        cnt = self._count[:seen]
        lag = torch.where(cnt > 0, self._sum[:, :seen] / cnt.clamp_min(1), math.nan)
        return {"lag": _squeeze(lag, self._had_heads), "step_counts": cnt.clone()}


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


def aligned_position_counts(full: torch.Tensor, src_lengths: torch.Tensor | None = None,
                            tgt_lengths: torch.Tensor | None = None, k: int = 5) -> torch.Tensor:
    """How often each encoder position is among the top-``k`` by full score, over valid decoder steps:
    ``[B, (nh), S]`` counts (weights for :func:`residual_norm_fractions` "at the aligned positions").

    >>> import torch
    >>> aligned_position_counts(torch.tensor([[[0.0, 5.0, 1.0], [9.0, 0.0, 1.0]]]), k=1).tolist()
    [[1.0, 1.0, 0.0]]
    """
    f, had = _with_heads(full.double(), 3, "full scores")
    b, nh, t, s = f.shape
    src_m, tgt_m, src_len = _masks(b, t, s, src_lengths, tgt_lengths, f.device)
    kk = min(k, s)
    neg = torch.full((), -math.inf, dtype=f.dtype, device=f.device)
    idx = torch.where(src_m, f, neg).topk(kk, dim=-1).indices  # [B, nh, T, kk]
    ok = (torch.arange(kk, device=f.device)[None, :] < src_len[:, None])[:, None, None, :] & tgt_m[..., None]
    counts = f.new_zeros(b, nh, s)
    counts.scatter_add_(-1, idx.reshape(b, nh, t * kk), ok.expand(b, nh, t, kk).reshape(b, nh, t * kk).double())
    return _squeeze(counts, had, 1)


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
        hh, had = _with_heads(h.double(), 3, "h")
        mm, _ = _with_heads(mu.double(), 3, "mu")
        cc, _ = _with_heads(chi.double(), 3, "chi")
        w, _ = _with_heads(torch.as_tensor(weights).double().to(hh.device), 2, "weights")
        w = w.expand(hh.shape[:-1])
        self._had_heads = had
        nh_ = torch.linalg.vector_norm(hh, dim=-1)
        ok = (w > 0) & (nh_ > 0)
        r1 = torch.linalg.vector_norm(hh - mm, dim=-1) / nh_.clamp_min(_TINY)
        r2 = torch.linalg.vector_norm(hh - mm - cc, dim=-1) / nh_.clamp_min(_TINY)
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
        return {"h_minus_mu": _squeeze(self._sums[0] / w, self._had_heads),
                "delta": _squeeze(self._sums[1] / w, self._had_heads),
                "weight": _squeeze(w, self._had_heads)}


def residual_norm_fractions(h: torch.Tensor, mu: torch.Tensor, chi: torch.Tensor,
                            weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-shot :class:`ResidualNormAccumulator`: weighted mean ``||h-mu||/||h||`` and ``||h-mu-chi||/||h||``.

    >>> import torch
    >>> residual_norm_fractions(torch.ones(1, 2, 2), torch.ones(1, 2, 2), torch.zeros(1, 2, 2),
    ...                         torch.ones(1, 2))["h_minus_mu"].item()
    0.0
    """
    return ResidualNormAccumulator().update(h, mu, chi, weights).result()
