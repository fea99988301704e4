"""From a config to tensors: :func:`load_raw` reads the corpus a :class:`~.config.NaturalConfig` names (shared
files, the user's CSV/TSV, or the hub), :func:`tokenize_corpus` encodes it with an explicit over-length policy, and
:func:`load_natural` does both, fitting the tokenizer on the train split only (or reusing a saved one, so a run can
be reloaded with identical token ids).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from innerworks.data.natural.config import NaturalConfig, parse_natural_config
from innerworks.data.natural.corpus import SPLITS, RawCorpus
from innerworks.data.natural.registry import CORPORA, load_corpus
from innerworks.data.natural.tables import load_csv
from innerworks.data.tokenize import Tokenizer, load_tokenizer, make_tokenizer
from innerworks.data.types import DataSplits, TextDataset, pad_sequences
from innerworks.errors import ConfigError, DataError, InnerworksError


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
