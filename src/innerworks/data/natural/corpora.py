"""Loaders for the shared corpora: AG News, Yelp reviews (5, 3 or 2 star classes), Yelp sentence polarity, IMDB
and SST-1/SST-2, read from the data folder (``$INNERWORKS_DATA``) into a :class:`~.corpus.RawCorpus`.

Each loader knows its corpus' file layout and escapes, keeps the shipped splits where there are train/val/test files,
and otherwise splits seeded and stratified (see :mod:`innerworks.data.natural.corpus`). The star relabelings and
their class names are shared with the hub loader (:mod:`innerworks.data.hub`).

>>> STAR_NAMES[3], STAR_RELABEL[3]
(['1 star', '3 stars', '5 stars'], {0: 0, 2: 1, 4: 2})
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from typing import Literal

from innerworks.data.natural.corpus import (
    DEFAULT_FRACTIONS,
    SPLITS,
    RawCorpus,
    carve_val,
    check_fractions,
    finish_corpus,
    split_pool,
)
from innerworks.data.natural.files import (
    EmptyPolicy,
    corpus_folder,
    csv_with_header,
    int_label,
    keep_text,
    read_text,
    text_lines,
)
from innerworks.errors import ConfigError, DataError

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
    folder = corpus_folder(root, "ag_news")
    path = folder / "test.csv"
    class_names = ["World", "Sports", "Business", "Sci/Tech"]
    texts: list[str] = []
    labels: list[int] = []
    dropped = 0
    records = csv_with_header(path, ["Class Index", "Title", "Description"])
    for line, row in records:
        y = int_label(row[0], path, line, (1, 2, 3, 4)) - 1
        doc = row[2] if text == "description" else f"{row[1]}\n{row[2]}"
        doc = clean_ag_news(doc)
        if keep_text(doc, path, line, empty_text):
            texts.append(doc)
            labels.append(y)
        else:
            dropped += 1
    if not texts:
        raise DataError(f"{path}: no data rows")
    t, y = split_pool(texts, labels, fractions, seed)
    source = {"path": str(path), "rows": len(records), "text": text, "empty_dropped": dropped,
              "split_rule": "seeded stratified split of the one shipped file", "fractions": list(fractions),
              "seed": seed}
    return finish_corpus("ag_news", t, y, class_names, source, dedupe)


_YELP_ESCAPE = re.compile(r'\\(n|"|\\|u[0-9a-fA-F]{4})')
# The paper's star relabelings (0-based star -> class) and their class names; the hub loader uses them too.
STAR_RELABEL = {5: {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}, 3: {0: 0, 2: 1, 4: 2}, 2: {0: 0, 1: 0, 3: 1, 4: 1}}
STAR_NAMES = {5: ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"], 3: ["1 star", "3 stars", "5 stars"],
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
    if num_classes not in STAR_RELABEL:
        raise ConfigError(f"num_classes: expected 5, 3 or 2, got {num_classes!r}")
    folder = corpus_folder(root, "yelp_review_full")
    relabel = STAR_RELABEL[num_classes]
    texts: dict[str, list[str]] = {}
    labels: dict[str, list[int]] = {}
    dropped = {"relabel": 0, "empty": 0}
    for split, fname in zip(SPLITS, ("train.csv", "val.csv", "test.csv"), strict=True):
        path = folder / fname
        texts[split], labels[split] = [], []
        for line, row in csv_with_header(path, ["label", "text", "id"]):
            star = int_label(row[0], path, line, range(5))
            doc = clean_yelp(row[1])
            if not keep_text(doc, path, line, empty_text):
                dropped["empty"] += 1
            elif star not in relabel:
                dropped["relabel"] += 1
            else:
                texts[split].append(doc)
                labels[split].append(relabel[star])
    source = {"root": str(folder), "files": ["train.csv", "val.csv", "test.csv"], "num_classes": num_classes,
              "relabel_dropped": dropped["relabel"], "empty_dropped": dropped["empty"],
              "split_rule": "shipped train/val/test files"}
    return finish_corpus(f"yelp{num_classes}", texts, labels, STAR_NAMES[num_classes], source, dedupe)


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
    folder = corpus_folder(root, "yelp_polarity_sentences")
    texts: list[str] = []
    labels: list[int] = []
    dropped = 0
    files = [f"sentiment.{part}.{y}" for part in ("dev", "test") for y in (0, 1)]
    for fname in files:
        path = folder / fname
        y = int(fname[-1])
        for line, doc in text_lines(path):
            if keep_text(doc, path, line, empty_text):
                texts.append(doc.strip())
                labels.append(y)
            else:
                dropped += 1
    if not texts:
        raise DataError(f"{folder}: no sentences in {', '.join(files)}")
    t, y = split_pool(texts, labels, fractions, seed)
    source = {"root": str(folder), "files": files, "rows": len(texts) + dropped, "empty_dropped": dropped,
              "split_rule": "pooled dev+test files, seeded stratified split", "fractions": list(fractions),
              "seed": seed}
    return finish_corpus("yelp_polarity", t, y, ["negative", "positive"], source, dedupe)


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
    folder = corpus_folder(root, "imdb")
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
                doc = read_text(d / name).replace("<br />", "\n").replace("<br/>", "\n")
                if keep_text(doc, d / name, 1, empty_text):
                    texts.append(doc)
                    labels.append(y)
                else:
                    dropped += 1
        if not texts:
            raise DataError(f"{folder / split}: no reviews found")
        data[split] = (texts, labels)
    (tr, va, share) = carve_val(data["train"], fractions, seed)
    t = {"train": tr[0], "val": va[0], "test": data["test"][0]}
    y = {"train": tr[1], "val": va[1], "test": data["test"][1]}
    source = {"root": str(folder), "empty_dropped": dropped,
              "split_rule": f"shipped train/test; val = seeded stratified {share:.4g} of train",
              "fractions": list(fractions), "seed": seed}
    return finish_corpus("imdb", t, y, ["negative", "positive"], source, dedupe)


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
    folder = corpus_folder(root, "sst")
    variant = "fine" if fine else "binary"
    class_names = _SST_NAMES[bool(fine)]
    texts: dict[str, list[str]] = {}
    labels: dict[str, list[int]] = {}
    dropped = 0
    for split, part in zip(SPLITS, ("train", "dev", "test"), strict=True):
        path = folder / f"stsa.{variant}.{part}"
        texts[split], labels[split] = [], []
        for line, raw in text_lines(path):
            head, _, doc = raw.strip().partition(" ")
            if not head:
                raise DataError(f"{path}:{line}: expected '<label> <sentence>', got an empty line")
            y = int_label(head, path, line, range(len(class_names)))
            if keep_text(doc, path, line, empty_text):
                texts[split].append(doc.strip())
                labels[split].append(y)
            else:
                dropped += 1
    source = {"root": str(folder), "files": [f"stsa.{variant}.{p}" for p in ("train", "dev", "test")],
              "empty_dropped": dropped, "split_rule": "shipped train/dev/test files"}
    return finish_corpus("sst5" if fine else "sst2", texts, labels, class_names, source, dedupe)
