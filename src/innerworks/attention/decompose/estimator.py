"""The streaming estimator of ``h[n, t] = mu[t] + chi[tok[n, t]] + delta[n, t]`` (temporal, input, residual).

:class:`TemporalInputDecomposition` keeps float64 sums per position, per token and per (token, position) count, so
one pass over any number of batches gives exact ``mu`` and ``chi``::

    mu[t]  = mean of h[., t] over the samples valid at t
    chi[w] = (sum_{tok=w} h - sum_t n[w, t] mu[t]) / n[w]      (the pooled mean of h - mu over w's occurrences)

Position ``t`` of sample ``n`` is valid iff ``t < lengths[n]``. Inputs may carry a head axis (``[B, nh, L, D]``, one
independent decomposition per head). :func:`prepare_states` validates and converts a batch once;
:meth:`TemporalInputDecomposition.parts` splits a prepared batch, and :attr:`TemporalInputDecomposition.components`
exposes the fitted tables with the head axis always present, for the second-pass statistics and the attention
analysis.

>>> import torch
>>> h = torch.tensor([[[1.0], [2.0]], [[3.0], [0.0]]], dtype=torch.float64)
>>> d = TemporalInputDecomposition().fit(h, torch.tensor([[3, 1], [4, 0]]), torch.tensor([2, 1]))
>>> d.components.mu.shape, d.components.had_heads
(torch.Size([1, 2, 1]), False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from innerworks.errors import InnerworksError
from innerworks.models.masking import valid_mask


class PreparedStates(NamedTuple):
    """A validated batch: float64 vectors ``x [B, nh, L, D]``, tokens ``[B, L]`` (0 at invalid positions), the
    validity mask ``[B, L]``, and whether the caller's states had a head axis."""

    x: torch.Tensor
    tok: torch.Tensor
    mask: torch.Tensor
    had_heads: bool

    def to(self, device: torch.device) -> PreparedStates:
        """The same batch on ``device``."""
        return PreparedStates(self.x.to(device), self.tok.to(device), self.mask.to(device), self.had_heads)

    def truncate(self, width: int) -> PreparedStates:
        """The first ``width`` positions (no check: the caller decides that the rest may be dropped)."""
        if self.x.shape[2] <= width:
            return self
        return PreparedStates(self.x[:, :, :width], self.tok[:, :width], self.mask[:, :width], self.had_heads)


def prepare_states(states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, name: str) -> PreparedStates:
    """Validate ``states [B, L, D]`` or ``[B, nh, L, D]``, ``tokens [B, L]``, ``lengths [B]``; ``name`` prefixes errors.

    >>> p = prepare_states(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 1]), "demo")
    >>> p.x.shape, p.x.dtype, p.tok.tolist(), p.had_heads
    (torch.Size([2, 1, 3, 4]), torch.float64, [[1, 1, 1], [1, 0, 0]], False)
    """
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
    return PreparedStates(x, tok, mask, had)


@dataclass(frozen=True)
class Components:
    """The fitted tables of a :class:`TemporalInputDecomposition`, float64, with the head axis always present.

    Attributes:
        mu: ``[nh, L, D]`` temporal components (0 at positions no sample reached).
        chi: ``[nh, V, D]`` input components (0 for tokens never seen).
        token_means: ``[nh, V, D]`` mean vector per token. global_mean: ``[nh, D]``.
        position_counts: ``[L]`` valid samples per position. token_counts: ``[V]`` valid occurrences per token.
        had_heads: whether the fitted states had a head axis. n_states: valid vectors fitted.
    """

    mu: torch.Tensor
    chi: torch.Tensor
    token_means: torch.Tensor
    global_mean: torch.Tensor
    position_counts: torch.Tensor
    token_counts: torch.Tensor
    had_heads: bool
    n_states: int

    @property
    def positions_seen(self) -> int:
        """Positions reached by at least one sample. Valid positions form a prefix (``t < length``), so these are
        ``0 .. positions_seen - 1``."""
        return int((self.position_counts > 0).sum())


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
    - ``n_sequences_``, ``n_states_``, ``n_heads_``, ``dim_``;
    - :attr:`components`: the same tables with the head axis always present.

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
        self._components: Components | None = None
        self.n_sequences_ = 0

    @property
    def components(self) -> Components:
        """The fitted tables with the head axis always present (read-only; refreshed by every fit).

        >>> TemporalInputDecomposition().components  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        innerworks.errors.InnerworksError: decomposition is not fitted: call fit or partial_fit first
        """
        if self._components is None:
            raise InnerworksError("decomposition is not fitted: call fit or partial_fit first")
        return self._components

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

    def clip(self, prepared: PreparedStates, name: str) -> PreparedStates:
        """Drop the positions beyond ``max_len`` (when given); a valid position there is an error.

        >>> d = TemporalInputDecomposition(max_len=2)
        >>> p = prepare_states(torch.ones(1, 3, 1), torch.ones(1, 3, dtype=torch.long), torch.tensor([2]), "demo")
        >>> d.clip(p, "demo").x.shape
        torch.Size([1, 1, 2, 1])
        """
        if self.max_len is not None and prepared.x.shape[2] > self.max_len:
            if bool(prepared.mask[:, self.max_len:].any()):
                raise InnerworksError(f"{name}: a sequence is longer than max_len={self.max_len}")
            return prepared.truncate(self.max_len)
        return prepared

    def _allocate(self, p: PreparedStates) -> None:
        """Zero sums for the first batch: ``max_len`` (or this batch's width) positions, ``vocab_size`` (or 1) ids."""
        _, nh, length, d = p.x.shape
        self._had_heads = p.had_heads
        alloc_l = self.max_len or length
        alloc_v = self.vocab_size or 1
        self._pos_sum = p.x.new_zeros(nh, alloc_l, d)
        self._pos_count = torch.zeros(alloc_l, dtype=torch.long, device=p.x.device)
        self._tok_sum = p.x.new_zeros(nh, alloc_v, d)
        self._tok_pos_count = torch.zeros(alloc_v, alloc_l, dtype=torch.long, device=p.x.device)

    def partial_fit(self, states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
                    ) -> TemporalInputDecomposition:
        """Add one batch to the running sums and refresh the fitted attributes.

        >>> import torch
        >>> d = TemporalInputDecomposition()
        >>> _ = d.partial_fit(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 1]))
        >>> d.position_counts_.tolist()
        [2, 1, 1]
        """
        p = prepare_states(states, tokens, lengths, "partial_fit")
        if self._pos_sum is not None and p.x.device != self._pos_sum.device:
            p = p.to(self._pos_sum.device)
        p = self.clip(p, "partial_fit")
        x, tok, mask = p.x, p.tok, p.mask
        b, nh, length, d = x.shape
        if self._pos_sum is None:
            self._allocate(p)
        elif (nh, d) != (self._pos_sum.shape[0], self._pos_sum.shape[2]) or p.had_heads != self._had_heads:
            raise InnerworksError(f"partial_fit: batch has heads={nh if p.had_heads else None}, D={d}; earlier "
                                  f"batches had heads={self._pos_sum.shape[0] if self._had_heads else None}, "
                                  f"D={self._pos_sum.shape[2]}")
        assert self._pos_sum is not None and self._pos_count is not None
        assert self._tok_sum is not None and self._tok_pos_count is not None
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
        c = Components(mu=mu, chi=chi, token_means=self._tok_sum / n_w.clamp_min(1)[None, :, None],
                       global_mean=self._pos_sum.sum(1) / cnt.sum().clamp_min(1),
                       position_counts=self._pos_count.clone(), token_counts=self._tok_pos_count.sum(1),
                       had_heads=self._had_heads, n_states=int(self._pos_count.sum()))
        self._components = c
        sq = (lambda t: t) if self._had_heads else (lambda t: t.squeeze(0))
        self.mu_ = sq(c.mu)
        self.chi_ = sq(c.chi)
        self.token_means_ = sq(c.token_means)
        self.global_mean_ = sq(c.global_mean)
        self.position_counts_ = self._pos_count.clone()
        self.token_position_counts_ = self._tok_pos_count.clone()
        self.token_counts_ = c.token_counts
        self.n_states_ = c.n_states
        self.n_heads_ = int(self._pos_sum.shape[0]) if self._had_heads else None
        self.dim_ = int(self._pos_sum.shape[2])

    # -- transforming ------------------------------------------------------------------------------------------
    def parts(self, prepared: PreparedStates, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """float64 ``(mu, chi, delta)`` ``[B, nh, L, D]`` of a prepared batch, zeros at invalid positions.

        Positions beyond every fitted one are dropped (``L`` shrinks to the fitted width) when they are padding; a
        valid position there, or at a position no fitted sample reached, is an error (``mu`` is undefined there).

        >>> h = torch.arange(4.0).view(1, 2, 2); tok = torch.tensor([[3, 1]]); n = torch.tensor([2])
        >>> d = TemporalInputDecomposition().fit(h, tok, n)
        >>> [p.shape for p in d.parts(prepare_states(h, tok, n, "demo"), "demo")][0]
        torch.Size([1, 1, 2, 2])
        """
        c = self.components
        p = prepared.to(c.mu.device)  # the sums live where the first fitted batch was
        _, nh, length, d = p.x.shape
        if (nh, d) != (c.mu.shape[0], c.mu.shape[2]):
            raise InnerworksError(f"{name}: states have heads={nh}, D={d}; the fit had heads={c.mu.shape[0]}, "
                                  f"D={c.mu.shape[2]}")
        alloc_l = c.mu.shape[1]
        if length > alloc_l:
            if bool(p.mask[:, alloc_l:].any()):
                raise InnerworksError(f"{name}: a sequence is longer than any fitted one ({alloc_l} positions)")
            p, length = p.truncate(alloc_l), alloc_l
        x, tok, mask = p.x, p.tok, p.mask
        unseen = mask & (c.position_counts[:length] == 0)[None, :]
        if bool(unseen.any()):
            t = int(unseen.nonzero()[0, 1])
            raise InnerworksError(f"{name}: position {t} is valid here but no fitted sample reached it (mu undefined)")
        m4 = mask[:, None, :, None]
        mu = torch.where(m4, c.mu[:, :length].unsqueeze(0), 0.0)
        v = c.chi.shape[1]
        # Tokens never seen in the fit have no input component: chi = 0 and delta absorbs them.
        known = tok < v
        chi = c.chi[:, tok.clamp(max=v - 1)].permute(1, 0, 2, 3)  # [B, nh, L, D]
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
        p = prepare_states(states, tokens, lengths, "transform")
        if p.had_heads != self._had_heads:
            raise InnerworksError("transform: states must have a head axis exactly when the fitted states had one")
        full_len = p.x.shape[2]
        parts = self.parts(p, "transform")
        out_dtype = dtype or (states.dtype if states.is_floating_point() else torch.float64)
        res = []
        for part in parts:
            if part.shape[2] < full_len:  # positions beyond the fit (all padding): give zeros back
                part = torch.cat([part, part.new_zeros(part.shape[0], part.shape[1], full_len - part.shape[2],
                                                       part.shape[3])], 2)
            res.append((part if p.had_heads else part.squeeze(1)).to(out_dtype))
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


__all__ = ["Components", "PreparedStates", "TemporalInputDecomposition", "prepare_states"]
