"""Reading cached activations for the attention decomposition: the batches, their checks, and where they come from.

A cache batch is a dict with the canonical hook names of :mod:`innerworks.models.hooks` (``encoder.hook_states``,
``decoder.hook_states``, ``decoder.hook_tokens`` or ``logits``, and for attention models ``attn.hook_scores`` /
``attn.hook_weights`` / ``attn.hook_q`` / ``attn.hook_k``) plus ``src``, ``src_lengths`` and ``tgt_lengths``.
:func:`model_cache_batches` produces them from a model; :func:`read_batches` checks and reads them, pass after pass.

Decoder vectors are keyed by the decoder's INPUT token: ``<bos>`` at step 0, then the previous predicted token
(:func:`decoder_input_tokens`).

>>> import torch
>>> b = CacheBatch.read({"encoder.hook_states": torch.ones(1, 2, 3), "decoder.hook_states": torch.ones(1, 2, 3),
...                      "logits": torch.ones(1, 2, 5), "src": torch.ones(1, 2), "src_lengths": torch.tensor([2]),
...                      "tgt_lengths": torch.tensor([2])}, 0)
>>> b.dec_tok.tolist(), b.has_attention
([[2, 0]], False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from innerworks.data.types import BOS_ID
from innerworks.errors import InnerworksError
from innerworks.models.hooks import (
    HOOK_DEC_STATES,
    HOOK_DEC_TOKENS,
    HOOK_ENC_STATES,
    HOOK_K,
    HOOK_LOGITS,
    HOOK_Q,
    HOOK_SCORES,
    HOOK_WEIGHTS,
)
from innerworks.models.masking import valid_mask

ANALYSIS_HOOKS: tuple[str, ...] = (HOOK_ENC_STATES, HOOK_DEC_STATES, HOOK_DEC_TOKENS, HOOK_SCORES, HOOK_WEIGHTS,
                                   HOOK_Q, HOOK_K)
"""The cache names :func:`~innerworks.attention.decompose.decompose_attention` reads."""

CacheSource = Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]]
"""A re-iterable of cache batches (e.g. a list), or a zero-argument callable returning a fresh iterable."""


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


@dataclass
class CacheBatch:
    """One checked cache batch. ``where`` names it in error messages (``"cache batch 3"``).

    Attributes:
        enc_h, dec_h: hidden states ``[B, S, H]``, ``[B, T, H]``. src, dec_tok: their tokens ``[B, S]``, ``[B, T]``.
        src_len, tgt_len: lengths ``[B]``. scores, weights: ``[B, (nh), T, S]`` or None.
        q, k: ``[B, nh, T, dq]``, ``[B, nh, S, dq]`` or None (both or neither).
    """

    where: str
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

    @classmethod
    def read(cls, cache: Mapping[str, Any], index: int, bos_id: int = BOS_ID) -> CacheBatch:
        """Check the ``index``-th cache dict and read it (decoder tokens derived from ``logits`` when absent)."""
        where = f"cache batch {index}"
        if not isinstance(cache, Mapping):
            raise InnerworksError(f"{where}: expected a dict of tensors, got {type(cache).__name__}")
        for key in (HOOK_ENC_STATES, HOOK_DEC_STATES, "src", "src_lengths", "tgt_lengths"):
            if key not in cache:
                raise InnerworksError(f"{where}: missing key {key!r}")
        if HOOK_DEC_TOKENS in cache:
            dec_tok = torch.as_tensor(cache[HOOK_DEC_TOKENS])
        elif HOOK_LOGITS in cache:
            dec_tok = decoder_input_tokens(cache[HOOK_LOGITS], bos_id)
        else:
            raise InnerworksError(f"{where}: missing key {HOOK_DEC_TOKENS!r} (or 'logits' to derive it)")
        q, k = cache.get(HOOK_Q), cache.get(HOOK_K)
        if (q is None) != (k is None):
            raise InnerworksError(f"{where}: {HOOK_Q!r} and {HOOK_K!r} must be given together")
        for name, t, nd in ((HOOK_ENC_STATES, cache[HOOK_ENC_STATES], 3),
                            (HOOK_DEC_STATES, cache[HOOK_DEC_STATES], 3), (HOOK_Q, q, 4), (HOOK_K, k, 4)):
            if t is not None and (not isinstance(t, torch.Tensor) or t.dim() != nd):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise InnerworksError(f"{where}: {name!r} must be a {nd}-D tensor, got {shape}")
        return cls(where, cache[HOOK_ENC_STATES], cache[HOOK_DEC_STATES], torch.as_tensor(cache["src"]), dec_tok,
                   torch.as_tensor(cache["src_lengths"]), torch.as_tensor(cache["tgt_lengths"]),
                   cache.get(HOOK_SCORES), cache.get(HOOK_WEIGHTS), q, k)

    @property
    def has_attention(self) -> bool:
        """Whether the batch carries any attention hook."""
        return self.scores is not None or self.weights is not None or self.q is not None

    def qk_are_states(self) -> bool:
        """True when the cached queries/keys are the hidden states themselves (dot attention, one head)."""
        assert self.q is not None and self.k is not None
        if (self.q.shape[1] != 1 or self.q.shape[2:] != self.dec_h.shape[1:]
                or self.k.shape[2:] != self.enc_h.shape[1:]):
            return False
        qm = valid_mask(self.tgt_len.to(self.q.device), self.q.shape[2])
        km = valid_mask(self.src_len.to(self.k.device), self.k.shape[2])
        return bool(torch.equal(self.q[:, 0][qm], self.dec_h.to(self.q.device)[qm])
                    and torch.equal(self.k[:, 0][km], self.enc_h.to(self.k.device)[km]))

    def keys(self) -> torch.Tensor:
        """The vectors that enter the score on the encoder side, ``[B, nh, S, D]``: keys, else the states."""
        return self.k if self.k is not None else self.enc_h.unsqueeze(1)

    def queries(self) -> torch.Tensor:
        """The vectors that enter the score on the decoder side, ``[B, nh, T, D]``: queries, else the states."""
        return self.q if self.q is not None else self.dec_h.unsqueeze(1)

    def scores4(self, nh: int) -> torch.Tensor:
        """The cached scores as ``[B, nh, T, S]`` (the batch must have them)."""
        assert self.scores is not None
        return self._heads4(self.scores, nh, HOOK_SCORES)

    def weights4(self, nh: int) -> torch.Tensor:
        """The cached attention weights as ``[B, nh, T, S]`` (the batch must have them)."""
        assert self.weights is not None
        return self._heads4(self.weights, nh, HOOK_WEIGHTS)

    def _heads4(self, x: torch.Tensor, nh: int, name: str) -> torch.Tensor:
        if x.dim() == 3 and nh == 1:
            return x.unsqueeze(1)
        if x.dim() == 4 and x.shape[1] == nh:
            return x
        raise InnerworksError(f"{self.where}: {name!r} has shape {tuple(x.shape)}; expected [B, T, S] (one head) "
                              f"or [B, {nh}, T, S]")


def refuse_one_shot(cache_batches: CacheSource) -> None:
    """A one-shot iterator cannot feed two passes: refuse it up front.

    >>> refuse_one_shot([{}]); refuse_one_shot(iter([{}]))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: decompose_attention: cache_batches is a one-shot iterator; ...
    """
    if not callable(cache_batches) and iter(cache_batches) is cache_batches:
        raise InnerworksError("decompose_attention: cache_batches is a one-shot iterator; pass a list or a "
                              "callable returning a fresh iterable (the analysis makes two passes)")


def read_batches(cache_batches: CacheSource, label: str, progress: bool,
                 bos_id: int = BOS_ID) -> Iterator[CacheBatch]:
    """One pass: a fresh iteration of ``cache_batches``, each batch checked and read (a rich spinner when
    ``progress``).

    >>> next(read_batches([{"src": torch.ones(1, 2)}], "pass 1", progress=False))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: cache batch 0: missing key 'encoder.hook_states'
    """
    source = cache_batches() if callable(cache_batches) else cache_batches
    if not progress:
        for i, cache in enumerate(source):
            yield CacheBatch.read(cache, i, bos_id)
        return
    from rich.progress import Progress

    with Progress(transient=True) as prog:
        task = prog.add_task(label, total=None)
        for i, cache in enumerate(source):
            yield CacheBatch.read(cache, i, bos_id)
            prog.advance(task)


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


__all__ = ["ANALYSIS_HOOKS", "CacheBatch", "CacheSource", "decoder_input_tokens", "model_cache_batches",
           "read_batches", "refuse_one_shot"]
