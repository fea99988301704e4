"""Sequence-to-sequence tasks for the attention lab: synthetic, eSCAN, SCAN and natural translation.

Every task returns :class:`~innerworks.data.types.Seq2SeqDataset` splits with the shared conventions: source vocabulary
``<pad>=0, <eos>=1, ...``; target vocabulary ``<pad>=0, <eos>=1, <bos>=2, ...``; each sequence is its tokens, one
``<eos>``, then padding; lengths count the ``<eos>``.

Tasks (``Seq2SeqTaskConfig.task``):

- ``one_to_one``: words ``I0..I{N-1}`` drawn i.i.d. uniform, length uniform in ``min_length..max_length``
  (**both inclusive**, ``<eos>`` not counted); the target maps ``I_i -> O_i`` at the same position.
- ``reversal``: the target is the one-to-one target reversed.
- ``sort``: the target is the input words sorted by word index, then mapped ``I_i -> O_i``.
- ``escan``: concatenated SCAN commands over ``run walk jump left and twice`` (no ``left twice``), separated by
  ``<.>`` on both sides, output 10..15 tokens (14 at most is reachable), input at most 27 (see :func:`make_escan`).
- ``scan``: the official SCAN splits from ``$INNERWORKS_DATA/scan``; a seeded validation set is carved from train.
- ``translation``: Tatoeba eng->fra or Multi30k en->fr/de, word-level or WordPiece vocabularies fitted on train only.

Bad input (documented handling): unknown words map to ``<unk>`` for translation vocabularies and raise
:class:`DataError` for the closed vocabularies of the synthetic/SCAN tasks; empty sentences are dropped with a count by
the corpus loaders and raise (naming the row) in :func:`encode_pairs` unless ``drop_empty=True``; over-length pairs
are dropped or truncated with a count; a vocabulary of the wrong role (source vs target), one with the wrong special
tokens, or one under which most tokens are unknown raises :class:`DataError`.

The modules: :mod:`~.config` (:class:`Seq2SeqTaskConfig`), :mod:`~.vocab` (:class:`Seq2SeqVocab`), :mod:`~.encode`
(:func:`encode_pairs`), :mod:`~.synthetic`, :mod:`~.escan`, :mod:`~.scan`, :mod:`~.translation` (the tasks) and
:mod:`~.splits` (:func:`make_seq2seq_splits`). Everything public is importable from here, and so are the special
tokens of :mod:`innerworks.data.types`.

>>> splits = make_seq2seq_splits({"task": "one_to_one", "num_words": 3, "min_length": 2, "max_length": 4,
...                               "n_train": 8, "n_val": 2, "n_test": 2}, seed=0)
>>> len(splits["train"]), splits.train.src_vocab[:4], splits.train.tgt_vocab[:4]
(8, ['<pad>', '<eos>', 'I0', 'I1'], ['<pad>', '<eos>', '<bos>', 'O0'])
"""

from innerworks.data.seq2seq.config import SYNTHETIC_TASKS, Seq2SeqTaskConfig, TaskName, parse_task_config
from innerworks.data.seq2seq.encode import check_vocab_match, encode_pairs
from innerworks.data.seq2seq.escan import (
    ESCAN_ACTIONS,
    ESCAN_WORDS,
    PERIOD,
    escan_alignment,
    escan_command_alignment,
    escan_commands,
    escan_length_bounds,
    escan_offsets,
    escan_vocabs,
    make_escan,
)
from innerworks.data.seq2seq.scan import SCAN_FILES, load_scan, read_scan_file, scan_vocabs
from innerworks.data.seq2seq.splits import Seq2SeqSplits, make_seq2seq_splits
from innerworks.data.seq2seq.synthetic import make_synthetic
from innerworks.data.seq2seq.translation import load_translation_pairs
from innerworks.data.seq2seq.vocab import Seq2SeqVocab
from innerworks.data.types import EOS_ID, PAD, PAD_ID, SRC_SPECIALS, TGT_SPECIALS, UNK

__all__ = [
    "EOS_ID",
    "ESCAN_ACTIONS",
    "ESCAN_WORDS",
    "PAD",
    "PAD_ID",
    "PERIOD",
    "SCAN_FILES",
    "SRC_SPECIALS",
    "SYNTHETIC_TASKS",
    "Seq2SeqSplits",
    "Seq2SeqTaskConfig",
    "Seq2SeqVocab",
    "TGT_SPECIALS",
    "TaskName",
    "UNK",
    "check_vocab_match",
    "encode_pairs",
    "escan_alignment",
    "escan_command_alignment",
    "escan_commands",
    "escan_length_bounds",
    "escan_offsets",
    "escan_vocabs",
    "load_scan",
    "load_translation_pairs",
    "make_escan",
    "make_seq2seq_splits",
    "make_synthetic",
    "parse_task_config",
    "read_scan_file",
    "scan_vocabs",
]
