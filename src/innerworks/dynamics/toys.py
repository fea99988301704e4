"""Hand-built recurrent networks whose fixed points and cycles are known exactly (for tests, docs and benchmarks).

Both are tanh ``nn.RNN`` modules without bias: ``h' = tanh(W_hh h + W_ih x)``.

- :func:`bistable_tanh`: each of ``n_bits`` memory units obeys ``h' = tanh(w h + g x)`` (w > 1), with optional
  ``extra_units`` driven by the memory units through a contracting block. At x = 0 each memory unit has three fixed
  points, ``−a, 0, +a`` with ``a = tanh(w a)``; ``±a`` are stable (slope ``w(1 − a²) < 1``), ``0`` is unstable
  (slope ``w``). So there are ``3^n`` fixed points, of which ``C(n, k)·2^(n−k)`` have ``k`` unstable modes: for
  ``n = 3``, 8 stable and 12/6/1 with 1/2/3 unstable modes (the flip-flop lattice). A pulse ``x_i = ±1`` sets bit i.
- :func:`line_attractor`: a linear map that keeps the first coordinate and shrinks the others by ``decay``: a
  continuous line of fixed points along the first axis (the ideal integrator), every other mode decaying.
- :func:`period_two_tanh`: the same with ``w → −w``: ``h' = −tanh(w h)``. The only fixed point is 0 (all modes
  unstable, λ = −w); each unit flips between ``+a`` and ``−a`` forever, so the bits are stored as stable PERIOD-2
  CYCLES (4 stable 2-cycles for 3 bits; 13 2-cycles in all). A fixed-point search alone misses every memory.

>>> import torch
>>> rnn = bistable_tanh(3, extra_units=2)
>>> rnn.hidden_size, expected_unstable_counts(3)
(5, {0: 8, 1: 12, 2: 6, 3: 1})
"""

from __future__ import annotations

from math import comb

import torch
from torch import nn

from innerworks.dynamics.step import Step, as_step
from innerworks.errors import InnerworksError


def _build(n_bits: int, w: float, extra_units: int, gain: float, generator: torch.Generator | None) -> nn.RNN:
    if n_bits < 1 or extra_units < 0:
        raise InnerworksError(f"need n_bits >= 1 and extra_units >= 0, got {n_bits}, {extra_units}")
    s = n_bits + extra_units
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    w_hh = torch.zeros(s, s, dtype=torch.float64)
    w_hh[:n_bits, :n_bits] = w * torch.eye(n_bits, dtype=torch.float64)
    if extra_units:
        # extra units: driven by the bits, contracting among themselves (spectral norm 0.5), so they add one
        # stable, unique response per memory state and change no count (the Jacobian is block triangular).
        a = torch.randn(extra_units, extra_units, generator=gen, dtype=torch.float64)
        w_hh[n_bits:, n_bits:] = 0.5 * a / torch.linalg.matrix_norm(a, ord=2)
        w_hh[n_bits:, :n_bits] = torch.randn(extra_units, n_bits, generator=gen, dtype=torch.float64)
    w_ih = torch.zeros(s, n_bits, dtype=torch.float64)
    w_ih[:n_bits] = gain * torch.eye(n_bits, dtype=torch.float64)
    rnn = nn.RNN(n_bits, s, bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(w_hh.float())
        rnn.weight_ih_l0.copy_(w_ih.float())
    return rnn


def bistable_tanh(n_bits: int = 3, w: float = 2.0, extra_units: int = 0, gain: float = 4.0,
                  generator: torch.Generator | None = None) -> nn.RNN:
    """An ``n_bits`` flip-flop with known fixed points: ``3^n_bits`` of them (see the module docstring).

    Args:
        n_bits: memory units (and input channels).
        w: self-coupling, > 1 for bistability (2.0: stable states at ±0.9575, eigenvalues 0.168 and 2).
        extra_units: extra units driven by the memory units (makes the state bigger and coupled).
        gain: input weight; a pulse ±1 sets the bit.
        generator: seeds the extra units' random weights.

    >>> bistable_tanh(2).weight_hh_l0.tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    if w <= 1:
        raise InnerworksError(f"w must be > 1 for bistable units, got {w}")
    return _build(n_bits, w, extra_units, gain, generator)


def period_two_tanh(n_bits: int = 3, w: float = 2.0, extra_units: int = 0, gain: float = 4.0,
                    generator: torch.Generator | None = None) -> nn.RNN:
    """A flip-flop that stores its bits as period-2 cycles: ``h' = −tanh(w h)`` per memory unit.

    >>> period_two_tanh(1).weight_hh_l0.tolist()
    [[-2.0]]
    """
    if w <= 1:
        raise InnerworksError(f"w must be > 1 for stable 2-cycles, got {w}")
    return _build(n_bits, -w, extra_units, gain, generator)


def stable_level(w: float = 2.0) -> float:
    """The stable magnitude ``a = tanh(w a) > 0`` (by fixed-point iteration).

    >>> round(stable_level(2.0), 6)
    0.957504
    """
    a = 1.0
    for _ in range(200):
        a = float(torch.tanh(torch.tensor(w * a, dtype=torch.float64)))
    return a


def line_attractor(size: int = 3, decay: float = 0.5) -> Step:
    """An autonomous linear map ``h' = diag(1, decay, …, decay) h``: every point of the first axis is fixed.

    >>> import torch
    >>> step = line_attractor(3, 0.5)
    >>> step(step.zero_inputs(1), torch.tensor([[2.0, 1.0, -1.0]])).tolist()
    [[2.0, 0.5, -0.5]]
    """
    if size < 1 or not 0 <= decay < 1:
        raise InnerworksError(f"line_attractor: need size >= 1 and 0 <= decay < 1, got size={size}, decay={decay}")
    scale = torch.full((size,), float(decay), dtype=torch.float64)
    scale[0] = 1.0

    def fn(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h * scale.to(h.dtype)

    return as_step(fn, state_size=size, input_size=0)


def expected_unstable_counts(n_bits: int) -> dict[int, int]:
    """``{k: number of fixed points of bistable_tanh(n_bits) with k unstable modes}`` = ``C(n, k)·2^(n−k)``.

    >>> expected_unstable_counts(2)
    {0: 4, 1: 4, 2: 1}
    """
    return {k: comb(n_bits, k) * 2 ** (n_bits - k) for k in range(n_bits + 1)}


__all__ = ["bistable_tanh", "expected_unstable_counts", "line_attractor", "period_two_tanh", "stable_level"]
