"""Containers for tokenised text-classification data.

Every loader and generator returns a :class:`TextDataset`: padded token ids (0 is padding), lengths, labels,
the vocabulary and the class names. A corpus split three ways is a :class:`DataSplits`.

>>> import torch
>>> ds = TextDataset(tokens=torch.tensor([[1, 2, 0], [2, 2, 2]]), lengths=torch.tensor([2, 3]),
...                  labels=torch.tensor([0, 1]), vocab=["<pad>", "a", "b"], class_names=["x", "y"])
>>> len(ds), ds.num_classes, ds.max_length
(2, 2, 3)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from innerworks.errors import DataError

PAD = "<pad>"
UNK = "<unk>"


@dataclass
class TextDataset:
    """Padded token ids with labels.

    Attributes:
        tokens: ``LongTensor [N, T]``; id 0 is padding and only appears after the last valid token.
        lengths: ``LongTensor [N]``, each in ``1..T``.
        labels: ``LongTensor [N]`` (single label) or ``FloatTensor [N, C]`` of 0/1 (``multilabel=True``).
        vocab: token strings; ``vocab[0]`` is the padding token.
        class_names: one name per class.
        multilabel: True when each document carries an independent 0/1 label per class.
        meta: free-form facts about how the data was made (e.g. ``{"dropped_overlength": 3}``).
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    vocab: list[str]
    class_names: list[str]
    multilabel: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check shapes, dtypes and ranges; raise :class:`DataError` naming the problem.

        >>> import torch
        >>> TextDataset(torch.zeros(1, 2, dtype=torch.long), torch.tensor([0]), torch.tensor([0]),
        ...             ["<pad>"], ["a"])  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        innerworks.errors.DataError: lengths must be in 1..2
        """
        t, n, y = self.tokens, self.lengths, self.labels
        if t.dim() != 2 or t.dtype != torch.long:
            raise DataError(f"tokens must be a LongTensor [N, T], got {tuple(t.shape)} {t.dtype}")
        if t.shape[0] == 0:
            raise DataError("dataset is empty (0 documents)")
        if n.shape != (t.shape[0],):
            raise DataError(f"lengths must have shape ({t.shape[0]},), got {tuple(n.shape)}")
        if int(n.min()) < 1 or int(n.max()) > t.shape[1]:
            raise DataError(f"lengths must be in 1..{t.shape[1]}")
        if int(t.min()) < 0 or int(t.max()) >= len(self.vocab):
            raise DataError(f"token ids must be in 0..{len(self.vocab) - 1}")
        if self.multilabel:
            if y.shape != (t.shape[0], len(self.class_names)):
                raise DataError(f"multi-label labels must have shape (N, {len(self.class_names)})")
        else:
            if y.shape != (t.shape[0],):
                raise DataError(f"labels must have shape ({t.shape[0]},), got {tuple(y.shape)}")
            if int(y.min()) < 0 or int(y.max()) >= len(self.class_names):
                raise DataError(
                    f"label {int(y.max()) if int(y.max()) >= 0 else int(y.min())} outside the class set "
                    f"0..{len(self.class_names) - 1}"
                )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes (labels for multi-label data)."""
        return len(self.class_names)

    @property
    def max_length(self) -> int:
        """Padded length T."""
        return int(self.tokens.shape[1])

    @property
    def vocab_size(self) -> int:
        """Number of token ids, padding included."""
        return len(self.vocab)

    def subset(self, index: torch.Tensor | slice) -> TextDataset:
        """Rows selected by ``index``, trimmed to their longest document.

        >>> import torch
        >>> ds = TextDataset(torch.tensor([[1, 0], [1, 1]]), torch.tensor([1, 2]), torch.tensor([0, 0]),
        ...                  ["<pad>", "a"], ["c"])
        >>> ds.subset(torch.tensor([0])).tokens.shape
        torch.Size([1, 1])
        """
        lengths = self.lengths[index]
        width = int(lengths.max()) if lengths.numel() else 1
        return replace(self, tokens=self.tokens[index][:, :width], lengths=lengths, labels=self.labels[index],
                       meta=_index_meta(self.meta, index, len(self)))

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                shuffle: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(tokens, lengths, labels)`` mini-batches, optionally shuffled with ``generator``.

        >>> import torch
        >>> ds = TextDataset(torch.ones(5, 3, dtype=torch.long), torch.full((5,), 3), torch.zeros(5, dtype=torch.long),
        ...                  ["<pad>", "a"], ["c"])
        >>> [b[0].shape[0] for b in ds.batches(2)]
        [2, 2, 1]
        """
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.tokens[idx], self.lengths[idx], self.labels[idx]

    def decode(self, i: int) -> list[str]:
        """The tokens of document ``i`` as strings (padding removed).

        >>> import torch
        >>> TextDataset(torch.tensor([[1, 2, 0]]), torch.tensor([2]), torch.tensor([0]),
        ...             ["<pad>", "good", "bad"], ["c"]).decode(0)
        ['good', 'bad']
        """
        return [self.vocab[j] for j in self.tokens[i, : int(self.lengths[i])].tolist()]


def _index_meta(meta: dict[str, Any], index: torch.Tensor | slice, n: int) -> dict[str, Any]:
    """Copy ``meta``, selecting rows of per-document tensors (first dimension ``n``) so they stay aligned."""
    return {k: (v[index] if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n else v) for k, v in meta.items()}


@dataclass
class DataSplits:
    """Train, validation and test :class:`TextDataset` sharing one vocabulary and class set."""

    train: TextDataset
    val: TextDataset
    test: TextDataset

    def __iter__(self) -> Iterator[tuple[str, TextDataset]]:
        yield from (("train", self.train), ("val", self.val), ("test", self.test))


def pad_sequences(seqs: list[list[int]], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad lists of token ids with 0 into ``(tokens [N, T], lengths [N])``.

    >>> pad_sequences([[3, 4], [5]])
    (tensor([[3, 4],
            [5, 0]]), tensor([2, 1]))
    """
    if not seqs:
        raise DataError("no sequences to pad (empty dataset)")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = int(width or lengths.max())
    out = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            out[i, : len(s)] = torch.tensor(s[:width], dtype=torch.long)
    return out, lengths.clamp(max=width)


SRC_SPECIALS = ("<pad>", "<eos>")
TGT_SPECIALS = ("<pad>", "<eos>", "<bos>")
PAD_ID, EOS_ID, BOS_ID = 0, 1, 2


@dataclass
class Seq2SeqDataset:
    """Source/target token pairs for sequence-to-sequence tasks.

    Conventions (shared by every task, model and analysis):

    - source vocabulary starts ``<pad>=0, <eos>=1``; target vocabulary starts ``<pad>=0, <eos>=1, <bos>=2``;
    - every sequence ends with one ``<eos>`` and is then padded with 0, so ``src[n, src_lengths[n] - 1] == 1``;
      lengths count the ``<eos>``. (The paper's "first pad acts as EOS" rule becomes "the ``<eos>`` position".)
    - ``<bos>`` never appears in ``tgt``; decoders feed it at step 0.

    Attributes:
        src: ``LongTensor [N, S]``; tgt: ``LongTensor [N, T]``; src_lengths, tgt_lengths: ``LongTensor [N]``.
        src_vocab, tgt_vocab: token strings.
        meta: facts about how the data was made (task name, offsets, dropped counts...).

    >>> import torch
    >>> ds = Seq2SeqDataset(torch.tensor([[3, 1, 0]]), torch.tensor([2]), torch.tensor([[3, 1]]),
    ...                     torch.tensor([2]), ["<pad>", "<eos>", "<x>", "I0"], ["<pad>", "<eos>", "<bos>", "O0"])
    >>> len(ds), ds.src_width, ds.tgt_width
    (1, 3, 2)
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt: torch.Tensor
    tgt_lengths: torch.Tensor
    src_vocab: list[str]
    tgt_vocab: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.src.shape[0] if self.src.dim() == 2 else -1
        if n <= 0:
            raise DataError("seq2seq dataset is empty or src is not [N, S]")
        for name, t in (("src_lengths", self.src_lengths), ("tgt", self.tgt), ("tgt_lengths", self.tgt_lengths)):
            if t.shape[0] != n:
                raise DataError(f"{name} has {t.shape[0]} rows, src has {n}")
        if int(self.src_lengths.min()) < 1 or int(self.tgt_lengths.min()) < 1:
            raise DataError("empty sequence: every source and target needs at least its <eos>")
        if int(self.src.max()) >= len(self.src_vocab) or int(self.tgt.max()) >= len(self.tgt_vocab):
            raise DataError("token id outside the vocabulary")

    def __len__(self) -> int:
        return int(self.src.shape[0])

    @property
    def src_width(self) -> int:
        """Padded source length S."""
        return int(self.src.shape[1])

    @property
    def tgt_width(self) -> int:
        """Padded target length T."""
        return int(self.tgt.shape[1])

    def subset(self, index: torch.Tensor | slice) -> Seq2SeqDataset:
        """Rows selected by ``index``."""
        return replace(self, src=self.src[index], src_lengths=self.src_lengths[index], tgt=self.tgt[index],
                       tgt_lengths=self.tgt_lengths[index], meta=_index_meta(self.meta, index, len(self)))
