"""The synthetic translation tasks of the attention lab: ``one_to_one``, ``reversal`` and ``sort`` over words
``I0..I{N-1}`` -> ``O0..O{N-1}``, generated vectorised from a seeded :class:`torch.Generator`.
"""

from __future__ import annotations

from typing import Literal

import torch

from innerworks.data.seq2seq.config import SYNTHETIC_TASKS
from innerworks.data.types import EOS_ID, PAD_ID, SRC_SPECIALS, TGT_SPECIALS, Seq2SeqDataset
from innerworks.errors import DataError


def make_synthetic(task: Literal["one_to_one", "reversal", "sort"], n: int, num_words: int, min_length: int,
                   max_length: int, generator: torch.Generator) -> Seq2SeqDataset:
    """Synthetic translation, vectorised: ``n`` inputs of i.i.d. uniform words ``I0..I{N-1}``, lengths uniform in
    ``min_length..max_length`` (inclusive), targets over ``O0..O{N-1}``:

    - ``one_to_one``: ``O_i`` where the input has ``I_i``, same position;
    - ``reversal``: the one-to-one output reversed;
    - ``sort``: the input words sorted by index, then ``I_i -> O_i``.

    Both sides are padded to ``max_length + 1`` (the ``<eos>``).

    >>> g = torch.Generator().manual_seed(0)
    >>> ds = make_synthetic("reversal", 2, 3, 2, 3, g)
    >>> [ds.src_vocab[i] for i in ds.src[0]], [ds.tgt_vocab[i] for i in ds.tgt[0]]
    (['I2', 'I0', '<eos>', '<pad>'], ['O0', 'O2', '<eos>', '<pad>'])
    """
    if task not in SYNTHETIC_TASKS:
        raise DataError(f"synthetic task must be one of {', '.join(SYNTHETIC_TASKS)}, got {task!r}")
    if not (1 <= min_length <= max_length) or num_words < 1 or n < 1:
        raise DataError(f"need n >= 1, num_words >= 1 and 1 <= min_length <= max_length, got n={n}, "
                        f"num_words={num_words}, lengths {min_length}..{max_length}")
    width = max_length + 1
    lengths = torch.randint(min_length, max_length + 1, (n,), generator=generator)
    words = torch.randint(0, num_words, (n, max_length), generator=generator)
    pos = torch.arange(max_length).expand(n, -1)
    valid = pos < lengths[:, None]
    if task == "one_to_one":
        out_words = words
    elif task == "reversal":
        # position p of the output reads input position L-1-p; clamp keeps padded positions in range (masked below)
        out_words = words.gather(1, (lengths[:, None] - 1 - pos).clamp(min=0))
    else:
        out_words = torch.where(valid, words, num_words).sort(dim=1).values.clamp(max=num_words - 1)
    src = torch.zeros(n, width, dtype=torch.long)
    tgt = torch.zeros(n, width, dtype=torch.long)
    src[:, :max_length] = torch.where(valid, words + len(SRC_SPECIALS), PAD_ID)
    tgt[:, :max_length] = torch.where(valid, out_words + len(TGT_SPECIALS), PAD_ID)
    rows = torch.arange(n)
    src[rows, lengths] = EOS_ID
    tgt[rows, lengths] = EOS_ID
    src_vocab = [*SRC_SPECIALS, *(f"I{i}" for i in range(num_words))]
    tgt_vocab = [*TGT_SPECIALS, *(f"O{i}" for i in range(num_words))]
    meta = {"task": task, "num_words": num_words, "min_length": min_length, "max_length": max_length,
            "lengths_inclusive": True}
    return Seq2SeqDataset(src, lengths + 1, tgt, lengths + 1, src_vocab, tgt_vocab, meta)
