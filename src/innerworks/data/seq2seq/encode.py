"""Encoding parallel texts into a :class:`~innerworks.data.types.Seq2SeqDataset`: :func:`encode_pairs` (with the
documented handling of empty, over-length and unknown-word rows) and :func:`check_vocab_match`.

Every task ends here, as can the user's own parallel data; a plain list of tokens is accepted as a vocabulary.

>>> _pad_eos([[5, 6], [7]])[0].tolist()
[[5, 6, 1], [7, 1, 0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, Literal

import numpy as np
import torch

from innerworks.data.seq2seq.vocab import Seq2SeqVocab
from innerworks.data.types import EOS_ID, PAD, SRC_SPECIALS, TGT_SPECIALS, UNK, Seq2SeqDataset
from innerworks.errors import DataError


def _as_vocab(v: Seq2SeqVocab | Sequence[str], role: Literal["src", "tgt"], arg: str) -> Seq2SeqVocab:
    if isinstance(v, Seq2SeqVocab):
        if v.role != role:
            raise DataError(f"{arg}: got a {v.role} vocabulary ({v.name!r}) where a {role} vocabulary is needed")
        return v
    if isinstance(v, str) or not isinstance(v, Sequence):
        raise DataError(f"{arg}: expected a Seq2SeqVocab or a list of token strings, got {type(v).__name__}")
    tokens = list(v)
    try:
        if UNK not in tokens:
            return Seq2SeqVocab(tokens, role, "closed", name=arg)
        from innerworks.data.tokenize import WordTokenizer

        specials = SRC_SPECIALS if role == "src" else TGT_SPECIALS
        if tokens[len(specials)] != UNK:
            raise DataError(f"{arg}: {UNK} must come right after {list(specials)}")
        tok = WordTokenizer.from_dict({"vocab": [PAD, UNK, *tokens[len(specials) + 1:]], "min_count": 1})
        return Seq2SeqVocab(tokens, role, "word", arg, tok)
    except DataError as exc:
        raise DataError(f"{arg}: {exc}") from None


def encode_pairs(src_texts: Sequence[str], tgt_texts: Sequence[str], src_vocab: Seq2SeqVocab | Sequence[str],
                 tgt_vocab: Seq2SeqVocab | Sequence[str], *, max_length: int | None = None,
                 overlength: Literal["error", "drop", "truncate"] = "error", drop_empty: bool = False,
                 max_unk_rate: float | None = 0.5, meta: Mapping[str, Any] | None = None) -> Seq2SeqDataset:
    """Encode parallel texts into a :class:`Seq2SeqDataset` (your own data, or the corpus loaders').

    A plain list of strings as a vocabulary is a closed vocabulary (whitespace split) unless it contains ``<unk>``,
    in which case it is word-level. Handling of bad input:

    - a row that is not a string, or is empty after tokenisation: :class:`DataError` naming the row (or, with
      ``drop_empty=True``, dropped and counted in ``meta["dropped_empty"]``);
    - longer than ``max_length`` tokens (``<eos>`` not counted): ``overlength="error"`` raises naming the row,
      ``"drop"`` / ``"truncate"`` count them in ``meta["dropped_overlength"]`` / ``meta["truncated_overlength"]``;
    - unknown words: ``<unk>`` (counted in ``meta["src_unk_rate"]`` / ``["tgt_unk_rate"]``); closed vocabularies
      raise; if more than ``max_unk_rate`` of one side's tokens are ``<unk>`` the vocabulary is probably from another
      corpus or language and :class:`DataError` is raised (``None`` disables the check).

    >>> ds = encode_pairs(["a b", "b"], ["X", "Y Y"], ["<pad>", "<eos>", "a", "b"],
    ...                   ["<pad>", "<eos>", "<bos>", "X", "Y"])
    >>> ds.src.tolist(), ds.tgt.tolist(), ds.tgt_lengths.tolist()
    ([[2, 3, 1], [3, 1, 0]], [[3, 1, 0], [4, 4, 1]], [2, 3])
    >>> encode_pairs(["a", ""], ["X", "X"], ["<pad>", "<eos>", "a"],
    ...              ["<pad>", "<eos>", "<bos>", "X"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: row 1: empty source text
    """
    sv, tv = _as_vocab(src_vocab, "src", "src_vocab"), _as_vocab(tgt_vocab, "tgt", "tgt_vocab")
    if isinstance(src_texts, str) or isinstance(tgt_texts, str):
        raise DataError("src_texts and tgt_texts must be sequences of strings, not a single string")
    if len(src_texts) != len(tgt_texts):
        raise DataError(f"src_texts has {len(src_texts)} rows but tgt_texts has {len(tgt_texts)}")
    if overlength not in ("error", "drop", "truncate"):
        raise DataError(f"overlength must be 'error', 'drop' or 'truncate', got {overlength!r}")
    if max_length is not None and max_length < 1:
        raise DataError(f"max_length must be >= 1, got {max_length}")
    for side, texts in (("source", src_texts), ("target", tgt_texts)):
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DataError(f"row {i}: {side} is {type(t).__name__}, expected str")
    src_ids = _encode_side(sv, src_texts, "source")
    tgt_ids = _encode_side(tv, tgt_texts, "target")
    keep_s, keep_t = [], []
    n_empty = n_drop = n_trunc = 0
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        if not s or not t:
            if not drop_empty:
                raise DataError(f"row {i}: empty {'source' if not s else 'target'} text")
            n_empty += 1
            continue
        if max_length is not None and (len(s) > max_length or len(t) > max_length):
            if overlength == "error":
                raise DataError(f"row {i}: {len(s)} source / {len(t)} target tokens, over max_length {max_length}")
            if overlength == "drop":
                n_drop += 1
                continue
            n_trunc += 1
            s, t = s[:max_length], t[:max_length]
        keep_s.append(s)
        keep_t.append(t)
    if not keep_s:
        raise DataError(f"no pairs left out of {len(src_ids)} (empty: {n_empty}, over max_length: {n_drop})")
    rates = {}
    for side, v, rows in (("src", sv, keep_s), ("tgt", tv, keep_t)):
        total = sum(len(r) for r in rows)
        n_unk = sum(r.count(v.unk_id) for r in rows) if v.unk_id is not None else 0
        rates[side] = n_unk / total
        if max_unk_rate is not None and rates[side] > max_unk_rate:
            raise DataError(f"{side}: {rates[side]:.0%} of tokens are {UNK} under vocabulary {v.name!r}: it was "
                            f"probably built for another corpus or language (max_unk_rate={max_unk_rate})")
    src, src_len = _pad_eos(keep_s)
    tgt, tgt_len = _pad_eos(keep_t)
    info = {"n_rows": len(src_ids), "n_pairs": len(keep_s), "dropped_empty": n_empty, "dropped_overlength": n_drop,
            "truncated_overlength": n_trunc, "max_length": max_length, "src_unk_rate": rates["src"],
            "tgt_unk_rate": rates["tgt"], "src_vocab": sv.name, "tgt_vocab": tv.name,
            "src_vocab_sha1": sv.fingerprint, "tgt_vocab_sha1": tv.fingerprint}
    return Seq2SeqDataset(src, src_len, tgt, tgt_len, list(sv.tokens), list(tv.tokens), {**(meta or {}), **info})


def _encode_side(v: Seq2SeqVocab, texts: Sequence[str], side: str) -> list[list[int]]:
    if v.kind != "closed":
        return v.encode_batch(texts)
    out = []
    for i, t in enumerate(texts):
        try:
            out.append(v.encode(t))
        except DataError as exc:
            raise DataError(f"row {i}: {side}: {exc}") from None
    return out


def _pad_eos(rows: list[list[int]], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Append ``<eos>`` to each row and pad with 0 to ``width`` (default: the longest)."""
    n_tok = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(n_tok.max()) + 1 if width is None else width
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(n_tok.sum()))
    row = np.repeat(np.arange(len(rows)), n_tok)
    col = np.arange(len(flat)) - np.repeat(np.cumsum(n_tok) - n_tok, n_tok)
    out = np.zeros((len(rows), width), dtype=np.int64)
    out[row, col] = flat
    out[np.arange(len(rows)), n_tok] = EOS_ID
    return torch.from_numpy(out), torch.from_numpy(n_tok + 1)


def check_vocab_match(ds: Seq2SeqDataset, src_vocab: Seq2SeqVocab | Sequence[str],
                      tgt_vocab: Seq2SeqVocab | Sequence[str]) -> None:
    """Raise :class:`DataError` naming the first differing id if ``ds`` was not encoded with these vocabularies
    (e.g. evaluating a model trained on one task on another task's data).

    >>> ds = encode_pairs(["a"], ["X"], ["<pad>", "<eos>", "a"], ["<pad>", "<eos>", "<bos>", "X"])
    >>> check_vocab_match(ds, ["<pad>", "<eos>", "b"], ds.tgt_vocab)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: source vocabulary mismatch at id 2: dataset has 'a', given 'b'
    """
    for side, have, v in (("source", ds.src_vocab, src_vocab), ("target", ds.tgt_vocab, tgt_vocab)):
        given = v.tokens if isinstance(v, Seq2SeqVocab) else list(v)
        if have == given:
            continue
        for i, (a, b) in enumerate(zip(have, given, strict=False)):
            if a != b:
                raise DataError(f"{side} vocabulary mismatch at id {i}: dataset has {a!r}, given {b!r}")
        raise DataError(f"{side} vocabulary mismatch: dataset has {len(have)} tokens, given {len(given)}")
