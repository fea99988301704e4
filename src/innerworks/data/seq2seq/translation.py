"""Natural translation pairs: Tatoeba English->French (one file, split here by English sentence) and Multi30k
English->French/German (its own train/val/test files), from the shared data folder.

>>> import numpy as np
>>> parts = split_grouped([("a", "1"), ("a", "2"), ("b", "3")], 0.0, 0.5, np.random.default_rng(0))
>>> parts["test"], parts["train"]
([('a', '1'), ('a', '2')], [('b', '3')])
"""

from __future__ import annotations

import gzip
from typing import Literal

import numpy as np

from innerworks.data.paths import dataset_path
from innerworks.errors import DataError


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


def split_grouped(pairs: list[tuple[str, str]], val_fraction: float, test_fraction: float,
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
