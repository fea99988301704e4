"""Tokenisers for natural text: a word-level vocabulary and WordPiece (trained with HF ``tokenizers``).

Both share one small protocol (:class:`Tokenizer`): ``fit(train_texts)``, ``encode``/``encode_batch``, ``decode``,
``vocab`` with ``vocab[0] == "<pad>"`` and ``vocab[1] == "<unk>"``, and ``save``/``load`` as JSON (never pickle).
Fit on the TRAIN split only; :func:`innerworks.data.natural.load_natural` does this for you.

>>> tok = WordTokenizer(min_count=1).fit(["a good film", "a bad film"])
>>> tok.vocab[:4], tok.encode("A good plot")
(['<pad>', '<unk>', 'a', 'film'], [2, 5, 1])
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from innerworks.data.types import PAD, UNK
from innerworks.errors import DataError, InnerworksError
from innerworks.utils.io import atomic_write_text

SPECIALS = (PAD, UNK)
PAD_ID, UNK_ID = 0, 1
WORD_FORMAT_VERSION = 1

class NotFittedError(InnerworksError, AttributeError):
    """A tokenizer was used before ``fit`` (an ``AttributeError`` too, like scikit-learn's, so ``hasattr`` works)."""


# Words (with inner apostrophes: "don't", "n't") or single punctuation marks.
_WORD_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


@runtime_checkable
class Tokenizer(Protocol):
    """What every tokeniser offers. ``vocab[0]`` is ``<pad>`` (id 0 = padding), ``vocab[1]`` is ``<unk>``.

    >>> isinstance(WordTokenizer(min_count=1).fit(["a"]), Tokenizer)
    True
    """

    kind: str

    @property
    def vocab(self) -> list[str]: ...

    @property
    def is_fitted(self) -> bool: ...

    def fit(self, texts: Iterable[str]) -> Tokenizer: ...

    def tokenize(self, text: str) -> list[str]: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def save(self, path: str | os.PathLike) -> None: ...


def _check_texts(texts: Iterable[str]) -> list[str]:
    """Materialise ``texts``; refuse an empty training set or a non-string item."""
    texts = list(texts)
    if not texts:
        raise DataError("cannot fit a tokenizer on 0 texts (the train split is empty)")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"text {i}: expected a string, got {type(t).__name__}")
    return texts


class WordTokenizer:
    """Word-level vocabulary: NFKC + (optional) lower-casing, a regex word/punctuation split, and a min-count.

    Words seen fewer than ``min_count`` times in the training texts map to ``<unk>``. The vocabulary is ordered by
    descending count, ties alphabetically, so fitting is deterministic. ``max_size`` caps the vocabulary size
    (the two special tokens included).

    Attributes:
        counts_: word counts in the training texts (after normalisation), set by :meth:`fit`.

    >>> tok = WordTokenizer(min_count=2).fit(["the cat", "the dog", "The end"])
    >>> tok.vocab, tok.encode("the cat")
    (['<pad>', '<unk>', 'the'], [2, 1])
    >>> tok.decode(tok.encode("the cat"))
    'the <unk>'
    """

    kind = "word"

    def __init__(self, min_count: int = 2, lowercase: bool = True, max_size: int | None = None) -> None:
        if not isinstance(min_count, int) or min_count < 1:
            raise InnerworksError(f"min_count: expected an integer >= 1, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < len(SPECIALS)):
            raise InnerworksError(f"max_size: expected an integer >= {len(SPECIALS)} or None, got {max_size!r}")
        self.min_count = min_count
        self.lowercase = lowercase
        self.max_size = max_size
        self._vocab: list[str] | None = None
        self._index: dict[str, int] = {}
        self.counts_: Counter[str] = Counter()

    # -- protocol ---------------------------------------------------------------------------------------------------
    @property
    def vocab(self) -> list[str]:
        """Token strings by id (``<pad>``, ``<unk>``, then words by descending training count)."""
        if self._vocab is None:
            raise NotFittedError("WordTokenizer is not fitted: call fit(train_texts) first")
        return self._vocab

    @property
    def is_fitted(self) -> bool:
        """True once :meth:`fit` (or :meth:`load`) has set a vocabulary."""
        return self._vocab is not None

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into normalised words and punctuation marks.

        >>> WordTokenizer().tokenize("It's GREAT, isn't it?")
        ["it's", 'great', ',', "isn't", 'it', '?']
        """
        text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.lower()
        return _WORD_RE.findall(text)

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Build the vocabulary from ``texts`` (the train split only). Returns ``self``.

        >>> WordTokenizer(min_count=1, max_size=3).fit(["b a a"]).vocab
        ['<pad>', '<unk>', 'a']
        """
        counts: Counter[str] = Counter()
        for t in _check_texts(texts):
            counts.update(self.tokenize(t))
        for s in SPECIALS:  # a literal "<pad>" cannot come out of the regex, but be explicit
            counts.pop(s, None)
        words = sorted((w for w, c in counts.items() if c >= self.min_count), key=lambda w: (-counts[w], w))
        if self.max_size is not None:
            words = words[: self.max_size - len(SPECIALS)]
        self.counts_ = counts
        self._set_vocab([*SPECIALS, *words])
        return self

    def _set_vocab(self, vocab: list[str]) -> None:
        self._vocab = vocab
        self._index = {w: i for i, w in enumerate(vocab)}

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; unknown words become ``<unk>`` (id 1). Never emits padding (id 0).

        >>> WordTokenizer(min_count=1).fit(["x y"]).encode("y z")
        [3, 1]
        """
        index = self._index if self.is_fitted else self.vocab  # .vocab raises the "not fitted" error
        return [index.get(w, UNK_ID) for w in self.tokenize(text)]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` for many texts.

        >>> WordTokenizer(min_count=1).fit(["x"]).encode_batch(["x", ""])
        [[2], []]
        """
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        """Space-joined tokens of ``ids``; padding is skipped.

        >>> WordTokenizer(min_count=1).fit(["x y"]).decode([2, 3, 0, 0])
        'x y'
        """
        vocab = self.vocab
        return " ".join(vocab[i] for i in ids if i != PAD_ID)

    # -- persistence ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-able state (settings and vocabulary)."""
        return {"kind": self.kind, "format_version": WORD_FORMAT_VERSION, "min_count": self.min_count,
                "lowercase": self.lowercase, "max_size": self.max_size, "vocab": self.vocab}

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as JSON, atomically.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "tok.json"
        >>> WordTokenizer(min_count=1).fit(["a b"]).save(p); load_tokenizer(p).vocab
        ['<pad>', '<unk>', 'a', 'b']
        """
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "tokenizer") -> WordTokenizer:
        """Rebuild from :meth:`to_dict` output; ``where`` names the source in errors.

        >>> WordTokenizer.from_dict(WordTokenizer(min_count=1).fit(["a"]).to_dict()).vocab
        ['<pad>', '<unk>', 'a']
        """
        vocab = data.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
            raise DataError(f"{where}: field 'vocab': expected a list of strings")
        if vocab[: len(SPECIALS)] != list(SPECIALS):
            raise DataError(f"{where}: field 'vocab': expected it to start with {list(SPECIALS)}")
        if len(set(vocab)) != len(vocab):
            raise DataError(f"{where}: field 'vocab': duplicate tokens")
        try:
            tok = cls(min_count=data.get("min_count", 1), lowercase=bool(data.get("lowercase", True)),
                      max_size=data.get("max_size"))
        except InnerworksError as exc:
            raise DataError(f"{where}: {exc}") from None
        tok._set_vocab(list(vocab))
        return tok

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordTokenizer:
        """Read a tokenizer written by :meth:`save`.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "tok.json"
        >>> WordTokenizer(min_count=1).fit(["a"]).save(p); WordTokenizer.load(p).encode("a")
        [2]
        """
        tok = load_tokenizer(path)
        if not isinstance(tok, cls):
            raise DataError(f"{path}: holds a {tok.kind} tokenizer, expected {cls.kind}")
        return tok

    def __repr__(self) -> str:
        size = len(self._vocab) if self._vocab is not None else "unfitted"
        return f"WordTokenizer(min_count={self.min_count}, lowercase={self.lowercase}, vocab={size})"


class WordPieceTokenizer:
    """WordPiece subwords trained with HF ``tokenizers``: NFKC (+ lower-case), a whitespace-and-punctuation
    pre-tokenizer (BERT's), continuation pieces marked ``##``, unknown words -> ``<unk>``.

    Training is made deterministic. The HF trainer numbers its ``##x`` pieces in hash-map order, and ties between
    merges are broken by those numbers, so two fits on the same texts can give different vocabularies
    (huggingface/tokenizers#1794). We therefore pre-register every ``##x`` piece of the training texts, in sorted
    order, before training. The saved file is the plain ``tokenizers`` JSON: ``tokenizers.Tokenizer.from_file``
    reads it too.

    >>> tok = WordPieceTokenizer(vocab_size=60, min_frequency=1).fit(["playing played plays"] * 3)
    >>> tok.vocab[:2], tok.decode(tok.encode("Played"))
    (['<pad>', '<unk>'], 'played')
    """

    kind = "wordpiece"

    def __init__(self, vocab_size: int = 8000, min_frequency: int = 2, lowercase: bool = True,
                 max_input_chars_per_word: int = 100) -> None:
        if not isinstance(vocab_size, int) or vocab_size < len(SPECIALS) + 1:
            raise InnerworksError(f"vocab_size: expected an integer >= {len(SPECIALS) + 1}, got {vocab_size!r}")
        if not isinstance(min_frequency, int) or min_frequency < 1:
            raise InnerworksError(f"min_frequency: expected an integer >= 1, got {min_frequency!r}")
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.lowercase = lowercase
        self.max_input_chars_per_word = max_input_chars_per_word
        self._tok: Any = None
        self._vocab: list[str] | None = None

    def _blank(self) -> Any:
        """An untrained HF tokenizer with this object's normaliser, pre-tokenizer and decoder."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers

        tok = HFTokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##",
                                           max_input_chars_per_word=self.max_input_chars_per_word))
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
        tok.normalizer = normalizers.Sequence(norms)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        return tok

    @property
    def vocab(self) -> list[str]:
        """Token strings by id (``<pad>``, ``<unk>``, then the learned pieces)."""
        if self._vocab is None:
            raise NotFittedError("WordPieceTokenizer is not fitted: call fit(train_texts) first")
        return self._vocab

    @property
    def is_fitted(self) -> bool:
        """True once :meth:`fit` (or :meth:`load`) has set a vocabulary."""
        return self._tok is not None

    def fit(self, texts: Iterable[str]) -> WordPieceTokenizer:
        """Train the WordPiece vocabulary on ``texts`` (the train split only). Returns ``self``.

        >>> WordPieceTokenizer(vocab_size=30, min_frequency=1).fit(["aa ab"]).vocab[:2]
        ['<pad>', '<unk>']
        """
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import trainers

        texts = _check_texts(texts)
        tok = self._blank()
        # Pre-register every continuation piece "##c" in sorted order so that their ids, and hence the trainer's
        # tie-breaking, do not depend on hash-map order (see the class docstring).
        cont: set[str] = set()
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(" ".join(_distinct_chunks(tok.normalizer, texts))):
            cont.update(word[1:])
        specials = [*SPECIALS, *(f"##{c}" for c in sorted(cont))]
        trainer = trainers.WordPieceTrainer(vocab_size=self.vocab_size, min_frequency=self.min_frequency,
                                            special_tokens=specials, continuing_subword_prefix="##",
                                            show_progress=False)
        tok.train_from_iterator(texts, trainer)
        # The trainer registered our specials as "added tokens", which HF would match in raw text before the model
        # (a literal "<pad>" in a review would become padding). Keep them as ordinary vocabulary entries only.
        state = json.loads(tok.to_str())
        state["added_tokens"] = []
        self._adopt(HFTokenizer.from_str(json.dumps(state)), where="trained tokenizer")
        return self

    def _adopt(self, tok: Any, where: str) -> None:
        """Take over a trained HF tokenizer, checking the id conventions."""
        vocab_map = tok.get_vocab(with_added_tokens=False)
        vocab = [""] * len(vocab_map)
        for w, i in vocab_map.items():
            if not 0 <= i < len(vocab) or vocab[i]:
                raise DataError(f"{where}: token ids are not 0..{len(vocab) - 1} without gaps")
            vocab[i] = w
        if vocab[: len(SPECIALS)] != list(SPECIALS):
            raise DataError(f"{where}: expected the vocabulary to start with {list(SPECIALS)}")
        self._tok, self._vocab = tok, vocab

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece pieces of ``text``.

        >>> WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["low lower lowest"] * 2).tokenize("LOWEST low")
        ['lowest', 'low']
        """
        if not self.is_fitted:
            self.vocab  # noqa: B018 - raises the "not fitted" error
        return self._tok.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; never emits padding (id 0).

        >>> tok = WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["low lower"])
        >>> tok.decode(tok.encode("lower low"))
        'lower low'
        """
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` for many texts (parallel inside ``tokenizers``).

        >>> WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["ab"]).encode_batch(["", " "])
        [[], []]
        """
        if not self.is_fitted:
            self.vocab  # noqa: B018 - raises the "not fitted" error
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # fast: skips offsets
        return [e.ids for e in encode(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with ``##`` pieces joined; padding is skipped.

        >>> tok = WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["ab ab"])
        >>> tok.decode(tok.encode("ab") + [0, 0])
        'ab'
        """
        if not self.is_fitted:
            self.vocab  # noqa: B018 - raises the "not fitted" error
        return self._tok.decode([int(i) for i in ids if i != PAD_ID], skip_special_tokens=False)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer in the ``tokenizers`` JSON format, atomically.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "wp.json"
        >>> tok = WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["ab ab"]); tok.save(p)
        >>> load_tokenizer(p).vocab == tok.vocab
        True
        """
        if not self.is_fitted:
            self.vocab  # noqa: B018 - raises the "not fitted" error
        atomic_write_text(path, self._tok.to_str(pretty=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordPieceTokenizer:
        """Read a tokenizer written by :meth:`save`.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "wp.json"
        >>> WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["ab"]).save(p)
        >>> WordPieceTokenizer.load(p).encode("ab") == load_tokenizer(p).encode("ab")
        True
        """
        tok = load_tokenizer(path)
        if not isinstance(tok, cls):
            raise DataError(f"{path}: holds a {tok.kind} tokenizer, expected {cls.kind}")
        return tok

    @classmethod
    def _from_hf_json(cls, text: str, where: str) -> WordPieceTokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            hf = HFTokenizer.from_str(text)
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise DataError(f"{where}: not a valid tokenizers JSON file ({str(exc).splitlines()[0]})") from None
        state = json.loads(text)
        lowercase = "Lowercase" in json.dumps(state.get("normalizer"))
        model = state.get("model") or {}
        vocab_size = len(model.get("vocab") or {})
        out = cls(vocab_size=max(vocab_size, len(SPECIALS) + 1), min_frequency=1, lowercase=lowercase,
                  max_input_chars_per_word=int(model.get("max_input_chars_per_word", 100)))
        out._adopt(hf, where)
        return out

    def __repr__(self) -> str:
        size = len(self._vocab) if self._vocab is not None else "unfitted"
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, min_frequency={self.min_frequency}, vocab={size})"


_ASCII_SPACE = re.compile(r"[ \t\n\r]+")


def _distinct_chunks(normalizer: Any, texts: list[str], chunk: int = 1000) -> set[str]:
    """Distinct whitespace-separated chunks of the normalised texts (HF pre-tokenizes each chunk the same way
    whether alone or in a text, since ASCII whitespace always separates words)."""
    out: set[str] = set()
    for i in range(0, len(texts), chunk):
        out.update(_ASCII_SPACE.split(normalizer.normalize_str("\n".join(texts[i:i + chunk]))))
    out.discard("")
    return out


TOKENIZERS = {"word": WordTokenizer, "wordpiece": WordPieceTokenizer}


def load_tokenizer(path: str | os.PathLike) -> WordTokenizer | WordPieceTokenizer:
    """Read a tokenizer saved by either class; the file's content says which.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.json"
    >>> _ = p.write_text("not json")
    >>> load_tokenizer(p)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: .../t.json:1: invalid JSON (Expecting value)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: tokenizer file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read tokenizer file ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    if data.get("kind") == WordTokenizer.kind:
        return WordTokenizer.from_dict(data, where=str(path))
    model = data.get("model")
    if isinstance(model, dict) and model.get("type") == "WordPiece":
        return WordPieceTokenizer._from_hf_json(text, where=str(path))
    raise DataError(f"{path}: not an innerworks tokenizer (expected kind 'word' or a tokenizers WordPiece model)")


def make_tokenizer(kind: str, vocab_size: int | None = None, min_count: int = 2,
                   lowercase: bool = True) -> WordTokenizer | WordPieceTokenizer:
    """An unfitted tokenizer by name. For ``"word"``, ``vocab_size`` caps the vocabulary (None: no cap); for
    ``"wordpiece"`` it is the target size (default 8000) and ``min_count`` is the trainer's min frequency.

    >>> make_tokenizer("word", min_count=3)
    WordTokenizer(min_count=3, lowercase=True, vocab=unfitted)
    """
    if kind == "word":
        return WordTokenizer(min_count=min_count, lowercase=lowercase, max_size=vocab_size)
    if kind == "wordpiece":
        return WordPieceTokenizer(vocab_size=vocab_size or 8000, min_frequency=min_count, lowercase=lowercase)
    raise InnerworksError(f"tokenizer: expected one of {', '.join(TOKENIZERS)}, got {kind!r}")
