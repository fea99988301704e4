"""Source and target vocabularies for the seq2seq tasks: :class:`Seq2SeqVocab`, closed (synthetic, eSCAN, SCAN) or
open (word-level or WordPiece, for translation), with the shared special-token layout and JSON persistence.

>>> Seq2SeqVocab.closed(["a", "b"], "tgt").tokens
['<pad>', '<eos>', '<bos>', 'a', 'b']
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from innerworks.data.types import EOS_ID, SRC_SPECIALS, TGT_SPECIALS, UNK
from innerworks.errors import DataError
from innerworks.utils.io import read_json, write_json


class Seq2SeqVocab:
    """A source or target vocabulary with the seq2seq special tokens, and its tokeniser.

    Kinds: ``closed`` (whitespace-split words, no ``<unk>``: an unknown word is an error; synthetic and SCAN tasks),
    ``word`` and ``wordpiece``. The open kinds wrap :class:`innerworks.data.tokenize.WordTokenizer` /
    :class:`~innerworks.data.tokenize.WordPieceTokenizer` (whose ids are ``<pad>=0, <unk>=1, pieces...``) and shift
    their ids so that ours are ``<pad>=0, <eos>=1`` (+ ``<bos>=2`` for a target), then ``<unk>``, then the same
    pieces in the same order. Unknown words map to ``<unk>``. Saved as JSON (:meth:`save` / :meth:`load`).

    >>> v = Seq2SeqVocab.fit_word(["a b a", "b c"], role="tgt", min_count=2)
    >>> v.tokens, v.encode("a c d")
    (['<pad>', '<eos>', '<bos>', '<unk>', 'a', 'b'], [4, 3, 3])
    """

    def __init__(self, tokens: Sequence[str], role: Literal["src", "tgt"], kind: str = "closed", name: str = "",
                 tokenizer: Any = None) -> None:
        specials = SRC_SPECIALS if role == "src" else TGT_SPECIALS if role == "tgt" else None
        if specials is None:
            raise DataError(f"vocabulary role must be 'src' or 'tgt', got {role!r}")
        tokens = list(tokens)
        label = f"{role} vocabulary{f' {name!r}' if name else ''}"
        if tuple(tokens[: len(specials)]) != specials:
            raise DataError(f"{label} must start with {list(specials)}, got {tokens[:3]}")
        if role == "src" and len(tokens) > 2 and tokens[2] == "<bos>":
            raise DataError(f"{label} has <bos> at id 2: it looks like a target vocabulary")
        if len(set(tokens)) != len(tokens):
            raise DataError(f"{label} has duplicate tokens")
        if kind == "closed":
            if tokenizer is not None or UNK in tokens:
                raise DataError(f"closed {label} takes no tokenizer and no {UNK}")
        elif kind in ("word", "wordpiece"):
            if tokenizer is None or getattr(tokenizer, "kind", None) != kind:
                raise DataError(f"{kind} {label} needs a fitted {kind} tokenizer from innerworks.data.tokenize")
            if tokens != [*specials, UNK, *tokenizer.vocab[2:]]:
                raise DataError(f"{label}: token list and tokenizer vocabulary disagree")
        else:
            raise DataError(f"vocabulary kind must be closed, word or wordpiece, got {kind!r}")
        self.tokens, self.role, self.kind, self.name, self.tokenizer = tokens, role, kind, name, tokenizer
        self.index = {t: i for i, t in enumerate(tokens)}
        self.n_special = len(specials)
        self.unk_id: int | None = self.n_special if kind != "closed" else None
        self._shift = self.n_special - 1  # tokenizer id k >= 1 (<unk>, pieces) -> k + shift

    # -- construction
    @classmethod
    def closed(cls, words: Sequence[str], role: Literal["src", "tgt"], name: str = "") -> Seq2SeqVocab:
        """A fixed vocabulary: the specials then ``words``.

        >>> Seq2SeqVocab.closed(["x"], "src").tokens
        ['<pad>', '<eos>', 'x']
        """
        specials = SRC_SPECIALS if role == "src" else TGT_SPECIALS
        return cls([*specials, *words], role, "closed", name)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, role: Literal["src", "tgt"], name: str = "") -> Seq2SeqVocab:
        """Wrap a fitted ``WordTokenizer`` / ``WordPieceTokenizer`` (e.g. one loaded from disk).

        >>> from innerworks.data.tokenize import WordTokenizer
        >>> Seq2SeqVocab.from_tokenizer(WordTokenizer(min_count=1).fit(["hi"]), "src").tokens
        ['<pad>', '<eos>', '<unk>', 'hi']
        """
        specials = SRC_SPECIALS if role == "src" else TGT_SPECIALS
        return cls([*specials, UNK, *tokenizer.vocab[2:]], role, tokenizer.kind, name, tokenizer)

    @classmethod
    def fit_word(cls, texts: Sequence[str], role: Literal["src", "tgt"], min_count: int = 1,
                 vocab_size: int | None = None, name: str = "") -> Seq2SeqVocab:
        """Word vocabulary fitted on ``texts`` (train only!): NFKC, lowercase, words (``it's`` stays whole) and
        punctuation marks; words seen ``>= min_count`` times, most frequent first; at most ``vocab_size`` ids.

        >>> Seq2SeqVocab.fit_word(["b a b"], "src").tokens
        ['<pad>', '<eos>', '<unk>', 'b', 'a']
        """
        from innerworks.data.tokenize import WordTokenizer

        extra = len(SRC_SPECIALS if role == "src" else TGT_SPECIALS) - 1  # our specials beyond the tokenizer's two
        size = None if vocab_size is None else max(2, vocab_size - extra)
        return cls.from_tokenizer(WordTokenizer(min_count=min_count, max_size=size).fit(texts), role, name)

    @classmethod
    def fit_wordpiece(cls, texts: Sequence[str], role: Literal["src", "tgt"], vocab_size: int = 4000,
                      min_count: int = 2, name: str = "") -> Seq2SeqVocab:
        """WordPiece vocabulary of ``vocab_size`` ids trained with HF ``tokenizers`` on ``texts`` (train only!),
        deterministically (see :class:`~innerworks.data.tokenize.WordPieceTokenizer`).

        >>> v = Seq2SeqVocab.fit_wordpiece(["the cat sat", "the cats sat"] * 5, "tgt", vocab_size=40, min_count=1)
        >>> v.tokens[:4], v.decode(v.encode("the cat") + [1, 0])
        (['<pad>', '<eos>', '<bos>', '<unk>'], 'the cat')
        """
        from innerworks.data.tokenize import WordPieceTokenizer

        extra = len(SRC_SPECIALS if role == "src" else TGT_SPECIALS) - 1
        tok = WordPieceTokenizer(vocab_size=vocab_size - extra, min_frequency=min_count).fit(texts)
        return cls.from_tokenizer(tok, role, name)

    # -- use
    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Seq2SeqVocab(name={self.name!r}, role={self.role!r}, kind={self.kind!r}, size={len(self)})"

    @property
    def fingerprint(self) -> str:
        """sha1 of the token list: two vocabularies with the same fingerprint give the same ids."""
        return hashlib.sha1("\n".join(self.tokens).encode("utf-8")).hexdigest()

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` before id lookup (closed vocabularies split on whitespace).

        >>> Seq2SeqVocab.closed(["a"], "src").tokenize(" a  a ")
        ['a', 'a']
        """
        return text.split() if self.kind == "closed" else self.tokenizer.tokenize(text)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without ``<eos>``; unknown words become ``<unk>`` (closed kind: :class:`DataError`).

        >>> Seq2SeqVocab.closed(["a"], "src").encode("a b")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        innerworks.errors.DataError: token 'b' is not in the closed vocabulary '' ...
        """
        if self.kind != "closed":
            return self.encode_batch([text])[0]
        out = []
        for w in text.split():
            i = self.index.get(w)
            if i is None:
                raise DataError(f"token {w!r} is not in the closed vocabulary {self.name!r} "
                                f"(is the vocabulary from another task?)")
            if i < self.n_special:
                raise DataError(f"special token {w!r} inside the text: {self.name!r} adds <eos> and padding itself")
            out.append(i)
        return out

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` for many texts (WordPiece encodes them in one batched call).

        >>> Seq2SeqVocab.fit_word(["a b"], "tgt").encode_batch(["b a", "c"])
        [[5, 4], [3]]
        """
        if self.kind == "closed":
            return [self.encode(t) for t in texts]
        s = self._shift  # the tokenizers never emit padding, so every id is >= 1
        return [[i + s for i in ids] for ids in self.tokenizer.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ``ids``, stopping at the first ``<eos>`` and skipping padding and ``<bos>``.

        >>> Seq2SeqVocab.closed(["a", "b"], "src").decode([2, 3, 1, 0])
        'a b'
        """
        ids = [int(i) for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids)]
        ids = ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids
        ids = [i for i in ids if i >= self.n_special]
        if self.kind == "closed":
            return " ".join(self.tokens[i] for i in ids)
        return self.tokenizer.decode([i - self._shift for i in ids])

    # -- persistence
    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON, atomically; an open kind also writes its tokenizer beside it
        (``<stem>.tokenizer.json``, the :mod:`innerworks.data.tokenize` format).

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.json"
        >>> v = Seq2SeqVocab.fit_word(["x y"], "src"); v.save(p); Seq2SeqVocab.load(p).tokens == v.tokens
        True
        """
        path = Path(path)
        d: dict[str, Any] = {"format": "innerworks.seq2seq_vocab", "version": 1, "name": self.name,
                             "role": self.role, "kind": self.kind, "tokens": self.tokens}
        if self.tokenizer is not None:
            d["tokenizer_file"] = f"{path.stem}.tokenizer.json"
            self.tokenizer.save(path.with_name(d["tokenizer_file"]))
        write_json(path, d)

    @classmethod
    def load(cls, path: str | Path) -> Seq2SeqVocab:
        """Read a vocabulary written by :meth:`save`; raise :class:`DataError` naming the file if it is not one.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.json"
        >>> Seq2SeqVocab.fit_wordpiece(["low lower"] * 3, "tgt", 40, 1).save(p)
        >>> Seq2SeqVocab.load(p).encode("lower") == Seq2SeqVocab.load(p).encode("lower")
        True
        """
        from innerworks.data.tokenize import load_tokenizer

        path = Path(path)
        d = read_json(path)
        if not isinstance(d, dict) or d.get("format") != "innerworks.seq2seq_vocab":
            raise DataError(f"{path}: not an innerworks seq2seq vocabulary (missing format field)")
        try:
            tok = load_tokenizer(path.with_name(d["tokenizer_file"])) if d.get("kind") != "closed" else None
            return cls(d["tokens"], d["role"], d["kind"], d.get("name", ""), tok)
        except KeyError as exc:
            raise DataError(f"{path}: missing field {exc.args[0]!r}") from None
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
