"""Sequence-to-sequence tasks for the attention lab: synthetic, eSCAN, SCAN and natural translation.

Every task returns :class:`~innerworks.data.types.Seq2SeqDataset` splits with the shared conventions: source vocabulary
``<pad>=0, <eos>=1, ...``; target vocabulary ``<pad>=0, <eos>=1, <bos>=2, ...``; each sequence is its tokens, one
``<eos>``, then padding; lengths count the ``<eos>``.

Tasks (``Seq2SeqTaskConfig.task``):

- ``one_to_one``: words ``I0..I{N-1}`` drawn i.i.d. uniform, length uniform in ``min_length..max_length``
  (**both inclusive**, ``<eos>`` not counted); the target maps ``I_i -> O_i`` at the same position.
- ``reversal``: the target is the one-to-one target reversed.
- ``sort``: the target is the input words sorted by word index, then mapped ``I_i -> O_i``.
- ``escan``: concatenated SCAN commands over ``run walk jump left and twice`` (no ``left twice``), separated by
  ``<.>`` on both sides, output 10..15 tokens (14 at most is reachable), input at most 27 (see :func:`make_escan`).
- ``scan``: the official SCAN splits from ``$INNERWORKS_DATA/scan``; a seeded validation set is carved from train.
- ``translation``: Tatoeba eng->fra or Multi30k en->fr/de, word-level or WordPiece vocabularies fitted on train only.

Bad input (documented handling): unknown words map to ``<unk>`` for translation vocabularies and raise
:class:`DataError` for the closed vocabularies of the synthetic/SCAN tasks; empty sentences are dropped with a count by
the corpus loaders and raise (naming the row) in :func:`encode_pairs` unless ``drop_empty=True``; over-length pairs
are dropped or truncated with a count; a vocabulary of the wrong role (source vs target), one with the wrong special
tokens, or one under which most tokens are unknown raises :class:`DataError`.

>>> splits = make_seq2seq_splits({"task": "one_to_one", "num_words": 3, "min_length": 2, "max_length": 4,
...                               "n_train": 8, "n_val": 2, "n_test": 2}, seed=0)
>>> len(splits["train"]), splits.train.src_vocab[:4], splits.train.tgt_vocab[:4]
(8, ['<pad>', '<eos>', 'I0', 'I1'], ['<pad>', '<eos>', '<bos>', 'O0'])
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from innerworks.data import scan_grammar
from innerworks.data.paths import dataset_path
from innerworks.data.types import EOS_ID, PAD, PAD_ID, SRC_SPECIALS, TGT_SPECIALS, UNK, Seq2SeqDataset
from innerworks.errors import ConfigError, DataError
from innerworks.utils.io import read_json, write_json

PERIOD = "<.>"
SYNTHETIC_TASKS = ("one_to_one", "reversal", "sort")
SCAN_FILES: dict[str, tuple[str, str]] = {
    "simple": ("simple_split", "simple"),
    "length": ("length_split", "length"),
    "addprim_jump": ("add_prim_split", "addprim_jump"),
    "addprim_turn_left": ("add_prim_split", "addprim_turn_left"),
}
ESCAN_WORDS = ("walk", "run", "jump", "left", "twice", "and")
ESCAN_ACTIONS = ("I_WALK", "I_RUN", "I_JUMP", "I_TURN_LEFT")

TaskName = Literal["one_to_one", "reversal", "sort", "escan", "scan", "translation"]


# ----------------------------------------------------------------------------------------------------------- config
_TASK_FIELDS: dict[str, set[str]] = {
    "one_to_one": {"num_words", "min_length", "max_length", "n_train", "n_val", "n_test"},
    "escan": {"n_train", "n_val", "n_test", "escan_min_out", "escan_max_out", "escan_max_in"},
    "scan": {"scan_split", "val_fraction", "max_pairs"},
    "translation": {"corpus", "target_lang", "tokenizer", "vocab_size", "min_count", "max_length", "overlength",
                    "max_pairs", "val_fraction", "test_fraction"},
}
_TASK_FIELDS["reversal"] = _TASK_FIELDS["sort"] = _TASK_FIELDS["one_to_one"]


class Seq2SeqTaskConfig(BaseModel):
    """Which seq2seq task to build, and its knobs. A field a task does not use must stay at its default.

    Lengths (``min_length``, ``max_length``) count words before the ``<eos>`` and are **inclusive**; the paper's
    code draws ``randint(Lmin, Lmax)`` with an exclusive upper bound, so its "15to20" is ``min_length=15,
    max_length=19`` here. ``max_length`` defaults to 20 for synthetic tasks and 50 (tokens) for translation.

    >>> Seq2SeqTaskConfig(task="reversal", max_length=8, min_length=3).max_length
    8
    >>> Seq2SeqTaskConfig(task="translation").max_length
    50
    """

    model_config = ConfigDict(extra="forbid")

    task: TaskName
    # synthetic tasks (one_to_one, reversal, sort)
    num_words: int = Field(3, ge=1, le=100_000, description="input words I0..I{N-1}, output words O0..O{N-1}")
    min_length: int = Field(15, ge=1, description="shortest input, words before <eos> (inclusive)")
    max_length: int | None = Field(None, ge=1, description="longest input, inclusive (synthetic: 20, translation: 50)")
    # generated tasks (synthetic + escan)
    n_train: int = Field(10_000, ge=1)
    n_val: int = Field(1_000, ge=1)
    n_test: int = Field(1_000, ge=1)
    # escan
    escan_min_out: int = Field(10, ge=2, description="stop appending commands once the output has this many tokens")
    escan_max_out: int = Field(15, ge=3, description="skip a command that would take the output past this")
    escan_max_in: int = Field(27, ge=2, description="reject an example whose input is longer")
    # scan
    scan_split: Literal["simple", "length", "addprim_jump", "addprim_turn_left"] = "simple"
    # scan + translation
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="validation share carved from train (scan, tatoeba)")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="test share (tatoeba, which has one file)")
    max_pairs: int | None = Field(None, ge=1, description="cap on pairs per split (seeded subset), for quick runs")
    # translation
    corpus: Literal["tatoeba", "multi30k"] = "tatoeba"
    target_lang: Literal["fr", "de"] = "fr"
    tokenizer: Literal["word", "wordpiece"] = "word"
    vocab_size: int | None = Field(None, ge=16, description="cap incl. specials (word: none; wordpiece: 4000)")
    min_count: int = Field(2, ge=1, description="minimum train count of a word / WordPiece merge frequency")
    overlength: Literal["drop", "truncate"] = "drop"

    @model_validator(mode="after")
    def _check(self) -> Seq2SeqTaskConfig:
        used = _TASK_FIELDS[self.task] | {"task"}
        defaults = {k: f.default for k, f in type(self).model_fields.items()}
        for name in sorted(self.model_fields_set - used):
            if getattr(self, name) != defaults[name]:
                raise ValueError(f"field '{name}' is not used by task '{self.task}' "
                                 f"(it uses: {', '.join(sorted(used))})")
        if self.task in SYNTHETIC_TASKS:
            if self.max_length is None:
                self.max_length = max(20, self.min_length)
            if self.min_length > self.max_length:
                raise ValueError(f"min_length {self.min_length} > max_length {self.max_length}")
        elif self.task == "translation":
            if self.max_length is None:
                self.max_length = 50
            if self.corpus == "tatoeba" and self.target_lang != "fr":
                raise ValueError("corpus 'tatoeba' is English->French only: target_lang must be 'fr'")
            for name in ("val_fraction", "test_fraction"):
                if self.corpus == "multi30k" and getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"corpus 'multi30k' has its own val/test files: {name} is not used")
        elif self.task == "escan":
            if self.escan_max_out < self.escan_min_out + 1:
                raise ValueError(f"escan_max_out ({self.escan_max_out}) must be >= escan_min_out + 1 "
                                 f"({self.escan_min_out + 1}): a command adds at least 2 output tokens")
        return self


def parse_task_config(data: Mapping[str, Any] | Seq2SeqTaskConfig, source: str = "data") -> Seq2SeqTaskConfig:
    """Validate a mapping into :class:`Seq2SeqTaskConfig`; raise :class:`ConfigError` naming the field on failure.

    >>> parse_task_config({"task": "sort", "num_word": 3})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: data: field 'num_word': unknown field
    """
    if isinstance(data, Seq2SeqTaskConfig):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping with a 'task' field, got {type(data).__name__}")
    try:
        return Seq2SeqTaskConfig.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(err["type"], err["msg"])
        msg = msg.removeprefix("Value error, ")
        where = f"field '{loc}': " if loc else ""
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: {where}{msg}{more}") from None


# ----------------------------------------------------------------------------------------------------------- vocab
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


# ---------------------------------------------------------------------------------------------------- encode_pairs
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


# ------------------------------------------------------------------------------------------------------ synthetic
def make_synthetic(task: Literal["one_to_one", "reversal", "sort"], n: int, num_words: int, min_length: int,
                   max_length: int, generator: torch.Generator) -> Seq2SeqDataset:
    """Synthetic translation, vectorised: ``n`` inputs of i.i.d. uniform words ``I0..I{N-1}``, lengths uniform in
    ``min_length..max_length`` (inclusive), targets over ``O0..O{N-1}``:

    - ``one_to_one``: ``O_i`` where the input has ``I_i``, same position;
    - ``reversal``: the one-to-one output reversed;
    - ``sort``: the input words sorted by index, then ``I_i -> O_i``.

    Both sides are padded to ``max_length + 1`` (the ``<eos>``).

    >>> g = torch.Generator().manual_seed(0)
    >>> ds = make_synthetic("reversal", 2, 3, 2, 3, g)
    >>> [ds.src_vocab[i] for i in ds.src[0]], [ds.tgt_vocab[i] for i in ds.tgt[0]]
    (['I2', 'I0', '<eos>', '<pad>'], ['O0', 'O2', '<eos>', '<pad>'])
    """
    if task not in SYNTHETIC_TASKS:
        raise DataError(f"synthetic task must be one of {', '.join(SYNTHETIC_TASKS)}, got {task!r}")
    if not (1 <= min_length <= max_length) or num_words < 1 or n < 1:
        raise DataError(f"need n >= 1, num_words >= 1 and 1 <= min_length <= max_length, got n={n}, "
                        f"num_words={num_words}, lengths {min_length}..{max_length}")
    width = max_length + 1
    lengths = torch.randint(min_length, max_length + 1, (n,), generator=generator)
    words = torch.randint(0, num_words, (n, max_length), generator=generator)
    pos = torch.arange(max_length).expand(n, -1)
    valid = pos < lengths[:, None]
    if task == "one_to_one":
        out_words = words
    elif task == "reversal":
        # position p of the output reads input position L-1-p; clamp keeps padded positions in range (masked below)
        out_words = words.gather(1, (lengths[:, None] - 1 - pos).clamp(min=0))
    else:
        out_words = torch.where(valid, words, num_words).sort(dim=1).values.clamp(max=num_words - 1)
    src = torch.zeros(n, width, dtype=torch.long)
    tgt = torch.zeros(n, width, dtype=torch.long)
    src[:, :max_length] = torch.where(valid, words + len(SRC_SPECIALS), PAD_ID)
    tgt[:, :max_length] = torch.where(valid, out_words + len(TGT_SPECIALS), PAD_ID)
    rows = torch.arange(n)
    src[rows, lengths] = EOS_ID
    tgt[rows, lengths] = EOS_ID
    src_vocab = [*SRC_SPECIALS, *(f"I{i}" for i in range(num_words))]
    tgt_vocab = [*TGT_SPECIALS, *(f"O{i}" for i in range(num_words))]
    meta = {"task": task, "num_words": num_words, "min_length": min_length, "max_length": max_length,
            "lengths_inclusive": True}
    return Seq2SeqDataset(src, lengths + 1, tgt, lengths + 1, src_vocab, tgt_vocab, meta)


# ----------------------------------------------------------------------------------------------------------- eSCAN
def escan_commands() -> list[tuple[str, tuple[str, ...]]]:
    """The eSCAN commands: SCAN commands whose words are all in ``run walk jump left and twice`` (156 of them),
    without ``left twice`` (90 remain), as ``(command, actions)`` in grammar order.

    >>> cmds = escan_commands(); len(cmds), cmds[0]
    (90, ('walk', ('I_WALK',)))
    """
    return list(_escan_commands())


@lru_cache(maxsize=1)
def _escan_subset() -> tuple[str, ...]:
    return tuple(c for c in scan_grammar.enumerate_commands() if set(c.split()) <= set(ESCAN_WORDS))


@lru_cache(maxsize=1)
def _escan_commands() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((c, scan_grammar.interpret(c)) for c in _escan_subset() if "left twice" not in c)


def escan_command_alignment(command: str) -> list[tuple[str, int]]:
    """Ground-truth alignment of one eSCAN command: for each output action, the position (within the command) of
    the input word that produced it.

    The rule: a primitive produces its own action; in ``x left`` (output ``I_TURN_LEFT X``) the turn comes from
    ``left`` and ``X`` from ``x``; in ``x twice`` (output ``X X``) the first ``X`` comes from ``x`` and the second
    from ``twice``; ``and`` produces nothing. So (encoder - decoder) position grows by 1 after each ``and`` and is
    +1/-1 on the two tokens of ``x left``, as in the notes' ``find_scan_offset``.

    >>> escan_command_alignment("jump left and run twice")
    [('I_TURN_LEFT', 1), ('I_JUMP', 0), ('I_RUN', 3), ('I_RUN', 4)]
    """
    words = command.split()
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "and":
            i += 1
            continue
        if w not in ("walk", "run", "jump"):
            raise DataError(f"not an eSCAN command: {command!r}: unexpected {w!r} at word {i}")
        act = f"I_{w.upper()}"
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt == "left":
            if i + 2 < len(words) and words[i + 2] == "twice":
                raise DataError(f"not an eSCAN command: {command!r}: 'left twice' is excluded")
            out += [("I_TURN_LEFT", i + 1), (act, i)]
            i += 2
        elif nxt == "twice":
            out += [(act, i), (act, i + 1)]
            i += 2
        else:
            out.append((act, i))
            i += 1
    if tuple(a for a, _ in out) != scan_grammar.interpret(command):  # the alignment must reproduce SCAN's output
        raise DataError(f"not an eSCAN command: {command!r}")
    return out


def _escan_tables() -> dict[str, Any]:
    """Per-command token ids (with the trailing period) for vectorised assembly."""
    src_vocab = [*SRC_SPECIALS, *ESCAN_WORDS, PERIOD]
    tgt_vocab = [*TGT_SPECIALS, *ESCAN_ACTIONS, PERIOD]
    s_idx, t_idx = {w: i for i, w in enumerate(src_vocab)}, {w: i for i, w in enumerate(tgt_vocab)}
    cmds = escan_commands()
    src_rows = [[s_idx[w] for w in c.split()] + [s_idx[PERIOD]] for c, _ in cmds]
    tgt_rows = [[t_idx[a] for a in acts] + [t_idx[PERIOD]] for _, acts in cmds]
    def table(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lens = torch.tensor([len(r) for r in rows])
        tab = torch.zeros(len(rows), int(lens.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            tab[i, : len(r)] = torch.tensor(r)
        return tab, lens

    (st, sl), (tt, tl) = table(src_rows), table(tgt_rows)
    return {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "src": st, "src_len": sl, "tgt": tt, "tgt_len": tl}


def escan_vocabs() -> tuple[Seq2SeqVocab, Seq2SeqVocab]:
    """The closed eSCAN vocabularies (6 words + ``<.>``; 4 actions + ``<.>``), e.g. to encode your own examples.

    >>> s, t = escan_vocabs(); s.tokens[2:], t.tokens[3:]
    (['walk', 'run', 'jump', 'left', 'twice', 'and', '<.>'], ['I_WALK', 'I_RUN', 'I_JUMP', 'I_TURN_LEFT', '<.>'])
    """
    tabs = _escan_tables()
    return (Seq2SeqVocab(tabs["src_vocab"], "src", "closed", "escan.src"),
            Seq2SeqVocab(tabs["tgt_vocab"], "tgt", "closed", "escan.tgt"))


def escan_length_bounds(min_out: int = 10, max_out: int = 15, max_in: int = 27) -> tuple[int, int, int]:
    """``(shortest input, longest input, longest output)`` an eSCAN example can have (periods counted, ``<eos>``
    not), by dynamic programming over the output length; raise :class:`DataError` if no example fits.

    With the defaults the input cap of 27 never binds: inputs are at most 18 tokens (the dev run padded inputs to
    18), and outputs at most 14 (9 tokens before the last command, which adds at most 5).

    >>> escan_length_bounds()
    (10, 18, 14)
    """
    tabs = _escan_tables()
    ins, outs = tabs["src_len"].tolist(), tabs["tgt_len"].tolist()
    lo: list[float] = [float("inf")] * (max_out + 1)
    hi: list[float] = [-1.0] * (max_out + 1)
    lo[0] = hi[0] = 0
    for o in range(min(min_out, max_out + 1)):  # only unfinished states (output < min_out) can grow
        if hi[o] < 0:
            continue
        for i_c, o_c in zip(ins, outs, strict=True):
            if o + o_c <= max_out:
                lo[o + o_c] = min(lo[o + o_c], lo[o] + i_c)
                hi[o + o_c] = max(hi[o + o_c], hi[o] + i_c)
    final = [o for o in range(min_out, max_out + 1) if hi[o] >= 0]
    if not final or min(lo[o] for o in final) > max_in:
        raise DataError(f"no eSCAN example fits output {min_out}..{max_out} with input <= {max_in}")
    return (int(min(lo[o] for o in final)), int(min(max(hi[o] for o in final), max_in)), max(final))


def make_escan(n: int, generator: torch.Generator, min_out: int = 10, max_out: int = 15,
               max_in: int = 27) -> Seq2SeqDataset:
    """eSCAN examples, vectorised over rows: append uniformly drawn eSCAN commands, each followed by ``<.>`` on both
    sides; skip a command that would make the output longer than ``max_out``; stop once the output has ``>= min_out``
    tokens; reject (and redraw) an example whose input is longer than ``max_in``. Lengths count the periods, and
    ``<eos>`` comes after. Widths are fixed by :func:`escan_length_bounds` (19 source, 15 target by default).

    >>> ds = make_escan(4, torch.Generator().manual_seed(0))
    >>> int(ds.tgt_lengths.min()) >= 11, ds.src_width, ds.tgt_width
    (True, 19, 15)
    """
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    _, in_bound, out_bound = escan_length_bounds(min_out, max_out, max_in)
    tabs = _escan_tables()
    n_cmd = tabs["src"].shape[0]
    src_all, tgt_all, slen_all, tlen_all = [], [], [], []
    need, drawn, rejected, rounds = n, 0, 0, 0
    while need > 0:
        rounds += 1
        if rounds > 50:
            raise DataError(f"eSCAN: only {n - need} of {n} examples fit input <= {max_in} after {drawn} draws")
        m = need + need // 4 + 8  # over-draw a little to cover rejections
        drawn += m
        chosen = []
        out_len, in_len = torch.zeros(m, dtype=torch.long), torch.zeros(m, dtype=torch.long)
        active = torch.ones(m, dtype=torch.bool)
        for _ in range(20 * max_out):
            if not active.any():
                break
            c = torch.randint(0, n_cmd, (m,), generator=generator)
            ok = active & (out_len + tabs["tgt_len"][c] <= max_out)
            chosen.append(torch.where(ok, c, -1))
            out_len += torch.where(ok, tabs["tgt_len"][c], 0)
            in_len += torch.where(ok, tabs["src_len"][c], 0)
            active &= out_len < min_out
        keep = ~active & (in_len <= max_in)
        src, slen = _assemble(chosen, tabs["src"], tabs["src_len"], in_bound + 1)
        tgt, tlen = _assemble(chosen, tabs["tgt"], tabs["tgt_len"], out_bound + 1)
        idx = keep.nonzero().squeeze(1)[:need]
        # rows before the last one taken that failed the input cap (rows after it were never needed)
        rejected += (int(idx[-1]) + 1 - len(idx)) if len(idx) == need else m - len(idx)
        src_all.append(src[idx])
        tgt_all.append(tgt[idx])
        slen_all.append(slen[idx])
        tlen_all.append(tlen[idx])
        need -= len(idx)
    src, tgt = torch.cat(src_all), torch.cat(tgt_all)
    slen, tlen = torch.cat(slen_all), torch.cat(tlen_all)
    rows = torch.arange(n)
    src[rows, slen] = EOS_ID
    tgt[rows, tlen] = EOS_ID
    meta = {"task": "escan", "escan_subset_commands": len(_escan_subset()), "escan_commands": n_cmd,
            "min_out": min_out, "max_out": max_out, "max_in": max_in, "rejected_overlength_input": rejected,
            "alignment": "escan_command_alignment (see escan_alignment)"}
    return Seq2SeqDataset(src, slen + 1, tgt, tlen + 1, tabs["src_vocab"], tabs["tgt_vocab"], meta)


def _assemble(chosen: list[torch.Tensor], table: torch.Tensor, lens: torch.Tensor,
              width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate the chosen commands' token rows (index -1 = nothing this step) into ``[m, width]``."""
    m = chosen[0].shape[0]
    out = torch.zeros(m, width + table.shape[1], dtype=torch.long)  # slack so scatter never overflows
    pos = torch.zeros(m, dtype=torch.long)
    cols = torch.arange(table.shape[1])
    for c in chosen:
        valid = c >= 0
        cc = c.clamp(min=0)
        ln = torch.where(valid, lens[cc], 0)
        toks = torch.where(cols[None] < ln[:, None], table[cc], 0)
        tgt_cols = (pos[:, None] + cols[None]).clamp(max=out.shape[1] - 1)
        # add into the zero slots: positions >= pos are still 0, and masked tokens add 0
        out.scatter_add_(1, tgt_cols, toks)
        pos += ln
    return out[:, :width], pos.clamp(max=width - 1)


def escan_alignment(ds: Seq2SeqDataset) -> torch.Tensor:
    """Ground-truth alignment ``LongTensor [N, T]``: for each target position, the source position of the input
    word that produced it (:func:`escan_command_alignment` per command; ``<.>`` aligns to the input's ``<.>``,
    ``<eos>`` to the input's ``<eos>``); -1 at padding. Recomputed from the tokens, so it is valid for any subset;
    raises :class:`DataError` if a row is not eSCAN or its target disagrees with the rule.

    >>> ds = encode_pairs(["run left and walk <.>"], ["I_TURN_LEFT I_RUN I_WALK <.>"], *escan_vocabs())
    >>> escan_alignment(ds).tolist()
    [[1, 0, 3, 4, 5]]
    """
    if PERIOD not in ds.src_vocab or PERIOD not in ds.tgt_vocab:
        raise DataError("escan_alignment needs an eSCAN dataset (no <.> token in its vocabularies)")
    sv, tv = ds.src_vocab, ds.tgt_vocab
    s_period, t_period = sv.index(PERIOD), tv.index(PERIOD)
    t_index = {w: i for i, w in enumerate(tv)}
    # per command (tuple of source ids): its target ids and the relative source position of each
    cache: dict[tuple[int, ...], tuple[list[int], list[int]]] = {}
    align = np.full(tuple(ds.tgt.shape), -1, dtype=np.int64)
    src_rows, tgt_rows = ds.src.tolist(), ds.tgt.tolist()
    src_len, tgt_len = ds.src_lengths.tolist(), ds.tgt_lengths.tolist()
    for r in range(len(ds)):
        ids = src_rows[r][: src_len[r] - 1]
        out_ids: list[int] = []
        pos: list[int] = []
        start = 0
        ends = [j for j, i in enumerate(ids) if i == s_period]
        if not ends or ends[-1] != len(ids) - 1:
            ends.append(len(ids))  # a last command without its period
        for j in ends:
            key = tuple(ids[start:j])
            if key not in cache:
                try:
                    pairs = escan_command_alignment(" ".join(sv[i] for i in key))
                    cache[key] = ([t_index[a] for a, _ in pairs], [p for _, p in pairs])
                except (DataError, KeyError) as exc:
                    raise DataError(f"row {r}: {exc}") from None
            t_ids, rel = cache[key]
            out_ids += t_ids
            pos += [start + p for p in rel]
            if j < len(ids):
                out_ids.append(t_period)
                pos.append(j)
            start = j + 1
        if out_ids != tgt_rows[r][: tgt_len[r] - 1]:
            words, acts = (" ".join(v[i] for i in x[r][: n[r] - 1]) for v, x, n in
                           ((sv, src_rows, src_len), (tv, tgt_rows, tgt_len)))
            raise DataError(f"row {r}: target {acts!r} is not the eSCAN output of {words!r}")
        align[r, : len(pos)] = pos
        align[r, len(pos)] = src_len[r] - 1  # <eos> -> <eos>
    return torch.from_numpy(align)


def escan_offsets(ds: Seq2SeqDataset, include_eos: bool = True) -> torch.Tensor:
    """Mean (encoder position - decoder position) of the ground-truth alignment per decoder position, ``[T]``
    (NaN where no row reaches that position). The attention lab compares it with the lag of the argmax of the
    temporal attention. ``include_eos=False`` leaves the ``<eos>`` step out of the average.

    On 100,000 default examples the curve is 0.33, 0.07, 1.01, 0.76, 1.08, 1.25, 1.50, 1.83, 1.89, 2.14, 2.29, 2.71,
    2.72, 2.93, 2.98. The notes' dev run reports about 0.3, 0.3, 1.0, 1.1, 1.0, 1.2, 1.4, 1.7, 2.0, 2.0, 2.1, 2.3,
    2.6, 3.0, 3.1 with an unpublished implementation of the same stated rule: same rise, RMS gap 0.18, largest at
    positions 1 and 3 (0.07 vs 0.3, 0.76 vs 1.1). Position 0 (1/3: the first command starts with ``x left``) and
    position 1 (1/15, from this alignment) follow analytically from uniform sampling of the 90 commands.

    >>> ds = encode_pairs(["run left and walk <.>"], ["I_TURN_LEFT I_RUN I_WALK <.>"], *escan_vocabs())
    >>> escan_offsets(ds).tolist()
    [1.0, -1.0, 1.0, 1.0, 1.0]
    """
    align = escan_alignment(ds)
    valid = align >= 0
    if not include_eos:
        valid &= torch.arange(ds.tgt_width)[None] < (ds.tgt_lengths - 1)[:, None]
    off = (align - torch.arange(ds.tgt_width)[None]).float()
    count = valid.sum(0)
    total = torch.where(valid, off, 0.0).sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan)


# ------------------------------------------------------------------------------------------------------------ SCAN
def read_scan_file(path: str | Path) -> list[tuple[str, str]]:
    """``(command, actions)`` pairs of a SCAN file (``IN: ... OUT: ...`` per line, gzip or plain).

    >>> pairs = read_scan_file(dataset_path("scan", "simple_split", "tasks_test_simple.txt.gz"))
    >>> len(pairs), pairs[0][0].split()[0] in scan_grammar.COMMAND_WORDS
    (4182, True)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: SCAN file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            if not line.startswith("IN: ") or " OUT: " not in line:
                raise DataError(f"{path}:{lineno}: expected 'IN: <command> OUT: <actions>'")
            cmd, acts = line[4:].split(" OUT: ", 1)
            if not cmd.strip() or not acts.strip():
                raise DataError(f"{path}:{lineno}: empty command or action sequence")
            out.append((cmd.strip(), acts.strip()))
    if not out:
        raise DataError(f"{path}: no SCAN pairs")
    return out


def load_scan(split: str = "simple") -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Train and test pairs of a standard SCAN split (``simple``, ``length``, ``addprim_jump``,
    ``addprim_turn_left``) from ``$INNERWORKS_DATA/scan``.

    >>> train, test = load_scan("length"); len(train), len(test)
    (16990, 3920)
    """
    if split not in SCAN_FILES:
        raise DataError(f"unknown SCAN split {split!r}: expected one of {', '.join(SCAN_FILES)}")
    folder, tag = SCAN_FILES[split]
    return tuple(read_scan_file(dataset_path("scan", folder, f"tasks_{part}_{tag}.txt.gz"))  # type: ignore[return-value]
                 for part in ("train", "test"))


@lru_cache(maxsize=1)
def _scan_widths() -> tuple[int, int]:
    cmds = scan_grammar.enumerate_commands()
    return (max(len(c.split()) for c in cmds) + 1, max(len(scan_grammar.interpret(c)) for c in cmds) + 1)


def scan_vocabs() -> tuple[Seq2SeqVocab, Seq2SeqVocab]:
    """The closed SCAN vocabularies, fixed by the grammar (13 words, 6 actions) so every split shares them.

    >>> s, t = scan_vocabs(); len(s), len(t)
    (15, 9)
    """
    return (Seq2SeqVocab.closed(scan_grammar.COMMAND_WORDS, "src", "scan.src"),
            Seq2SeqVocab.closed(scan_grammar.ACTIONS, "tgt", "scan.tgt"))


def _pad_to(ds: Seq2SeqDataset, src_width: int, tgt_width: int) -> Seq2SeqDataset:
    src = torch.zeros(len(ds), src_width, dtype=torch.long)
    tgt = torch.zeros(len(ds), tgt_width, dtype=torch.long)
    src[:, : ds.src_width] = ds.src
    tgt[:, : ds.tgt_width] = ds.tgt
    return Seq2SeqDataset(src, ds.src_lengths, tgt, ds.tgt_lengths, ds.src_vocab, ds.tgt_vocab, ds.meta)


# ----------------------------------------------------------------------------------------------------- translation
def load_translation_pairs(corpus: Literal["tatoeba", "multi30k"], target_lang: str = "fr",
                           split: str = "train") -> list[tuple[str, str]]:
    """Raw ``(english, target)`` pairs. Tatoeba (``split="all"`` only: one file of 55,000 eng->fra pairs) or
    Multi30k (``train``, ``val``, ``test`` = test_2016_flickr; target ``fr`` or ``de``).

    >>> len(load_translation_pairs("multi30k", "de", "val"))
    1014
    """
    if corpus == "tatoeba":
        if target_lang != "fr" or split != "all":
            raise DataError("tatoeba has one English->French file: use target_lang='fr', split='all'")
        path = dataset_path("tatoeba_eng_fra", "fra.txt")
        out = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 2:
                    raise DataError(f"{path}:{lineno}: expected 'English<TAB>French', got {len(parts)} fields")
                out.append((parts[0], parts[1]))
        return out
    if corpus != "multi30k":
        raise DataError(f"unknown corpus {corpus!r}: expected 'tatoeba' or 'multi30k'")
    if target_lang not in ("fr", "de"):
        raise DataError(f"multi30k target_lang must be 'fr' or 'de', got {target_lang!r}")
    files = {"train": "train", "val": "val", "test": "test_2016_flickr"}
    if split not in files:
        raise DataError(f"multi30k split must be train, val or test, got {split!r}")
    sides = []
    for lang in ("en", target_lang):
        path = dataset_path("multi30k", "raw", f"{files[split]}.{lang}.gz")
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            sides.append([line.rstrip("\n") for line in fh])
    if len(sides[0]) != len(sides[1]):
        raise DataError(f"multi30k {split}: {len(sides[0])} English lines but {len(sides[1])} {target_lang} lines")
    return list(zip(sides[0], sides[1], strict=True))


def _split_grouped(pairs: list[tuple[str, str]], val_fraction: float, test_fraction: float,
                   rng: np.random.Generator) -> dict[str, list[tuple[str, str]]]:
    """Seeded split by unique source sentence, so one English sentence's several translations stay together."""
    groups: dict[str, list[int]] = {}
    for i, (s, _) in enumerate(pairs):
        groups.setdefault(s, []).append(i)
    keys = list(groups)
    order = rng.permutation(len(keys))
    n_test, n_val = round(test_fraction * len(keys)), round(val_fraction * len(keys))
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {name: [pairs[i] for k in idx for i in groups[keys[k]]] for name, idx in parts.items()}


def _cap(pairs: list, max_pairs: int | None, rng: np.random.Generator) -> list:
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    return [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False).tolist())]


# ----------------------------------------------------------------------------------------------------------- splits
@dataclass
class Seq2SeqSplits:
    """Train, validation and test :class:`Seq2SeqDataset` sharing vocabularies; ``splits["train"]`` also works.

    >>> s = make_seq2seq_splits({"task": "sort", "n_train": 4, "n_val": 2, "n_test": 2}, seed=0)
    >>> [(name, len(ds)) for name, ds in s], s["val"] is s.val, s.tgt_vocab.name
    ([('train', 4), ('val', 2), ('test', 2)], True, 'sort.tgt')
    """

    train: Seq2SeqDataset
    val: Seq2SeqDataset
    test: Seq2SeqDataset
    src_vocab: Seq2SeqVocab
    tgt_vocab: Seq2SeqVocab

    def __getitem__(self, name: str) -> Seq2SeqDataset:
        if name not in ("train", "val", "test"):
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[tuple[str, Seq2SeqDataset]]:
        yield from (("train", self.train), ("val", self.val), ("test", self.test))

    def keys(self) -> tuple[str, str, str]:
        """The split names, for mapping-style use: ``{k: splits[k] for k in splits.keys()}``.

        >>> make_seq2seq_splits({"task": "escan", "n_train": 2, "n_val": 1, "n_test": 1}, seed=0).keys()
        ('train', 'val', 'test')
        """
        return ("train", "val", "test")


def _split_generator(seed: int, k: int) -> torch.Generator:
    """Independent stream per split, so changing ``n_train`` leaves val/test unchanged."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, k]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def make_seq2seq_splits(cfg: Seq2SeqTaskConfig | Mapping[str, Any], seed: int,
                        tokenizer_dir: str | Path | None = None) -> Seq2SeqSplits:
    """Build the train/val/test splits of a task. Same ``cfg`` and ``seed`` give the same data.

    Generated tasks draw each split from its own seeded stream. SCAN carves a seeded ``val_fraction`` of train into
    val. Tatoeba is split by unique English sentence (test, val, train); Multi30k uses its own files. ``max_pairs``
    keeps a seeded subset of each split. Vocabularies (JSON) are written to ``tokenizer_dir`` when given, as
    ``src_vocab.json`` and ``tgt_vocab.json``. Every dataset's ``meta`` holds the task, split, seed and config.

    >>> s = make_seq2seq_splits({"task": "scan", "scan_split": "simple", "max_pairs": 50}, seed=0)
    >>> len(s.train), len(s.val), len(s.test), s.train.src_width, s.train.tgt_width
    (50, 50, 50, 10, 49)
    """
    cfg = parse_task_config(cfg)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 99]))
    base = {"seed": int(seed), "config": cfg.model_dump(mode="json")}
    out: dict[str, Seq2SeqDataset] = {}
    if cfg.task in SYNTHETIC_TASKS or cfg.task == "escan":
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        for k, (name, n) in enumerate(sizes.items()):
            g = _split_generator(seed, k)
            if cfg.task == "escan":
                ds = make_escan(n, g, cfg.escan_min_out, cfg.escan_max_out, cfg.escan_max_in)
            else:
                assert cfg.max_length is not None
                ds = make_synthetic(cfg.task, n, cfg.num_words, cfg.min_length, cfg.max_length, g)  # type: ignore[arg-type]
            out[name] = ds
        sv = Seq2SeqVocab(out["train"].src_vocab, "src", "closed", f"{cfg.task}.src")
        tv = Seq2SeqVocab(out["train"].tgt_vocab, "tgt", "closed", f"{cfg.task}.tgt")
        for ds in out.values():
            ds.meta.update(src_vocab=sv.name, tgt_vocab=tv.name)
    elif cfg.task == "scan":
        train, test = load_scan(cfg.scan_split)
        order = rng.permutation(len(train)).tolist()
        n_val = max(1, round(cfg.val_fraction * len(train)))
        parts = {"train": [train[i] for i in sorted(order[n_val:])], "val": [train[i] for i in sorted(order[:n_val])],
                 "test": test}
        sv, tv = scan_vocabs()
        sw, tw = _scan_widths()
        for name, pairs in parts.items():
            pairs = _cap(pairs, cfg.max_pairs, rng)
            ds = encode_pairs([p[0] for p in pairs], [p[1] for p in pairs], sv, tv,
                              meta={"task": "scan", "scan_split": cfg.scan_split})
            out[name] = _pad_to(ds, sw, tw)
    else:
        if cfg.corpus == "tatoeba":
            parts = _split_grouped(load_translation_pairs("tatoeba", "fr", "all"), cfg.val_fraction,
                                   cfg.test_fraction, rng)
        else:
            parts = {name: load_translation_pairs("multi30k", cfg.target_lang, name)
                     for name in ("train", "val", "test")}
        parts = {name: _cap(p, cfg.max_pairs, rng) for name, p in parts.items()}
        src_tr, tgt_tr = [p[0] for p in parts["train"]], [p[1] for p in parts["train"]]
        tag = f"{cfg.corpus}.{{}}.{cfg.tokenizer}"
        if cfg.tokenizer == "word":
            sv = Seq2SeqVocab.fit_word(src_tr, "src", cfg.min_count, cfg.vocab_size, tag.format("en"))
            tv = Seq2SeqVocab.fit_word(tgt_tr, "tgt", cfg.min_count, cfg.vocab_size, tag.format(cfg.target_lang))
        else:
            size = cfg.vocab_size or 4000
            sv = Seq2SeqVocab.fit_wordpiece(src_tr, "src", size, cfg.min_count, tag.format("en"))
            tv = Seq2SeqVocab.fit_wordpiece(tgt_tr, "tgt", size, cfg.min_count, tag.format(cfg.target_lang))
        for name, pairs in parts.items():
            out[name] = encode_pairs([p[0] for p in pairs], [p[1] for p in pairs], sv, tv, max_length=cfg.max_length,
                                     overlength=cfg.overlength, drop_empty=True, max_unk_rate=None,
                                     meta={"task": "translation", "corpus": cfg.corpus, "src_lang": "en",
                                           "tgt_lang": cfg.target_lang, "tokenizer": cfg.tokenizer})
    for name, ds in out.items():
        ds.meta.update(base, split=name, n=len(ds), src_vocab_sha1=sv.fingerprint, tgt_vocab_sha1=tv.fingerprint)
    if tokenizer_dir is not None:
        sv.save(Path(tokenizer_dir) / "src_vocab.json")
        tv.save(Path(tokenizer_dir) / "tgt_vocab.json")
    return Seq2SeqSplits(out["train"], out["val"], out["test"], sv, tv)
