"""SCAN (Lake and Baroni, 2018): the official split files from ``$INNERWORKS_DATA/scan`` and the closed
vocabularies fixed by the grammar, so every split shares the same ids and widths.

>>> sorted(SCAN_FILES)
['addprim_jump', 'addprim_turn_left', 'length', 'simple']
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from innerworks.data import scan_grammar
from innerworks.data.paths import dataset_path
from innerworks.data.seq2seq.vocab import Seq2SeqVocab
from innerworks.errors import DataError

SCAN_FILES: dict[str, tuple[str, str]] = {
    "simple": ("simple_split", "simple"),
    "length": ("length_split", "length"),
    "addprim_jump": ("add_prim_split", "addprim_jump"),
    "addprim_turn_left": ("add_prim_split", "addprim_turn_left"),
}


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
def scan_widths() -> tuple[int, int]:
    """Source and target widths (words + ``<eos>``) that fit every SCAN command, so all splits pad alike.

    >>> scan_widths()
    (10, 49)
    """
    cmds = scan_grammar.enumerate_commands()
    return (max(len(c.split()) for c in cmds) + 1, max(len(scan_grammar.interpret(c)) for c in cmds) + 1)


def scan_vocabs() -> tuple[Seq2SeqVocab, Seq2SeqVocab]:
    """The closed SCAN vocabularies, fixed by the grammar (13 words, 6 actions) so every split shares them.

    >>> s, t = scan_vocabs(); len(s), len(t)
    (15, 9)
    """
    return (Seq2SeqVocab.closed(scan_grammar.COMMAND_WORDS, "src", "scan.src"),
            Seq2SeqVocab.closed(scan_grammar.ACTIONS, "tgt", "scan.tgt"))
