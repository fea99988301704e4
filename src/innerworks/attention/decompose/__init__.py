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

The package, one module per step:

- :mod:`~innerworks.attention.decompose.estimator`: :class:`TemporalInputDecomposition`, the streaming estimator
  of ``mu`` and ``chi`` (float64 sums, so one pass over any number of batches is exact);
- :mod:`~innerworks.attention.decompose.variance`: :class:`VarianceStats`, the second pass (variance explained,
  per-word variance reduction, per-step participation ratios);
- :mod:`~innerworks.attention.decompose.cache`: reading cached activations (:func:`model_cache_batches`);
- :mod:`~innerworks.attention.decompose.passes`: :func:`decompose_attention`, both passes over cached model
  activations plus the attention-score breakdown of :mod:`innerworks.attention.scores` and
  :mod:`innerworks.attention.metrics`;
- :mod:`~innerworks.attention.decompose.analysis`: :class:`AttentionAnalysis`, what it returns.

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

from innerworks.attention.decompose.analysis import AttentionAnalysis
from innerworks.attention.decompose.cache import ANALYSIS_HOOKS, decoder_input_tokens, model_cache_batches
from innerworks.attention.decompose.estimator import (
    Components,
    PreparedStates,
    TemporalInputDecomposition,
    prepare_states,
)
from innerworks.attention.decompose.passes import DEFAULT_TERM_SETS, decompose_attention
from innerworks.attention.decompose.variance import VarianceReport, VarianceStats, to_plain
from innerworks.data.types import BOS_ID

__all__ = [
    "ANALYSIS_HOOKS",
    "AttentionAnalysis",
    "BOS_ID",
    "Components",
    "DEFAULT_TERM_SETS",
    "PreparedStates",
    "TemporalInputDecomposition",
    "VarianceReport",
    "VarianceStats",
    "decoder_input_tokens",
    "decompose_attention",
    "model_cache_batches",
    "prepare_states",
    "to_plain",
]
