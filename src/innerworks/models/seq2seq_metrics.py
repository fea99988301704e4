"""Loss and metrics for sequence-to-sequence models.

A target row is scored up to and including its ``<eos>`` (positions ``t < tgt_length``); what a model emits after
that is ignored.

- :func:`sequence_loss`: masked softmax cross-entropy, mean over valid target tokens.
- :func:`phrase_accuracy`: fraction of rows whose every valid token is right (the notes' "phrase accuracy").
- :func:`word_accuracy`: fraction of valid target tokens that are right, pooled over the batch.
- :func:`bleu`: corpus BLEU (sacrebleu) of the predictions cut at their first ``<eos>``, for translation.

>>> import torch
>>> tgt = torch.tensor([[3, 4, 1], [5, 1, 0]]); lengths = torch.tensor([3, 2])
>>> pred = torch.tensor([[3, 4, 1], [4, 1, 1]])
>>> phrase_accuracy(pred, tgt, lengths), word_accuracy(pred, tgt, lengths)
(0.5, 0.8)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from innerworks.data.types import EOS_ID, TGT_SPECIALS
from innerworks.errors import InnerworksError


def target_mask(tgt_lengths: torch.Tensor, width: int) -> torch.Tensor:
    """``[B, width]`` bool, True at positions ``t < tgt_length`` (the ``<eos>`` included).

    >>> target_mask(torch.tensor([2]), 3).tolist()
    [[True, True, False]]
    """
    return torch.arange(width, device=tgt_lengths.device).unsqueeze(0) < tgt_lengths.unsqueeze(1)


def _aligned(pred: torch.Tensor, tgt: torch.Tensor, tgt_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions padded or cut to the target width, and the valid-position mask."""
    if pred.dim() != 2 or tgt.dim() != 2 or pred.shape[0] != tgt.shape[0] or tgt_lengths.shape != (tgt.shape[0],):
        raise InnerworksError(f"need pred [B, L], tgt [B, T] and tgt_lengths [B]; got {tuple(pred.shape)}, "
                              f"{tuple(tgt.shape)}, {tuple(tgt_lengths.shape)}")
    width = tgt.shape[1]
    if pred.shape[1] < width:  # a too-short prediction is wrong at the missing positions
        pred = F.pad(pred, (0, width - pred.shape[1]), value=-1)
    return pred[:, :width].to(tgt.device), target_mask(tgt_lengths.to(tgt.device), width)


def sequence_loss(logits: torch.Tensor, tgt: torch.Tensor, tgt_lengths: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over target positions ``t < tgt_length``, averaged over those tokens.

    >>> logits = torch.zeros(1, 2, 4); round(float(sequence_loss(logits, torch.tensor([[3, 1]]), torch.tensor([1]))), 4)
    1.3863
    """
    if logits.shape[:2] != tgt.shape:
        raise InnerworksError(f"logits {tuple(logits.shape)} do not match tgt {tuple(tgt.shape)}")
    mask = target_mask(tgt_lengths.to(tgt.device), tgt.shape[1])
    per_token = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def phrase_accuracy(pred: torch.Tensor, tgt: torch.Tensor, tgt_lengths: torch.Tensor) -> float:
    """Fraction of rows with every token up to and including ``<eos>`` right.

    >>> phrase_accuracy(torch.tensor([[3, 1, 7]]), torch.tensor([[3, 1, 0]]), torch.tensor([2]))
    1.0
    """
    pred, mask = _aligned(pred, tgt, tgt_lengths)
    return int(((pred == tgt) | ~mask).all(dim=1).sum()) / pred.shape[0]


def word_accuracy(pred: torch.Tensor, tgt: torch.Tensor, tgt_lengths: torch.Tensor) -> float:
    """Fraction of valid target tokens (``<eos>`` included) predicted right, pooled over rows.

    >>> word_accuracy(torch.tensor([[3, 4, 1]]), torch.tensor([[3, 5, 1]]), torch.tensor([3]))
    0.6666666666666666
    """
    pred, mask = _aligned(pred, tgt, tgt_lengths)
    return int(((pred == tgt) & mask).sum()) / max(int(mask.sum()), 1)


def tokens_to_words(row: Sequence[int], vocab: Sequence[str], stop_at_eos: bool = True) -> list[str]:
    """Token ids to words: stop at the first ``<eos>``, drop ``<pad>``/``<bos>``.

    >>> tokens_to_words([4, 3, 1, 3], ["<pad>", "<eos>", "<bos>", "a", "b"])
    ['b', 'a']
    """
    words = []
    for i in row:
        i = int(i)
        if i == EOS_ID and stop_at_eos:
            break
        if i < len(TGT_SPECIALS):
            continue
        if i >= len(vocab):
            raise InnerworksError(f"token id {i} outside the vocabulary (0..{len(vocab) - 1})")
        words.append(vocab[i])
    return words


def bleu(pred_tokens: torch.Tensor | Sequence[Sequence[int]], ref_tokens: torch.Tensor | Sequence[Sequence[int]],
         vocab: Sequence[str] | Any, detokenize: Callable[[list[str]], str] | None = None) -> float:
    """Corpus BLEU (sacrebleu, 0..100, default 13a tokenisation) of predictions against one reference each.

    Both sides are cut at their first ``<eos>``; specials are dropped. ``vocab`` is a token list (tokens joined
    with spaces, or by ``detokenize``) or an object with ``decode(ids) -> str`` such as
    :class:`innerworks.data.seq2seq.Seq2SeqVocab`, which detokenizes subwords.

    >>> v = ["<pad>", "<eos>", "<bos>", "the", "cat", "sat", "on", "mat"]
    >>> ref = [[3, 4, 5, 6, 3, 7, 1]]
    >>> round(bleu(ref, ref, v), 6)
    100.0
    """
    import sacrebleu

    preds = pred_tokens.tolist() if isinstance(pred_tokens, torch.Tensor) else pred_tokens
    refs = ref_tokens.tolist() if isinstance(ref_tokens, torch.Tensor) else ref_tokens
    if len(preds) != len(refs):
        raise InnerworksError(f"bleu: {len(preds)} predictions but {len(refs)} references")
    if hasattr(vocab, "decode"):
        hyp, ref = [vocab.decode(list(p)) for p in preds], [vocab.decode(list(r)) for r in refs]
    else:
        join = detokenize or " ".join
        hyp = [join(tokens_to_words(p, vocab)) for p in preds]
        ref = [join(tokens_to_words(r, vocab)) for r in refs]
    # force: word-level references are already tokenised text, which is what 13a expects anyway.
    return float(sacrebleu.corpus_bleu(hyp, [ref], force=True).score)


__all__ = ["bleu", "phrase_accuracy", "sequence_loss", "target_mask", "tokens_to_words", "word_accuracy"]
