"""What every sequence-to-sequence model shares: the config, the batch, input checks and the activation cache.

The concrete models are :class:`innerworks.models.seq2seq.RecurrentSeq2Seq` (VED, AED, AO and their QKV/multi-head
variants) and :class:`innerworks.models.transformer.TransformerSeq2Seq`; build either with
:func:`innerworks.models.seq2seq.build_seq2seq`. They all follow the token conventions of
:class:`innerworks.data.types.Seq2SeqDataset` (``<pad>=0``, ``<eos>=1``, target ``<bos>=2``, lengths count the
``<eos>``) and have the same public API:

- ``model(src, src_lengths, tgt=None, teacher_forcing=False, max_len=None) -> logits [B, T, V]``;
- ``model.greedy_decode(src, src_lengths, max_len) -> tokens [B, max_len]``;
- ``model.run_with_cache(batch, names_filter=None, teacher_forcing=False) -> (logits, cache)`` with the canonical
  names of :mod:`innerworks.models.hooks`.

Architecture and cell names have one source each, :class:`~innerworks.models.names.Arch` and
:class:`~innerworks.models.names.CellType`; the config fields are typed by them, so recipes keep plain strings and a
wrong one is told the allowed values.

>>> Seq2SeqConfig(arch="ao", hidden_size=16).cell
'gru'
>>> Seq2SeqBatch(torch.tensor([[3, 1]]), torch.tensor([2])).batch_size
1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from innerworks.data.types import BOS_ID, EOS_ID, PAD_ID, SRC_SPECIALS, TGT_SPECIALS
from innerworks.errors import InnerworksError
from innerworks.models.hooks import (
    HOOK_LOGITS,
    CacheRecorder,
    NamesFilter,
    null_recorder,
)
from innerworks.models.names import Arch, CellType

ARCHS: tuple[str, ...] = Arch.values()
"""Every architecture name, in :class:`Arch` order."""


class Seq2SeqConfig(BaseModel):
    """Model section of a ``seq2seq`` recipe.

    Recurrent models (§4 of the attention notes): ``ved`` (no attention; readout ``h^D``), ``aed`` (dot attention on
    raw hidden states; readout ``[h^D; c]``), ``ao`` (no recurrence, rotated sinusoidal positions; readout ``c``),
    ``aed_qkv``/``ao_qkv`` (learned Q/K/V, one head), ``aed_mha``/``ao_mha`` (``num_heads`` heads). ``transformer``
    is a small pre-LN encoder-decoder (``num_layers``, ``d_model``, ``d_ff``, ``num_heads``).

    >>> Seq2SeqConfig(arch="aed_mha", num_heads=4).num_heads
    4
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    arch: Arch = Field(Arch.AED, validate_default=True)
    cell: CellType = Field(CellType.GRU, validate_default=True, description="recurrent cell; gru_renn: the author "
                           "code's GRU form (models.cells.RennGRUCell)")
    hidden_size: int = Field(128, ge=1, description="units per recurrent cell (encoder and decoder)")
    embed_dim: int | None = Field(None, ge=1, description="learned token embedding size; null: one-hot inputs")
    input_dim: int | None = Field(None, ge=1, description="AO with one-hot inputs: pad the one-hot to this width "
                                  "before adding the positional encoding (notes: 50 one-to-one, 100 eSCAN); "
                                  "null: the larger vocabulary size")
    qk_size: int = Field(32, ge=1, description="query/key size per head (qkv, mha)")
    num_heads: int = Field(2, ge=1, description="heads for *_mha and the transformer")
    pe_scale: float = Field(20.0, gt=1.0, description="AO: PE[t,2i] = A sin(t / scale^(2i/d))")
    pe_amplitude: float = Field(1.0, ge=0.0, description="AO: the A above")
    num_layers: int = Field(2, ge=1, description="transformer layers (encoder and decoder each)")
    d_model: int = Field(64, ge=1, description="transformer width")
    d_ff: int = Field(256, ge=1, description="transformer MLP width")
    positions: Literal["sinusoidal", "learned"] = Field("learned", description="transformer positions; learned (as in "
                                                        "nanoGPT) trains faster on the synthetic tasks")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    readout_bias: bool = Field(False, description="the paper's readout has no bias")
    teacher_forcing: bool = Field(False, description="training feeds targets (True) or greedy predictions (False, "
                                  "the notes' default)")
    max_len: int = Field(256, ge=1, description="longest source or target sequence the model accepts")
    max_decode_len: int = Field(64, ge=1, description="greedy decoding length when no target is given")
    bos: Literal["token", "uniform"] = Field("token", description="decoder input at step 0: the <bos> token's one-hot "
                                             "(or embedding), or the author code's uniform vector 1/V_out (one-hot "
                                             "recurrent and AO models only)")

    @model_validator(mode="after")
    def _uniform_bos_needs_one_hot(self) -> Seq2SeqConfig:
        if self.bos == "uniform" and (self.embed_dim is not None or self.arch == "transformer"):
            raise ValueError("bos 'uniform' needs one-hot inputs to a recurrent or AO model (embed_dim: null, arch "
                             "other than transformer)")
        return self


@dataclass
class Seq2SeqBatch:
    """A mini-batch of source (and optionally target) token ids, following the Seq2SeqDataset conventions.

    >>> b = Seq2SeqBatch(torch.tensor([[3, 1]]), torch.tensor([2]), torch.tensor([[4, 1]]), torch.tensor([2]))
    >>> b.to("cpu").tgt.tolist()
    [[4, 1]]
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt: torch.Tensor | None = None
    tgt_lengths: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """Number of rows."""
        return int(self.src.shape[0])

    def to(self, device: torch.device | str) -> Seq2SeqBatch:
        """The same batch on ``device``."""
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Seq2SeqBatch(self.src.to(device), self.src_lengths.to(device), mv(self.tgt), mv(self.tgt_lengths))

    @classmethod
    def coerce(cls, batch: Any) -> Seq2SeqBatch:
        """Accept a Seq2SeqBatch, anything with ``src``/``src_lengths`` attributes (a Seq2SeqDataset) or a tuple.

        >>> Seq2SeqBatch.coerce((torch.tensor([[1]]), torch.tensor([1]))).tgt is None
        True
        """
        if isinstance(batch, Seq2SeqBatch):
            return batch
        if hasattr(batch, "src") and hasattr(batch, "src_lengths"):
            return cls(batch.src, batch.src_lengths, getattr(batch, "tgt", None), getattr(batch, "tgt_lengths", None))
        if isinstance(batch, (tuple, list)) and 2 <= len(batch) <= 4:
            return cls(*batch)
        raise InnerworksError("batch must be a Seq2SeqBatch, a Seq2SeqDataset or a tuple (src, src_lengths[, tgt"
                              f"[, tgt_lengths]]), got {type(batch).__name__}")


def sinusoidal_pe(length: int, dim: int, scale: float = 10000.0, amplitude: float = 1.0,
                  device: torch.device | None = None) -> torch.Tensor:
    """``PE[t, 2i] = A sin(t / scale^(2i/d))``, ``PE[t, 2i+1] = A cos(t / scale^(2i/d))``, t from 0: ``[length, dim]``.

    >>> sinusoidal_pe(3, 4)[0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    t = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float32, device=device)
    angle = t / scale ** (two_i / dim)
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return amplitude * pe


def random_orthogonal(dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Haar-random orthogonal ``[dim, dim]`` matrix (QR of a Gaussian with the sign fix).

    >>> q = random_orthogonal(5, torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(q @ q.T, torch.eye(5), atol=1e-5))
    True
    """
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.float()


class Seq2SeqModel(nn.Module):
    """Base class: input checks, the public API, and the cache. Subclasses implement ``_run`` and ``hook_names``.

    Attributes:
        cfg: the :class:`Seq2SeqConfig`.
        src_vocab_size, tgt_vocab_size: number of ids in each vocabulary (specials included).
        attn_scale: the python float ``s`` with ``attn.hook_scores = s * q . k`` (None without attention).
        attn_heads: heads of the analysed attention (0 without attention).
    """

    attn_scale: float | None = None
    attn_heads: int = 0

    def __init__(self, cfg: Seq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        if src_vocab_size < len(SRC_SPECIALS) + 1:
            raise InnerworksError(f"source vocabulary needs <pad>, <eos> and at least one word; got {src_vocab_size}"
                                  " ids")
        if tgt_vocab_size < len(TGT_SPECIALS) + 1:
            raise InnerworksError(f"target vocabulary needs <pad>, <eos>, <bos> and at least one word; got "
                                  f"{tgt_vocab_size} ids")
        self.cfg = cfg
        self.src_vocab_size = int(src_vocab_size)
        self.tgt_vocab_size = int(tgt_vocab_size)

    # ---- subclass interface -------------------------------------------------------------------------------------
    def hook_names(self) -> list[str]:  # pragma: no cover - abstract
        """Every cache name this model produces."""
        raise NotImplementedError

    def _run(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt: torch.Tensor | None, teacher_forcing: bool,
             steps: int, rec: CacheRecorder) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- input checks -------------------------------------------------------------------------------------------
    def check_vocab(self, src_vocab: Sequence[str] | int, tgt_vocab: Sequence[str] | int) -> None:
        """Raise :class:`InnerworksError` when a dataset's vocabularies do not match the model's.

        >>> from innerworks.models.seq2seq import build_seq2seq
        >>> m = build_seq2seq(Seq2SeqConfig(hidden_size=4), 5, 6)
        >>> m.check_vocab(7, 6)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        innerworks.errors.InnerworksError: vocabulary mismatch: the model's source vocabulary has 5 ids, the data's 7
        """
        for side, vocab, size, specials in (("source", src_vocab, self.src_vocab_size, SRC_SPECIALS),
                                            ("target", tgt_vocab, self.tgt_vocab_size, TGT_SPECIALS)):
            n = vocab if isinstance(vocab, int) else len(vocab)
            if n != size:
                raise InnerworksError(f"vocabulary mismatch: the model's {side} vocabulary has {size} ids, the "
                                      f"data's {n}")
            if not isinstance(vocab, int) and tuple(vocab[: len(specials)]) != specials:
                raise InnerworksError(f"{side} vocabulary must start with {', '.join(specials)}; got "
                                      f"{', '.join(map(str, vocab[: len(specials)]))}")

    def _check_side(self, name: str, tokens: torch.Tensor, lengths: torch.Tensor | None, vocab_size: int) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
            what = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, torch.Tensor) else type(tokens)
            raise InnerworksError(f"{name} must be a LongTensor [B, L] of token ids, got {what}")
        b, width = tokens.shape
        if b == 0 or width == 0:
            raise InnerworksError(f"{name} is empty (shape {tuple(tokens.shape)}); every sequence needs its <eos>")
        if width > self.cfg.max_len:
            raise InnerworksError(f"{name} is over-length: {width} positions, the model accepts at most "
                                  f"max_len={self.cfg.max_len}")
        bad = (tokens < 0) | (tokens >= vocab_size)
        if bool(bad.any()):
            n, t = (int(i) for i in bad.nonzero()[0])
            raise InnerworksError(f"{name}: unknown token id {int(tokens[n, t])} at row {n}, position {t}; the "
                                  f"model's vocabulary has ids 0..{vocab_size - 1}")
        if lengths is None:
            return
        if not isinstance(lengths, torch.Tensor) or lengths.shape != (b,):
            raise InnerworksError(f"{name} lengths must be a tensor of shape ({b},)")
        if bool((lengths < 1).any()):
            n = int((lengths < 1).nonzero()[0, 0])
            raise InnerworksError(f"{name}: empty sequence at row {n} (length {int(lengths[n])}); every sequence "
                                  "needs at least its <eos>")
        if bool((lengths > width).any()):
            n = int((lengths > width).nonzero()[0, 0])
            raise InnerworksError(f"{name}: length {int(lengths[n])} at row {n} exceeds the padded width {width}")
        last = tokens.gather(1, (lengths.to(tokens.device) - 1).unsqueeze(1)).squeeze(1)
        if bool((last != EOS_ID).any()):
            n = int((last != EOS_ID).nonzero()[0, 0])
            raise InnerworksError(f"{name}: row {n} must end with <eos> (id {EOS_ID}) at position "
                                  f"{int(lengths[n]) - 1} (lengths count the <eos>), found id {int(last[n])}")

    def check_inputs(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt: torch.Tensor | None = None,
                     tgt_lengths: torch.Tensor | None = None) -> None:
        """Validate a batch against the token conventions and this model's vocabularies and ``max_len``.

        >>> from innerworks.models.seq2seq import build_seq2seq
        >>> m = build_seq2seq(Seq2SeqConfig(hidden_size=4), 5, 6)
        >>> m.check_inputs(torch.tensor([[9, 1]]), torch.tensor([2]))  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        innerworks.errors.InnerworksError: src: unknown token id 9 at row 0, position 0; ...
        """
        self._check_side("src", src, src_lengths, self.src_vocab_size)
        if tgt is not None:
            self._check_side("tgt", tgt, tgt_lengths, self.tgt_vocab_size)
            if tgt.shape[0] != src.shape[0]:
                raise InnerworksError(f"tgt has {tgt.shape[0]} rows, src has {src.shape[0]}")

    def _steps(self, tgt: torch.Tensor | None, max_len: int | None) -> int:
        steps = int(max_len) if max_len is not None else (tgt.shape[1] if tgt is not None else self.cfg.max_decode_len)
        if steps < 1 or steps > self.cfg.max_len:
            raise InnerworksError(f"decoding length must be in 1..max_len={self.cfg.max_len}, got {steps}")
        return steps

    # ---- public API ---------------------------------------------------------------------------------------------
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt: torch.Tensor | None = None,
                teacher_forcing: bool = False, max_len: int | None = None) -> torch.Tensor:
        """Logits ``[B, L, V]``. Teacher forcing feeds ``<bos>, tgt[:, :-1]`` (needs ``tgt``); greedy decoding feeds
        the previous argmax and runs ``max_len`` steps (default: ``tgt``'s width, else ``cfg.max_decode_len``)."""
        self.check_inputs(src, src_lengths, tgt)
        if teacher_forcing and tgt is None:
            raise InnerworksError("teacher forcing needs tgt")
        steps = tgt.shape[1] if teacher_forcing else self._steps(tgt, max_len)
        return self._run(src, src_lengths, tgt, teacher_forcing, steps, null_recorder())

    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
        """Greedy predictions ``[B, max_len]`` (the argmax of each step, fed back as the next input)."""
        return self.forward(src, src_lengths, None, teacher_forcing=False, max_len=max_len).argmax(-1)

    @torch.no_grad()
    def run_with_cache(self, batch: Any, names_filter: NamesFilter = None, teacher_forcing: bool = False,
                       max_len: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run on ``batch`` and return ``(logits, cache)``; ``cache`` maps canonical names to detached tensors.

        ``names_filter`` is None (everything), one name, a list of names (unknown names raise), or a predicate on
        names; only matching activations are kept. Runs without gradients. A Seq2SeqDataset batch is also checked
        for vocabulary mismatch.
        """
        b = Seq2SeqBatch.coerce(batch)
        if hasattr(batch, "src_vocab") and hasattr(batch, "tgt_vocab"):
            self.check_vocab(batch.src_vocab, batch.tgt_vocab)
        self.check_inputs(b.src, b.src_lengths, b.tgt, b.tgt_lengths)
        if teacher_forcing and b.tgt is None:
            raise InnerworksError("teacher forcing needs tgt")
        steps = b.tgt.shape[1] if teacher_forcing else self._steps(b.tgt, max_len)
        rec = CacheRecorder(names_filter, available=self.hook_names())
        logits = self._run(b.src, b.src_lengths, b.tgt, teacher_forcing, steps, rec)
        rec.put(HOOK_LOGITS, logits)
        return logits, rec.result()

    # ---- helpers shared by subclasses ---------------------------------------------------------------------------
    @staticmethod
    def decoder_inputs(tgt: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs: ``<bos>`` then ``tgt`` shifted right by one, ``[B, T]``.

        >>> Seq2SeqModel.decoder_inputs(torch.tensor([[5, 1, 0]])).tolist()
        [[2, 5, 1]]
        """
        bos = torch.full_like(tgt[:, :1], BOS_ID)
        return torch.cat([bos, tgt[:, :-1]], dim=1)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def scaled_scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * q . k`` for ``q [B,nh,T,d]``, ``k [B,nh,S,d]`` -> ``[B,nh,T,S]``."""
    s = q @ k.transpose(-2, -1)
    return s if scale == 1.0 else s * scale


def qk_scale(dim: int) -> float:
    """The usual ``1/sqrt(d)``."""
    return 1.0 / math.sqrt(dim)


__all__ = [
    "ARCHS",
    "Arch",
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "Seq2SeqBatch",
    "Seq2SeqConfig",
    "Seq2SeqModel",
    "qk_scale",
    "random_orthogonal",
    "scaled_scores",
    "sinusoidal_pe",
]
