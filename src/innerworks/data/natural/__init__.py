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

The modules: :mod:`~.corpus` (the raw corpus, splitting, dedupe), :mod:`~.files` (reading files, with errors that
name the line), :mod:`~.corpora` (the shared corpora's loaders), :mod:`~.registry` (:data:`CORPORA`),
:mod:`~.tables` (the generic CSV/TSV loader), :mod:`~.config` (:class:`NaturalConfig`) and :mod:`~.load`
(tokenisation and the one-call :func:`load_natural`). Everything public is importable from here.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "mine.csv"
>>> rows = "".join(f"doc {i} is {'good' if i % 2 else 'bad'},{i % 2}\\n" for i in range(40))
>>> _ = p.write_text("text,label\\n" + rows)
>>> corpus = load_csv(p, "text", "label", seed=0)
>>> corpus.counts(), corpus.class_names
({'train': 28, 'val': 4, 'test': 8}, ['0', '1'])
"""

from innerworks.data.natural.config import NaturalConfig, parse_natural_config
from innerworks.data.natural.corpora import (
    clean_ag_news,
    clean_yelp,
    load_ag_news,
    load_imdb,
    load_sst,
    load_yelp5,
    load_yelp_polarity,
)
from innerworks.data.natural.corpus import DEFAULT_FRACTIONS, SPLITS, RawCorpus, check_fractions, stratified_split
from innerworks.data.natural.files import EmptyPolicy
from innerworks.data.natural.load import load_natural, load_raw, tokenize_corpus
from innerworks.data.natural.registry import CORPORA, CorpusSpec, load_corpus
from innerworks.data.natural.tables import ColumnSpec, load_csv

__all__ = [
    "CORPORA",
    "DEFAULT_FRACTIONS",
    "SPLITS",
    "ColumnSpec",
    "CorpusSpec",
    "EmptyPolicy",
    "NaturalConfig",
    "RawCorpus",
    "check_fractions",
    "clean_ag_news",
    "clean_yelp",
    "load_ag_news",
    "load_corpus",
    "load_csv",
    "load_imdb",
    "load_natural",
    "load_raw",
    "load_sst",
    "load_yelp5",
    "load_yelp_polarity",
    "parse_natural_config",
    "stratified_split",
    "tokenize_corpus",
]
