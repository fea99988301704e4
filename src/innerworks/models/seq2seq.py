"""Recurrent sequence-to-sequence models of the attention notes (§4): VED, AED, AO and learned-attention variants.

Read top to bottom. One encoder cell and one decoder cell (separate parameters, any kind of
:func:`~innerworks.models.cells.make_cell`); the decoder starts from the final encoder state (LSTM: the flat
``[h; c]``); a linear readout without bias.

- ``ved``: encoder + decoder recurrence, no attention; readout ``h^D``.
- ``aed``: encoder + decoder recurrence, dot attention on the raw states (scale 1); readout ``[h^D; c]``.
- ``ao``: no recurrence (the previous state is replaced by 0), dot attention; readout ``c`` only.
- ``aed_qkv`` / ``ao_qkv``: ``q = h^D W_q``, ``k = h^E W_k``, ``v = h^E W_v``, scale ``1/sqrt(qk_size)``.
- ``aed_mha`` / ``ao_mha``: ``num_heads`` such heads, concatenated, then linear back to the hidden size.

Inputs are one-hot (``<pad>`` maps to the zero vector) unless ``embed_dim`` is set. AO models pad the one-hot to
``input_dim`` and add a sinusoidal positional encoding multiplied by a fixed random orthogonal matrix (a buffer, drawn
from the build seed), on both the encoder and the decoder side. The notes' decoder starts from the uniform vector
``1/V``; by default step 0 is the explicit ``<bos>`` token (id 2) instead (``bos: uniform`` gives the notes' input),
and ``decoder.hook_tokens`` is a plain token grid either way (``<bos>`` at step 0).

The encoder runs the cell's fused ``scan``; after a row's ``<eos>`` its state is frozen (later positions repeat the
``<eos>`` state). Teacher forcing runs the decoder with ``scan`` too (the context is not fed back into the decoder,
so the decoder states do not depend on attention). Greedy decoding steps the cell one token at a time, feeding the
argmax back.

>>> import torch
>>> model = build_seq2seq(Seq2SeqConfig(arch="aed", hidden_size=8), src_vocab_size=5, tgt_vocab_size=6, seed=0)
>>> src = torch.tensor([[3, 4, 1], [2, 1, 0]]); src_lengths = torch.tensor([3, 2])
>>> model(src, src_lengths, max_len=4).shape          # greedy decoding, 4 steps
torch.Size([2, 4, 6])
>>> logits, cache = model.run_with_cache((src, src_lengths), names_filter=["attn.hook_weights"], max_len=4)
>>> cache["attn.hook_weights"].shape                  # [B, T, S]; padded source positions get weight 0
torch.Size([2, 4, 3])
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError
from torch import nn
from torch.nn import functional as F

from innerworks.errors import ConfigError, InnerworksError, format_validation_error
from innerworks.models.cells import make_cell
from innerworks.models.hooks import (
    ATTENTION_HOOKS,
    HOOK_CONTEXT,
    HOOK_DEC_FULL_STATES,
    HOOK_DEC_INPUT,
    HOOK_DEC_STATES,
    HOOK_DEC_TOKENS,
    HOOK_ENC_FULL_STATES,
    HOOK_ENC_INPUT,
    HOOK_ENC_STATES,
    HOOK_K,
    HOOK_NAMES,
    HOOK_Q,
    HOOK_SCORES,
    HOOK_V,
    HOOK_WEIGHTS,
    CacheRecorder,
    squeeze_heads,
)
from innerworks.models.masking import masked_softmax, valid_mask
from innerworks.models.seq2seq_base import (
    ARCHS,
    BOS_ID,
    PAD_ID,
    Arch,
    Seq2SeqBatch,
    Seq2SeqConfig,
    Seq2SeqModel,
    qk_scale,
    random_orthogonal,
    scaled_scores,
    sinusoidal_pe,
)

# What each recurrent architecture is made of: (recurrent decoder?, attention kind or None).
_RECURRENT_ARCHS: dict[Arch, tuple[bool, str | None]] = {
    Arch.VED: (True, None),
    Arch.AED: (True, "dot"),
    Arch.AO: (False, "dot"),
    Arch.AED_QKV: (True, "qkv"),
    Arch.AED_MHA: (True, "mha"),
    Arch.AO_QKV: (False, "qkv"),
    Arch.AO_MHA: (False, "mha"),
}


class Seq2SeqAttention(nn.Module):
    """Attention of a decoder state over encoder states: ``dot``, ``qkv`` (one learned head) or ``mha``.

    - ``dot``: ``q = h^D``, ``k = v = h^E``, score ``q . k`` (no ``1/sqrt(d)``, as in the notes).
    - ``qkv``: ``q = h^D W_q``, ``k = h^E W_k`` (size ``qk_size``), ``v = h^E W_v`` (size hidden), score
      ``q . k / sqrt(qk_size)``. (The author's code divided by ``sqrt(value_dim)``; a constant the learned ``W_q``
      absorbs. ``scale`` says which one is used.)
    - ``mha``: ``num_heads`` such heads with value size ``hidden / num_heads``, concatenated, then a linear map
      back to ``hidden``.

    No projection has a bias, so scores stay bilinear in ``(h^D, h^E)`` for the decomposition.

    >>> att = Seq2SeqAttention("mha", hidden_size=8, qk_size=4, num_heads=2)
    >>> k, v = att.keys(torch.randn(3, 5, 8))
    >>> q, scores, weights, ctx = att(torch.randn(3, 2, 8), k, v, torch.ones(3, 5, dtype=torch.bool))
    >>> scores.shape, ctx.shape
    (torch.Size([3, 2, 2, 5]), torch.Size([3, 2, 8]))
    """

    def __init__(self, kind: str, hidden_size: int, qk_size: int = 32, num_heads: int = 1) -> None:
        super().__init__()
        if kind not in ("dot", "qkv", "mha"):
            raise InnerworksError(f"unknown attention {kind!r}; expected dot, qkv or mha")
        self.kind = kind
        h = int(hidden_size)
        if kind == "dot":
            self.num_heads, self.q_size, self.v_size, self.scale = 1, h, h, 1.0
        else:
            self.num_heads = 1 if kind == "qkv" else int(num_heads)
            if h % self.num_heads:
                raise ConfigError(f"field 'model.num_heads': hidden_size {h} must be divisible by num_heads "
                                  f"{self.num_heads}")
            self.q_size, self.v_size = int(qk_size), h // self.num_heads
            self.scale = qk_scale(self.q_size)
            self.w_q = nn.Linear(h, self.num_heads * self.q_size, bias=False)
            self.w_k = nn.Linear(h, self.num_heads * self.q_size, bias=False)
            self.w_v = nn.Linear(h, self.num_heads * self.v_size, bias=False)
        self.out = nn.Linear(self.num_heads * self.v_size, h, bias=False) if kind == "mha" else None
        self.context_size = h

    def _heads(self, x: torch.Tensor, size: int) -> torch.Tensor:
        """``[B, L, nh*size]`` -> ``[B, nh, L, size]``."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, size).transpose(1, 2)

    def keys(self, h_enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys ``[B, nh, S, dq]`` and values ``[B, nh, S, dv]`` of encoder states ``[B, S, H]``."""
        if self.kind == "dot":
            k = h_enc.unsqueeze(1)
            return k, k
        return self._heads(self.w_k(h_enc), self.q_size), self._heads(self.w_v(h_enc), self.v_size)

    def forward(self, h_dec: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, raw scores, weights (all with the head axis) and the context ``[B, T, H]`` for ``h_dec``."""
        q = h_dec.unsqueeze(1) if self.kind == "dot" else self._heads(self.w_q(h_dec), self.q_size)
        scores = scaled_scores(q, k, self.scale)
        weights = masked_softmax(scores, valid)
        z = weights @ v  # [B, nh, T, dv]
        ctx = z.transpose(1, 2).reshape(z.shape[0], z.shape[2], -1)
        if self.out is not None:
            ctx = self.out(ctx)
        return q, scores, weights, ctx


class RecurrentSeq2Seq(Seq2SeqModel):
    """VED / AED / AO (and QKV / multi-head variants) with any recurrent cell. Build with :func:`build_seq2seq`.

    Attributes:
        encoder, decoder: the :class:`~innerworks.models.cells.RecurrentCell` of each side.
        attn: :class:`Seq2SeqAttention` or None (VED).
        readout: ``nn.Linear`` to the target vocabulary (bias only if ``cfg.readout_bias``).
        recurrent: False for AO models (every step applies the cell to ``x + PE`` with previous state 0).
        pe_rotation: AO only, the fixed ``[d, d]`` orthogonal matrix applied to the positional encoding.
    """

    def __init__(self, cfg: Seq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__(cfg, src_vocab_size, tgt_vocab_size)
        if cfg.arch not in _RECURRENT_ARCHS:
            raise ConfigError(f"field 'model.arch': {cfg.arch!r} is not a recurrent architecture")
        self.recurrent, kind = _RECURRENT_ARCHS[cfg.arch]
        h = cfg.hidden_size
        if cfg.embed_dim is not None:
            self.src_embed: nn.Embedding | None = nn.Embedding(self.src_vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
            self.tgt_embed: nn.Embedding | None = nn.Embedding(self.tgt_vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
            enc_in = dec_in = cfg.embed_dim
        else:
            self.src_embed = self.tgt_embed = None
            enc_in, dec_in = self.src_vocab_size, self.tgt_vocab_size
            if not self.recurrent:  # AO: one shared padded width, so one PE and one rotation serve both sides
                need = max(enc_in, dec_in)
                enc_in = dec_in = cfg.input_dim or need
                if enc_in < need:
                    raise ConfigError(f"field 'model.input_dim': {enc_in} is smaller than the vocabulary ({need})")
        if not self.recurrent:
            self.register_buffer("pe_rotation", random_orthogonal(enc_in))
        self.encoder = make_cell(cfg.cell, enc_in, h)
        self.decoder = make_cell(cfg.cell, dec_in, h)
        self.attn = None if kind is None else Seq2SeqAttention(kind, h, cfg.qk_size, cfg.num_heads)
        if self.attn is None:
            readout_in = h
        else:
            readout_in = h + self.attn.context_size if self.recurrent else self.attn.context_size
            self.attn_scale = float(self.attn.scale)
            self.attn_heads = self.attn.num_heads
        self.readout = nn.Linear(readout_in, self.tgt_vocab_size, bias=cfg.readout_bias)
        nn.init.xavier_normal_(self.readout.weight)
        self.drop = nn.Dropout(cfg.dropout)

    # ---- names --------------------------------------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        """Cache names of this model (VED has no ``attn.*``).

        >>> build_seq2seq(Seq2SeqConfig(arch="ved", hidden_size=4), 4, 5).hook_names()[-1]
        'logits'
        """
        return [n for n in HOOK_NAMES if self.attn is not None or n not in ATTENTION_HOOKS]

    # ---- pieces -------------------------------------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor, side: str) -> torch.Tensor:
        """Input vectors ``[B, L, I]`` for ``side`` ``"src"`` or ``"tgt"`` (no positional encoding)."""
        emb = self.src_embed if side == "src" else self.tgt_embed
        if emb is not None:
            return emb(tokens)
        width = (self.encoder if side == "src" else self.decoder).input_size
        x = F.one_hot(tokens, width).to(self.readout.weight.dtype)
        x[..., PAD_ID] = 0.0  # padding is the zero vector
        return x

    def decoder_start(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, L, I]`` decoder inputs with step 0 replaced by the uniform vector ``1/V_out`` when
        ``cfg.bos == "uniform"`` (the author code's start input; ``V_out`` = target vocabulary size)."""
        if self.cfg.bos != "uniform":
            return x
        start = torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
        start[: self.tgt_vocab_size] = 1.0 / self.tgt_vocab_size
        return torch.cat([start.expand(x.shape[0], 1, -1), x[:, 1:]], dim=1)

    def positions(self, length: int) -> torch.Tensor:
        """AO: the rotated positional encoding ``[length, d]`` (``PE @ pe_rotation``)."""
        pe = sinusoidal_pe(length, self.pe_rotation.shape[0], self.cfg.pe_scale, self.cfg.pe_amplitude,
                           device=self.pe_rotation.device)
        return pe @ self.pe_rotation

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor,
               rec: CacheRecorder | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder hidden states ``h^E [B, S, H]`` (frozen after ``<eos>``) and the final flat state ``[B, state]``."""
        b, s = src.shape
        x = self.embed(src, "src")
        if not self.recurrent:
            x = x + self.positions(s)
        if self.recurrent:
            full = self.encoder.scan(x, self.encoder.initial_state(b))
        else:
            full = self.encoder(x, x.new_zeros(b, s, self.encoder.state_size))
        # Freeze after <eos>: position t reads the state at min(t, length - 1).
        last = (src_lengths.to(src.device) - 1).unsqueeze(1)
        idx = torch.minimum(torch.arange(s, device=src.device).unsqueeze(0), last)
        full = full.gather(1, idx.unsqueeze(-1).expand(-1, -1, full.shape[-1]))
        h_enc = self.encoder.hidden(full)
        if rec is not None:
            rec.put(HOOK_ENC_INPUT, x)
            rec.put(HOOK_ENC_STATES, h_enc)
            rec.put(HOOK_ENC_FULL_STATES, full)
        return h_enc, full[:, -1]

    def _head(self, h_dec: torch.Tensor, k: torch.Tensor | None, v: torch.Tensor | None,
              valid: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Attention plus readout for decoder states ``[B, L, H]``: logits ``[B, L, V]`` and the attention parts."""
        if self.attn is None:
            return self.readout(self.drop(h_dec)), {}
        q, scores, weights, ctx = self.attn(h_dec, k, v, valid)
        feats = torch.cat([h_dec, ctx], dim=-1) if self.recurrent else ctx
        parts = {HOOK_Q: q, HOOK_SCORES: squeeze_heads(scores),
                 HOOK_WEIGHTS: squeeze_heads(weights), HOOK_CONTEXT: ctx}
        return self.readout(self.drop(feats)), parts

    # ---- the forward pass ---------------------------------------------------------------------------------------
    def _run(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt: torch.Tensor | None, teacher_forcing: bool,
             steps: int, rec: CacheRecorder) -> torch.Tensor:
        b = src.shape[0]
        h_enc, h = self.encode(src, src_lengths, rec)
        valid = valid_mask(src_lengths.to(src.device), src.shape[1])
        k = v = None
        if self.attn is not None:
            k, v = self.attn.keys(h_enc)
            rec.put(HOOK_K, k)
            rec.put(HOOK_V, v)
        pe = None if self.recurrent else self.positions(steps)

        if teacher_forcing:
            assert tgt is not None
            tokens = self.decoder_inputs(tgt)
            x = self.decoder_start(self.embed(tokens, "tgt"))
            if pe is not None:
                x = x + pe
            if self.recurrent:
                full = self.decoder.scan(x, h)
            else:
                full = self.decoder(x, x.new_zeros(b, steps, self.decoder.state_size))
            h_dec = self.decoder.hidden(full)
            logits, parts = self._head(h_dec, k, v, valid)
            for name, value in ((HOOK_DEC_TOKENS, tokens), (HOOK_DEC_INPUT, x),
                                (HOOK_DEC_STATES, h_dec), (HOOK_DEC_FULL_STATES, full), *parts.items()):
                rec.put(name, value)
            return logits

        # Greedy: one step at a time, the argmax fed back.
        token = torch.full((b,), BOS_ID, dtype=torch.long, device=src.device)
        zero = None if self.recurrent else h.new_zeros(b, self.decoder.state_size)
        t_dim = 1 if self.attn_heads <= 1 else 2  # where T sits in scores/weights
        out = []
        for s in range(steps):
            x = self.embed(token.unsqueeze(1), "tgt")
            x = (self.decoder_start(x) if s == 0 else x)[:, 0]
            if pe is not None:
                x = x + pe[s]
            h = self.decoder(x, h if self.recurrent else zero)
            h_dec = self.decoder.hidden(h).unsqueeze(1)
            logits, parts = self._head(h_dec, k, v, valid)
            out.append(logits)
            rec.append(HOOK_DEC_TOKENS, token.unsqueeze(1), 1)
            rec.append(HOOK_DEC_INPUT, x.unsqueeze(1), 1)
            rec.append(HOOK_DEC_STATES, h_dec, 1)
            rec.append(HOOK_DEC_FULL_STATES, h.unsqueeze(1), 1)
            for name, value in parts.items():
                dim = 2 if name == HOOK_Q else (t_dim if name != HOOK_CONTEXT else 1)
                rec.append(name, value, dim)
            token = logits[:, 0].argmax(-1)
        return torch.cat(out, dim=1)


def build_seq2seq(cfg: Seq2SeqConfig | dict[str, Any], src_vocab_size: int, tgt_vocab_size: int,
                  seed: int = 0) -> Seq2SeqModel:
    """Build and initialise a model from ``cfg``; ``seed`` alone decides every initial weight (and AO's rotation).

    The global torch RNG is left untouched.

    >>> m = build_seq2seq({"arch": "ao", "hidden_size": 8, "input_dim": 10}, 5, 6, seed=1)
    >>> m.pe_rotation.shape, m.attn_scale
    (torch.Size([10, 10]), 1.0)
    >>> build_seq2seq({"arch": "rnn"}, 5, 6)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: field 'model.arch': ...
    """
    if not isinstance(cfg, Seq2SeqConfig):
        try:
            cfg = Seq2SeqConfig.model_validate(cfg)
        except ValidationError as err:
            raise format_validation_error(err, "model config", prefix="model.") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if cfg.arch == "transformer":
            from innerworks.models.transformer import TransformerSeq2Seq

            return TransformerSeq2Seq(cfg, src_vocab_size, tgt_vocab_size)
        return RecurrentSeq2Seq(cfg, src_vocab_size, tgt_vocab_size)


__all__ = [
    "ARCHS",
    "Arch",
    "RecurrentSeq2Seq",
    "Seq2SeqAttention",
    "Seq2SeqBatch",
    "Seq2SeqConfig",
    "Seq2SeqModel",
    "build_seq2seq",
]
