"""innerworks.attention: how encoder-decoder models attend (Aitken et al. 2021; ``docs/attention.md``).

The public names are loaded lazily, so importing one submodule (say :mod:`innerworks.attention.scores`) does not
load the others. The models' cache names live in the core, :mod:`innerworks.models.hooks`.

>>> from innerworks.attention import decompose_attention
>>> callable(decompose_attention)
True
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TemporalInputDecomposition": "decompose", "VarianceStats": "decompose", "AttentionAnalysis": "decompose",
    "decompose_attention": "decompose", "model_cache_batches": "decompose", "decoder_input_tokens": "decompose",
    "TERM_NAMES": "scores", "score_terms": "scores", "reconstruct_scores": "scores",
    "attention_from_terms": "scores",
    "RunAnalysis": "analyze", "analyze_model": "analyze", "analyze_run": "analyze",
    "summarize_analysis": "analyze", "INPUT_DRIVEN_TERMS": "analyze",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'innerworks.attention' has no attribute {name!r}")
    return getattr(import_module(f"innerworks.attention.{_EXPORTS[name]}"), name)
