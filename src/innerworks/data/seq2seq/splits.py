"""From a task config to data: :func:`make_seq2seq_splits` builds the train/val/test :class:`Seq2SeqSplits` of any
task, seeded, with the vocabularies shared by the three splits and a ``meta`` record in every dataset.

One function per kind of task: generated (synthetic and eSCAN: one seeded stream per split), SCAN (the official
files, a validation set carved from train) and translation (Tatoeba split by English sentence, or Multi30k's files).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from innerworks.data.seq2seq.config import SYNTHETIC_TASKS, Seq2SeqTaskConfig, parse_task_config
from innerworks.data.seq2seq.encode import encode_pairs
from innerworks.data.seq2seq.escan import make_escan
from innerworks.data.seq2seq.scan import load_scan, scan_vocabs, scan_widths
from innerworks.data.seq2seq.synthetic import make_synthetic
from innerworks.data.seq2seq.translation import load_translation_pairs, split_grouped
from innerworks.data.seq2seq.vocab import Seq2SeqVocab
from innerworks.data.types import Seq2SeqDataset

Built = tuple[dict[str, Seq2SeqDataset], Seq2SeqVocab, Seq2SeqVocab]  # datasets by split name, source and target vocab


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


def _cap(pairs: list, max_pairs: int | None, rng: np.random.Generator) -> list:
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    return [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False).tolist())]


def _pad_to(ds: Seq2SeqDataset, src_width: int, tgt_width: int) -> Seq2SeqDataset:
    src = torch.zeros(len(ds), src_width, dtype=torch.long)
    tgt = torch.zeros(len(ds), tgt_width, dtype=torch.long)
    src[:, : ds.src_width] = ds.src
    tgt[:, : ds.tgt_width] = ds.tgt
    return Seq2SeqDataset(src, ds.src_lengths, tgt, ds.tgt_lengths, ds.src_vocab, ds.tgt_vocab, ds.meta)


def _generated(cfg: Seq2SeqTaskConfig, seed: int) -> Built:
    """Synthetic and eSCAN splits, each drawn from its own seeded stream."""
    out: dict[str, Seq2SeqDataset] = {}
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
    return out, sv, tv


def _scan(cfg: Seq2SeqTaskConfig, rng: np.random.Generator) -> Built:
    """The official SCAN split, with a seeded ``val_fraction`` of train as validation; all padded to one width."""
    out: dict[str, Seq2SeqDataset] = {}
    train, test = load_scan(cfg.scan_split)
    order = rng.permutation(len(train)).tolist()
    n_val = max(1, round(cfg.val_fraction * len(train)))
    parts = {"train": [train[i] for i in sorted(order[n_val:])], "val": [train[i] for i in sorted(order[:n_val])],
             "test": test}
    sv, tv = scan_vocabs()
    sw, tw = scan_widths()
    for name, pairs in parts.items():
        pairs = _cap(pairs, cfg.max_pairs, rng)
        ds = encode_pairs([p[0] for p in pairs], [p[1] for p in pairs], sv, tv,
                          meta={"task": "scan", "scan_split": cfg.scan_split})
        out[name] = _pad_to(ds, sw, tw)
    return out, sv, tv


def _translation(cfg: Seq2SeqTaskConfig, rng: np.random.Generator) -> Built:
    """Tatoeba split by unique English sentence, or Multi30k's files; vocabularies fitted on train only."""
    out: dict[str, Seq2SeqDataset] = {}
    if cfg.corpus == "tatoeba":
        parts = split_grouped(load_translation_pairs("tatoeba", "fr", "all"), cfg.val_fraction,
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
    return out, sv, tv


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
    if cfg.task in SYNTHETIC_TASKS or cfg.task == "escan":
        out, sv, tv = _generated(cfg, seed)
    elif cfg.task == "scan":
        out, sv, tv = _scan(cfg, rng)
    else:
        out, sv, tv = _translation(cfg, rng)
    for name, ds in out.items():
        ds.meta.update(base, split=name, n=len(ds), src_vocab_sha1=sv.fingerprint, tgt_vocab_sha1=tv.fingerprint)
    if tokenizer_dir is not None:
        sv.save(Path(tokenizer_dir) / "src_vocab.json")
        tv.save(Path(tokenizer_dir) / "tgt_vocab.json")
    return Seq2SeqSplits(out["train"], out["val"], out["test"], sv, tv)
