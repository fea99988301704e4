"""Temporal / input / residual decomposition of hidden states (Aitken et al. 2021, §1 of ``papers/attention.md``).

For a vector ``h[n, t]`` (a hidden state, or a projected query/key of one head) at position ``t`` of sample ``n``
with token ``w = tok[n, t]``::

    h[n, t] = mu[t] + chi[w] + delta[n, t]

- ``mu[t]``: the temporal component, the mean of ``h[., t]`` over the samples valid at ``t``;
- ``chi[w]``: the input component, the mean of ``h[n, t] - mu[t]`` over ALL valid ``(n, t)`` with token ``w``
  (pooled over positions, weighted by occurrence; not a mean of per-position means);
- ``delta``: the rest, so the identity holds exactly.

Validity (the paper's pad rule "the first pad acts as EOS" in innerworks' token conventions): position ``t`` of
sample ``n`` counts iff ``t < lengths[n]``, which includes the ``<eos>`` and excludes pads. Decoder vectors are
keyed by the decoder's INPUT token: ``<bos>`` at step 0, then the previous predicted token
(:func:`decoder_input_tokens`).

Streaming: :class:`TemporalInputDecomposition` keeps float64 sums (per position, per token, per (token, position)
count), so one pass over any number of batches gives exact ``mu`` and ``chi``::

    chi[w] = (sum_{tok=w} h - sum_t n[w, t] mu[t]) / n[w]

A second pass (:class:`VarianceStats`) measures variance explained, per-word variance reduction and per-step
participation ratios. :func:`decompose_attention` runs both passes over cached model activations and adds the
attention-score breakdown of :mod:`innerworks.attention.scores` and :mod:`innerworks.attention.metrics`.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> h = torch.randn(4, 3, 2, generator=g, dtype=torch.float64)
>>> tok = torch.tensor([[3, 4, 1], [4, 1, 0], [3, 3, 1], [4, 4, 1]]); lengths = torch.tensor([3, 2, 3, 3])
>>> dec = TemporalInputDecomposition().fit(h, tok, lengths)
>>> mu, chi, delta = dec.transform(h, tok, lengths)
>>> bool(torch.allclose((mu + chi + delta)[1, :2], h[1, :2], atol=1e-12)), (mu + chi + delta)[1, 2].tolist()
(True, [0.0, 0.0])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from innerworks.attention.metrics import (
    AttentionLagAccumulator,
    AttentionMatchAccumulator,
    DotRatioAccumulator,
    ResidualNormAccumulator,
    SignedShareAccumulator,
    aligned_position_counts,
    compare_lag_to_offset,
    correlation,
    temporal_lag,
    temporal_scores,
)
from innerworks.attention.scores import (
    INPUT_TERMS,
    TEMPORAL_TERMS,
    TERM_NAMES,
    attention_from_terms,
    infer_scale,
    masked_softmax,
    reconstruct_scores,
    score_terms,
    valid_mask,
)
from innerworks.errors import InnerworksError

BOS_ID = 2
"""Target-vocabulary id of ``<bos>`` (``<pad>=0, <eos>=1, <bos>=2``)."""

# Canonical cache names produced by the seq2seq models' ``run_with_cache``.
HOOK_ENC_STATES = "encoder.hook_states"
HOOK_DEC_STATES = "decoder.hook_states"
HOOK_DEC_TOKENS = "decoder.hook_tokens"
HOOK_SCORES = "attn.hook_scores"
HOOK_WEIGHTS = "attn.hook_weights"
HOOK_Q = "attn.hook_q"
HOOK_K = "attn.hook_k"


def decoder_input_tokens(logits_or_predictions: torch.Tensor, bos_id: int = BOS_ID) -> torch.Tensor:
    """Decoder input tokens for keying ``chi^D``: ``<bos>`` at step 0, then the previous PREDICTED token.

    Accepts logits ``[B, T, V]`` (argmax taken) or predicted ids ``[B, T]``.

    >>> import torch
    >>> decoder_input_tokens(torch.tensor([[5, 6, 1]])).tolist()
    [[2, 5, 6]]
    >>> decoder_input_tokens(torch.tensor([[[0.1, 0.9], [0.8, 0.2]]])).tolist()
    [[2, 1]]
    """
    x = logits_or_predictions
    if x.is_floating_point():
        if x.dim() != 3:
            raise InnerworksError(f"logits must be [B, T, V], got shape {tuple(x.shape)}")
        x = x.argmax(-1)
    if x.dim() != 2:
        raise InnerworksError(f"predictions must be [B, T], got shape {tuple(x.shape)}")
    out = torch.empty_like(x, dtype=torch.long)
    out[:, 0] = bos_id
    out[:, 1:] = x[:, :-1]
    return out


def _prepare(states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
             name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Validate; return float64 ``[B, nh, L, D]``, tokens ``[B, L]`` (0 at invalid positions), mask, had_heads."""
    if not isinstance(states, torch.Tensor) or states.dim() not in (3, 4):
        shape = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
        raise InnerworksError(f"{name}: states must be [B, L, D] or [B, nh, L, D], got {shape}")
    had = states.dim() == 4
    x = (states if had else states.unsqueeze(1)).detach().double()
    b, _, length, _ = x.shape
    tokens = torch.as_tensor(tokens).to(x.device)
    lengths = torch.as_tensor(lengths).to(x.device)
    if tokens.shape != (b, length):
        raise InnerworksError(f"{name}: tokens must be [B, L] = ({b}, {length}), got {tuple(tokens.shape)}")
    if lengths.shape != (b,):
        raise InnerworksError(f"{name}: lengths must be [B] = ({b},), got {tuple(lengths.shape)}")
    if b and (int(lengths.min()) < 0 or int(lengths.max()) > length):
        raise InnerworksError(f"{name}: lengths must be in 0..{length} (the padded width), got "
                              f"{int(lengths.min())}..{int(lengths.max())}")
    mask = valid_mask(lengths, length)
    tok = torch.where(mask, tokens.long(), 0)
    if b and bool(mask.any()) and int(tok[mask].min()) < 0:
        raise InnerworksError(f"{name}: negative token id at a valid position")
    return x, tok, mask, had


class TemporalInputDecomposition:
    """Streaming estimator of ``h = mu[t] + chi[token] + delta`` (see the module docstring).

    Args:
        vocab_size: number of token ids; ``None`` grows the table to the largest id seen.
        max_len: number of positions; ``None`` grows it to the widest batch seen. Valid positions beyond a given
            ``max_len`` are an error; padded columns beyond it are ignored.

    Inputs are ``states [B, L, D]`` or ``[B, nh, L, D]`` (one independent decomposition per head, e.g. projected
    queries or keys), ``tokens [B, L]`` and ``lengths [B]``. Fitted attributes (float64; head axis first when
    the input had one):

    - ``mu_`` ``[(nh), L, D]``: temporal components (0 where no sample was valid);
    - ``chi_`` ``[(nh), V, D]``: input components (0 for tokens never seen);
    - ``token_means_`` ``[(nh), V, D]``: mean ``h`` per token; ``global_mean_`` ``[(nh), D]``;
    - ``position_counts_`` ``[L]``, ``token_counts_`` ``[V]``, ``token_position_counts_`` ``[V, L]``;
    - ``n_sequences_``, ``n_states_``, ``n_heads_``, ``dim_``.

    >>> import torch
    >>> h = torch.tensor([[[1.0], [2.0]], [[3.0], [0.0]]], dtype=torch.float64)
    >>> d = TemporalInputDecomposition().fit(h, torch.tensor([[3, 1], [4, 0]]), torch.tensor([2, 1]))
    >>> d.mu_.squeeze(-1).tolist(), d.chi_.squeeze(-1).tolist()
    ([2.0, 2.0], [0.0, 0.0, 0.0, -1.0, 1.0])
    """

    def __init__(self, vocab_size: int | None = None, max_len: int | None = None) -> None:
        if vocab_size is not None and vocab_size < 1:
            raise InnerworksError(f"vocab_size must be >= 1, got {vocab_size}")
        if max_len is not None and max_len < 1:
            raise InnerworksError(f"max_len must be >= 1, got {max_len}")
        self.vocab_size = vocab_size
        self.max_len = max_len
        self._reset()

    def _reset(self) -> None:
        self._pos_sum: torch.Tensor | None = None  # [nh, L, D]
        self._pos_count: torch.Tensor | None = None  # [L]
        self._tok_sum: torch.Tensor | None = None  # [nh, V, D]
        self._tok_pos_count: torch.Tensor | None = None  # [V, L]
        self._had_heads = False
        self.n_sequences_ = 0

    # -- fitting -----------------------------------------------------------------------------------------------
    def _grow_to(self, length: int, vocab: int) -> None:
        assert self._pos_sum is not None and self._pos_count is not None
        assert self._tok_sum is not None and self._tok_pos_count is not None
        nh, cur_l, d = self._pos_sum.shape
        cur_v = self._tok_sum.shape[1]
        if length > cur_l:
            self._pos_sum = torch.cat([self._pos_sum, self._pos_sum.new_zeros(nh, length - cur_l, d)], 1)
            self._pos_count = torch.cat([self._pos_count, self._pos_count.new_zeros(length - cur_l)])
            self._tok_pos_count = torch.cat(
                [self._tok_pos_count, self._tok_pos_count.new_zeros(cur_v, length - cur_l)], 1)
        if vocab > cur_v:
            self._tok_sum = torch.cat([self._tok_sum, self._tok_sum.new_zeros(nh, vocab - cur_v, d)], 1)
            self._tok_pos_count = torch.cat(
                [self._tok_pos_count, self._tok_pos_count.new_zeros(vocab - cur_v, self._tok_pos_count.shape[1])])

    def _clip_width(self, x: torch.Tensor, tok: torch.Tensor, mask: torch.Tensor,
                    name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.max_len is not None and x.shape[2] > self.max_len:
            if bool(mask[:, self.max_len:].any()):
                raise InnerworksError(f"{name}: a sequence is longer than max_len={self.max_len}")
            x, tok, mask = x[:, :, : self.max_len], tok[:, : self.max_len], mask[:, : self.max_len]
        return x, tok, mask

    def partial_fit(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
                    ) -> TemporalInputDecomposition:
        """Add one batch to the running sums and refresh the fitted attributes.

        >>> import torch
        >>> d = TemporalInputDecomposition()
        >>> _ = d.partial_fit(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 1]))
        >>> d.position_counts_.tolist()
        [2, 1, 1]
        """
        x, tok, mask, had = _prepare(states, tokens, lengths, "partial_fit")
        if self._pos_sum is not None and x.device != self._pos_sum.device:
            x, tok, mask = x.to(self._pos_sum.device), tok.to(self._pos_sum.device), mask.to(self._pos_sum.device)
        x, tok, mask = self._clip_width(x, tok, mask, "partial_fit")
        b, nh, length, d = x.shape
        if self._pos_sum is None:
            self._had_heads = had
            alloc_l = self.max_len or length
            alloc_v = self.vocab_size or 1
            self._pos_sum = x.new_zeros(nh, alloc_l, d)
            self._pos_count = torch.zeros(alloc_l, dtype=torch.long, device=x.device)
            self._tok_sum = x.new_zeros(nh, alloc_v, d)
            self._tok_pos_count = torch.zeros(alloc_v, alloc_l, dtype=torch.long, device=x.device)
        elif (nh, d) != (self._pos_sum.shape[0], self._pos_sum.shape[2]) or had != self._had_heads:
            raise InnerworksError(f"partial_fit: batch has heads={nh if had else None}, D={d}; earlier batches had "
                                  f"heads={self._pos_sum.shape[0] if self._had_heads else None}, "
                                  f"D={self._pos_sum.shape[2]}")
        assert self._pos_count is not None and self._tok_sum is not None and self._tok_pos_count is not None
        max_tok = int(tok.max()) if tok.numel() else 0
        if self.vocab_size is not None and max_tok >= self.vocab_size:
            raise InnerworksError(f"partial_fit: token id {max_tok} at a valid position, vocab_size is "
                                  f"{self.vocab_size}")
        self._grow_to(length, max_tok + 1)
        alloc_l = self._pos_sum.shape[1]
        m4 = mask[:, None, :, None]
        self._pos_sum[:, :length] += torch.where(m4, x, 0.0).sum(0)
        self._pos_count[:length] += mask.sum(0)
        idx = tok[mask]  # [M], row-major over (b, t)
        pos = torch.arange(length, device=x.device).expand(b, length)[mask]
        vals = x.permute(1, 0, 2, 3)[:, mask]  # [nh, M, D]
        self._tok_sum.index_add_(1, idx, vals)
        v = self._tok_sum.shape[1]
        self._tok_pos_count += torch.bincount(idx * alloc_l + pos, minlength=v * alloc_l).view(v, alloc_l)
        self.n_sequences_ += int((mask.sum(1) > 0).sum())
        self._finalize()
        return self

    def fit(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> TemporalInputDecomposition:
        """Forget earlier batches and fit on this one (same as a fresh :meth:`partial_fit`).

        >>> import torch
        >>> TemporalInputDecomposition().fit(torch.ones(1, 2, 3), torch.zeros(1, 2, dtype=torch.long),
        ...                                  torch.tensor([2])).mu_.shape
        torch.Size([2, 3])
        """
        self._reset()
        return self.partial_fit(states, tokens, lengths)

    def _finalize(self) -> None:
        assert self._pos_sum is not None and self._pos_count is not None
        assert self._tok_sum is not None and self._tok_pos_count is not None
        cnt = self._pos_count.to(self._pos_sum.dtype)
        mu = self._pos_sum / cnt.clamp_min(1)[None, :, None]
        tpc = self._tok_pos_count.to(self._pos_sum.dtype)
        n_w = tpc.sum(1)
        # chi[w] = (sum over occurrences of h - sum_t n[w,t] mu[t]) / n[w]: exact pooled mean of h - mu.
        chi = (self._tok_sum - torch.einsum("vl,hld->hvd", tpc, mu)) / n_w.clamp_min(1)[None, :, None]
        self._mu, self._chi = mu, chi
        self._token_means = self._tok_sum / n_w.clamp_min(1)[None, :, None]
        n = cnt.sum().clamp_min(1)
        self._global_mean = self._pos_sum.sum(1) / n
        sq = (lambda t: t) if self._had_heads else (lambda t: t.squeeze(0))
        self.mu_ = sq(mu)
        self.chi_ = sq(chi)
        self.token_means_ = sq(self._token_means)
        self.global_mean_ = sq(self._global_mean)
        self.position_counts_ = self._pos_count.clone()
        self.token_position_counts_ = self._tok_pos_count.clone()
        self.token_counts_ = self._tok_pos_count.sum(1)
        self.n_states_ = int(self._pos_count.sum())
        self.n_heads_ = int(self._pos_sum.shape[0]) if self._had_heads else None
        self.dim_ = int(self._pos_sum.shape[2])

    def _check_fitted(self) -> None:
        if self._pos_sum is None:
            raise InnerworksError("decomposition is not fitted: call fit or partial_fit first")

    # -- transforming ------------------------------------------------------------------------------------------
    def _parts64(self, x: torch.Tensor, tok: torch.Tensor, mask: torch.Tensor,
                 name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """float64 ``(mu, chi, delta)`` ``[B, nh, L, D]``, zeros at invalid positions."""
        self._check_fitted()
        if x.device != self._mu.device:  # the sums live where the first fitted batch was
            x, tok, mask = x.to(self._mu.device), tok.to(self._mu.device), mask.to(self._mu.device)
        b, nh, length, d = x.shape
        if (nh, d) != (self._mu.shape[0], self._mu.shape[2]):
            raise InnerworksError(f"{name}: states have heads={nh}, D={d}; the fit had heads={self._mu.shape[0]}, "
                                  f"D={self._mu.shape[2]}")
        alloc_l = self._mu.shape[1]
        counts = self._pos_count
        if length > alloc_l:
            if bool(mask[:, alloc_l:].any()):
                raise InnerworksError(f"{name}: a sequence is longer than any fitted one ({alloc_l} positions)")
            x, tok, mask = x[:, :, :alloc_l], tok[:, :alloc_l], mask[:, :alloc_l]
            length = alloc_l
        unseen = mask & (counts[:length] == 0)[None, :]
        if bool(unseen.any()):
            t = int(unseen.nonzero()[0, 1])
            raise InnerworksError(f"{name}: position {t} is valid here but no fitted sample reached it (mu undefined)")
        m4 = mask[:, None, :, None]
        mu = torch.where(m4, self._mu[:, :length].unsqueeze(0), 0.0)
        v = self._chi.shape[1]
        # Tokens never seen in the fit have no input component: chi = 0 and delta absorbs them.
        known = tok < v
        chi = self._chi[:, tok.clamp(max=v - 1)].permute(1, 0, 2, 3)  # [B, nh, L, D]
        chi = torch.where(m4 & known[:, None, :, None], chi, 0.0)
        delta = torch.where(m4, x - mu - chi, 0.0)
        return mu, chi, delta

    def transform(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
                  dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split ``states`` into ``(mu, chi, delta)``, each shaped like ``states``, zero at invalid positions.

        ``mu + chi + delta == states`` at every valid position (computed in float64, returned in ``dtype``,
        default the dtype of ``states``).

        >>> import torch
        >>> h = torch.arange(6.0).view(1, 3, 2); tok = torch.tensor([[3, 1, 0]])
        >>> d = TemporalInputDecomposition().fit(h, tok, torch.tensor([2]))
        >>> [p[0, :, 0].tolist() for p in d.transform(h, tok, torch.tensor([2]))]
        [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        """
        x, tok, mask, had = _prepare(states, tokens, lengths, "transform")
        if had != self._had_heads:
            raise InnerworksError("transform: states must have a head axis exactly when the fitted states had one")
        full_len = x.shape[2]
        parts = self._parts64(x, tok, mask, "transform")
        out_dtype = dtype or (states.dtype if states.is_floating_point() else torch.float64)
        res = []
        for p in parts:
            if p.shape[2] < full_len:  # positions beyond the fit (all padding): give zeros back
                p = torch.cat([p, p.new_zeros(p.shape[0], p.shape[1], full_len - p.shape[2], p.shape[3])], 2)
            res.append((p if had else p.squeeze(1)).to(out_dtype))
        return res[0], res[1], res[2]

    def fit_transform(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`fit` then :meth:`transform` on the same batch.

        >>> import torch
        >>> mu, chi, delta = TemporalInputDecomposition().fit_transform(
        ...     torch.ones(2, 2, 1), torch.tensor([[3, 1], [3, 1]]), torch.tensor([2, 2]))
        >>> float(delta.abs().max())
        0.0
        """
        return self.fit(states, tokens, lengths).transform(states, tokens, lengths)


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
        return _plain({k: getattr(self, k) for k in self.__dataclass_fields__})


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
        decomposition._check_fitted()
        self.decomposition = decomposition
        self.per_step = per_step
        d = decomposition
        nh, alloc_l, dim = d._mu.shape
        v = d._chi.shape[1]
        z = d._mu.new_zeros
        self._ss = z(5, nh)  # total, mu, chi, delta, h - mu
        self._n = 0
        self._word_before = z(nh, v)
        self._word_after = z(nh, v)
        self._word_counts = torch.zeros(v, dtype=torch.long, device=d._mu.device)
        self._step_cov = z(nh, alloc_l, dim, dim) if per_step else None
        self._step_counts = torch.zeros(alloc_l, dtype=torch.long, device=d._mu.device)
        self._fitted_states = d.n_states_

    def update(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> VarianceStats:
        """Add one batch (same shapes as the fit)."""
        d = self.decomposition
        if d.n_states_ != self._fitted_states:
            raise InnerworksError("VarianceStats.update: the decomposition changed after VarianceStats was created; "
                                  "finish fitting first (two passes)")
        x, tok, mask, had = _prepare(states, tokens, lengths, "VarianceStats.update")
        x, tok, mask = x.to(d._mu.device), tok.to(d._mu.device), mask.to(d._mu.device)
        if had != d._had_heads:
            raise InnerworksError("VarianceStats.update: head axis must match the fitted decomposition")
        x, tok, mask = d._clip_width(x, tok, mask, "VarianceStats.update")
        if x.shape[2] > d._mu.shape[1]:
            x, tok, mask = x[:, :, : d._mu.shape[1]], tok[:, : d._mu.shape[1]], mask[:, : d._mu.shape[1]]
        mu, chi, delta = d._parts64(x, tok, mask, "VarianceStats.update")
        length = x.shape[2]
        m4 = mask[:, None, :, None]
        gm = d._global_mean[None, :, None, :]

        def sq(t: torch.Tensor) -> torch.Tensor:  # per-vector squared norm at valid positions: [B, nh, L]
            return torch.where(mask[:, None, :], (t * t).sum(-1), 0.0)

        x0 = torch.where(m4, x, 0.0)  # garbage (even NaN) at pads never enters a sum
        self._ss += torch.stack([sq(x0 - gm), sq(mu - gm), sq(chi), sq(delta), sq(x0 - mu)]).sum((1, 3))
        self._n += int(mask.sum())
        v = d._chi.shape[1]
        known = mask & (tok < v)
        tokc = tok.clamp(max=v - 1)
        known &= (d.token_counts_[tokc] > 0)
        before = torch.where(known[:, None, :], ((x0 - d._token_means[:, tokc].permute(1, 0, 2, 3)) ** 2).sum(-1), 0.0)
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
        had = self.decomposition._had_heads

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


# ---------------------------------------------------------------------------------------------------------------
# High-level: both passes over cached activations.
# ---------------------------------------------------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    """Tensors -> lists/floats; NaN -> None; dataclasses with to_dict -> dicts."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        return _plain(obj.item() if obj.dim() == 0 else obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


@dataclass
class AttentionAnalysis:
    """Everything :func:`decompose_attention` measures. Attention fields are ``None`` for models without
    attention (VED). Per-head values are tensors with a leading head axis ``[nh]`` (``nh = 1`` for dot attention).

    Attributes:
        n_sequences: samples analysed. n_heads: attention heads (0 without attention). scale: score scale.
        attention_source: ``"states"`` (dot attention on hidden states), ``"qk"`` (projected queries/keys) or None.
        encoder / decoder: :class:`VarianceReport` of the hidden states (variance explained, per-word variance
            ratio, per-step total variance and participation ratio).
        keys / queries: :class:`VarianceReport` of the projected keys/queries (``"qk"`` only, no per-step PCA).
        score_identity_max_abs_err: ``max |sum of 9 terms - attn.hook_scores|`` over valid pairs.
        dot_ratios: ``{term: [nh]}``; dot_ratios_per_step: ``{term: [nh, T]}``.
        signed_shares: ``{term: [nh]}`` at the maximal alignment; mean_full_score: ``[nh]``.
        signed_shares_by_key_token: ``{term: [nh, V]}``, each share split by the encoder token at the maximal
            alignment (sums over ``V`` to ``signed_shares``).
        temporal_attention: ``[nh, T, S]`` softmax of ``scale * mu^D . mu^E`` over the positions seen in the data.
        temporal_match / mean_attention_match: ``{"tv", "argmax_agreement"}`` ``[nh]``: per-sample attention
            vs the temporal-only attention / vs the dataset-average attention.
        reconstructed_match: ``{set name: {"tv", "argmax_agreement"}}`` for attention rebuilt from term subsets.
        temporal_lag: ``[nh, T]`` ``argmax_t(mu^D_s . mu^E_t) - s``; lag_vs_offset: one dict per head (or None).
        attention_lag: ``[nh, T]`` mean over samples of ``argmax_t alpha[s, t] - s`` (the per-sample attention's
            own lag); attention_lag_vs_offset: one dict per head (or None); step_counts: ``[T]`` samples valid at
            each decoder step (the support of every per-step mean, ``mu^D_s`` included).
        residual_norms: ``{"encoder_h_minus_mu", "encoder_delta"}`` at the top-k aligned encoder positions and
            ``{"decoder_h_minus_mu", "decoder_delta"}`` over valid steps, each ``[nh]``, on the vectors that enter
            the score.
        similarity_vs_temporal_share: per head, correlation over samples between a sample's distance to the
            dataset-average attention (TV) and its ``muE_muD`` dot ratio (the paper's claim 3 predicts negative).
        decompositions: the fitted estimators (not serialised).
    """

    n_sequences: int
    n_heads: int
    scale: float | None
    attention_source: str | None
    k: int
    encoder: VarianceReport
    decoder: VarianceReport
    keys: VarianceReport | None = None
    queries: VarianceReport | None = None
    score_identity_max_abs_err: float | None = None
    dot_ratios: dict[str, torch.Tensor] | None = None
    dot_ratios_per_step: dict[str, torch.Tensor] | None = None
    signed_shares: dict[str, torch.Tensor] | None = None
    signed_shares_by_key_token: dict[str, torch.Tensor] | None = None
    mean_full_score: torch.Tensor | None = None
    temporal_attention: torch.Tensor | None = None
    temporal_match: dict[str, torch.Tensor] | None = None
    mean_attention_match: dict[str, torch.Tensor] | None = None
    reconstructed_match: dict[str, dict[str, torch.Tensor]] | None = None
    temporal_lag: torch.Tensor | None = None
    lag_vs_offset: list[dict[str, float]] | None = None
    attention_lag: torch.Tensor | None = None
    attention_lag_vs_offset: list[dict[str, float]] | None = None
    step_counts: torch.Tensor | None = None
    residual_norms: dict[str, torch.Tensor] | None = None
    similarity_vs_temporal_share: list[dict[str, float]] | None = None
    decompositions: dict[str, TemporalInputDecomposition] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tensors become lists, NaN becomes None); the fitted estimators are left out.

        >>> import torch
        >>> r = VarianceReport(1, torch.tensor(1.0), {}, torch.tensor(0.5), torch.tensor(0.9), torch.ones(1),
        ...                    torch.ones(1), torch.ones(1), torch.tensor(1.0))
        >>> AttentionAnalysis(1, 0, None, None, 5, r, r).to_dict()["n_heads"]
        0
        """
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "decompositions"}
        out["term_names"] = list(TERM_NAMES)
        return _plain(out)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text of :meth:`to_dict`; also written atomically to ``path`` when given.

        >>> import torch
        >>> r = VarianceReport(1, torch.tensor(1.0), {}, torch.tensor(0.5), torch.tensor(0.9), torch.ones(1),
        ...                    torch.ones(1), torch.ones(1), torch.tensor(1.0))
        >>> AttentionAnalysis(1, 0, None, None, 5, r, r).to_json()[:1]
        '{'
        """
        from innerworks.utils.io import atomic_write_text

        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def summary(self) -> str:
        """A short human-readable text summary.

        >>> import torch
        >>> r = VarianceReport(1, torch.tensor(1.0), {"mu": torch.tensor(0.9)}, torch.tensor(0.9),
        ...                    torch.tensor(0.95), torch.ones(1), torch.ones(1), torch.ones(1), torch.tensor(0.8))
        >>> print(AttentionAnalysis(3, 0, None, None, 5, r, r).summary().splitlines()[0])
        attention decomposition: 3 sequences, no attention
        """

        def f(x: Any) -> str:
            if isinstance(x, torch.Tensor):
                x = x.flatten().tolist()
            if isinstance(x, list):
                return "[" + ", ".join(f(v) for v in x) + "]"
            return "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"

        head_txt = f"{self.n_heads} head(s), scale {self.scale:.4g}, from {self.attention_source}" if self.n_heads \
            else "no attention"
        lines = [f"attention decomposition: {self.n_sequences} sequences, {head_txt}"]
        for side, rep in (("encoder", self.encoder), ("decoder", self.decoder)):
            lines.append(f"  {side} states: R2(mu)={f(rep.r2_mu)} R2(mu+chi)={f(rep.r2_mu_chi)} "
                         f"variance ratio after mu={f(rep.variance_ratio)}")
        if self.n_heads:
            assert self.dot_ratios is not None and self.signed_shares is not None
            lines.append(f"  score identity max |sum(terms) - score| = {self.score_identity_max_abs_err:.2e}")
            lines.append(f"  {'term':<14}{'dot ratio (top-' + str(self.k) + ')':>22}{'share at max':>22}")
            for n in TERM_NAMES:
                lines.append(f"  {n:<14}{f(self.dot_ratios[n]):>22}{f(self.signed_shares[n]):>22}")
            lines.append(f"  mean full score at max: {f(self.mean_full_score)}")
            if self.temporal_match is not None:
                lines.append(f"  temporal-only attention vs sample: TV={f(self.temporal_match['tv'])} "
                             f"argmax agreement={f(self.temporal_match['argmax_agreement'])}")
            if self.lag_vs_offset is not None:
                lines.append("  lag vs data offset: " + "; ".join(
                    f"r={f(d['pearson'])} mean|diff|={f(d['mean_abs_diff'])}" for d in self.lag_vs_offset))
            if self.attention_lag_vs_offset is not None:
                lines.append("  samples' own attention lag vs data offset: " + "; ".join(
                    f"r={f(d['pearson'])} mean|diff|={f(d['mean_abs_diff'])}" for d in self.attention_lag_vs_offset))
        return "\n".join(lines)


@dataclass
class _Batch:
    enc_h: torch.Tensor
    dec_h: torch.Tensor
    src: torch.Tensor
    dec_tok: torch.Tensor
    src_len: torch.Tensor
    tgt_len: torch.Tensor
    scores: torch.Tensor | None
    weights: torch.Tensor | None
    q: torch.Tensor | None
    k: torch.Tensor | None


def _read_batch(cache: Mapping[str, Any], index: int, bos_id: int) -> _Batch:
    where = f"cache batch {index}"
    if not isinstance(cache, Mapping):
        raise InnerworksError(f"{where}: expected a dict of tensors, got {type(cache).__name__}")
    for key in (HOOK_ENC_STATES, HOOK_DEC_STATES, "src", "src_lengths", "tgt_lengths"):
        if key not in cache:
            raise InnerworksError(f"{where}: missing key {key!r}")
    if HOOK_DEC_TOKENS in cache:
        dec_tok = torch.as_tensor(cache[HOOK_DEC_TOKENS])
    elif "logits" in cache:
        dec_tok = decoder_input_tokens(cache["logits"], bos_id)
    else:
        raise InnerworksError(f"{where}: missing key {HOOK_DEC_TOKENS!r} (or 'logits' to derive it)")
    q, k = cache.get(HOOK_Q), cache.get(HOOK_K)
    if (q is None) != (k is None):
        raise InnerworksError(f"{where}: {HOOK_Q!r} and {HOOK_K!r} must be given together")
    scores, weights = cache.get(HOOK_SCORES), cache.get(HOOK_WEIGHTS)
    for name, t, nd in ((HOOK_ENC_STATES, cache[HOOK_ENC_STATES], 3), (HOOK_DEC_STATES, cache[HOOK_DEC_STATES], 3),
                        (HOOK_Q, q, 4), (HOOK_K, k, 4)):
        if t is not None and (not isinstance(t, torch.Tensor) or t.dim() != nd):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InnerworksError(f"{where}: {name!r} must be a {nd}-D tensor, got {shape}")
    return _Batch(cache[HOOK_ENC_STATES], cache[HOOK_DEC_STATES], torch.as_tensor(cache["src"]), dec_tok,
                  torch.as_tensor(cache["src_lengths"]), torch.as_tensor(cache["tgt_lengths"]),
                  scores, weights, q, k)


def _qk_are_states(b: _Batch) -> bool:
    """True when the cached queries/keys are the hidden states themselves (dot attention, one head)."""
    assert b.q is not None and b.k is not None
    if b.q.shape[1] != 1 or b.q.shape[2:] != b.dec_h.shape[1:] or b.k.shape[2:] != b.enc_h.shape[1:]:
        return False
    qm = valid_mask(b.tgt_len.to(b.q.device), b.q.shape[2])
    km = valid_mask(b.src_len.to(b.k.device), b.k.shape[2])
    return bool(torch.equal(b.q[:, 0][qm], b.dec_h.to(b.q.device)[qm])
                and torch.equal(b.k[:, 0][km], b.enc_h.to(b.k.device)[km]))


def _heads4(x: torch.Tensor, nh: int, name: str, where: str) -> torch.Tensor:
    """Scores/weights as ``[B, nh, T, S]``."""
    if x.dim() == 3 and nh == 1:
        return x.unsqueeze(1)
    if x.dim() == 4 and x.shape[1] == nh:
        return x
    raise InnerworksError(f"{where}: {name!r} has shape {tuple(x.shape)}; expected [B, T, S] (one head) or "
                          f"[B, {nh}, T, S]")


def _fresh_iter(cache_batches: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]],
                ) -> Iterator[Mapping[str, Any]]:
    src = cache_batches() if callable(cache_batches) else cache_batches
    return iter(src)


def _progress(it: Iterator[Mapping[str, Any]], label: str, show: bool) -> Iterator[Mapping[str, Any]]:
    if not show:
        yield from it
        return
    from rich.progress import Progress

    with Progress(transient=True) as prog:
        task = prog.add_task(label, total=None)
        for item in it:
            yield item
            prog.advance(task)


DEFAULT_TERM_SETS: dict[str, tuple[str, ...]] = {"temporal": TEMPORAL_TERMS, "temporal+input": INPUT_TERMS}
"""Term subsets whose rebuilt attention :func:`decompose_attention` compares with per-sample attention."""


def decompose_attention(
    cache_batches: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]],
    *,
    scale: float | None = None,
    k: int = 5,
    offset: Sequence[float] | torch.Tensor | None = None,
    per_step_pca: bool = True,
    term_sets: Mapping[str, Sequence[str]] | None = None,
    bos_id: int = BOS_ID,
    progress: bool = False,
) -> AttentionAnalysis:
    """Decompose hidden states and attention scores over an evaluation set, in two streaming passes.

    Each cache batch is a dict with ``encoder.hook_states [B,S,H]``, ``decoder.hook_states [B,T,H]``,
    ``decoder.hook_tokens [B,T]`` (or ``logits``, from which they are derived), ``src [B,S]``,
    ``src_lengths``, ``tgt_lengths``, and for attention models ``attn.hook_scores`` / ``attn.hook_weights``
    (``[B,T,S]`` or ``[B,nh,T,S]``) and optionally ``attn.hook_q [B,nh,T,dq]`` / ``attn.hook_k [B,nh,S,dq]``.

    Pass 1 fits :class:`TemporalInputDecomposition` on encoder and decoder states, and per head on the keys and
    queries when present (otherwise the states are the keys and queries, one head), plus the dataset-average
    attention. Pass 2 transforms each batch, forms the nine terms and updates every metric accumulator. Memory
    is bounded by one batch plus ``O(L*D + V*D + L*D*D)`` sums, whatever the number of batches.

    Args:
        cache_batches: a re-iterable (e.g. a list) or a zero-argument callable returning a fresh iterable; a
            one-shot iterator is refused, since two passes are needed.
        scale: score scale (``score = scale * q . k``); ``None`` infers it by least squares on the first batch
            and checks the fit is exact.
        k: top-k aligned positions for dot ratios and residual norms (5 in the paper's code).
        offset: the data's mean encoder-minus-decoder offset per decoder position, to compare with the lag.
        per_step_pca: compute per-step total variance and participation ratio of the hidden states.
        term_sets: term subsets to rebuild attention from (default :data:`DEFAULT_TERM_SETS`).
        bos_id: ``<bos>`` id used when decoder tokens are derived from logits.
        progress: show a rich progress spinner per pass.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> B, S, T, H = 8, 5, 4, 6
    >>> enc, dec = torch.randn(B, S, H, generator=g), torch.randn(B, T, H, generator=g)
    >>> batch = {"encoder.hook_states": enc, "decoder.hook_states": dec, "src": torch.randint(2, 6, (B, S)),
    ...          "decoder.hook_tokens": torch.randint(2, 6, (B, T)), "src_lengths": torch.full((B,), S),
    ...          "tgt_lengths": torch.full((B,), T), "attn.hook_scores": dec @ enc.transpose(1, 2)}
    >>> a = decompose_attention([batch])
    >>> a.n_heads, round(a.scale, 6), a.score_identity_max_abs_err < 1e-5
    (1, 1.0, True)
    """
    if not callable(cache_batches) and iter(cache_batches) is cache_batches:  # type: ignore[arg-type]
        raise InnerworksError("decompose_attention: cache_batches is a one-shot iterator; pass a list or a "
                              "callable returning a fresh iterable (the analysis makes two passes)")
    term_sets = dict(DEFAULT_TERM_SETS if term_sets is None else term_sets)

    enc_d, dec_d = TemporalInputDecomposition(), TemporalInputDecomposition()
    key_d: TemporalInputDecomposition | None = None
    qry_d: TemporalInputDecomposition | None = None
    nh = 0
    has_attention = None
    mean_attn_sum: torch.Tensor | None = None
    mean_attn_cnt: torch.Tensor | None = None
    n_batches = 0
    use_qk = False

    # ---- pass 1: fit the decompositions, infer the scale, average attention --------------------------------
    for i, cache in enumerate(_progress(_fresh_iter(cache_batches), "attention: pass 1 (fit)", progress)):
        b = _read_batch(cache, i, bos_id)
        where = f"cache batch {i}"
        enc_d.partial_fit(b.enc_h, b.src, b.src_len)
        dec_d.partial_fit(b.dec_h, b.dec_tok, b.tgt_len)
        this_att = b.scores is not None or b.weights is not None or b.q is not None
        if has_attention is None:
            has_attention = this_att
            # Plain dot attention caches q = h^D and k = h^E: decompose the states once instead of twice.
            use_qk = b.q is not None and not _qk_are_states(b)
        elif has_attention != this_att:
            raise InnerworksError(f"{where}: attention hooks present in some batches but not others")
        if not this_att:
            n_batches += 1
            continue
        if not use_qk:
            b.q = b.k = None
        if b.q is not None:
            assert b.k is not None
            nh = b.q.shape[1]
            key_d = key_d or TemporalInputDecomposition()
            qry_d = qry_d or TemporalInputDecomposition()
            key_d.partial_fit(b.k, b.src, b.src_len)
            qry_d.partial_fit(b.q, b.dec_tok, b.tgt_len)
        else:
            nh = 1
        if scale is None:
            if b.scores is None:
                scale = 1.0
            else:
                qq = b.q if b.q is not None else b.dec_h.unsqueeze(1)
                kk = b.k if b.k is not None else b.enc_h.unsqueeze(1)
                scale, resid = infer_scale(_heads4(b.scores, nh, HOOK_SCORES, where), qq, kk, b.src_len, b.tgt_len)
                if resid > 1e-3:
                    raise InnerworksError(f"{where}: {HOOK_SCORES!r} is not scale * q . k (relative residual "
                                          f"{resid:.2e}); pass scale= or check the q/k hooks")
        w = b.weights
        if w is None and b.scores is not None:
            w = masked_softmax(_heads4(b.scores, nh, HOOK_SCORES, where).double(), b.src_len)
        if w is not None:
            w4 = _heads4(w, nh, HOOK_WEIGHTS, where).detach().double()
            bsz, _, t, s = w4.shape
            pm = (valid_mask(b.tgt_len.to(w4.device), t)[:, :, None] & valid_mask(b.src_len.to(w4.device), s)[:, None])
            if mean_attn_sum is None:
                mean_attn_sum = w4.new_zeros(nh, t, s)
                mean_attn_cnt = w4.new_zeros(t, s)
            assert mean_attn_cnt is not None
            mean_attn_sum = _grow2(mean_attn_sum, t, s)
            mean_attn_cnt = _grow2(mean_attn_cnt, t, s)
            mean_attn_sum[:, :t, :s] += torch.where(pm[:, None], w4, 0.0).sum(0)
            mean_attn_cnt[:t, :s] += pm.sum(0)
        n_batches += 1
    if n_batches == 0:
        raise InnerworksError("decompose_attention: cache_batches is empty")

    # ---- between passes: temporal-only quantities from mu -----------------------------------------------------
    if has_attention:
        kd = key_d if key_d is not None else enc_d
        qd = qry_d if qry_d is not None else dec_d
        mu_e, mu_d = kd._mu, qd._mu  # [nh, S, D], [nh, T, D]
        # Valid positions form a prefix (t < length), so the positions seen are 0..n_seen-1.
        s_seen, t_seen = int((kd._pos_count > 0).sum()), int((qd._pos_count > 0).sum())
        assert scale is not None
        t_scores = temporal_scores(mu_e, mu_d, scale)  # [nh, T_alloc, S_alloc]
        t_attn_all = torch.softmax(t_scores[:, :t_seen, :s_seen], dim=-1)
        lag = temporal_lag(mu_e[:, :s_seen], mu_d[:, :t_seen], scale)
        mean_attn = None
        if mean_attn_sum is not None:
            assert mean_attn_cnt is not None
            mean_attn = mean_attn_sum / mean_attn_cnt.clamp_min(1)
        src_key = "qk" if key_d is not None else "states"

    # ---- pass 2: metrics -------------------------------------------------------------------------------------
    enc_v = VarianceStats(enc_d, per_step=per_step_pca)
    dec_v = VarianceStats(dec_d, per_step=per_step_pca)
    key_v = VarianceStats(key_d, per_step=False) if key_d is not None else None
    qry_v = VarianceStats(qry_d, per_step=False) if qry_d is not None else None
    dot_acc = DotRatioAccumulator(k=k, keep_samples=True)
    share_acc = SignedShareAccumulator()
    tmatch = AttentionMatchAccumulator()
    alag = AttentionLagAccumulator()
    mmatch = AttentionMatchAccumulator(keep_samples=True)
    rmatch = {name: AttentionMatchAccumulator() for name in term_sets}
    res_enc, res_dec = ResidualNormAccumulator(), ResidualNormAccumulator()
    max_err = 0.0
    have_scores = False
    n_seq = 0
    for i, cache in enumerate(_progress(_fresh_iter(cache_batches), "attention: pass 2 (metrics)", progress)):
        b = _read_batch(cache, i, bos_id)
        where = f"cache batch {i}"
        n_seq += int(b.src_len.shape[0])
        enc_v.update(b.enc_h, b.src, b.src_len)
        dec_v.update(b.dec_h, b.dec_tok, b.tgt_len)
        if not has_attention:
            continue
        if not use_qk:
            b.q = b.k = None
        if key_v is not None and qry_v is not None:
            key_v.update(b.k, b.src, b.src_len)
            qry_v.update(b.q, b.dec_tok, b.tgt_len)
        kvec = (b.k if b.k is not None else b.enc_h.unsqueeze(1))
        qvec = (b.q if b.q is not None else b.dec_h.unsqueeze(1))
        kx, ktok, kmask, _ = _prepare(kvec, b.src, b.src_len, where)
        qx, qtok, qmask, _ = _prepare(qvec, b.dec_tok, b.tgt_len, where)
        k_parts = kd._parts64(kx, ktok, kmask, where)
        q_parts = qd._parts64(qx, qtok, qmask, where)
        s_len, t_len = k_parts[0].shape[2], q_parts[0].shape[2]
        terms = score_terms(k_parts, q_parts, scale)  # [B, nh, T, S]
        full = reconstruct_scores(terms)
        pair = valid_mask(b.tgt_len.to(full.device), t_len)[:, None, :, None] & \
            valid_mask(b.src_len.to(full.device), s_len)[:, None, None, :]
        if b.scores is not None:
            sc = _heads4(b.scores, nh, HOOK_SCORES, where).detach().double()[:, :, :t_len, :s_len]
            err = torch.where(pair, (full - sc).abs(), 0.0).max()
            max_err = max(max_err, float(err))
            have_scores = True
        dot_acc.update(terms, full, b.src_len, b.tgt_len)
        share_acc.update(terms, full, b.src_len, b.tgt_len, key_tokens=ktok)
        if b.weights is not None:
            sample_attn = _heads4(b.weights, nh, HOOK_WEIGHTS, where).detach().double()[:, :, :t_len, :s_len]
        else:
            sample_attn = masked_softmax(full, b.src_len)
        t_attn = masked_softmax(t_scores[:, :t_len, :s_len].unsqueeze(0).expand(full.shape), b.src_len)
        tmatch.update(t_attn, sample_attn, b.src_len, b.tgt_len)
        alag.update(sample_attn, b.src_len, b.tgt_len)
        if mean_attn is not None:
            mmatch.update(mean_attn[:, :t_len, :s_len], sample_attn, b.src_len, b.tgt_len)
        for name, inc in term_sets.items():
            rmatch[name].update(attention_from_terms(terms, b.src_len, inc), sample_attn, b.src_len, b.tgt_len)
        counts = aligned_position_counts(full, b.src_len, b.tgt_len, k)  # [B, nh, S]
        res_enc.update(kx[:, :, :s_len], k_parts[0], k_parts[1], counts)
        res_dec.update(qx[:, :, :t_len], q_parts[0], q_parts[1], qmask[:, None, :t_len].double())

    analysis = AttentionAnalysis(
        n_sequences=n_seq, n_heads=nh if has_attention else 0, scale=scale if has_attention else None,
        attention_source=src_key if has_attention else None, k=k,
        encoder=enc_v.result(), decoder=dec_v.result(),
        decompositions={"encoder": enc_d, "decoder": dec_d},
    )
    if not has_attention:
        return analysis
    if key_d is not None and qry_d is not None:
        assert key_v is not None and qry_v is not None
        analysis.keys, analysis.queries = key_v.result(), qry_v.result()
        analysis.decompositions.update(keys=key_d, queries=qry_d)
    dr = dot_acc.result()
    sh = share_acc.result()
    analysis.score_identity_max_abs_err = max_err if have_scores else None
    analysis.dot_ratios = _h1(dr["mean"])
    analysis.dot_ratios_per_step = _h1(dr["per_step"], base=1)
    analysis.signed_shares = _h1(sh["shares"])
    analysis.signed_shares_by_key_token = _h1(sh["by_key_token"], base=1)
    analysis.mean_full_score = sh["mean_full"].reshape(-1)
    analysis.temporal_attention = t_attn_all
    tm = tmatch.result()
    analysis.temporal_match = {"tv": tm["tv"].reshape(-1), "argmax_agreement": tm["argmax_agreement"].reshape(-1)}
    analysis.reconstructed_match = {
        name: {"tv": r["tv"].reshape(-1), "argmax_agreement": r["argmax_agreement"].reshape(-1)}
        for name, r in ((n, acc.result()) for n, acc in rmatch.items())}
    analysis.temporal_lag = lag
    al = alag.result()
    analysis.attention_lag = al["lag"] if al["lag"].dim() == 2 else al["lag"].unsqueeze(0)
    analysis.step_counts = al["step_counts"]
    if offset is not None:
        off = torch.as_tensor(offset, dtype=torch.float64)
        analysis.lag_vs_offset = [compare_lag_to_offset(lag[h], off) for h in range(nh)]
        analysis.attention_lag_vs_offset = [compare_lag_to_offset(analysis.attention_lag[h], off)
                                            for h in range(nh)]
    re, rd = res_enc.result(), res_dec.result()
    analysis.residual_norms = {"encoder_h_minus_mu": re["h_minus_mu"].reshape(-1),
                               "encoder_delta": re["delta"].reshape(-1),
                               "decoder_h_minus_mu": rd["h_minus_mu"].reshape(-1),
                               "decoder_delta": rd["delta"].reshape(-1)}
    if mean_attn is not None:
        mm = mmatch.result()
        analysis.mean_attention_match = {"tv": mm["tv"].reshape(-1),
                                         "argmax_agreement": mm["argmax_agreement"].reshape(-1)}
        ps_tv = mm["per_sample_tv"].reshape(-1, nh)
        ps_mu = dr["per_sample"]["muE_muD"].reshape(-1, nh)
        analysis.similarity_vs_temporal_share = [correlation(ps_tv[:, h], ps_mu[:, h]) for h in range(nh)]
    analysis.decompositions.update(keys=kd, queries=qd)
    return analysis


ANALYSIS_HOOKS: tuple[str, ...] = (HOOK_ENC_STATES, HOOK_DEC_STATES, HOOK_DEC_TOKENS, HOOK_SCORES, HOOK_WEIGHTS,
                                   HOOK_Q, HOOK_K)
"""The cache names :func:`decompose_attention` reads."""


def model_cache_batches(model: Any, dataset: Any, batch_size: int = 256,
                        ) -> Callable[[], Iterator[dict[str, torch.Tensor]]]:
    """A re-runnable source of cache batches for :func:`decompose_attention`, from a seq2seq model and a dataset.

    Each call of the returned function runs ``model.run_with_cache`` (greedy decoding, no teacher forcing, so
    ``decoder.hook_tokens`` holds the previous PREDICTED token, for ``tgt``'s width) over ``dataset`` in slices of
    ``batch_size`` and yields the analysis hooks merged with ``src``, ``src_lengths`` and ``tgt_lengths``. Running
    the model once per pass keeps memory bounded by one batch, whatever the dataset size.

    ``dataset`` needs ``src``, ``src_lengths``, ``tgt``, ``tgt_lengths`` tensors (a ``Seq2SeqDataset``).

    >>> import torch
    >>> class Toy:  # stands in for a model: dot attention over fixed random states
    ...     def run_with_cache(self, batch, names_filter=None, teacher_forcing=False):
    ...         src, sl, tgt, tl = batch
    ...         g = torch.Generator().manual_seed(int(src.sum()))
    ...         e, d = torch.randn(*src.shape, 3, generator=g), torch.randn(*tgt.shape, 3, generator=g)
    ...         tok = torch.full(tgt.shape, 3); tok[:, 0] = 2
    ...         c = {"encoder.hook_states": e, "decoder.hook_states": d, "decoder.hook_tokens": tok}
    ...         return None, {k: v for k, v in c.items() if names_filter(k)}
    >>> class Data:
    ...     src = torch.tensor([[3, 1], [4, 1], [3, 1]]); src_lengths = torch.tensor([2, 2, 2])
    ...     tgt = torch.tensor([[5, 1], [6, 1], [5, 1]]); tgt_lengths = torch.tensor([2, 2, 2])
    >>> [sorted(c)[:2] for c in model_cache_batches(Toy(), Data(), batch_size=2)()]
    [['decoder.hook_states', 'decoder.hook_tokens'], ['decoder.hook_states', 'decoder.hook_tokens']]
    """
    for name in ("src", "src_lengths", "tgt", "tgt_lengths"):
        if getattr(dataset, name, None) is None:
            raise InnerworksError(f"model_cache_batches: dataset has no {name!r} (expected a Seq2SeqDataset)")
    if batch_size < 1:
        raise InnerworksError(f"model_cache_batches: batch_size must be >= 1, got {batch_size}")
    wanted = set(ANALYSIS_HOOKS)

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        n = int(dataset.src.shape[0])
        for a in range(0, n, batch_size):
            sl = slice(a, min(n, a + batch_size))
            src, src_len = dataset.src[sl], dataset.src_lengths[sl]
            tgt, tgt_len = dataset.tgt[sl], dataset.tgt_lengths[sl]
            _, cache = model.run_with_cache((src, src_len, tgt, tgt_len), names_filter=lambda k: k in wanted,
                                            teacher_forcing=False)
            yield dict(cache, src=src, src_lengths=src_len, tgt_lengths=tgt_len)

    return batches


def _grow2(x: torch.Tensor, t: int, s: int) -> torch.Tensor:
    """Zero-pad the last two axes of ``x`` up to ``(t, s)``."""
    pt, ps = max(0, t - x.shape[-2]), max(0, s - x.shape[-1])
    if pt == 0 and ps == 0:
        return x
    return torch.nn.functional.pad(x, (0, ps, 0, pt))


def _h1(d: Mapping[str, torch.Tensor], base: int = 0) -> dict[str, torch.Tensor]:
    """Make sure every value has a leading head axis."""
    return {n: (v if v.dim() > base else v.unsqueeze(0)) for n, v in d.items()}
