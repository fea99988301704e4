"""Recurrent text classifier: tokens -> embedding (or one-hot) -> one recurrent cell -> linear readout per step.

The loss reads the logits at the last valid token of each document. Read it top to bottom:

>>> import torch
>>> model = RNNClassifier(vocab_size=5, num_classes=3, cell="gru", hidden_size=8, embed_dim=None)
>>> tokens = torch.tensor([[1, 2, 3, 0], [4, 4, 4, 4]]); lengths = torch.tensor([3, 4])
>>> model(tokens).shape                           # logits at every step
torch.Size([2, 4, 3])
>>> model.last_logits(model(tokens), lengths).shape
torch.Size([2, 3])
>>> logits, cache = model.run_with_cache((tokens, lengths))   # names: innerworks.models.hooks.RNN_HOOK_NAMES
>>> sorted(cache)
['logits', 'rnn.hook_full_states', 'rnn.hook_input', 'rnn.hook_states']
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from innerworks.errors import InnerworksError
from innerworks.models.cells import RecurrentCell, make_cell
from innerworks.models.hooks import NamesFilter, run_rnn_with_cache
from innerworks.models.names import CellType


class RNNClassifier(nn.Module):
    """Token classifier with logits at every step.

    Args:
        vocab_size: number of token ids; id 0 is padding and maps to a zero input vector.
        num_classes: number of output classes (or labels, for multi-label data).
        cell: a :class:`~innerworks.models.cells.CellType` name (``vanilla``, ``gru``, ``lstm``, ``ugrnn``, ...).
        hidden_size: units in the cell.
        embed_dim: embedding size; ``None`` means one-hot inputs of size ``vocab_size`` (the synthetic-task setup).
        readout_bias: whether the linear readout has a bias (the paper's synthetic models have none).

    Attributes:
        cell: the :class:`~innerworks.models.cells.RecurrentCell`; its step ``cell(x, h)`` is what analyses use.
        embedding: ``nn.Embedding`` or None for one-hot inputs.
        readout: ``nn.Linear(state_size, num_classes)``; it reads the whole flat state.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: str | CellType = "gru", hidden_size: int = 128,
                 embed_dim: int | None = None, readout_bias: bool = True) -> None:
        super().__init__()
        if vocab_size < 2 or num_classes < 1:
            raise InnerworksError(f"need vocab_size >= 2 and num_classes >= 1, got {vocab_size}, {num_classes}")
        self.vocab_size = int(vocab_size)
        self.num_classes = int(num_classes)
        self.embed_dim = None if embed_dim is None else int(embed_dim)
        if self.embed_dim is None:
            self.embedding = None
            input_size = self.vocab_size
        else:
            self.embedding = nn.Embedding(self.vocab_size, self.embed_dim, padding_idx=0)
            nn.init.orthogonal_(self.embedding.weight)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
            input_size = self.embed_dim
        self.cell: RecurrentCell = make_cell(cell, input_size, hidden_size)
        self.readout = nn.Linear(self.cell.state_size, self.num_classes, bias=readout_bias)
        nn.init.xavier_normal_(self.readout.weight)

    @property
    def input_size(self) -> int:
        """Size of the vector the cell receives per token."""
        return self.cell.input_size

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Input vectors ``[B, T, input_size]`` for token ids ``[B, T]``; padding (id 0) gives zeros."""
        if tokens.dtype != torch.long:
            raise InnerworksError(f"tokens must be integer ids (torch.long), got {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise InnerworksError(f"token ids must be in 0..{self.vocab_size - 1}")
        if self.embedding is not None:
            return self.embedding(tokens)
        x = F.one_hot(tokens, self.vocab_size).to(self.readout.weight.dtype)
        x[..., 0] = 0.0
        return x

    def word_vectors(self) -> torch.Tensor:
        """The input vector of every token id, ``[vocab_size, input_size]`` (row 0, padding, is zero)."""
        ids = torch.arange(self.vocab_size, device=self.readout.weight.device)
        return self.embed(ids.unsqueeze(0)).squeeze(0)

    def states(self, tokens: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """All cell states ``[B, T, state_size]``."""
        return self.cell.scan(self.embed(tokens), h0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at every step, ``[B, T, num_classes]``."""
        return self.readout(self.states(tokens))

    @torch.no_grad()
    def run_with_cache(self, batch: Any, names_filter: NamesFilter = None,
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``[B, T, C]`` at every step and the cache of :data:`~innerworks.models.hooks.RNN_HOOK_NAMES`.

        ``batch`` is a :class:`~innerworks.data.types.TextDataset` (anything with ``tokens`` and ``lengths``) or a
        tuple ``(tokens, lengths[, labels])``, as the sequence-to-sequence models take theirs; the lengths are
        checked (each in ``1..T``). Every position runs (padding is the zero input), as in :meth:`forward`;
        :meth:`last_logits` picks each row's last valid token. ``names_filter`` works as for the seq2seq models
        (unknown listed names raise). Runs without gradients.

        >>> m = RNNClassifier(vocab_size=4, num_classes=2, hidden_size=3)
        >>> _, cache = m.run_with_cache((torch.tensor([[1, 2, 0]]), torch.tensor([2])), names_filter="logits")
        >>> list(cache), cache["logits"].shape
        (['logits'], torch.Size([1, 3, 2]))
        """
        tokens, _ = self.coerce_batch(batch)
        return run_rnn_with_cache(self.cell, self.readout, self.embed(tokens), names_filter)

    @staticmethod
    def coerce_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens [B, T], lengths [B])`` of a TextDataset or a ``(tokens, lengths[, labels])`` tuple, checked.

        >>> RNNClassifier.coerce_batch((torch.tensor([[3, 0]]), torch.tensor([3])))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        innerworks.errors.InnerworksError: lengths must be in 1..2 (the padded width), got 3...
        """
        if hasattr(batch, "tokens") and hasattr(batch, "lengths"):
            tokens, lengths = batch.tokens, batch.lengths
        elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            tokens, lengths = batch[0], batch[1]
        else:
            raise InnerworksError("batch must be a TextDataset or a tuple (tokens, lengths[, labels]), got "
                                  f"{type(batch).__name__}")
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
            raise InnerworksError(f"tokens must be a tensor [B, T], got {getattr(tokens, 'shape', type(tokens))}")
        lengths = torch.as_tensor(lengths)
        b, width = tokens.shape
        if lengths.shape != (b,):
            raise InnerworksError(f"lengths must have shape ({b},), got {tuple(lengths.shape)}")
        if b and (int(lengths.min()) < 1 or int(lengths.max()) > width):
            raise InnerworksError(f"lengths must be in 1..{width} (the padded width), got "
                                  f"{int(lengths.min())}..{int(lengths.max())}")
        return tokens, lengths

    @staticmethod
    def last_logits(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits at each document's last valid token: ``[B, C]``."""
        idx = (lengths.to(logits.device) - 1).clamp(min=0)
        return logits[torch.arange(logits.shape[0], device=logits.device), idx]

    @staticmethod
    def last_states(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """State at each document's last valid token: ``[B, S]``."""
        return RNNClassifier.last_logits(states, lengths)
