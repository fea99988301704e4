"""The nine-term breakdown of attention scores (Aitken et al. 2021, §2 of ``papers/attention.md``).

Each side of the attention is split into a temporal part ``mu``, an input part ``chi`` and a residual ``delta``
(see :mod:`innerworks.attention.decompose`). Because a score is bilinear, ``score = scale * q . k`` splits
exactly into nine cross terms::

    score[s, t] = sum over A in {mu, chi, delta} (encoder side), B in {mu, chi, delta} (decoder side) of
                  scale * A^E_t . B^D_s

Term names put the ENCODER part first, like the paper's code: ``"chiE_muD"`` is ``scale * chi^E_t . mu^D_s``.
All functions accept an optional head axis: encoder parts ``[B, (nh), S, D]``, decoder parts ``[B, (nh), T, D]``
give terms ``[B, (nh), T, S]``.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> enc = [torch.randn(2, 5, 3, generator=g, dtype=torch.float64) for _ in range(3)]
>>> dec = [torch.randn(2, 4, 3, generator=g, dtype=torch.float64) for _ in range(3)]
>>> terms = score_terms(enc, dec)
>>> full = (dec[0] + dec[1] + dec[2]) @ (enc[0] + enc[1] + enc[2]).transpose(-1, -2)
>>> bool(torch.allclose(reconstruct_scores(terms), full, atol=1e-12))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from innerworks.errors import InnerworksError
from innerworks.models.masking import masked_softmax, valid_mask

PARTS: tuple[str, str, str] = ("mu", "chi", "delta")
"""The three parts of a decomposed vector, in order: temporal, input-driven, residual."""

TERM_NAMES: tuple[str, ...] = tuple(f"{e}E_{d}D" for e in PARTS for d in PARTS)
"""The nine term names, encoder part first: ``muE_muD, muE_chiD, muE_deltaD, chiE_muD, ..., deltaE_deltaD``."""

TEMPORAL_TERMS: tuple[str, ...] = ("muE_muD",)
"""The purely temporal term."""

INPUT_TERMS: tuple[str, ...] = ("muE_muD", "muE_chiD", "chiE_muD", "chiE_chiD")
"""Terms built from temporal and input parts only (no residual)."""


def _parts3(parts: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], side: str) -> list[torch.Tensor]:
    """Accept ``{"mu":..,"chi":..,"delta":..}`` or a 3-sequence ``(mu, chi, delta)``."""
    if isinstance(parts, Mapping):
        missing = [p for p in PARTS if p not in parts]
        if missing:
            raise InnerworksError(f"{side} parts: missing key(s) {missing}; expected {list(PARTS)}")
        out = [parts[p] for p in PARTS]
    else:
        out = list(parts)
        if len(out) != 3:
            raise InnerworksError(f"{side} parts: expected 3 tensors (mu, chi, delta), got {len(out)}")
    shapes = {tuple(x.shape) for x in out}
    if len(shapes) != 1:
        raise InnerworksError(f"{side} parts: mu, chi, delta must share one shape, got {sorted(shapes)}")
    return out


def score_terms(enc_parts: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
                dec_parts: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
                scale: float = 1.0) -> dict[str, torch.Tensor]:
    """The nine cross terms ``scale * A^E_t . B^D_s``, keyed ``f"{A}E_{B}D"`` (see :data:`TERM_NAMES`).

    Args:
        enc_parts: encoder (key) parts ``(mu, chi, delta)``, each ``[B, (nh), S, D]``.
        dec_parts: decoder (query) parts ``(mu, chi, delta)``, each ``[B, (nh), T, D]``.
        scale: the score scale (1 for plain dot attention, ``1/sqrt(d)`` for scaled QKV).

    Returns:
        ``{name: [B, (nh), T, S]}`` in :data:`TERM_NAMES` order; their sum is ``scale * q . k``.

    >>> import torch
    >>> e = [torch.ones(1, 2, 1), torch.zeros(1, 2, 1), torch.zeros(1, 2, 1)]
    >>> d = [2 * torch.ones(1, 1, 1), torch.ones(1, 1, 1), torch.zeros(1, 1, 1)]
    >>> t = score_terms(e, d); t["muE_muD"].tolist(), t["muE_chiD"].tolist(), len(t)
    ([[[2.0, 2.0]]], [[[1.0, 1.0]]], 9)
    """
    enc = _parts3(enc_parts, "encoder")
    dec = _parts3(dec_parts, "decoder")
    if enc[0].dim() < 2 or enc[0].shape[:-2] != dec[0].shape[:-2] or enc[0].shape[-1] != dec[0].shape[-1]:
        raise InnerworksError(
            f"encoder parts {tuple(enc[0].shape)} and decoder parts {tuple(dec[0].shape)} must be [B, (nh), S, D] "
            "and [B, (nh), T, D] with the same batch, heads and D"
        )
    terms: dict[str, torch.Tensor] = {}
    for e_name, e in zip(PARTS, enc, strict=True):
        e_t = e.transpose(-1, -2)
        for d_name, d in zip(PARTS, dec, strict=True):
            terms[f"{e_name}E_{d_name}D"] = scale * (d @ e_t)
    return terms


def reconstruct_scores(terms: Mapping[str, torch.Tensor], include: Iterable[str] | None = None) -> torch.Tensor:
    """Sum of the chosen terms (all nine by default, which gives the full score back).

    >>> import torch
    >>> t = {n: torch.full((1, 1, 1), float(i)) for i, n in enumerate(TERM_NAMES)}
    >>> reconstruct_scores(t).item(), reconstruct_scores(t, include=["muE_muD", "chiE_chiD"]).item()
    (36.0, 4.0)
    """
    names = list(TERM_NAMES if include is None else include)
    if not names:
        raise InnerworksError("reconstruct_scores: include is empty; name at least one of " + ", ".join(TERM_NAMES))
    unknown = [n for n in names if n not in TERM_NAMES]
    if unknown:
        raise InnerworksError(f"reconstruct_scores: unknown term(s) {unknown}; expected names from {list(TERM_NAMES)}")
    missing = [n for n in names if n not in terms]
    if missing:
        raise InnerworksError(f"reconstruct_scores: terms dict lacks {missing}")
    out = terms[names[0]].clone()
    for n in names[1:]:
        out = out + terms[n]
    return out


def attention_from_terms(terms: Mapping[str, torch.Tensor], src_lengths: torch.Tensor | None = None,
                         include: Iterable[str] | None = None) -> torch.Tensor:
    """Attention rebuilt from chosen terms only: ``masked_softmax(sum of included terms)`` over the source positions
    ``t < src_lengths[b]`` (the softmax the models use, :func:`innerworks.models.masking.masked_softmax`).

    >>> import torch
    >>> t = {n: torch.zeros(1, 1, 2) for n in TERM_NAMES}; t["chiE_chiD"] = torch.tensor([[[0.0, 100.0]]])
    >>> attention_from_terms(t, include=["muE_muD"]).tolist(), attention_from_terms(t).argmax(-1).item()
    ([[[0.5, 0.5]]], 1)
    """
    return masked_softmax(reconstruct_scores(terms, include), src_lengths)


def infer_scale(scores: torch.Tensor, q: torch.Tensor, k: torch.Tensor, src_lengths: torch.Tensor | None = None,
                tgt_lengths: torch.Tensor | None = None) -> tuple[float, float]:
    """Least-squares ``scale`` with ``scores ~ scale * q . k`` over valid pairs, and the relative residual.

    ``scores`` is ``[B, (nh), T, S]``, ``q`` ``[B, (nh), T, D]``, ``k`` ``[B, (nh), S, D]``. A residual near 0
    confirms that the hooks really give ``score = scale * q . k``.

    >>> import torch
    >>> q, k = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    >>> s, r = infer_scale(0.5 * q @ k.transpose(-1, -2), q, k); round(s, 6), r < 1e-12
    (0.5, True)
    """
    qk = (q.double() @ k.double().transpose(-1, -2))
    sc = scores.double()
    if qk.shape != sc.shape:
        raise InnerworksError(f"scores shape {tuple(sc.shape)} does not match q.k shape {tuple(qk.shape)}")
    mask = torch.ones_like(sc, dtype=torch.bool)
    for lengths, axis in ((src_lengths, -1), (tgt_lengths, -2)):  # valid source positions, valid decoder steps
        if lengths is None:
            continue
        m = valid_mask(torch.as_tensor(lengths).to(sc.device), sc.shape[axis])
        if m.shape[0] != sc.shape[0]:
            raise InnerworksError(f"scores batch {sc.shape[0]} != lengths batch {m.shape[0]}")
        shape = [m.shape[0]] + [1] * (sc.dim() - 1)
        shape[axis] = m.shape[1]
        mask = mask & m.view(shape)
    x = torch.where(mask, qk, 0.0)
    y = torch.where(mask, sc, 0.0)
    xx = float((x * x).sum())
    if xx == 0.0:
        raise InnerworksError("cannot infer the score scale: q . k is zero at every valid position")
    scale = float((x * y).sum()) / xx
    resid = float(torch.linalg.vector_norm(y - scale * x)) / max(float(torch.linalg.vector_norm(y)), 1e-300)
    return scale, resid


__all__ = ["INPUT_TERMS", "PARTS", "TEMPORAL_TERMS", "TERM_NAMES", "attention_from_terms", "infer_scale",
           "masked_softmax", "reconstruct_scores", "score_terms", "valid_mask"]
