"""The raw corpus and how innerworks splits one: :class:`RawCorpus`, seeded stratified splits, held-out dedupe.

Every loader (shared files, the user's CSV/TSV, the Hugging Face hub) ends in :func:`finish_corpus`, so all corpora
are checked, deduplicated and described the same way. Where a corpus ships no train/val/test split,
:func:`split_pool` makes a seeded stratified one; where it ships train and test only, :func:`carve_val` takes the
validation split out of train.

>>> stratified_split([0, 0, 1, 1], (0.5, 0.5, 0.0), seed=0)["test"]
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from innerworks.errors import ConfigError, DataError, InnerworksError

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)


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


def split_pool(texts: list[str], labels: list[int], fractions: Sequence[float], seed: int,
               ) -> tuple[dict[str, list[str]], dict[str, list[int]]]:
    """One pool of documents split seeded and stratified into train/val/test texts and labels.

    >>> t, y = split_pool(list("abcdefgh"), [0, 1] * 4, (0.5, 0.25, 0.25), seed=0)
    >>> {s: len(v) for s, v in t.items()}, y["val"]
    ({'train': 4, 'val': 2, 'test': 2}, [0, 1])
    """
    idx = stratified_split(labels, fractions, seed)
    return ({s: [texts[i] for i in idx[s]] for s in SPLITS}, {s: [labels[i] for i in idx[s]] for s in SPLITS})


def carve_val(train: tuple[list[str], list[int]], fractions: Sequence[float], seed: int,
              ) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]], float]:
    """Take a validation split out of a shipped train split, keeping train:val at fractions[0]:fractions[1].

    Returns the new train and val ``(texts, labels)`` and the share of train that went to val.

    >>> tr, va, share = carve_val((list("abcdefgh"), [0, 1] * 4), (0.6, 0.2, 0.2), seed=0)
    >>> len(tr[0]), len(va[0]), share
    (6, 2, 0.25)
    """
    f_train, f_val, _ = fractions
    share = round(f_val / (f_train + f_val), 12)  # 0.1 / 0.8 is 0.12500000000000003 in floats; keep ties ties
    idx = stratified_split(train[1], (1 - share, share, 0.0), seed)
    pick = lambda ix: ([train[0][i] for i in ix], [train[1][i] for i in ix])  # noqa: E731
    return pick(idx["train"]), pick(idx["val"]), share


def finish_corpus(name: str, texts: dict[str, list[str]], labels: dict[str, list[int]], class_names: list[str],
                  source: dict[str, Any], dedupe: bool) -> RawCorpus:
    """Build the corpus; dedupe held-out splits or just record how many repeat earlier text.

    >>> c = finish_corpus("t", {"train": ["a"], "val": ["A"], "test": ["b"]}, {"train": [0], "val": [0],
    ...                   "test": [0]}, ["x"], {"root": "."}, dedupe=False)
    >>> c.source["heldout_duplicates"]
    {'val': 1, 'test': 0}
    """
    for s in SPLITS:  # check before RawCorpus does, with the file in the message
        if not texts[s]:
            raise DataError(f"{source.get('path') or source.get('root')}: no documents for split '{s}' "
                            f"({ {k: len(v) for k, v in texts.items()} } per split)")
    corpus = RawCorpus(name, texts, labels, class_names, source)
    if dedupe:
        return corpus.dedupe()
    return replace(corpus, source={**corpus.source, "heldout_duplicates": corpus.heldout_duplicates()})
