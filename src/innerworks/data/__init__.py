"""Data: synthetic evidence-integration tasks, natural-text loaders, tokenisers, seq2seq tasks."""

from innerworks.data.types import PAD, UNK, DataSplits, Seq2SeqDataset, TextDataset, pad_sequences

__all__ = ["PAD", "UNK", "DataSplits", "Seq2SeqDataset", "TextDataset", "pad_sequences"]
