"""Recurrent text classifier: tokens -> embedding (or one-hot) -> one recurrent cell -> linear readout per step.

The loss reads the logits at the last valid token of each document. Read it top to bottom:

>>> import torch
>>> model = RNNClassifier(vocab_size=5, num_classes=3, cell="gru", hidden_size=8, embed_dim=None)
>>> tokens = torch.tensor([[1, 2, 3, 0], [4, 4, 4, 4]]); lengths = torch.tensor([3, 4])
>>> model(tokens).shape                           # logits at every step
torch.Size([2, 4, 3])
>>> model.last_logits(model(tokens), lengths).shape
torch.Size([2, 3])
>>> logits, cache = model.run_with_cache(tokens)
>>> sorted(cache)
['embed', 'states']
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from innerworks.errors import InnerworksError
from innerworks.models.cells import RecurrentCell, make_cell


class RNNClassifier(nn.Module):
    """Token classifier with logits at every step.

    Args:
        vocab_size: number of token ids; id 0 is padding and maps to a zero input vector.
        num_classes: number of output classes (or labels, for multi-label data).
        cell: ``vanilla``, ``gru``, ``lstm`` or ``ugrnn``.
        hidden_size: units in the cell.
        embed_dim: embedding size; ``None`` means one-hot inputs of size ``vocab_size`` (the synthetic-task setup).
        readout_bias: whether the linear readout has a bias (the paper's synthetic models have none).

    Attributes:
        cell: the :class:`~innerworks.models.cells.RecurrentCell`; its step ``cell(x, h)`` is what analyses use.
        embedding: ``nn.Embedding`` or None for one-hot inputs.
        readout: ``nn.Linear(state_size, num_classes)``; it reads the whole flat state.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: str = "gru", hidden_size: int = 128,
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

    def run_with_cache(self, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits plus a cache of named activations: ``embed`` ``[B,T,I]`` and ``states`` ``[B,T,S]``."""
        x = self.embed(tokens)
        hs = self.cell.scan(x)
        return self.readout(hs), {"embed": x, "states": hs}

    @staticmethod
    def last_logits(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits at each document's last valid token: ``[B, C]``."""
        idx = (lengths.to(logits.device) - 1).clamp(min=0)
        return logits[torch.arange(logits.shape[0], device=logits.device), idx]

    @staticmethod
    def last_states(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """State at each document's last valid token: ``[B, S]``."""
        return RNNClassifier.last_logits(states, lengths)
