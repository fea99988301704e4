"""A small, readable transformer encoder-decoder (nanoGPT style, pre-LayerNorm) with every cross-attention exposed.

- Token embeddings (separate source/target tables) plus sinusoidal or learned positions.
- Encoder block: ``x += self_attn(ln(x))`` (padding keys masked), ``x += mlp(ln(x))``; a final LayerNorm gives the
  memory ``encoder.hook_states``.
- Decoder block: ``x += causal_self_attn(ln(x))``, ``x += cross_attn(ln(x), memory)``, ``x += mlp(ln(x))``; a final
  LayerNorm and a bias-free linear head give the logits.
- Cross-attention of layer ``l`` is cached as ``blocks.{l}.cross_attn.hook_{q,k,v,scores,weights,context}``; the last
  layer's is also cached under the analysed-attention names ``attn.hook_*`` (same tensors).
- Greedy decoding reruns the decoder on the growing prefix each step, as nanoGPT's ``generate`` does; the causal mask
  makes earlier positions unchanged, so the cache is the final step's pass and equals a teacher-forced pass fed with
  the same tokens.

>>> import torch
>>> from innerworks.models.seq2seq import Seq2SeqConfig, build_seq2seq
>>> cfg = Seq2SeqConfig(arch="transformer", d_model=16, d_ff=32, num_heads=2, num_layers=2)
>>> m = build_seq2seq(cfg, 5, 6, seed=0)
>>> logits, cache = m.run_with_cache((torch.tensor([[3, 1]]), torch.tensor([2])), max_len=3)
>>> cache["blocks.1.cross_attn.hook_scores"].shape, m.attn_scale == 1 / 8 ** 0.5
(torch.Size([1, 2, 3, 2]), True)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from innerworks.errors import ConfigError
from innerworks.models.hooks import (
    ATTENTION_HOOKS,
    HOOK_DEC_INPUT,
    HOOK_DEC_STATES,
    HOOK_DEC_TOKENS,
    HOOK_ENC_INPUT,
    HOOK_ENC_STATES,
    HOOK_LOGITS,
    CacheRecorder,
    null_recorder,
    squeeze_heads,
)
from innerworks.models.masking import valid_mask
from innerworks.models.seq2seq_base import BOS_ID, Seq2SeqConfig, Seq2SeqModel, qk_scale, sinusoidal_pe


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention of ``x [B, T, d]`` over ``mem [B, S, d]`` (self-attention when ``mem is x``).

    Returns the output ``[B, T, d]`` and ``(q, k, v, scores, weights)`` with the head axis; ``scores`` are raw
    (``scale * q . k``, before masking). The q/k/v projections have no bias, so scores are bilinear in the inputs.

    >>> att = MultiHeadAttention(8, 2)
    >>> y, (q, k, v, s, w) = att(torch.randn(1, 3, 8), torch.randn(1, 4, 8))
    >>> y.shape, s.shape
    (torch.Size([1, 3, 8]), torch.Size([1, 2, 3, 4]))
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.head_size = num_heads, d_model // num_heads
        self.scale = qk_scale(self.head_size)
        self.w_q = nn.Linear(d_model, d_model, bias=False)
        self.w_k = nn.Linear(d_model, d_model, bias=False)
        self.w_v = nn.Linear(d_model, d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model)
        self.attn_drop = nn.Dropout(dropout)
        self.resid_drop = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, key_valid: torch.Tensor | None = None,
                causal: bool = False) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        q, k, v = self._heads(self.w_q(x)), self._heads(self.w_k(mem)), self._heads(self.w_v(mem))
        scores = (q @ k.transpose(-2, -1)) * self.scale  # [B, nh, T, S]
        mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=x.device)
        if causal:
            mask = torch.tril(mask)
        mask = mask.view(1, 1, *mask.shape)
        if key_valid is not None:
            mask = mask & key_valid.view(key_valid.shape[0], 1, 1, -1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        z = self.attn_drop(weights) @ v
        out = self.resid_drop(self.proj(z.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)))
        return out, (q, k, v, scores, weights)


class MLP(nn.Module):
    """``Linear -> GELU -> Linear -> Dropout``."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff)
        self.proj = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class EncoderBlock(nn.Module):
    """Pre-LN block: self-attention over valid source positions, then the MLP."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.mlp = MLP(d_model, d_ff, dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.ln_1(x)
        a, parts = self.attn(h, h, valid)
        x = x + a
        return x + self.mlp(self.ln_2(x)), parts[4]


class DecoderBlock(nn.Module):
    """Pre-LN block: causal self-attention, cross-attention over the encoder memory, then the MLP."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.mlp = MLP(d_model, d_ff, dropout)

    def forward(self, x: torch.Tensor, mem: torch.Tensor,
                mem_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        h = self.ln_1(x)
        a, self_parts = self.self_attn(h, h, None, causal=True)
        x = x + a
        c, cross_parts = self.cross_attn(self.ln_2(x), mem, mem_valid)
        x = x + c
        return x + self.mlp(self.ln_3(x)), self_parts[4], cross_parts, c


class TransformerSeq2Seq(Seq2SeqModel):
    """Pre-LN transformer encoder-decoder; build with :func:`innerworks.models.seq2seq.build_seq2seq`.

    Attributes:
        src_embed, tgt_embed: token embeddings ``[V, d_model]``.
        pos_embed: learned ``nn.Embedding(max_len, d_model)`` or None for sinusoidal positions.
        enc_blocks, dec_blocks: ``nn.ModuleList`` of :class:`EncoderBlock` / :class:`DecoderBlock`.
        head: bias-free ``nn.Linear(d_model, V)``.
    """

    def __init__(self, cfg: Seq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__(cfg, src_vocab_size, tgt_vocab_size)
        d, nh = cfg.d_model, cfg.num_heads
        if d % nh:
            raise ConfigError(f"field 'model.d_model': {d} must be divisible by num_heads {nh}")
        self.src_embed = nn.Embedding(self.src_vocab_size, d)
        self.tgt_embed = nn.Embedding(self.tgt_vocab_size, d)
        self.pos_embed = nn.Embedding(cfg.max_len, d) if cfg.positions == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.enc_blocks = nn.ModuleList(EncoderBlock(d, nh, cfg.d_ff, cfg.dropout) for _ in range(cfg.num_layers))
        self.dec_blocks = nn.ModuleList(DecoderBlock(d, nh, cfg.d_ff, cfg.dropout) for _ in range(cfg.num_layers))
        self.ln_enc, self.ln_f = nn.LayerNorm(d), nn.LayerNorm(d)
        self.head = nn.Linear(d, self.tgt_vocab_size, bias=False)
        self.apply(self._init_weights)
        self.attn_scale = float(self.dec_blocks[-1].cross_attn.scale)
        self.attn_heads = nh

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """nanoGPT's init: N(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hook_names(self) -> list[str]:
        """Cache names of this model (layer names for every layer, plus the ``attn.*`` aliases of the last layer)."""
        names = [HOOK_ENC_INPUT]
        for l in range(self.cfg.num_layers):
            names += [f"encoder.blocks.{l}.hook_resid_pre", f"encoder.blocks.{l}.attn.hook_weights"]
        names += [HOOK_ENC_STATES, HOOK_DEC_TOKENS, HOOK_DEC_INPUT]
        for l in range(self.cfg.num_layers):
            names += [f"blocks.{l}.hook_resid_pre", f"blocks.{l}.self_attn.hook_weights"]
            names += [f"blocks.{l}.cross_attn.hook_{n}" for n in ("q", "k", "v", "scores", "weights", "context")]
        return names + [HOOK_DEC_STATES, *ATTENTION_HOOKS, HOOK_LOGITS]

    def _embed(self, tokens: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
        length = tokens.shape[1]
        if self.pos_embed is not None:
            pos = self.pos_embed(torch.arange(length, device=tokens.device))
        else:
            pos = sinusoidal_pe(length, self.cfg.d_model, device=tokens.device)
        # <pad> gets an ordinary (learned) vector: padded source positions are masked as keys, and the decoder is
        # causal, so padding never reaches a valid position.
        return self.drop(table(tokens) + pos)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor,
               rec: CacheRecorder | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder memory ``[B, S, d]`` (after the final LayerNorm) and the valid-position mask ``[B, S]``."""
        rec = rec or null_recorder()
        valid = valid_mask(src_lengths.to(src.device), src.shape[1])
        x = self._embed(src, self.src_embed)
        rec.put(HOOK_ENC_INPUT, x)
        for l, block in enumerate(self.enc_blocks):
            rec.put(f"encoder.blocks.{l}.hook_resid_pre", x)
            x, w = block(x, valid)
            rec.put(f"encoder.blocks.{l}.attn.hook_weights", squeeze_heads(w))
        mem = self.ln_enc(x)
        rec.put(HOOK_ENC_STATES, mem)
        return mem, valid

    def decode(self, tokens: torch.Tensor, mem: torch.Tensor, valid: torch.Tensor,
               rec: CacheRecorder | None = None) -> torch.Tensor:
        """Logits ``[B, T, V]`` for decoder input tokens ``[B, T]`` (``<bos>`` first) given the encoder memory."""
        rec = rec or null_recorder()
        x = self._embed(tokens, self.tgt_embed)
        rec.put(HOOK_DEC_TOKENS, tokens)
        rec.put(HOOK_DEC_INPUT, x)
        last = len(self.dec_blocks) - 1
        for l, block in enumerate(self.dec_blocks):
            rec.put(f"blocks.{l}.hook_resid_pre", x)
            x, self_w, (q, k, v, scores, weights), ctx = block(x, mem, valid)
            rec.put(f"blocks.{l}.self_attn.hook_weights", squeeze_heads(self_w))
            for prefix in (f"blocks.{l}.cross_attn", "attn") if l == last else (f"blocks.{l}.cross_attn",):
                for name, value in (("q", q), ("k", k), ("v", v), ("scores", squeeze_heads(scores)),
                                    ("weights", squeeze_heads(weights)), ("context", ctx)):
                    rec.put(f"{prefix}.hook_{name}", value)
        x = self.ln_f(x)
        rec.put(HOOK_DEC_STATES, x)
        return self.head(x)

    def _run(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt: torch.Tensor | None, teacher_forcing: bool,
             steps: int, rec: CacheRecorder) -> torch.Tensor:
        mem, valid = self.encode(src, src_lengths, rec)
        if teacher_forcing:
            assert tgt is not None
            return self.decode(self.decoder_inputs(tgt), mem, valid, rec)
        tokens = torch.full((src.shape[0], 1), BOS_ID, dtype=torch.long, device=src.device)
        out = []
        for s in range(steps):
            # Only the final pass (the full prefix) is recorded; causality makes it the step-by-step activations.
            logits = self.decode(tokens, mem, valid, rec if s == steps - 1 else None)
            out.append(logits[:, -1:])
            if s < steps - 1:
                tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return torch.cat(out, dim=1)


__all__ = ["DecoderBlock", "EncoderBlock", "MLP", "MultiHeadAttention", "TransformerSeq2Seq"]
