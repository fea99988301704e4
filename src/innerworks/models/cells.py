"""Recurrent cells with one batched step API, ``h_next = cell(x, h)``.

Every cell keeps its whole state in one flat vector (LSTM: ``[h; c]``), so every analysis sees one state vector.
Each cell has two paths that share the same weights:

- ``cell(x, h)``: one step written with plain batched primitives (matmul, sigmoid, tanh), safe under
  ``torch.func.vmap``/``jacrev`` (fused cell ops have no vmap batching rule and fall back to a slow loop).
- ``cell.scan(xs, h0)``: a whole sequence, fast. GRU/vanilla run the fused ``nn.GRU``/``nn.RNN`` kernels. LSTM
  (its weights live in an ``nn.LSTM``, whose kernel returns only h per step, not the c the flat state needs), UGRNN
  and renn's GRU precompute the input projections of all steps in one matmul and run the recurrence as one autograd
  node with a hand-written backward (:mod:`innerworks.models._scan`): a few kernels per step, no autograd graph per
  step, and a per-token cost that does not grow with the sequence length.

Equations (PyTorch conventions for the fused cells; UGRNN follows renn):

- vanilla: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``
- GRU:  ``r, z = σ(W_i{r,z} x + b_i + W_h{r,z} h + b_h)``, ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``,
  ``h' = (1 − z) ⊙ n + z ⊙ h``
- LSTM: ``i, f, o = σ(·)``, ``g = tanh(·)``, ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``; state ``[h; c]``
- UGRNN: ``u = σ(A_u x + W_u h + b_u + gate_bias)``, ``c = tanh(A_c x + W_c h + b_c)``, ``h' = u ⊙ h + (1 − u) ⊙ c``

>>> import torch
>>> cell = make_cell("gru", input_size=3, hidden_size=4)
>>> h = cell.initial_state(2); x = torch.randn(2, 3)
>>> cell(x, h).shape
torch.Size([2, 4])
>>> cell.scan(torch.randn(2, 5, 3)).shape
torch.Size([2, 5, 4])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from innerworks.errors import InnerworksError
from innerworks.models._scan import lstm_scan, renn_gru_scan, ugrnn_scan
from innerworks.models.names import CellType

CELL_TYPES: tuple[str, ...] = CellType.values()
"""Every cell name, in :class:`CellType` order."""


def _fan_in_normal_(weight: torch.Tensor, blocks: int) -> None:
    """renn's variance_scaling(1, fan_in, normal): std 1/sqrt(fan_in), per gate block."""
    with torch.no_grad():
        for chunk in weight.chunk(blocks, dim=0):
            chunk.normal_(0.0, 1.0 / math.sqrt(weight.shape[1]))


class RecurrentCell(nn.Module):
    """Base class: a batched step ``forward(x, h) -> h_next`` plus a fast ``scan``.

    Attributes:
        input_size: size of each input vector x.
        hidden_size: number of units.
        state_size: length of the flat state vector (``2 * hidden_size`` for LSTM).
        h0: trainable initial state, shape ``[state_size]``.
    """

    kind: str = "base"

    def __init__(self, input_size: int, hidden_size: int, state_size: int | None = None) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise InnerworksError(f"cell sizes must be positive, got input {input_size}, hidden {hidden_size}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.state_size = int(state_size or hidden_size)
        self.h0 = nn.Parameter(torch.zeros(self.state_size))

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The trainable initial state repeated ``batch_size`` times: ``[B, state_size]``."""
        return self.h0.unsqueeze(0).expand(batch_size, -1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def scan(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Run the cell over ``xs [B, T, input_size]``; return all states ``[B, T, state_size]``.

        The base implementation steps ``forward``; subclasses override it with a fused or precomputed path.
        """
        h = self.initial_state(xs.shape[0]) if h0 is None else h0
        out = []
        for t in range(xs.shape[1]):
            h = self(xs[:, t], h)
            out.append(h)
        return torch.stack(out, dim=1)

    def hidden(self, states: torch.Tensor) -> torch.Tensor:
        """The output part of a state (LSTM: ``h`` of ``[h; c]``; other cells: the state itself)."""
        return states

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, state_size={self.state_size}"


class _FusedCell(RecurrentCell):
    """A cell whose weights live in a one-layer fused ``nn.RNN``/``nn.GRU``/``nn.LSTM``."""

    gates: int = 1

    def _init_weights(self) -> None:
        _fan_in_normal_(self.rnn.weight_ih_l0, self.gates)
        _fan_in_normal_(self.rnn.weight_hh_l0, self.gates)
        nn.init.zeros_(self.rnn.bias_ih_l0)
        nn.init.zeros_(self.rnn.bias_hh_l0)

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.rnn
        return r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0


class VanillaCell(_FusedCell):
    """``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``; trains through the fused ``nn.RNN`` kernel.

    >>> VanillaCell(2, 3)(torch.zeros(1, 2), torch.zeros(1, 3)).shape
    torch.Size([1, 3])
    """

    kind = "vanilla"

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True, nonlinearity="tanh")
        self._init_weights()

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        w_ih, w_hh, b_ih, b_hh = self._weights()
        return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)

    def scan(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        h = self.initial_state(xs.shape[0]) if h0 is None else h0
        out, _ = self.rnn(xs, h.unsqueeze(0).contiguous())
        return out


class GRUCell(_FusedCell):
    """Gated recurrent unit (PyTorch gate order r, z, n); trains through the fused ``nn.GRU`` kernel.

    >>> GRUCell(2, 3)(torch.zeros(4, 2), torch.zeros(4, 3)).shape
    torch.Size([4, 3])
    """

    kind = "gru"
    gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self._init_weights()

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        w_ih, w_hh, b_ih, b_hh = self._weights()
        gi = x @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1.0 - z) * n + z * h

    def scan(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        h = self.initial_state(xs.shape[0]) if h0 is None else h0
        out, _ = self.rnn(xs, h.unsqueeze(0).contiguous())
        return out


class LSTMCell(_FusedCell):
    """Long short-term memory with flat state ``[h; c]`` (gate order i, f, g, o; forget bias 1).

    The weights are those of a one-layer ``nn.LSTM``; ``scan`` runs :func:`~innerworks.models._scan.lstm_scan`
    (the fused kernel returns only h per step, and recovering c afterwards cost more than the whole recurrence).

    >>> LSTMCell(2, 3).state_size
    6
    """

    kind = "lstm"
    gates = 4

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        RecurrentCell.__init__(self, input_size, hidden_size, state_size=2 * hidden_size)
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        self._init_weights()
        with torch.no_grad():
            self.rnn.bias_ih_l0[hidden_size:2 * hidden_size].fill_(forget_bias)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        w_ih, w_hh, b_ih, b_hh = self._weights()
        hh, cc = h[..., : self.hidden_size], h[..., self.hidden_size:]
        gates = x @ w_ih.T + b_ih + hh @ w_hh.T + b_hh
        i, f, g, o = gates.chunk(4, dim=-1)
        c_next = torch.sigmoid(f) * cc + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return torch.cat([h_next, c_next], dim=-1)

    def scan(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        h = self.initial_state(xs.shape[0]) if h0 is None else h0
        w_ih, w_hh, b_ih, b_hh = self._weights()
        gi = F.linear(xs.transpose(0, 1), w_ih, b_ih + b_hh)  # time-major input projections, one matmul
        return lstm_scan(gi, h, w_hh)

    def hidden(self, states: torch.Tensor) -> torch.Tensor:
        return states[..., : self.hidden_size]


class UGRNNCell(RecurrentCell):
    """Update-gate RNN (renn): one gate, one candidate; no fused kernel, so ``scan`` precomputes input projections
    and runs :func:`~innerworks.models._scan.ugrnn_scan`.

    >>> UGRNNCell(2, 3).scan(torch.zeros(1, 4, 2)).shape
    torch.Size([1, 4, 3])
    """

    kind = "ugrnn"
    gates = 2  # blocks of the stacked weights: update, candidate
    _scan_fn = staticmethod(ugrnn_scan)

    def __init__(self, input_size: int, hidden_size: int, gate_bias: float = 0.0) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(self.gates * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(self.gates * hidden_size))
        self.gate_bias = float(gate_bias)
        _fan_in_normal_(self.weight_ih, self.gates)
        _fan_in_normal_(self.weight_hh, self.gates)

    def _update(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g = gi + h @ self.weight_hh.T
        u_pre, c_pre = g.chunk(2, dim=-1)
        u = torch.sigmoid(u_pre + self.gate_bias)
        return u * h + (1.0 - u) * torch.tanh(c_pre)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self._update(x @ self.weight_ih.T + self.bias, h)

    def scan(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        h = self.initial_state(xs.shape[0]) if h0 is None else h0
        gi = F.linear(xs.transpose(0, 1), self.weight_ih, self.bias)  # time-major input projections, one matmul
        return self._scan_fn(gi, h, self.weight_hh, self.gate_bias)


class RennGRUCell(UGRNNCell):
    """The GRU of renn (the attention notes' author code): the reset gate scales the state *before* the recurrent
    matrix, ``c = tanh(W_c x + U_c (r ⊙ h) + b_c)``, where PyTorch's GRU computes ``tanh(W_n x + r ⊙ (U_n h + b))``;
    ``h' = u ⊙ h + (1 − u) ⊙ c``. Fan-in normal weights, zero biases. No fused kernel: ``scan`` runs
    :func:`~innerworks.models._scan.renn_gru_scan`.

    >>> RennGRUCell(2, 3).scan(torch.zeros(1, 4, 2)).shape
    torch.Size([1, 4, 3])
    """

    kind = "gru_renn"
    gates = 3  # update, reset, candidate
    _scan_fn = staticmethod(renn_gru_scan)

    def _update(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        i_u, i_r, i_c = gi.chunk(3, dim=-1)
        w_u, w_r, w_c = self.weight_hh.chunk(3, dim=0)
        u = torch.sigmoid(i_u + h @ w_u.T + self.gate_bias)
        r = torch.sigmoid(i_r + h @ w_r.T)
        return u * h + (1.0 - u) * torch.tanh(i_c + (r * h) @ w_c.T)


_CELLS: dict[str, type[RecurrentCell]] = {
    cls.kind: cls for cls in (VanillaCell, GRUCell, LSTMCell, UGRNNCell, RennGRUCell)}
assert set(_CELLS) == set(CELL_TYPES), "every CellType needs exactly one cell class (and its kind)"


def make_cell(kind: str | CellType, input_size: int, hidden_size: int) -> RecurrentCell:
    """Build a cell by name: ``vanilla``, ``gru``, ``lstm``, ``ugrnn`` or ``gru_renn`` (:class:`RennGRUCell`).

    >>> make_cell("lstm", 3, 8).state_size
    16
    >>> make_cell("elman", 3, 8)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: unknown cell 'elman'; expected one of vanilla, gru, lstm, ugrnn, gru_renn
    """
    try:
        cls = _CELLS[str(kind).lower()]
    except KeyError:
        raise InnerworksError(f"unknown cell {kind!r}; expected one of {', '.join(CELL_TYPES)}") from None
    return cls(input_size, hidden_size)


__all__ = [
    "CELL_TYPES",
    "CellType",
    "RecurrentCell",
    "VanillaCell",
    "GRUCell",
    "LSTMCell",
    "UGRNNCell",
    "RennGRUCell",
    "make_cell",
]
