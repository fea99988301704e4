"""Shared shape and mask handling of the attention metrics: optional head axis, validity masks, growing sums.

Inputs take an optional head axis (``[B, (nh), T, S]``); every metric works on ``[B, nh, T, S]`` internally and
:func:`squeeze` gives results back in the caller's layout.

>>> import torch
>>> src_m, tgt_m, _ = masks(1, 2, 3, torch.tensor([2]), None, torch.device("cpu"))
>>> src_m.int().flatten().tolist(), tgt_m.int().flatten().tolist()
([1, 1, 0], [1, 1])
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from innerworks.attention.scores import TERM_NAMES
from innerworks.errors import InnerworksError
from innerworks.models.masking import valid_mask

TINY = 1e-300


def with_heads(x: torch.Tensor, base_dim: int, name: str) -> tuple[torch.Tensor, bool]:
    """Return ``x`` with a head axis at dim 1, and whether it had one (``base_dim``: its rank without heads).

    >>> x, had = with_heads(torch.ones(2, 3, 4), 3, "scores"); x.shape, had
    (torch.Size([2, 1, 3, 4]), False)
    """
    if x.dim() == base_dim:
        return x.unsqueeze(1), False
    if x.dim() == base_dim + 1:
        return x, True
    raise InnerworksError(f"{name}: expected {base_dim} dims (or {base_dim + 1} with a head axis), got "
                          f"shape {tuple(x.shape)}")


def masks(b: int, t: int, s: int, src_lengths: torch.Tensor | None, tgt_lengths: torch.Tensor | None,
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


def grow(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Zero-pad ``x`` along ``dim`` up to ``size`` (streamed batches may have different widths).

    >>> grow(torch.ones(2, 1), 3, 1).tolist()
    [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if x.shape[dim] >= size:
        return x
    pad_shape = list(x.shape)
    pad_shape[dim] = size - x.shape[dim]
    return torch.cat([x, x.new_zeros(pad_shape)], dim=dim)


def squeeze(x: torch.Tensor, had_heads: bool, dim: int = 0) -> torch.Tensor:
    """Drop the head axis ``dim`` again when the inputs had none (results keep the caller's layout)."""
    return x if had_heads else x.squeeze(dim)


def stack_terms(terms: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, bool]:
    """``[9, B, nh, T, S]`` float64 stack in :data:`TERM_NAMES` order."""
    missing = [n for n in TERM_NAMES if n not in terms]
    if missing:
        raise InnerworksError(f"terms dict lacks {missing}; expected the 9 names {list(TERM_NAMES)}")
    xs = [with_heads(terms[n].double(), 3, f"terms[{n!r}]") for n in TERM_NAMES]
    if len({x.shape for x, _ in xs}) != 1:
        raise InnerworksError("all nine terms must share one shape")
    return torch.stack([x for x, _ in xs]), xs[0][1]


def masked_argmax(f: torch.Tensor, src_m: torch.Tensor) -> torch.Tensor:
    """Index of the largest valid source position (``src_m``) along the last axis.

    >>> masked_argmax(torch.tensor([1.0, 5.0, 9.0]), torch.tensor([True, True, False])).item()
    1
    """
    neg = torch.full((), -math.inf, dtype=f.dtype, device=f.device)
    return torch.where(src_m, f, neg).argmax(dim=-1)


def top_k_valid(f: torch.Tensor, src_m: torch.Tensor, src_len: torch.Tensor,
                k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``min(k, S)`` best valid source positions of ``f [B, nh, T, S]`` by value, ``[B, nh, T, kk]``, and
    ``[B, 1, 1, kk]`` saying which of the picks are real (a row with ``src_len < kk`` has fewer valid positions).

    >>> f = torch.tensor([[[[3.0, 1.0, 2.0]]]]); src_m = torch.tensor([True, True, False])
    >>> idx, ok = top_k_valid(f, src_m, torch.tensor([2]), k=3); idx.flatten().tolist(), ok.flatten().tolist()
    ([0, 1, 2], [True, True, False])
    """
    kk = min(k, f.shape[-1])
    neg = torch.full((), -math.inf, dtype=f.dtype, device=f.device)
    idx = torch.where(src_m, f, neg).topk(kk, dim=-1).indices
    ok = (torch.arange(kk, device=f.device)[None, :] < src_len[:, None])[:, None, None, :]
    return idx, ok


def terms_and_full(terms: Mapping[str, torch.Tensor], full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Stack the nine terms ``[9, B, nh, T, S]`` and the full scores ``[B, nh, T, S]`` (float64), checking shapes;
    also say whether the input had a head axis."""
    a, had = stack_terms(terms)
    f, _ = with_heads(full.double(), 3, "full scores")
    if f.shape != a.shape[1:]:
        raise InnerworksError(f"full scores {tuple(f.shape)} do not match terms {tuple(a.shape[1:])}")
    return a, f, had
