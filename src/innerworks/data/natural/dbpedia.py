"""Loaders for DBPedia-14 (its k-class subsets) and the AG News train-split head, from the shared data folder.

DBPedia (``dbpedia/train_keaml_sub.csv.gz``: no header, ``label,text``, labels 0-13, about 985 rows per class) is one
of the paper's categorical corpora. ``num_classes=k`` keeps labels 0..k−1, the co-author loader's reduction to a
k-class subset (it keeps Zhang's labels 1..k), so a k-class run should show a (k−1)-dimensional manifold.

AG News' train head (``ag_news_train_head/train_head10429.csv.gz``: Zhang's raw format, no header,
``"class","title","description"``, labels 1-4) gives a larger training pool than the 7,600-row test split alone: it is
the train split (val carved from it, seeded and stratified), the official test split is the test split.

>>> DBPEDIA_CLASSES[:3]
['Company', 'EducationalInstitution', 'Artist']
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

from innerworks.data.natural.corpora import clean_ag_news
from innerworks.data.natural.corpus import (
    DEFAULT_FRACTIONS,
    RawCorpus,
    carve_val,
    check_fractions,
    finish_corpus,
    split_pool,
)
from innerworks.data.natural.files import EmptyPolicy, corpus_folder, csv_rows, csv_with_header, int_label, keep_text
from innerworks.errors import ConfigError, DataError

DBPEDIA_CLASSES = ["Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder", "MeanOfTransportation",
                   "Building", "NaturalPlace", "Village", "Animal", "Plant", "Album", "Film", "WrittenWork"]
AG_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def gzip_csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line, fields)`` of a gzip CSV file without header (RFC 4180 quoting, strict)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as gzip UTF-8 text ({exc})") from None
    return csv_rows(path, ",", text)


def _ag_rows(rows: list[tuple[int, list[str]]], path: Path, empty_text: EmptyPolicy,
             ) -> tuple[list[str], list[int], int]:
    """AG News rows ``class,title,description`` (labels 1-4) -> cleaned descriptions, 0-based labels, empties."""
    texts, labels, dropped = [], [], 0
    for line, row in rows:
        if len(row) != 3:
            raise DataError(f"{path}:{line}: expected 3 fields (class,title,description), got {len(row)}")
        doc = clean_ag_news(row[2])
        if keep_text(doc, path, line, empty_text):
            texts.append(doc)
            labels.append(int_label(row[0], path, line, (1, 2, 3, 4)) - 1)
        else:
            dropped += 1
    return texts, labels, dropped


def load_dbpedia(root: str | os.PathLike | None = None, num_classes: int = 14, *,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, dedupe: bool = True,
                 empty_text: EmptyPolicy = "error") -> RawCorpus:
    """DBPedia reduced to its first ``num_classes`` classes (labels 0..k−1; others dropped and counted), split seeded
    and stratified by ``fractions``. Sentences, joined with a TAB in the file, become one document.

    >>> load_dbpedia(num_classes=3).class_names  # doctest: +SKIP
    ['Company', 'EducationalInstitution', 'Artist']
    """
    if not 2 <= num_classes <= 14:
        raise ConfigError(f"num_classes: expected 2..14 DBPedia classes, got {num_classes!r}")
    fractions = check_fractions(fractions)
    path = corpus_folder(root, "dbpedia") / "train_keaml_sub.csv.gz"
    texts: list[str] = []
    labels: list[int] = []
    dropped = {"other_classes": 0, "empty": 0}
    rows = gzip_csv_rows(path)
    for line, row in rows:
        if len(row) != 2:
            raise DataError(f"{path}:{line}: expected 2 fields (label,text), got {len(row)}")
        y = int_label(row[0], path, line, range(14))
        doc = row[1].replace("\t", " ").strip()
        if y >= num_classes:
            dropped["other_classes"] += 1
        elif keep_text(doc, path, line, empty_text):
            texts.append(doc)
            labels.append(y)
        else:
            dropped["empty"] += 1
    if not texts:
        raise DataError(f"{path}: no data rows")
    t, y_ = split_pool(texts, labels, fractions, seed)
    source = {"path": str(path), "rows": len(rows), "num_classes": num_classes, "dropped": dropped,
              "split_rule": "seeded stratified split of the one shipped file", "fractions": list(fractions),
              "seed": seed}
    return finish_corpus(f"dbpedia{num_classes}" if num_classes < 14 else "dbpedia", t, y_,
                         DBPEDIA_CLASSES[:num_classes], source, dedupe)


def load_ag_news_train_head(root: str | os.PathLike | None = None, *, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                            seed: int = 0, dedupe: bool = True, empty_text: EmptyPolicy = "error") -> RawCorpus:
    """AG News (description only): train = the 10,429-row train head (val carved out at ``fractions[0]:[1]``),
    test = the official 7,600-row test split. ``root``: one folder holding both ``train_head10429.csv.gz`` and
    ``test.csv`` (default: the two shared folders).

    >>> load_ag_news_train_head().counts()  # doctest: +SKIP
    {'train': 9125, 'val': 1304, 'test': 7600}
    """
    fractions = check_fractions(fractions)
    head = corpus_folder(root, "ag_news_train_head") / "train_head10429.csv.gz"
    tr_t, tr_y, d1 = _ag_rows(gzip_csv_rows(head), head, empty_text)
    test = corpus_folder(root, "ag_news") / "test.csv"
    te_t, te_y, d2 = _ag_rows(csv_with_header(test, ["Class Index", "Title", "Description"]), test, empty_text)
    dropped = d1 + d2
    (tt, ty), (vt, vy), share = carve_val((tr_t, tr_y), fractions, seed)
    source = {"paths": [str(head), str(test)], "empty_dropped": dropped, "val_share_of_train": share, "seed": seed,
              "split_rule": "train head (val carved out, seeded, stratified); the official test split"}
    return finish_corpus("ag_news_train_head", {"train": tt, "val": vt, "test": te_t},
                         {"train": ty, "val": vy, "test": te_y}, AG_CLASSES, source, dedupe)


__all__ = ["DBPEDIA_CLASSES", "gzip_csv_rows", "load_ag_news_train_head", "load_dbpedia"]
