"""The activation-cache vocabulary every model shares (TransformerLens style): names, filters and the recorder.

Every model has ``run_with_cache(batch, names_filter=None, ...) -> (logits, cache)``; ``cache`` is a plain
``dict[str, torch.Tensor]`` of detached tensors, taken without gradients. Analyses read these names and nothing
else, so they work on every architecture. The full tables, with shapes and the rules behind them, are in
``docs/hooks.md``.

- Sequence-to-sequence models (:mod:`innerworks.models.seq2seq`, :mod:`innerworks.models.transformer`):
  :data:`HOOK_NAMES`, plus the transformer's per-layer :data:`TRANSFORMER_HOOK_PATTERNS`.
- Single-cell recurrent models (:class:`innerworks.models.classifier.RNNClassifier`, the flip-flop model):
  :data:`RNN_HOOK_NAMES`, produced by :func:`run_rnn_with_cache`.

Shape letters: ``B`` batch, ``S`` source positions, ``T`` decoder steps (or tokens, for single-cell models), ``H``
hidden size, ``I`` input width, ``nh`` heads, ``dq`` query/key size per head, ``dv`` value size per head, ``V``
target vocabulary, ``C`` classes, ``d`` d_model.

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
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import torch

from innerworks.errors import InnerworksError

if TYPE_CHECKING:
    from innerworks.models.cells import RecurrentCell

# ---- sequence-to-sequence names, in the order of the forward pass ----------------------------------------------
HOOK_ENC_INPUT = "encoder.hook_input"
HOOK_ENC_STATES = "encoder.hook_states"
HOOK_ENC_FULL_STATES = "encoder.hook_full_states"
HOOK_DEC_TOKENS = "decoder.hook_tokens"
HOOK_DEC_INPUT = "decoder.hook_input"
HOOK_DEC_STATES = "decoder.hook_states"
HOOK_DEC_FULL_STATES = "decoder.hook_full_states"
HOOK_Q = "attn.hook_q"
HOOK_K = "attn.hook_k"
HOOK_V = "attn.hook_v"
HOOK_SCORES = "attn.hook_scores"
HOOK_WEIGHTS = "attn.hook_weights"
HOOK_CONTEXT = "attn.hook_context"
HOOK_LOGITS = "logits"

# ---- single-cell recurrent models ------------------------------------------------------------------------------
HOOK_RNN_INPUT = "rnn.hook_input"
HOOK_RNN_STATES = "rnn.hook_states"
HOOK_RNN_FULL_STATES = "rnn.hook_full_states"

HOOK_NAMES: dict[str, str] = {
    HOOK_ENC_INPUT: "[B,S,I] encoder input vectors (one-hot or embedding; AO: plus rotated positional encoding)",
    HOOK_ENC_STATES: "[B,S,H] encoder hidden states h^E (LSTM: the h half); frozen after <eos>",
    HOOK_ENC_FULL_STATES: "[B,S,state] the cell's flat state ([h; c] for LSTM; equals hook_states otherwise)",
    HOOK_DEC_TOKENS: "[B,T] decoder input tokens: <bos>=2 at step 0, then the previous token actually fed",
    HOOK_DEC_INPUT: "[B,T,I] decoder input vectors for those tokens (AO: plus rotated positional encoding)",
    HOOK_DEC_STATES: "[B,T,H] decoder hidden states h^D (LSTM: the h half)",
    HOOK_DEC_FULL_STATES: "[B,T,state] the decoder cell's flat state",
    HOOK_Q: "[B,nh,T,dq] queries; score = attn_scale * q . k (dot attention: q = h^D, nh = 1)",
    HOOK_K: "[B,nh,S,dq] keys (dot attention: k = h^E)",
    HOOK_V: "[B,nh,S,dv] values (dot attention: v = h^E)",
    HOOK_SCORES: "[B,T,S] or [B,nh,T,S] raw scores attn_scale * q . k, before masking",
    HOOK_WEIGHTS: "[B,T,S] or [B,nh,T,S] softmax over valid source positions (exactly 0 on padding)",
    HOOK_CONTEXT: "[B,T,Dc] context vector the readout receives (multi-head: after the output projection)",
    HOOK_LOGITS: "[B,T,V] readout logits",
}
"""Names every sequence-to-sequence model shares -> ``"[shape] description"``; ``attn.*`` only with attention."""

ATTENTION_HOOKS: tuple[str, ...] = tuple(n for n in HOOK_NAMES if n.startswith("attn."))
"""The analysed attention's names (absent from models without attention, such as VED)."""

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
"""Transformer-only names (``{l}`` is a layer index). The last decoder layer's cross-attention is also cached under
the ``attn.*`` names of :data:`HOOK_NAMES` (the analysed attention)."""

RNN_HOOK_NAMES: dict[str, str] = {
    HOOK_RNN_INPUT: "[B,T,I] input vectors the cell receives (one-hot with <pad> as the zero vector, or embedding)",
    HOOK_RNN_STATES: "[B,T,H] hidden states (LSTM: the h half); every position, padding included",
    HOOK_RNN_FULL_STATES: "[B,T,state] the cell's flat state ([h; c] for LSTM): what the readout reads",
    HOOK_LOGITS: "[B,T,C] readout at every position (classifier: pick each row's last valid token)",
}
"""Names of the single-cell recurrent models (text classifier, flip-flop)."""

NamesFilter = None | str | Iterable[str] | Callable[[str], bool]
"""What ``names_filter`` accepts: None (everything), one name, a collection of names, or a predicate on names."""


def describe(name: str) -> str:
    """The one-line description of a cache name (transformer layer names resolved to their pattern).

    >>> describe("blocks.1.cross_attn.hook_q")
    '[B,nh,T,dq] cross-attention queries of layer l'
    >>> describe("rnn.hook_states")[:8]
    '[B,T,H] '
    """
    for table in (HOOK_NAMES, RNN_HOOK_NAMES):
        if name in table:
            return table[name]
    pattern = re.sub(r"blocks\.\d+\.", "blocks.{l}.", name)
    if pattern in TRANSFORMER_HOOK_PATTERNS:
        return TRANSFORMER_HOOK_PATTERNS[pattern]
    raise InnerworksError(f"unknown hook name {name!r}; see innerworks.models.hooks.HOOK_NAMES and RNN_HOOK_NAMES")


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


def squeeze_heads(t: torch.Tensor) -> torch.Tensor:
    """Drop the head axis of a ``[B, nh, T, S]`` pattern when ``nh == 1`` (the layout rule above).

    >>> squeeze_heads(torch.ones(2, 1, 3, 4)).shape, squeeze_heads(torch.ones(2, 2, 3, 4)).shape
    (torch.Size([2, 3, 4]), torch.Size([2, 2, 3, 4]))
    """
    return t.squeeze(1) if t.shape[1] == 1 else t


class CacheRecorder:
    """Collects named tensors that pass ``names_filter``; models call :meth:`put` at each hook point.

    Names that fail the filter are never stored, so memory stays bounded by what was asked for. Greedy decoding
    produces one slice per step: :meth:`append` collects them and :meth:`result` concatenates along ``dim``.

    >>> rec = CacheRecorder(["logits"])
    >>> rec.put("logits", torch.ones(1, 2)); rec.put("other", torch.ones(1))
    >>> sorted(rec.result())
    ['logits']
    """

    def __init__(self, names_filter: NamesFilter = None, available: Sequence[str] | None = None,
                 enabled: bool = True) -> None:
        self.enabled = enabled
        self._want: Callable[[str], bool] = make_filter(names_filter, available) if enabled else (lambda n: False)
        self._store: dict[str, torch.Tensor] = {}
        self._steps: dict[str, tuple[int, list[torch.Tensor]]] = {}

    def wants(self, name: str) -> bool:
        """Whether ``name`` will be kept."""
        return self._want(name)

    def any(self, names: Sequence[str]) -> bool:
        """Whether any of ``names`` will be kept."""
        return any(self._want(n) for n in names)

    def put(self, name: str, value: torch.Tensor) -> None:
        """Keep ``value`` (detached) under ``name`` if wanted."""
        if self._want(name):
            self._store[name] = value.detach()

    def append(self, name: str, value: torch.Tensor, dim: int) -> None:
        """Keep one decoding step's slice of ``name``; slices are concatenated along ``dim`` at the end."""
        if self._want(name):
            self._steps.setdefault(name, (dim, []))[1].append(value.detach())

    def result(self) -> dict[str, torch.Tensor]:
        """The cache: stored tensors plus concatenated per-step slices."""
        out = dict(self._store)
        for name, (dim, parts) in self._steps.items():
            out[name] = torch.cat(parts, dim=dim)
        return out


def null_recorder() -> CacheRecorder:
    """A recorder that keeps nothing (plain forward passes).

    >>> null_recorder().wants("logits")
    False
    """
    return CacheRecorder(enabled=False)


@torch.no_grad()
def run_rnn_with_cache(cell: RecurrentCell, readout: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                       names_filter: NamesFilter = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``cell`` over ``inputs [B, T, I]`` and ``readout`` on every flat state; cache :data:`RNN_HOOK_NAMES`.

    The shared ``run_with_cache`` of the single-cell models: the readout reads the whole flat state (LSTM:
    ``[h; c]``), as their ``forward`` does, so the logits are the same tensor ``forward`` gives.

    >>> from innerworks.models.cells import make_cell
    >>> cell = make_cell("lstm", 3, 4); readout = torch.nn.Linear(cell.state_size, 2)
    >>> logits, cache = run_rnn_with_cache(cell, readout, torch.zeros(1, 5, 3), names_filter=["rnn.hook_states"])
    >>> logits.shape, cache["rnn.hook_states"].shape
    (torch.Size([1, 5, 2]), torch.Size([1, 5, 4]))
    """
    rec = CacheRecorder(names_filter, available=list(RNN_HOOK_NAMES))
    full = cell.scan(inputs)
    logits = readout(full)
    rec.put(HOOK_RNN_INPUT, inputs)
    rec.put(HOOK_RNN_STATES, cell.hidden(full))
    rec.put(HOOK_RNN_FULL_STATES, full)
    rec.put(HOOK_LOGITS, logits)
    return logits, rec.result()


__all__ = [
    "ATTENTION_HOOKS",
    "CacheRecorder",
    "HOOK_CONTEXT",
    "HOOK_DEC_FULL_STATES",
    "HOOK_DEC_INPUT",
    "HOOK_DEC_STATES",
    "HOOK_DEC_TOKENS",
    "HOOK_ENC_FULL_STATES",
    "HOOK_ENC_INPUT",
    "HOOK_ENC_STATES",
    "HOOK_K",
    "HOOK_LOGITS",
    "HOOK_NAMES",
    "HOOK_Q",
    "HOOK_RNN_FULL_STATES",
    "HOOK_RNN_INPUT",
    "HOOK_RNN_STATES",
    "HOOK_SCORES",
    "HOOK_V",
    "HOOK_WEIGHTS",
    "NamesFilter",
    "RNN_HOOK_NAMES",
    "TRANSFORMER_HOOK_PATTERNS",
    "describe",
    "head_slice",
    "make_filter",
    "null_recorder",
    "run_rnn_with_cache",
    "squeeze_heads",
]
