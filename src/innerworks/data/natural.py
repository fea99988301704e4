"""Natural-text corpora: file loaders, seeded splits, tokenisation with an explicit over-length policy.

Two layers:

- **raw**: a loader reads a corpus into a :class:`RawCorpus` (texts and 0-based labels per split, class names and
  a ``source`` record of files, split rule, seed and every count of removed rows). Loaders exist for the shared
  data (:data:`CORPORA`: AG News, Yelp-5 and its 3/2-class relabelings, Yelp sentence polarity, IMDB, SST-1/SST-2)
  and for the user's own CSV/TSV files (:func:`load_csv`).
- **tokenised**: :func:`tokenize_corpus` turns a :class:`RawCorpus` and a fitted tokenizer into
  :class:`~innerworks.data.types.DataSplits`, dropping or truncating documents longer than ``max_length`` and
  counting them in ``meta``. :func:`load_natural` does it all from a :class:`NaturalConfig`, fitting the tokenizer on
  the train split only (or reusing a saved one, so a run can be reloaded exactly).

Where a corpus ships no train/val/test split, a seeded stratified split is made (default 70/10/20). Where innerworks
makes the split, held-out documents whose text (case and whitespace ignored) already occurs in an earlier split are
removed, and the counts are recorded in ``source["dedupe_removed"]``.

Malformed input raises :class:`~innerworks.errors.DataError` with ``path:line: what was expected``.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "mine.csv"
>>> rows = "".join(f"doc {i} is {'good' if i % 2 else 'bad'},{i % 2}\\n" for i in range(40))
>>> _ = p.write_text("text,label\\n" + rows)
>>> corpus = load_csv(p, "text", "label", seed=0)
>>> corpus.counts(), corpus.class_names
({'train': 28, 'val': 4, 'test': 8}, ['0', '1'])
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from innerworks.data.paths import data_root
from innerworks.data.tokenize import Tokenizer, load_tokenizer, make_tokenizer
from innerworks.data.types import DataSplits, TextDataset, pad_sequences
from innerworks.errors import ConfigError, DataError, InnerworksError

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)
EmptyPolicy = Literal["error", "drop"]


# ----------------------------------------------------------------------------------------------------------------------
# Raw corpus
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class RawCorpus:
    """Untokenised texts and 0-based labels for the three splits.

    Attributes:
        name: corpus name (``"ag_news"``, ``"csv"``...).
        texts: ``{"train": [...], "val": [...], "test": [...]}``.
        labels: same keys; ints in ``0..len(class_names)-1``.
        class_names: one name per class.
        source: how the corpus was made: files, split rule, seed, and counts of removed rows.

    >>> c = RawCorpus("toy", {"train": ["a", "b"], "val": ["c"], "test": ["d"]},
    ...               {"train": [0, 1], "val": [1], "test": [0]}, ["neg", "pos"])
    >>> c.counts(), c.class_counts()["train"]
    ({'train': 2, 'val': 1, 'test': 1}, [1, 1])
    """

    name: str
    texts: dict[str, list[str]]
    labels: dict[str, list[int]]
    class_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sorted(self.texts) != sorted(SPLITS) or sorted(self.labels) != sorted(SPLITS):
            raise DataError(f"{self.name}: expected splits {list(SPLITS)}, got {sorted(self.texts)}")
        if not self.class_names:
            raise DataError(f"{self.name}: no classes")
        where = self.source.get("path") or self.source.get("root") or self.name
        for s in SPLITS:
            if len(self.texts[s]) != len(self.labels[s]):
                raise DataError(f"{self.name}: split '{s}' has {len(self.texts[s])} texts and "
                                f"{len(self.labels[s])} labels")
            if not self.texts[s]:
                raise DataError(f"{where}: split '{s}' is empty ({self.counts()} documents per split); "
                                "too few rows, or the split fractions leave it empty")
            bad = [y for y in self.labels[s] if not 0 <= y < len(self.class_names)]
            if bad:
                raise DataError(f"{self.name}: split '{s}': label {bad[0]} outside the class set "
                                f"0..{len(self.class_names) - 1}")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def counts(self) -> dict[str, int]:
        """Documents per split."""
        return {s: len(self.texts[s]) for s in SPLITS}

    def class_counts(self) -> dict[str, list[int]]:
        """Documents per class, per split."""
        return {s: np.bincount(np.asarray(self.labels[s], dtype=np.int64), minlength=self.num_classes).tolist()
                for s in SPLITS}

    def heldout_duplicates(self) -> dict[str, int]:
        """How many val/test documents repeat a text of an earlier split (train; train or val for test).

        >>> RawCorpus("t", {"train": ["A b"], "val": ["a  B", "c"], "test": ["c", "d"]},
        ...           {"train": [0], "val": [0, 0], "test": [0, 0]}, ["x"]).heldout_duplicates()
        {'val': 1, 'test': 1}
        """
        seen = {_dedupe_key(t) for t in self.texts["train"]}
        out = {}
        for s in ("val", "test"):
            keys = [_dedupe_key(t) for t in self.texts[s]]
            out[s] = sum(k in seen for k in keys)
            seen.update(keys)
        return out

    def dedupe(self) -> RawCorpus:
        """Remove val/test documents whose text (case and whitespace ignored) occurs in an earlier split, so the
        held-out splits do not leak training text. Counts go to ``source["dedupe_removed"]``.

        >>> c = RawCorpus("t", {"train": ["good", "bad"], "val": ["Good", "ok"], "test": ["ok", "meh"]},
        ...               {"train": [1, 0], "val": [1, 1], "test": [1, 0]}, ["neg", "pos"]).dedupe()
        >>> c.texts["val"], c.texts["test"], c.source["dedupe_removed"]
        (['ok'], ['meh'], {'val': 1, 'test': 1})
        """
        seen = {_dedupe_key(t) for t in self.texts["train"]}
        texts, labels, removed = {"train": self.texts["train"]}, {"train": self.labels["train"]}, {}
        for s in ("val", "test"):
            keep = [i for i, t in enumerate(self.texts[s]) if _dedupe_key(t) not in seen]
            removed[s] = len(self.texts[s]) - len(keep)
            texts[s] = [self.texts[s][i] for i in keep]
            labels[s] = [self.labels[s][i] for i in keep]
            seen.update(_dedupe_key(t) for t in texts[s])
        return replace(self, texts=texts, labels=labels, source={**self.source, "dedupe_removed": removed})

    def subsample(self, max_docs: int, seed: int = 0) -> RawCorpus:
        """Keep about ``max_docs`` documents in all, each split cut in proportion to its size and stratified by
        class (seeded). For quick recipes. The original counts go to ``source["before_max_docs"]``.

        >>> c = RawCorpus("t", {"train": list("abcdefgh"), "val": list("ij"), "test": list("klmn")},
        ...               {"train": [0, 1] * 4, "val": [0, 1], "test": [0, 1] * 2}, ["x", "y"])
        >>> c.subsample(7, seed=0).counts()
        {'train': 4, 'val': 1, 'test': 2}
        """
        if not isinstance(max_docs, int) or max_docs < len(SPLITS):
            raise InnerworksError(f"max_docs: expected an integer >= {len(SPLITS)}, got {max_docs!r}")
        counts = self.counts()
        total = sum(counts.values())
        if max_docs >= total:
            return self
        quota = [max(1, q) for q in _apportion(max_docs, [counts[s] for s in SPLITS])]
        rng = np.random.default_rng(seed)
        texts, labels = {}, {}
        for s, k in zip(SPLITS, quota, strict=True):
            by_class = _indices_by_class(self.labels[s])
            take = _apportion(k, [len(ix) for ix in by_class])
            keep = sorted(int(i) for ix, n in zip(by_class, take, strict=True) for i in rng.permutation(ix)[:n])
            texts[s] = [self.texts[s][i] for i in keep]
            labels[s] = [self.labels[s][i] for i in keep]
        return replace(self, texts=texts, labels=labels,
                       source={**self.source, "before_max_docs": counts, "max_docs": max_docs, "max_docs_seed": seed})

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (counts, class names, class counts, source)."""
        return {"name": self.name, "class_names": self.class_names, "counts": self.counts(),
                "class_counts": self.class_counts(), "source": self.source}


def _dedupe_key(text: str) -> str:
    return " ".join(text.lower().split())


def _indices_by_class(labels: Sequence[int]) -> list[np.ndarray]:
    y = np.asarray(labels, dtype=np.int64)
    n = int(y.max()) + 1 if y.size else 0
    return [np.flatnonzero(y == c) for c in range(n)]


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split the integer ``total`` in proportion to ``weights`` (largest remainder; ties go to the earlier entry)."""
    w = np.asarray(weights, dtype=np.float64)
    if total <= 0 or w.sum() <= 0:
        return [0] * len(w)
    exact = total * w / w.sum()
    base = np.floor(exact + 1e-9).astype(np.int64)
    short = total - int(base.sum())
    order = sorted(range(len(w)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:max(short, 0)]:
        base[i] += 1
    return base.tolist()


def check_fractions(fractions: Sequence[float], where: str = "split") -> tuple[float, float, float]:
    """Validate train/val/test fractions: three numbers > 0 summing to 1.

    >>> check_fractions([0.8, 0.1, 0.1])
    (0.8, 0.1, 0.1)
    >>> check_fractions([0.9, 0.2, 0.1])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: split: fractions must sum to 1, got 1.2
    """
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected three numbers (train, val, test), got {fractions!r}") from None
    if len(fr) != 3 or not all(np.isfinite(fr)):
        raise ConfigError(f"{where}: expected three numbers (train, val, test), got {fractions!r}")
    if min(fr) <= 0:
        raise ConfigError(f"{where}: every fraction must be > 0, got {list(fr)}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"{where}: fractions must sum to 1, got {sum(fr):g}")
    return fr  # type: ignore[return-value]


def stratified_split(labels: Sequence[int], fractions: Sequence[float] = DEFAULT_FRACTIONS,
                     seed: int = 0) -> dict[str, list[int]]:
    """Seeded stratified split of row indices into train/val/test (each class split by ``fractions``; a zero
    fraction is allowed here). Indices within a split keep file order.

    >>> s = stratified_split([0] * 10 + [1] * 10, (0.6, 0.2, 0.2), seed=1)
    >>> [len(s[k]) for k in ("train", "val", "test")], sorted(s["train"] + s["val"] + s["test"]) == list(range(20))
    ([12, 4, 4], True)
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for ix in _indices_by_class(labels):
        perm = rng.permutation(ix)
        sizes = _apportion(len(ix), fractions)
        start = 0
        for s, n in zip(SPLITS, sizes, strict=True):
            out[s].extend(int(i) for i in perm[start:start + n])
            start += n
    return {s: sorted(v) for s, v in out.items()}


def _split_pool(texts: list[str], labels: list[int], fractions: Sequence[float], seed: int,
                ) -> tuple[dict[str, list[str]], dict[str, list[int]]]:
    idx = stratified_split(labels, fractions, seed)
    return ({s: [texts[i] for i in idx[s]] for s in SPLITS}, {s: [labels[i] for i in idx[s]] for s in SPLITS})


def _carve_val(train: tuple[list[str], list[int]], fractions: Sequence[float], seed: int,
               ) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]], float]:
    """Take a validation split out of a shipped train split, keeping train:val at fractions[0]:fractions[1]."""
    f_train, f_val, _ = fractions
    share = round(f_val / (f_train + f_val), 12)  # 0.1 / 0.8 is 0.12500000000000003 in floats; keep ties ties
    idx = stratified_split(train[1], (1 - share, share, 0.0), seed)
    pick = lambda ix: ([train[0][i] for i in ix], [train[1][i] for i in ix])  # noqa: E731
    return pick(idx["train"]), pick(idx["val"]), share


# ----------------------------------------------------------------------------------------------------------------------
# File reading (every failure becomes a DataError naming the file and line)
# ----------------------------------------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    """Whole file as text (UTF-8, optional BOM); a decoding error names the line."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: expected a file, found a directory or special file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None


def _lines(path: Path) -> list[tuple[int, str]]:
    """``(line_number, line)`` pairs; universal newlines; a final empty line (trailing newline) is not a line."""
    lines = io.StringIO(_read_text(path), newline=None).read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return list(enumerate(lines, start=1))


def _csv_rows(path: Path, delimiter: str) -> list[tuple[int, list[str]]]:
    """``(first_line_of_record, fields)`` for each non-blank CSV record (RFC 4180 quoting, strict)."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            if row and any(f.strip() for f in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{start}: malformed CSV row ({exc})") from None
    return rows


def _check_empty(text: str, path: Path, line: int, policy: EmptyPolicy) -> bool:
    """True if the document should be kept; raise or drop empty texts per ``policy``."""
    if text.strip():
        return True
    if policy == "error":
        raise DataError(f"{path}:{line}: empty text (pass empty_text='drop' to skip such rows)")
    return False


def _int_label(raw: str, path: Path, line: int, allowed: Sequence[int]) -> int:
    raw = raw.strip()
    if not re.fullmatch(r"[+-]?\d{1,9}", raw) or int(raw) not in allowed:
        raise DataError(f"{path}:{line}: label {raw!r} outside the class set "
                        f"{{{', '.join(str(a) for a in allowed)}}}")
    return int(raw)


def _root(root: str | os.PathLike | None, folder: str) -> Path:
    path = Path(root) if root is not None else data_root() / folder
    if not path.is_dir():
        raise DataError(f"{path}: corpus folder not found (set INNERWORKS_DATA to the data folder, or pass root)")
    return path


def _finish(name: str, texts: dict[str, list[str]], labels: dict[str, list[int]], class_names: list[str],
            source: dict[str, Any], dedupe: bool) -> RawCorpus:
    """Build the corpus; dedupe held-out splits or just record how many repeat earlier text."""
    for s in SPLITS:  # check before RawCorpus does, with the file in the message
        if not texts[s]:
            raise DataError(f"{source.get('path') or source.get('root')}: no documents for split '{s}' "
                            f"({ {k: len(v) for k, v in texts.items()} } per split)")
    corpus = RawCorpus(name, texts, labels, class_names, source)
    if dedupe:
        return corpus.dedupe()
    return replace(corpus, source={**corpus.source, "heldout_duplicates": corpus.heldout_duplicates()})


# ----------------------------------------------------------------------------------------------------------------------
# Shared corpora
# ----------------------------------------------------------------------------------------------------------------------
_AG_ENTITY = re.compile(r"&?#(\d{1,6});|&?\b(quot|amp|lt|gt);")


def clean_ag_news(text: str) -> str:
    """Undo AG News' escapes: a backslash stands for a newline; HTML entities lost their ``&`` (``#39;``).

    >>> clean_ag_news("it#39;s a \\\\team of #36;10 quot;stars quot;")
    'it\\'s a  team of $10 "stars "'
    """
    def entity(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            code = int(m.group(1))
            return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else m.group(0)
        return html.unescape(f"&{m.group(2)};")

    return _AG_ENTITY.sub(entity, text.replace("\\", " "))


def load_ag_news(root: str | os.PathLike | None = None, text: Literal["description", "title+description"] =
                 "description", *, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                 dedupe: bool = True, empty_text: EmptyPolicy = "error") -> RawCorpus:
    """AG News (4 topics) from ``test.csv`` (header ``Class Index,Title,Description``, labels 1-4), split seeded
    and stratified by ``fractions``. The paper reads the description only; ``"title+description"`` joins both.

    >>> c = load_ag_news()  # doctest: +SKIP
    >>> c.class_names, sum(c.counts().values()) + sum(c.source["dedupe_removed"].values())  # doctest: +SKIP
    (['World', 'Sports', 'Business', 'Sci/Tech'], 7600)
    """
    if text not in ("description", "title+description"):
        raise ConfigError(f"text: expected 'description' or 'title+description', got {text!r}")
    fractions = check_fractions(fractions)
    folder = _root(root, "ag_news")
    path = folder / "test.csv"
    class_names = ["World", "Sports", "Business", "Sci/Tech"]
    texts: list[str] = []
    labels: list[int] = []
    dropped = 0
    records = _csv_with_header(path, ["Class Index", "Title", "Description"])
    for line, row in records:
        y = _int_label(row[0], path, line, (1, 2, 3, 4)) - 1
        doc = row[2] if text == "description" else f"{row[1]}\n{row[2]}"
        doc = clean_ag_news(doc)
        if _check_empty(doc, path, line, empty_text):
            texts.append(doc)
            labels.append(y)
        else:
            dropped += 1
    if not texts:
        raise DataError(f"{path}: no data rows")
    t, y = _split_pool(texts, labels, fractions, seed)
    source = {"path": str(path), "rows": len(records), "text": text, "empty_dropped": dropped,
              "split_rule": "seeded stratified split of the one shipped file", "fractions": list(fractions),
              "seed": seed}
    return _finish("ag_news", t, y, class_names, source, dedupe)


_YELP_ESCAPE = re.compile(r'\\(n|"|\\|u[0-9a-fA-F]{4})')
_STAR_RELABEL = {5: {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}, 3: {0: 0, 2: 1, 4: 2}, 2: {0: 0, 1: 0, 3: 1, 4: 1}}
_STAR_NAMES = {5: ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"], 3: ["1 star", "3 stars", "5 stars"],
               2: ["1-2 stars", "4-5 stars"]}


def clean_yelp(text: str) -> str:
    """Undo Zhang's escapes in Yelp CSV text: ``\\\\n`` newline, ``\\\\"`` quote, ``\\\\\\\\`` backslash, ``\\\\uXXXX``.

    >>> clean_yelp(r'great\\n\\"food\\" caf\\u00e9')
    'great\\n"food" café'
    """
    def unescape(m: re.Match[str]) -> str:
        g = m.group(1)
        if g == "n":
            return "\n"
        if g.startswith("u"):
            code = int(g[1:], 16)
            return chr(code) if not 0xD800 <= code < 0xE000 else " "
        return g

    return _YELP_ESCAPE.sub(unescape, text)


def load_yelp5(root: str | os.PathLike | None = None, num_classes: Literal[5, 3, 2] = 5, *,
               fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, dedupe: bool = False,
               empty_text: EmptyPolicy = "error") -> RawCorpus:
    """Yelp review stars from ``{train,val,test}.csv`` (header ``label,text,id``, labels 0-4 = 1-5 stars).

    ``num_classes`` applies the paper's star relabeling: 5 -> stars-1; 3 -> {1*:0, 3*:1, 5*:2} (2* and 4* dropped);
    2 -> {1-2*:0, 4-5*:1} (3* dropped). Dropped counts go to ``source["relabel_dropped"]``. The shipped splits are
    kept (``fractions`` and ``seed`` are unused).

    >>> load_yelp5(num_classes=3).class_names  # doctest: +SKIP
    ['1 star', '3 stars', '5 stars']
    """
    if num_classes not in _STAR_RELABEL:
        raise ConfigError(f"num_classes: expected 5, 3 or 2, got {num_classes!r}")
    folder = _root(root, "yelp_review_full")
    relabel = _STAR_RELABEL[num_classes]
    texts: dict[str, list[str]] = {}
    labels: dict[str, list[int]] = {}
    dropped = {"relabel": 0, "empty": 0}
    for split, fname in zip(SPLITS, ("train.csv", "val.csv", "test.csv"), strict=True):
        path = folder / fname
        texts[split], labels[split] = [], []
        for line, row in _csv_with_header(path, ["label", "text", "id"]):
            star = _int_label(row[0], path, line, range(5))
            doc = clean_yelp(row[1])
            if not _check_empty(doc, path, line, empty_text):
                dropped["empty"] += 1
            elif star not in relabel:
                dropped["relabel"] += 1
            else:
                texts[split].append(doc)
                labels[split].append(relabel[star])
    source = {"root": str(folder), "files": ["train.csv", "val.csv", "test.csv"], "num_classes": num_classes,
              "relabel_dropped": dropped["relabel"], "empty_dropped": dropped["empty"],
              "split_rule": "shipped train/val/test files"}
    return _finish(f"yelp{num_classes}", texts, labels, _STAR_NAMES[num_classes], source, dedupe)


def load_yelp_polarity(root: str | os.PathLike | None = None, *, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                       seed: int = 0, dedupe: bool = True, empty_text: EmptyPolicy = "error") -> RawCorpus:
    """Yelp sentence polarity (Shen et al. 2017): ``sentiment.{dev,test}.{0,1}``, one sentence per line, label = file
    suffix. The copy has no train files, so all 40,000 lines are pooled and split seeded and stratified; repeated
    short sentences (450 distinct strings are in both the dev and test files) are then removed from the held-out
    splits (``dedupe``), counted in ``source["dedupe_removed"]``.

    >>> load_yelp_polarity().class_names  # doctest: +SKIP
    ['negative', 'positive']
    """
    fractions = check_fractions(fractions)
    folder = _root(root, "yelp_polarity_sentences")
    texts: list[str] = []
    labels: list[int] = []
    dropped = 0
    files = [f"sentiment.{part}.{y}" for part in ("dev", "test") for y in (0, 1)]
    for fname in files:
        path = folder / fname
        y = int(fname[-1])
        for line, doc in _lines(path):
            if _check_empty(doc, path, line, empty_text):
                texts.append(doc.strip())
                labels.append(y)
            else:
                dropped += 1
    if not texts:
        raise DataError(f"{folder}: no sentences in {', '.join(files)}")
    t, y = _split_pool(texts, labels, fractions, seed)
    source = {"root": str(folder), "files": files, "rows": len(texts) + dropped, "empty_dropped": dropped,
              "split_rule": "pooled dev+test files, seeded stratified split", "fractions": list(fractions),
              "seed": seed}
    return _finish("yelp_polarity", t, y, ["negative", "positive"], source, dedupe)


_IMDB_NAME = re.compile(r"(\d+)_(\d+)\.txt")


def load_imdb(root: str | os.PathLike | None = None, *, fractions: Sequence[float] = DEFAULT_FRACTIONS,
              seed: int = 0, dedupe: bool = False, empty_text: EmptyPolicy = "error") -> RawCorpus:
    """IMDB reviews in the aclImdb layout ``{train,test}/{neg,pos}/<id>_<rating>.txt`` (neg: rating <= 4, pos: >= 7).
    ``<br />`` tags become newlines. The shipped test split is kept; a seeded stratified validation split is taken
    from train so that train:val = ``fractions[0]:fractions[1]``.

    >>> load_imdb().counts()  # doctest: +SKIP
    {'train': 876, 'val': 124, 'test': 1000}
    """
    fractions = check_fractions(fractions)
    folder = _root(root, "imdb")
    data: dict[str, tuple[list[str], list[int]]] = {}
    dropped = 0
    for split in ("train", "test"):
        texts: list[str] = []
        labels: list[int] = []
        for y, lab in enumerate(("neg", "pos")):
            d = folder / split / lab
            if not d.is_dir():
                raise DataError(f"{d}: folder not found (expected the aclImdb layout {{train,test}}/{{neg,pos}}/)")
            names = sorted((n for n in os.listdir(d) if not n.startswith(".")), key=_imdb_sort_key)
            for name in names:
                m = _IMDB_NAME.fullmatch(name)
                if m is None:
                    raise DataError(f"{d / name}: expected a file named <id>_<rating>.txt")
                rating = int(m.group(2))
                if (lab == "neg" and not 1 <= rating <= 4) or (lab == "pos" and not 7 <= rating <= 10):
                    raise DataError(f"{d / name}: rating {rating} does not fit folder '{lab}' "
                                    "(neg: 1-4, pos: 7-10)")
                doc = _read_text(d / name).replace("<br />", "\n").replace("<br/>", "\n")
                if _check_empty(doc, d / name, 1, empty_text):
                    texts.append(doc)
                    labels.append(y)
                else:
                    dropped += 1
        if not texts:
            raise DataError(f"{folder / split}: no reviews found")
        data[split] = (texts, labels)
    (tr, va, share) = _carve_val(data["train"], fractions, seed)
    t = {"train": tr[0], "val": va[0], "test": data["test"][0]}
    y = {"train": tr[1], "val": va[1], "test": data["test"][1]}
    source = {"root": str(folder), "empty_dropped": dropped,
              "split_rule": f"shipped train/test; val = seeded stratified {share:.4g} of train",
              "fractions": list(fractions), "seed": seed}
    return _finish("imdb", t, y, ["negative", "positive"], source, dedupe)


def _imdb_sort_key(name: str) -> tuple[int, str]:
    m = _IMDB_NAME.fullmatch(name)
    return (int(m.group(1)) if m else -1, name)


_SST_NAMES = {True: ["very negative", "negative", "neutral", "positive", "very positive"],
              False: ["negative", "positive"]}


def load_sst(root: str | os.PathLike | None = None, fine: bool = True, *,
             fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, dedupe: bool = False,
             empty_text: EmptyPolicy = "error") -> RawCorpus:
    """Stanford Sentiment Treebank sentences, ``stsa.{fine,binary}.{train,dev,test}``: ``<label> <sentence>`` per
    line. ``fine=True`` is SST-1 (5 classes), ``False`` SST-2 (2 classes). The shipped splits are kept.

    >>> load_sst(fine=True).counts()  # doctest: +SKIP
    {'train': 8544, 'val': 1101, 'test': 2210}
    """
    folder = _root(root, "sst")
    variant = "fine" if fine else "binary"
    class_names = _SST_NAMES[bool(fine)]
    texts: dict[str, list[str]] = {}
    labels: dict[str, list[int]] = {}
    dropped = 0
    for split, part in zip(SPLITS, ("train", "dev", "test"), strict=True):
        path = folder / f"stsa.{variant}.{part}"
        texts[split], labels[split] = [], []
        for line, raw in _lines(path):
            head, _, doc = raw.strip().partition(" ")
            if not head:
                raise DataError(f"{path}:{line}: expected '<label> <sentence>', got an empty line")
            y = _int_label(head, path, line, range(len(class_names)))
            if _check_empty(doc, path, line, empty_text):
                texts[split].append(doc.strip())
                labels[split].append(y)
            else:
                dropped += 1
    source = {"root": str(folder), "files": [f"stsa.{variant}.{p}" for p in ("train", "dev", "test")],
              "empty_dropped": dropped, "split_rule": "shipped train/dev/test files"}
    return _finish("sst5" if fine else "sst2", texts, labels, class_names, source, dedupe)


# ----------------------------------------------------------------------------------------------------------------------
# Generic CSV / TSV
# ----------------------------------------------------------------------------------------------------------------------
_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
ColumnSpec = str | int | Sequence[str | int]


def _delimiter_for(path: Path, delimiter: str | None) -> str:
    if delimiter is not None:
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
            raise ConfigError(f"delimiter: expected one character (not a quote or newline), got {delimiter!r}")
        return delimiter
    suffix = path.suffix.lower()
    if suffix not in _DELIMITERS:
        raise ConfigError(f"{path}: cannot tell the delimiter from the suffix '{suffix}' "
                          "(use .csv or .tsv, or pass delimiter)")
    return _DELIMITERS[suffix]


def _column(spec: str | int, header: list[str] | None, path: Path, what: str) -> int:
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise ConfigError(f"{what}: expected a column name or a 0-based index, got {spec!r}")
    if isinstance(spec, int):
        if spec < 0 or (header is not None and spec >= len(header)):
            width = f"0..{len(header) - 1}" if header is not None else ">= 0"
            raise ConfigError(f"{path}: {what} {spec} out of range (expected {width})")
        return spec
    if header is None:
        raise ConfigError(f"{what}: {spec!r} is a column name, but has_header is False (use a 0-based index)")
    names = [h.strip() for h in header]
    if spec.strip() not in names:
        shown = ", ".join(n if n.isprintable() else repr(n) for n in names)
        raise DataError(f"{path}:1: no column {spec!r} for {what} (header has: {shown})")
    return names.index(spec.strip())


def _normalise_label_map(label_map: Mapping[Any, Any] | None) -> dict[str, int | None] | None:
    if label_map is None:
        return None
    if not isinstance(label_map, Mapping) or not label_map:
        raise ConfigError("label_map: expected a non-empty mapping from raw label to class index (or null to drop)")
    out: dict[str, int | None] = {}
    for k, v in label_map.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ConfigError(f"label_map[{k!r}]: expected a class index >= 0 or null, got {v!r}")
        out[str(k).strip()] = v
    used = sorted({v for v in out.values() if v is not None})
    if not used:
        raise ConfigError("label_map: every label is mapped to null (no classes left)")
    if used != list(range(len(used))):
        missing = sorted(set(range(used[-1] + 1)) - set(used))
        raise ConfigError(f"label_map: class indices must be 0..{used[-1]} without gaps; missing {missing}")
    return out


def _csv_with_header(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """The data records of a comma-separated file that must start with exactly ``header`` and keep its width."""
    rows = _csv_rows(path, ",")
    names = ",".join(header)
    if not rows:
        raise DataError(f"{path}: empty file (expected a header '{names}' and rows)")
    header_line, found = rows[0]
    if [h.strip() for h in found] != header:
        raise DataError(f"{path}:{header_line}: expected the header '{names}'")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: expected {len(header)} columns ({names}), got {len(row)}")
    return rows[1:]


def _read_table(path: Path, text_cols: list[str | int], label_col: str | int, delimiter: str | None,
                has_header: bool, empty_text: EmptyPolicy) -> tuple[list[tuple[int, str, str]], int]:
    """``[(line, text, raw_label)]`` and the number of empty texts dropped."""
    delim = _delimiter_for(path, delimiter)
    rows = _csv_rows(path, delim)
    header = None
    if has_header:
        if not rows:
            raise DataError(f"{path}: empty file (expected a header row and data rows)")
        header = rows[0][1]
        rows = rows[1:]
    t_idx = [_column(c, header, path, "text_column") for c in text_cols]
    y_idx = _column(label_col, header, path, "label_column")
    width = len(header) if header is not None else None
    need = max([*t_idx, y_idx]) + 1
    out: list[tuple[int, str, str]] = []
    dropped = 0
    for line, row in rows:
        if width is not None and len(row) != width:
            raise DataError(f"{path}:{line}: expected {width} columns (as in the header), got {len(row)}")
        if len(row) < need:
            raise DataError(f"{path}:{line}: expected at least {need} columns, got {len(row)}")
        doc = "\n".join(row[i] for i in t_idx)
        if _check_empty(doc, path, line, empty_text):
            out.append((line, doc, row[y_idx].strip()))
        else:
            dropped += 1
    if not out:
        raise DataError(f"{path}: no data rows (empty dataset)")
    return out, dropped


def _numeric_key(raw: str) -> tuple[int, float | str]:
    try:
        return (0, float(raw))
    except ValueError:
        return (1, raw)


def load_csv(path: str | os.PathLike, text_column: ColumnSpec, label_column: str | int,
             label_map: Mapping[Any, int | None] | None = None, delimiter: str | None = None,
             has_header: bool = True, *, class_names: Sequence[str] | None = None,
             val_path: str | os.PathLike | None = None, test_path: str | os.PathLike | None = None,
             fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, dedupe: bool = True,
             empty_text: EmptyPolicy = "error", name: str = "csv") -> RawCorpus:
    """Your own labelled text: a CSV or TSV file (delimiter from the suffix unless given), one document per row.

    Args:
        path: the data file (the train file when ``test_path`` is given).
        text_column: column name or 0-based index; a list joins several columns with a newline.
        label_column: column name or 0-based index.
        label_map: raw label -> class index ``0..C-1``; ``None`` as a value drops those rows (e.g. 3-star reviews).
            Any other label is an error. Without a map, the distinct labels of ``path`` become the classes (numeric
            order if all numeric), unless ``class_names`` is given: then a label must be a class name or an index.
        class_names: names for the classes (``len == C`` when ``label_map`` is given).
        val_path, test_path: optional extra files; what is missing is split off seeded and stratified:
            one file -> ``fractions``; train+test -> val taken from train so train:val = fractions[0]:fractions[1].
        dedupe: remove val/test rows whose text occurs in an earlier split (counted in ``source``).
        empty_text: ``"error"`` (default) or ``"drop"`` (counted in ``source["empty_dropped"]``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.tsv"
    >>> _ = p.write_text("stars\\treview\\n" + "".join(f"{1 + i % 5}\\treview {i}\\n" for i in range(50)))
    >>> c = load_csv(p, "review", "stars", label_map={1: 0, 2: 0, 3: None, 4: 1, 5: 1})
    >>> c.class_names, sum(c.counts().values()), c.source["label_map_dropped"]
    (['1/2', '4/5'], 40, 10)
    >>> p.write_text("stars\\treview\\n7\\tbad label\\n") and None
    >>> load_csv(p, "review", "stars", label_map={1: 0, 2: 1})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: .../r.tsv:2: label '7' not in label_map (expected one of 1, 2)
    """
    fractions = check_fractions(fractions)
    if empty_text not in ("error", "drop"):
        raise ConfigError(f"empty_text: expected 'error' or 'drop', got {empty_text!r}")
    text_cols = [text_column] if isinstance(text_column, (str, int)) else list(text_column)
    if not text_cols:
        raise ConfigError("text_column: expected at least one column")
    lmap = _normalise_label_map(label_map)
    files = {"train": Path(path), "val": Path(val_path) if val_path else None,
             "test": Path(test_path) if test_path else None}
    if files["val"] is not None and files["test"] is None:
        raise ConfigError("val_path given without test_path (give test_path, or neither)")
    tables: dict[str, list[tuple[int, str, str]]] = {}
    empty_dropped = 0
    for s, p in files.items():
        if p is not None:
            tables[s], d = _read_table(p, text_cols, label_column, delimiter, has_header, empty_text)
            empty_dropped += d

    # Decide the class set.
    if lmap is not None:
        n_classes = max(v for v in lmap.values() if v is not None) + 1
        if class_names is not None and len(class_names) != n_classes:
            raise ConfigError(f"class_names: label_map has {n_classes} classes, class_names has {len(class_names)}")
        names = list(class_names) if class_names is not None else [
            "/".join(k for k, v in lmap.items() if v == c) for c in range(n_classes)]
        lookup: dict[str, int | None] = dict(lmap)
        expected = ", ".join(lmap)
        missing_msg = "not in label_map (expected one of {})"
    elif class_names is not None:
        names = [str(c) for c in class_names]
        if not names or len(set(names)) != len(names):
            raise ConfigError("class_names: expected distinct names")
        lookup = {n: i for i, n in enumerate(names)}
        lookup.update({str(i): i for i in range(len(names)) if str(i) not in lookup})
        expected = f"a class name ({', '.join(names)}) or an index 0..{len(names) - 1}"
        missing_msg = "outside the class set (expected {})"
    else:
        names = sorted({raw for _, _, raw in tables["train"]}, key=_numeric_key)
        lookup = {n: i for i, n in enumerate(names)}
        expected = ", ".join(names)
        missing_msg = "outside the class set (labels in the train file: {})"

    map_dropped = 0
    data: dict[str, tuple[list[str], list[int]]] = {}
    for s, rows in tables.items():
        texts: list[str] = []
        labels: list[int] = []
        for line, doc, raw in rows:
            if raw not in lookup:
                shown = expected if len(expected) <= 200 else expected[:200] + "..."
                raise DataError(f"{files[s]}:{line}: label {raw!r} " + missing_msg.format(shown))
            y = lookup[raw]
            if y is None:
                map_dropped += 1
                continue
            texts.append(doc)
            labels.append(y)
        if not texts:
            raise DataError(f"{files[s]}: no rows left after label_map (empty dataset)")
        data[s] = (texts, labels)

    if "test" not in data:
        t, y = _split_pool(*data["train"], fractions, seed)
        rule = "seeded stratified split of one file"
    else:
        if "val" not in data:
            tr, va, share = _carve_val(data["train"], fractions, seed)
            data["train"], data["val"] = tr, va
            rule = f"train/test files; val = seeded stratified {share:.4g} of train"
        else:
            rule = "train/val/test files"
        t = {s: data[s][0] for s in SPLITS}
        y = {s: data[s][1] for s in SPLITS}
    source = {"path": str(files["train"]), "files": {s: str(p) for s, p in files.items() if p is not None},
              "text_column": text_column if isinstance(text_column, (str, int)) else list(text_column),
              "label_column": label_column, "label_map": lmap, "label_map_dropped": map_dropped,
              "empty_dropped": empty_dropped, "split_rule": rule, "fractions": list(fractions), "seed": seed}
    return _finish(name, t, y, names, source, dedupe)


# ----------------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusSpec:
    """A shared corpus: its loader (``loader(root, *, fractions, seed, dedupe)``), data folder, the paper's default
    maximum length, and the label structure (``"categorical"``, ``"ordered"`` or ``"binary"``).

    >>> CORPORA["ag_news"].max_length, CORPORA["yelp5"].structure
    (100, 'ordered')
    """

    name: str
    loader: Callable[..., RawCorpus]
    folder: str
    max_length: int
    structure: str
    default_dedupe: bool
    description: str


def _spec(name: str, fn: Callable[..., RawCorpus], folder: str, max_length: int, structure: str, dedupe: bool,
          description: str, **fixed: Any) -> CorpusSpec:
    def loader(root: str | os.PathLike | None = None, **kw: Any) -> RawCorpus:
        return fn(root, **fixed, **kw)

    loader.__name__ = f"load_{name}"
    loader.__doc__ = f"{description} (calls {fn.__name__} with {fixed})." if fixed else fn.__doc__
    return CorpusSpec(name, loader, folder, max_length, structure, dedupe, description)


# Max lengths: the paper's (renn) values where it has one (AG News 100, Yelp 1000, IMDB 1000); sentences get 100.
CORPORA: dict[str, CorpusSpec] = {
    "ag_news": _spec("ag_news", load_ag_news, "ag_news", 100, "categorical", True,
                     "AG News, 4 topics, 7,600 rows split 70/10/20"),
    "yelp5": _spec("yelp5", load_yelp5, "yelp_review_full", 1000, "ordered", False,
                   "Yelp reviews, 5 star classes", num_classes=5),
    "yelp3": _spec("yelp3", load_yelp5, "yelp_review_full", 1000, "ordered", False,
                   "Yelp reviews, 1/3/5 stars", num_classes=3),
    "yelp2": _spec("yelp2", load_yelp5, "yelp_review_full", 1000, "binary", False,
                   "Yelp reviews, 1-2 vs 4-5 stars", num_classes=2),
    "yelp_polarity": _spec("yelp_polarity", load_yelp_polarity, "yelp_polarity_sentences", 100, "binary", True,
                           "Yelp sentence polarity, 40,000 sentences"),
    "imdb": _spec("imdb", load_imdb, "imdb", 1000, "binary", False, "IMDB reviews, 2,000"),
    "sst5": _spec("sst5", load_sst, "sst", 100, "ordered", False, "SST-1, 5 sentiment classes", fine=True),
    "sst2": _spec("sst2", load_sst, "sst", 100, "binary", False, "SST-2, binary sentiment", fine=False),
}


def load_corpus(name: str, root: str | os.PathLike | None = None, *, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                seed: int = 0, dedupe: bool | None = None, **kwargs: Any) -> RawCorpus:
    """Load a registered corpus by name (``dedupe=None``: the corpus default; on where innerworks makes the split).

    >>> load_corpus("sst2").num_classes  # doctest: +SKIP
    2
    """
    if name not in CORPORA:
        raise ConfigError(f"corpus: expected one of {', '.join(CORPORA)} or csv, got {name!r}")
    spec = CORPORA[name]
    return spec.loader(root, fractions=fractions, seed=seed,
                       dedupe=spec.default_dedupe if dedupe is None else dedupe, **kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# Tokenisation
# ----------------------------------------------------------------------------------------------------------------------
def tokenize_corpus(corpus: RawCorpus, tokenizer: Tokenizer, max_length: int | None = None,
                    overlength: Literal["drop", "truncate"] = "drop") -> DataSplits:
    """Encode every split with a FITTED tokenizer into padded :class:`TextDataset` s (pad id 0).

    Documents with more than ``max_length`` tokens are dropped (the paper's rule) or truncated to their first
    ``max_length`` tokens; either way their number is ``meta["overlength"]``. Documents with no tokens are dropped
    and counted in ``meta["empty_dropped"]``. A split left with no documents is an error.

    >>> from innerworks.data.tokenize import WordTokenizer
    >>> c = RawCorpus("t", {"train": ["a b c", "a"], "val": ["a b"], "test": ["b"]},
    ...               {"train": [0, 1], "val": [0], "test": [1]}, ["x", "y"])
    >>> ds = tokenize_corpus(c, WordTokenizer(min_count=1).fit(c.texts["train"]), max_length=2)
    >>> len(ds.train), ds.train.meta["overlength"], ds.train.meta["overlength_policy"]
    (1, 1, 'drop')
    """
    if overlength not in ("drop", "truncate"):
        raise ConfigError(f"overlength: expected 'drop' or 'truncate', got {overlength!r}")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ConfigError(f"max_length: expected an integer >= 1 or null, got {max_length!r}")
    if not tokenizer.is_fitted:
        raise InnerworksError(f"{type(tokenizer).__name__} is not fitted: fit it on the train split first")
    vocab = list(tokenizer.vocab)
    out: dict[str, TextDataset] = {}
    for s in SPLITS:
        ids = tokenizer.encode_batch(corpus.texts[s])
        seqs: list[list[int]] = []
        labels: list[int] = []
        n_over = n_empty = 0
        for seq, y in zip(ids, corpus.labels[s], strict=True):
            if not seq:
                n_empty += 1
                continue
            if max_length is not None and len(seq) > max_length:
                n_over += 1
                if overlength == "drop":
                    continue
                seq = seq[:max_length]
            seqs.append(seq)
            labels.append(y)
        if not seqs:
            raise DataError(f"{corpus.name}: split '{s}' is empty after tokenisation ({len(ids)} documents: "
                            f"{n_over} longer than max_length={max_length} ({overlength}), {n_empty} with no tokens)")
        tokens, lengths = pad_sequences(seqs)
        meta = {"corpus": corpus.name, "split": s, "tokenizer": tokenizer.kind, "max_length": max_length,
                "overlength_policy": overlength, "overlength": n_over, "empty_dropped": n_empty,
                "documents_in": len(ids), "source": corpus.source}
        out[s] = TextDataset(tokens=tokens, lengths=lengths, labels=torch.tensor(labels, dtype=torch.long),
                             vocab=vocab, class_names=list(corpus.class_names), meta=meta)
    return DataSplits(train=out["train"], val=out["val"], test=out["test"])


# ----------------------------------------------------------------------------------------------------------------------
# Config + one-call entry point
# ----------------------------------------------------------------------------------------------------------------------
_CSV_FIELDS = ("path", "val_path", "test_path", "text_column", "label_column", "label_map", "class_names",
               "delimiter")


class NaturalConfig(BaseModel):
    """Natural-text data settings (a recipe's ``data`` section when ``kind: natural``).

    ``corpus`` is a name from :data:`CORPORA` or ``"csv"`` (then ``path``, ``text_column`` and ``label_column`` are
    required). ``max_length: null`` takes the corpus default (the paper's where known; none for csv).
    ``vocab_size``: WordPiece target size (default 8000) or, for ``word``, a cap (default none).
    ``min_count``: word min-count, or WordPiece min frequency. ``split``: train/val/test fractions where innerworks
    makes a split. ``dedupe: null``: the corpus default. ``max_docs``: keep about this many documents in all.
    ``source: hub`` loads from the Hugging Face hub (needs the ``datasets`` extra and internet).

    >>> NaturalConfig(corpus="sst2", tokenizer="wordpiece").max_length is None
    True
    >>> NaturalConfig(corpus="sst2", colour="red")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: ...
    """

    model_config = ConfigDict(extra="forbid")

    corpus: str = "ag_news"
    source: Literal["files", "hub"] = "files"
    root: str | None = None
    text_field: Literal["description", "title+description"] = "description"
    path: str | None = None
    val_path: str | None = None
    test_path: str | None = None
    text_column: str | int | list[str | int] | None = None
    label_column: str | int | None = None
    label_map: dict[str, int | None] | None = None
    class_names: list[str] | None = None
    delimiter: str | None = None
    has_header: bool = True
    empty_text: Literal["error", "drop"] = "error"
    tokenizer: Literal["word", "wordpiece"] = "word"
    vocab_size: int | None = Field(default=None, ge=3)
    min_count: int = Field(default=2, ge=1)
    lowercase: bool = True
    max_length: int | None = Field(default=None, ge=1)
    overlength: Literal["drop", "truncate"] = "drop"
    split: tuple[float, float, float] = DEFAULT_FRACTIONS
    dedupe: bool | None = None
    max_docs: int | None = Field(default=None, ge=3)

    @field_validator("corpus")
    @classmethod
    def _known_corpus(cls, v: str) -> str:
        if v != "csv" and v not in CORPORA:
            raise ValueError(f"expected one of {', '.join(CORPORA)}, csv; got {v!r}")
        return v

    @field_validator("label_map", mode="before")
    @classmethod
    def _label_keys_to_str(cls, v: Any) -> Any:
        # YAML reads `1: 0` with an int key; raw CSV labels are strings.
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v

    @field_validator("split")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        try:
            return check_fractions(v, where="split")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("split: ")) from None

    @model_validator(mode="after")
    def _csv_fields(self) -> NaturalConfig:
        if self.corpus == "csv":
            if self.source == "hub":
                raise ValueError("source 'hub' needs a named corpus, not csv")
            missing = [f for f in ("path", "text_column", "label_column") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"corpus 'csv' needs {', '.join(missing)}")
        else:
            extra = [f for f in _CSV_FIELDS if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to corpus 'csv' (corpus is {self.corpus!r})")
        if self.corpus != "ag_news" and self.text_field != "description":
            raise ValueError("text_field only applies to corpus 'ag_news'")
        return self

    def resolved_max_length(self) -> int | None:
        """``max_length``, or the corpus default when unset (None for csv: no limit).

        >>> NaturalConfig(corpus="ag_news").resolved_max_length()
        100
        """
        if self.max_length is not None:
            return self.max_length
        return CORPORA[self.corpus].max_length if self.corpus in CORPORA else None


def parse_natural_config(obj: Any, where: str = "data") -> NaturalConfig:
    """Validate a dict into :class:`NaturalConfig`; errors become one-line :class:`ConfigError` naming the field.

    >>> parse_natural_config({"corpus": "sst2", "tokeniser": "word"})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: data.tokeniser: Extra inputs are not permitted
    """
    if isinstance(obj, NaturalConfig):
        return obj
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(obj).__name__}")
    try:
        return NaturalConfig.model_validate(dict(obj))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in (where, *err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{loc}: {msg}") from None


def load_raw(cfg: NaturalConfig | Mapping[str, Any], seed: int = 0) -> RawCorpus:
    """The :class:`RawCorpus` a config describes (before ``max_docs`` and tokenisation).

    >>> load_raw({"corpus": "sst2"}).counts()  # doctest: +SKIP
    {'train': 6920, 'val': 872, 'test': 1821}
    """
    cfg = parse_natural_config(cfg)
    if cfg.source == "hub":
        from innerworks.data.hub import load_from_hub

        return load_from_hub(cfg.corpus, fractions=cfg.split, seed=seed,
                             dedupe=CORPORA[cfg.corpus].default_dedupe if cfg.dedupe is None else cfg.dedupe)
    if cfg.corpus == "csv":
        assert cfg.path is not None and cfg.text_column is not None and cfg.label_column is not None
        return load_csv(cfg.path, cfg.text_column, cfg.label_column, cfg.label_map, cfg.delimiter, cfg.has_header,
                        class_names=cfg.class_names, val_path=cfg.val_path, test_path=cfg.test_path,
                        fractions=cfg.split, seed=seed, dedupe=True if cfg.dedupe is None else cfg.dedupe,
                        empty_text=cfg.empty_text)
    extra: dict[str, Any] = {"empty_text": cfg.empty_text}
    if cfg.corpus == "ag_news":
        extra["text"] = cfg.text_field
    return load_corpus(cfg.corpus, cfg.root, fractions=cfg.split, seed=seed, dedupe=cfg.dedupe, **extra)


def load_natural(cfg: NaturalConfig | Mapping[str, Any], seed: int = 0,
                 tokenizer_path: str | os.PathLike | None = None) -> tuple[DataSplits, Tokenizer]:
    """Load, split, (fit or reload the tokenizer), and tokenise a natural-text corpus.

    The tokenizer is fitted on the TRAIN split only. If ``tokenizer_path`` exists it is loaded instead (its kind
    must match ``cfg.tokenizer``), so a saved run reloads with identical token ids; otherwise the fitted tokenizer
    is saved there. ``seed`` drives the split and the ``max_docs`` subsample.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "x.csv").write_text("t,y\\n" + "".join(f"doc{i} w{i % 3},{i % 2}\\n" for i in range(60)))
    >>> splits, tok = load_natural({"corpus": "csv", "path": str(d / "x.csv"), "text_column": "t",
    ...                             "label_column": "y", "min_count": 1}, seed=0, tokenizer_path=d / "tok.json")
    >>> len(splits.train) > 0, (d / "tok.json").exists(), tok.vocab[:2]
    (True, True, ['<pad>', '<unk>'])
    """
    cfg = parse_natural_config(cfg)
    corpus = load_raw(cfg, seed)
    if cfg.max_docs is not None:
        corpus = corpus.subsample(cfg.max_docs, seed)
    path = Path(tokenizer_path) if tokenizer_path is not None else None
    if path is not None and path.exists():
        tok = load_tokenizer(path)
        if tok.kind != cfg.tokenizer:
            raise ConfigError(f"{path}: holds a {tok.kind} tokenizer but the config asks for {cfg.tokenizer!r} "
                              "(delete the file or change tokenizer)")
    else:
        tok = make_tokenizer(cfg.tokenizer, vocab_size=cfg.vocab_size, min_count=cfg.min_count,
                             lowercase=cfg.lowercase).fit(corpus.texts["train"])
        if path is not None:
            tok.save(path)
    splits = tokenize_corpus(corpus, tok, cfg.resolved_max_length(), cfg.overlength)
    return splits, tok
