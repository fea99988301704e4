"""The registry of shared corpora: :data:`CORPORA` maps a name (``ag_news``, ``yelp5``, ``sst2``...) to its loader,
data folder, default maximum length and label structure; :func:`load_corpus` loads one by name.

The Yelp and SST names share a loader with fixed arguments (``yelp3`` is :func:`~.corpora.load_yelp5` with
``num_classes=3``), so a recipe names a corpus, never a loader call.

>>> sorted(CORPORA)[:3]
['ag_news', 'ag_news_train_head', 'dbpedia']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from innerworks.data.natural.corpora import load_ag_news, load_imdb, load_sst, load_yelp5, load_yelp_polarity
from innerworks.data.natural.corpus import DEFAULT_FRACTIONS, RawCorpus
from innerworks.data.natural.dbpedia import load_ag_news_train_head, load_dbpedia
from innerworks.errors import ConfigError


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
    "ag_news_train_head": _spec("ag_news_train_head", load_ag_news_train_head, "ag_news_train_head", 100,
                                "categorical", True, "AG News, 10,429-row train head + the 7,600-row test split"),
    "dbpedia": _spec("dbpedia", load_dbpedia, "dbpedia", 1000, "categorical", True,
                     "DBPedia, 14 topics, 13,783 rows split 70/10/20", num_classes=14),
    # the k-class subsets (labels 0..k-1), the co-author loader's num_classes=k
    **{f"dbpedia{k}": _spec(f"dbpedia{k}", load_dbpedia, "dbpedia", 1000, "categorical", True,
                            f"DBPedia, first {k} topics", num_classes=k) for k in range(2, 14)},
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
