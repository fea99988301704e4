"""Metrics that say which of the nine score terms drives attention (§2 of ``papers/attention.md``).

Every metric comes as a streaming accumulator (``update`` per batch, ``result`` at the end) plus a one-shot
function that runs the accumulator on a single batch, so streamed and one-shot results agree by construction.
Inputs take an optional head axis: terms and scores ``[B, (nh), T, S]``; results keep the head axis only when
the inputs had one. Validity: source positions ``t < src_lengths[b]``, decoder steps ``s < tgt_lengths[b]``
(``None`` means every position is valid).

- :mod:`~innerworks.attention.metrics.terms`: which of the nine terms drives the score (:func:`dot_ratios`,
  :func:`signed_shares_at_max`) and how far the vectors are from their temporal part
  (:func:`residual_norm_fractions`);
- :mod:`~innerworks.attention.metrics.alignment`: where attention looks (:func:`temporal_attention`,
  :func:`attention_match`, :func:`temporal_lag`, :func:`attention_lag`, :func:`compare_lag_to_offset`).

Every name is importable from here.

>>> import torch
>>> from innerworks.attention.scores import TERM_NAMES
>>> terms = {n: torch.zeros(1, 2, 3) for n in TERM_NAMES}
>>> terms["muE_muD"] = torch.eye(2, 3)[None] * 5
>>> dot_ratios(terms, terms["muE_muD"], k=1)["mean"]["muE_muD"].item()
1.0
"""

from __future__ import annotations

from innerworks.attention.metrics.alignment import (
    AttentionLagAccumulator,
    AttentionMatchAccumulator,
    attention_lag,
    attention_match,
    compare_lag_to_offset,
    correlation,
    temporal_attention,
    temporal_lag,
    temporal_scores,
)
from innerworks.attention.metrics.terms import (
    DotRatioAccumulator,
    ResidualNormAccumulator,
    SignedShareAccumulator,
    aligned_position_counts,
    dot_ratios,
    residual_norm_fractions,
    signed_shares_at_max,
)

__all__ = [
    "AttentionLagAccumulator",
    "AttentionMatchAccumulator",
    "DotRatioAccumulator",
    "ResidualNormAccumulator",
    "SignedShareAccumulator",
    "aligned_position_counts",
    "attention_lag",
    "attention_match",
    "compare_lag_to_offset",
    "correlation",
    "dot_ratios",
    "residual_norm_fractions",
    "signed_shares_at_max",
    "temporal_attention",
    "temporal_lag",
    "temporal_scores",
]
