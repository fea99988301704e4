"""Canonical names of the activations a sequence-to-sequence model caches (TransformerLens style).

Every model in :mod:`innerworks.models.seq2seq` and :mod:`innerworks.models.transformer` has
``run_with_cache(batch, names_filter=None, teacher_forcing=False) -> (logits, cache)``; ``cache`` maps the names below
to detached tensors. Analyses (the temporal/input decomposition, attention views) read these names and nothing else,
so they work on every architecture. The full table, with shapes and the rules behind them, is ``docs/hooks.md``.

Shape letters: ``B`` batch, ``S`` source positions, ``T`` decoder steps, ``H`` hidden size, ``I`` input width,
``nh`` heads, ``dq`` query/key size per head, ``dv`` value size per head, ``V`` target vocabulary, ``d`` d_model.

Layout rule for attention patterns: ``hook_scores`` and ``hook_weights`` are ``[B, T, S]`` when the attention has
one head (dot, QKV) and ``[B, nh, T, S]`` when it has more (multi-head, transformer with ``num_heads > 1``). Queries,
keys and values always carry the head axis. :func:`head_slice` gives one head's ``[B, T, S]`` in both layouts.

>>> sorted(HOOK_NAMES)[:3]
['attn.hook_context', 'attn.hook_k', 'attn.hook_q']
>>> make_filter(["logits"])("logits"), make_filter(None)("anything")
(True, True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import torch

from innerworks.errors import InnerworksError

# name -> (shape, one-line description). The order is the order of the forward pass.
HOOK_NAMES: dict[str, str] = {
    "encoder.hook_input": "[B,S,I] encoder input vectors (one-hot or embedding; AO: plus rotated positional encoding)",
    "encoder.hook_states": "[B,S,H] encoder hidden states h^E (LSTM: the h half); frozen after <eos>",
    "encoder.hook_full_states": "[B,S,state] the cell's flat state ([h; c] for LSTM; equals hook_states otherwise)",
    "decoder.hook_tokens": "[B,T] decoder input tokens: <bos>=2 at step 0, then the previous token actually fed",
    "decoder.hook_input": "[B,T,I] decoder input vectors for those tokens (AO: plus rotated positional encoding)",
    "decoder.hook_states": "[B,T,H] decoder hidden states h^D (LSTM: the h half)",
    "decoder.hook_full_states": "[B,T,state] the decoder cell's flat state",
    "attn.hook_q": "[B,nh,T,dq] queries; score = attn_scale * q . k (dot attention: q = h^D, nh = 1)",
    "attn.hook_k": "[B,nh,S,dq] keys (dot attention: k = h^E)",
    "attn.hook_v": "[B,nh,S,dv] values (dot attention: v = h^E)",
    "attn.hook_scores": "[B,T,S] or [B,nh,T,S] raw scores attn_scale * q . k, before masking",
    "attn.hook_weights": "[B,T,S] or [B,nh,T,S] softmax over valid source positions (exactly 0 on padding)",
    "attn.hook_context": "[B,T,Dc] context vector the readout receives (multi-head: after the output projection)",
    "logits": "[B,T,V] readout logits",
}

# Transformer-only names; ``{l}`` is a layer index. The last decoder layer's cross-attention is also cached under
# the ``attn.*`` names above (the analysed attention).
TRANSFORMER_HOOK_PATTERNS: dict[str, str] = {
    "encoder.blocks.{l}.hook_resid_pre": "[B,S,d] encoder residual stream entering layer l",
    "encoder.blocks.{l}.attn.hook_weights": "[B,S,S] or [B,nh,S,S] encoder self-attention pattern",
    "blocks.{l}.hook_resid_pre": "[B,T,d] decoder residual stream entering layer l",
    "blocks.{l}.self_attn.hook_weights": "[B,T,T] or [B,nh,T,T] causal decoder self-attention pattern",
    "blocks.{l}.cross_attn.hook_q": "[B,nh,T,dq] cross-attention queries of layer l",
    "blocks.{l}.cross_attn.hook_k": "[B,nh,S,dq] cross-attention keys of layer l",
    "blocks.{l}.cross_attn.hook_v": "[B,nh,S,dv] cross-attention values of layer l",
    "blocks.{l}.cross_attn.hook_scores": "[B,T,S] or [B,nh,T,S] raw cross-attention scores of layer l",
    "blocks.{l}.cross_attn.hook_weights": "[B,T,S] or [B,nh,T,S] cross-attention pattern of layer l",
    "blocks.{l}.cross_attn.hook_context": "[B,T,d] cross-attention output of layer l (after its projection)",
}

NamesFilter = None | str | Iterable[str] | Callable[[str], bool]


def describe(name: str) -> str:
    """The one-line description of a cache name (layer names resolved to their pattern).

    >>> describe("blocks.1.cross_attn.hook_q")
    '[B,nh,T,dq] cross-attention queries of layer l'
    """
    if name in HOOK_NAMES:
        return HOOK_NAMES[name]
    pattern = re.sub(r"blocks\.\d+\.", "blocks.{l}.", name)
    if pattern in TRANSFORMER_HOOK_PATTERNS:
        return TRANSFORMER_HOOK_PATTERNS[pattern]
    raise InnerworksError(f"unknown hook name {name!r}; see innerworks.attention.hooks.HOOK_NAMES")


def make_filter(names_filter: NamesFilter, available: Iterable[str] | None = None) -> Callable[[str], bool]:
    """Turn ``names_filter`` (None, one name, a list of names, or a predicate) into a predicate.

    With ``available`` given, listed names that the model does not produce raise :class:`InnerworksError`, so a
    typo does not silently give an empty cache.

    >>> f = make_filter(["attn.hook_weights"], available=["attn.hook_weights", "logits"])
    >>> f("attn.hook_weights"), f("logits")
    (True, False)
    >>> make_filter(["attn.hook_wieghts"], available=["logits"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: names_filter: unknown hook name 'attn.hook_wieghts'; this model caches ...
    """
    if names_filter is None:
        return lambda name: True
    if callable(names_filter):
        return names_filter
    wanted = {names_filter} if isinstance(names_filter, str) else set(names_filter)
    if available is not None:
        avail = set(available)
        unknown = sorted(wanted - avail)
        if unknown:
            raise InnerworksError(f"names_filter: unknown hook name {unknown[0]!r}; this model caches "
                                  f"{', '.join(sorted(avail))}")
    return wanted.__contains__


def head_slice(cache: dict[str, torch.Tensor], name: str, head: int = 0) -> torch.Tensor:
    """One head's pattern ``[B, T, S]`` from a scores/weights entry in either layout (with or without head axis).

    >>> c = {"attn.hook_weights": torch.ones(2, 3, 4), "mh": torch.ones(2, 5, 3, 4)}
    >>> head_slice(c, "attn.hook_weights").shape, head_slice(c, "mh", head=4).shape
    (torch.Size([2, 3, 4]), torch.Size([2, 3, 4]))
    """
    t = cache[name]
    if t.dim() == 3:
        if head != 0:
            raise InnerworksError(f"{name} has a single head; asked for head {head}")
        return t
    if not 0 <= head < t.shape[1]:
        raise InnerworksError(f"{name} has {t.shape[1]} heads; asked for head {head}")
    return t[:, head]


__all__ = ["HOOK_NAMES", "TRANSFORMER_HOOK_PATTERNS", "NamesFilter", "describe", "head_slice", "make_filter"]
