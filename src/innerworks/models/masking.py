"""Validity masks and the masked softmax that every attention (and every attention analysis) uses.

A padded batch row ``b`` is valid at positions ``t < lengths[b]`` (the ``<eos>`` included, padding excluded).
Attention weights are a softmax over the valid key positions only, exactly 0 elsewhere, so garbage (even NaN) in
padded scores never reaches a weight. The models and the attention lab call the same function, so weights rebuilt
by an analysis are computed exactly as the model computed its own.

>>> scores = torch.tensor([[[1.0, 2.0, float("nan")]]])
>>> masked_softmax(scores, torch.tensor([2]))[0, 0, 2].item()
0.0
"""

from __future__ import annotations

import math

import torch

from innerworks.errors import InnerworksError


def valid_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Boolean ``[B, width]`` mask of positions ``t < lengths[b]`` (the ``<eos>`` included, pads excluded).

    >>> valid_mask(torch.tensor([2, 3]), 4).int().tolist()
    [[1, 1, 0, 0], [1, 1, 1, 0]]
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise InnerworksError(f"lengths must be a 1-D tensor [B], got shape {tuple(lengths.shape)}")
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def masked_softmax(scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last (key) axis of ``scores [B, ..., S]``, restricted to the valid keys; 0 elsewhere.

    ``valid`` is None (every key valid), the lengths ``[B]`` (keys ``t < lengths[b]``), or a boolean mask
    ``[B, S]``; either is broadcast over the middle axes (heads, query steps). A row with no valid key gives
    zeros rather than NaN.

    >>> masked_softmax(torch.zeros(1, 1, 3), torch.tensor([2])).tolist()
    [[[0.5, 0.5, 0.0]]]
    >>> masked_softmax(torch.zeros(1, 2, 1, 2), torch.tensor([[True, False]]))[0, :, 0].tolist()
    [[1.0, 0.0], [1.0, 0.0]]
    """
    if valid is None:
        return torch.softmax(scores, dim=-1)
    valid = torch.as_tensor(valid)
    if valid.shape[0] != scores.shape[0]:
        raise InnerworksError(f"scores batch {scores.shape[0]} != valid-position batch {valid.shape[0]}")
    if valid.dtype != torch.bool:
        valid = valid_mask(valid.to(scores.device), scores.shape[-1])
    mask = valid.view(valid.shape[0], *([1] * (scores.dim() - 2)), valid.shape[-1])
    # where() rather than adding a large negative number: exact zeros and no NaN leaks from garbage at pads.
    masked = torch.where(mask, scores, torch.full((), -math.inf, dtype=scores.dtype, device=scores.device))
    out = torch.softmax(masked, dim=-1)
    return torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device)).nan_to_num(0.0)


__all__ = ["masked_softmax", "valid_mask"]
