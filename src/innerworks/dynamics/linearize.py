"""Linearisation of a recurrent map around any states: ``h_t ≈ h* + J_rec (h_{t-1} − h*) + J_inp x_t``.

- :func:`linearize`: recurrent and input Jacobians, eigen-decomposition sorted by ``|λ|`` (largest first), right and
  left eigenvectors, time constants.
- :func:`eigsorted`: the decomposition alone. Convention (as renn): ``J = R diag(λ) Lᵀ`` with the right
  eigenvectors in the COLUMNS of ``R`` (unit norm) and ``L = inv(R)ᵀ``, so ``Lᵀ R = I`` and ``lᵢᵀ J = λᵢ lᵢᵀ``
  (no complex conjugation).
- :func:`time_constants`: ``τ = −1 / log|λ|`` in steps; ``inf`` at ``|λ| = 1``; negative for growing modes.
- :func:`input_projections`: each word's one-step push ``J_inp(h) · e_w`` (its linearised deflection).
- :func:`mode_projections` and :func:`readout_alignment`: how inputs and readouts line up with the left
  eigenvectors (a word's valence along mode i is ``lᵢᵀ J_inp e_w``).

>>> import torch
>>> from innerworks.dynamics.step import as_step
>>> step = as_step(torch.nn.RNN(2, 3))
>>> lin = linearize(step, torch.zeros(1, 3))
>>> lin.rec_jacobian.shape, lin.inp_jacobian.shape, lin.eigenvalues.shape
(torch.Size([1, 3, 3]), torch.Size([1, 3, 2]), torch.Size([1, 3]))
>>> bool((lin.eigenvalues.abs()[0, :-1] >= lin.eigenvalues.abs()[0, 1:]).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from innerworks.dynamics.step import Step, as_step
from innerworks.errors import InnerworksError


@dataclass
class Eigen:
    """Eigen-decomposition of a batch of matrices, sorted by ``|λ|`` descending.

    Attributes:
        eigenvalues: complex ``[K, S]``.
        right: complex ``[K, S, S]``, eigenvector i in column i (or None).
        left: complex ``[K, S, S]``, ``inv(right)ᵀ``: column i is the left eigenvector of λᵢ (or None).
    """

    eigenvalues: torch.Tensor
    right: torch.Tensor | None = None
    left: torch.Tensor | None = None


def eigsorted(jac: torch.Tensor, vectors: bool = True) -> Eigen:
    """Eigenvalues (and right/left eigenvectors) of ``jac [K, S, S]`` sorted by ``|λ|``, largest first.

    >>> import torch
    >>> e = eigsorted(torch.tensor([[[0.5, 0.0], [0.0, 2.0]]], dtype=torch.float64))
    >>> e.eigenvalues.real.tolist(), e.left[0].T @ e.right[0] == torch.eye(2)
    ([[2.0, 0.5]], tensor([[True, True],
            [True, True]]))
    """
    if jac.dim() != 3 or jac.shape[-1] != jac.shape[-2]:
        raise InnerworksError(f"expected square matrices [K, S, S], got {tuple(jac.shape)}")
    if not vectors:
        lam = torch.linalg.eigvals(jac)
        order = torch.argsort(lam.abs(), dim=-1, descending=True, stable=True)
        return Eigen(torch.gather(lam, -1, order))
    lam, vec = torch.linalg.eig(jac)
    order = torch.argsort(lam.abs(), dim=-1, descending=True, stable=True)
    lam = torch.gather(lam, -1, order)
    right = torch.gather(vec, -1, order.unsqueeze(-2).expand_as(vec))
    inv, info = torch.linalg.inv_ex(right)
    if bool((info != 0).any()):  # defective (non-diagonalisable) matrices: fall back to the pseudo-inverse
        bad = info != 0
        inv[bad] = torch.linalg.pinv(right[bad])
    return Eigen(lam, right, inv.transpose(-2, -1))


def time_constants(eigenvalues: torch.Tensor) -> torch.Tensor:
    """``τ = −1/log|λ|`` (steps): the e-folding time of each mode; ``inf`` at ``|λ| = 1``, negative if growing.

    >>> import torch
    >>> time_constants(torch.tensor([1.0, 0.5, 0.0]))
    tensor([   inf, 1.4427, 0.0000])
    """
    mag = eigenvalues.abs().to(torch.float64 if eigenvalues.dtype in (torch.complex128, torch.float64)
                               else torch.float32)
    tau = -1.0 / torch.log(mag)
    return torch.where(mag == 1.0, torch.full_like(tau, float("inf")), tau)


def n_unstable_modes(eigenvalues: torch.Tensor, margin: float = 1e-7) -> torch.Tensor:
    """Number of modes with ``|λ| > 1 + margin`` per row (a discrete map is unstable along those).

    >>> import torch
    >>> n_unstable_modes(torch.tensor([[2.0, 0.5], [1.0, 0.1]])).tolist()
    [1, 0]
    """
    return (eigenvalues.abs() > 1.0 + margin).sum(dim=-1)


@dataclass
class Linearization:
    """Jacobians and modes of a step at ``K`` states (see the module docstring for conventions).

    Attributes:
        states: ``[K, S]``; inputs: ``[K, I]`` (the input each Jacobian was taken at).
        rec_jacobian: ``[K, S, S]``; inp_jacobian: ``[K, S, I]``.
        eigenvalues: complex ``[K, S]``, sorted by ``|λ|``; right, left: complex ``[K, S, S]`` or None.
        time_constants: ``[K, S]`` in steps.
    """

    states: torch.Tensor
    inputs: torch.Tensor
    rec_jacobian: torch.Tensor
    inp_jacobian: torch.Tensor
    eigenvalues: torch.Tensor
    right: torch.Tensor | None
    left: torch.Tensor | None

    @property
    def time_constants(self) -> torch.Tensor:
        return time_constants(self.eigenvalues)

    @property
    def n_unstable(self) -> torch.Tensor:
        return n_unstable_modes(self.eigenvalues)


def _states_inputs(step: Step, states: torch.Tensor, inputs: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    states = torch.as_tensor(states)
    if states.dim() == 1:
        states = states.unsqueeze(0)
    if states.dim() != 2 or (step.state_size is not None and states.shape[1] != step.state_size):
        raise InnerworksError(f"states must be [K, {step.state_size}], got {tuple(states.shape)}")
    if not bool(torch.isfinite(states).all()):
        raise InnerworksError("states contain NaN or inf")
    h = step.cast(states)
    k = h.shape[0]
    if inputs is None:
        x = step.zero_inputs(k)
    else:
        x = step.cast(torch.as_tensor(inputs))
        if x.dim() == 1:
            x = x.unsqueeze(0).expand(k, -1)
        if x.dim() != 2 or x.shape[0] != k or (step.input_size is not None and x.shape[1] != step.input_size):
            raise InnerworksError(f"inputs must be [I] or [{k}, I] with I = {step.input_size}, got "
                                  f"{tuple(torch.as_tensor(inputs).shape)}")
    return h, x.contiguous()


def recurrent_jacobian(step: Any, states: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
    """``d step(x, h)/dh`` at each state: ``[K, S, S]`` (inputs default to zeros).

    >>> import torch
    >>> recurrent_jacobian(torch.nn.RNN(1, 2, bias=False), torch.zeros(1, 2)).shape
    torch.Size([1, 2, 2])
    """
    step = as_step(step)
    h, x = _states_inputs(step, states, inputs)
    return step.jacobian(x, h)


def input_jacobian(step: Any, states: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
    """``d step(x, h)/dx`` at each state: ``[K, S, I]``.

    >>> import torch
    >>> input_jacobian(torch.nn.GRU(4, 2), torch.zeros(3, 2)).shape
    torch.Size([3, 2, 4])
    """
    step = as_step(step)
    h, x = _states_inputs(step, states, inputs)
    return step.input_jacobian(x, h)


def linearize(step: Any, states: torch.Tensor, inputs: torch.Tensor | None = None, *,
              vectors: bool = True) -> Linearization:
    """Recurrent and input Jacobians at ``states [K, S]`` plus their sorted eigen-decomposition.

    Args:
        step: anything :func:`~innerworks.dynamics.step.as_step` accepts.
        states: where to linearise (e.g. ``fixed_points.points``).
        inputs: the constant input x*, ``[I]`` or ``[K, I]``; default zeros.
        vectors: also compute right and left eigenvectors (``K·S²`` complex numbers each).

    >>> import torch
    >>> lin = linearize(torch.nn.GRU(2, 4), torch.zeros(2, 4))
    >>> lin.left.shape, lin.time_constants.shape
    (torch.Size([2, 4, 4]), torch.Size([2, 4]))
    """
    step = as_step(step)
    h, x = _states_inputs(step, states, inputs)
    rec = step.jacobian(x, h)
    inp = step.input_jacobian(x, h) if x.shape[1] > 0 else torch.zeros(h.shape[0], h.shape[1], 0, dtype=h.dtype)
    eig = eigsorted(rec, vectors=vectors)
    return Linearization(h, x, rec, inp, eig.eigenvalues, eig.right, eig.left)


def input_projections(step: Any, states: torch.Tensor, word_vectors: torch.Tensor,
                      inputs: torch.Tensor | None = None, chunk_elements: int = 2**24) -> torch.Tensor:
    """Each word's linearised one-step push at each state: ``J_inp(h_k) · e_w``, shape ``[K, V, S]``.

    Args:
        word_vectors: ``[V, I]``, the input vector of each word (``model.word_vectors()``, or one-hots).
        chunk_elements: bound on the ``K_chunk·S·I`` Jacobian elements held at once.

    >>> import torch
    >>> rnn = torch.nn.RNN(3, 2, bias=False)
    >>> p = input_projections(rnn, torch.zeros(1, 2), torch.eye(3))
    >>> torch.allclose(p[0].float(), rnn.weight_ih_l0.T)
    True
    """
    step = as_step(step)
    h, x = _states_inputs(step, states, inputs)
    emb = step.cast(torch.as_tensor(word_vectors))
    if emb.dim() != 2 or emb.shape[1] != x.shape[1]:
        raise InnerworksError(f"word_vectors must be [V, {x.shape[1]}], got {tuple(emb.shape)}")
    per_state = h.shape[1] * max(x.shape[1], 1)
    chunk = max(1, chunk_elements // per_state)
    out = []
    for s in range(0, h.shape[0], chunk):
        jin = step.input_jacobian(x[s:s + chunk], h[s:s + chunk])  # [k, S, I]
        out.append(torch.einsum("ksi,vi->kvs", jin, emb))
    return torch.cat(out)


def mode_projections(left: torch.Tensor, vectors: torch.Tensor, n_modes: int | None = None) -> torch.Tensor:
    """Components of state-space vectors along the left eigenvectors: ``lᵢᵀ v``.

    Args:
        left: ``[K, S, S]`` left eigenvectors (columns), e.g. ``Linearization.left``.
        vectors: ``[K, V, S]`` per-state vectors (e.g. :func:`input_projections`) or ``[V, S]`` shared ones.
        n_modes: keep the first (slowest) modes only.

    Returns:
        complex ``[K, n_modes, V]``: the amount each vector drives each mode (take ``.real`` for real modes).

    >>> import torch
    >>> left = torch.eye(2, dtype=torch.complex128).unsqueeze(0)
    >>> mode_projections(left, torch.tensor([[3.0, 4.0]])).real.tolist()
    [[[3.0], [4.0]]]
    """
    lm = left if n_modes is None else left[..., :n_modes]
    v = vectors.to(lm.dtype)
    if v.dim() == 2:
        return torch.einsum("ksm,vs->kmv", lm, v)
    return torch.einsum("ksm,kvs->kmv", lm, v)


def readout_alignment(left: torch.Tensor, readout: torch.Tensor, n_modes: int | None = None) -> torch.Tensor:
    """``|cos|`` between each left eigenvector and each readout row: ``[K, n_modes, C]`` in ``[0, 1]``.

    A slow mode whose left eigenvector lines up with a readout (cos near 1) is one the readout integrates.

    >>> import torch
    >>> left = torch.eye(2, dtype=torch.complex128).unsqueeze(0)
    >>> readout_alignment(left, torch.tensor([[1.0, 1.0]])).squeeze().tolist()
    [0.7071067811865475, 0.7071067811865475]
    """
    readout = torch.as_tensor(readout)
    if readout.dim() != 2 or readout.shape[1] != left.shape[-2]:
        raise InnerworksError(f"readout must be [C, {left.shape[-2]}], got {tuple(readout.shape)}")
    lm = left if n_modes is None else left[..., :n_modes]
    w = readout.to(lm.dtype)
    dots = torch.einsum("ksm,cs->kmc", lm, w).abs()
    norms = lm.abs().pow(2).sum(-2).sqrt().unsqueeze(-1) * w.abs().pow(2).sum(-1).sqrt()
    return (dots / norms.clamp_min(1e-300)).real.to(torch.float64)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|cos|`` between complex columns ``a [K, S]`` and a real vector ``b [S]``."""
    b = b.to(a.dtype)
    dots = (a @ b).abs()
    return (dots / (a.abs().pow(2).sum(-1).sqrt() * b.abs().pow(2).sum().sqrt()).clamp_min(1e-300)).real.double()


def linearize_modes(model: Any, points: torch.Tensor, readout: torch.Tensor, n_modes: int = 3,
                    chunk: int = 32) -> dict[str, Any]:
    """Eigenvalues and the slowest modes' left eigenvectors at ``points`` (zero input), and their readout alignment.

    Chunked so only ``n_modes`` left vectors per point are kept. ``readout`` is ``[C, S]``; the alignment direction
    is ``w_last − w_first`` (for 2 classes, the logit-difference direction; for ordered classes, most positive minus
    most negative). ``right_alignment`` is ``|cos|`` between the slowest mode's right eigenvector and that direction.

    >>> import torch
    >>> rnn = torch.nn.RNN(2, 3, bias=False)
    >>> out = linearize_modes(rnn, torch.zeros(2, 3), torch.eye(3)[:2])
    >>> sorted(out)[:3], out["eigenvalues"].shape
    (['alignment', 'eigenvalues', 'left'], torch.Size([2, 3]))
    """
    step = as_step(model)
    pts = step.cast(points)
    w = readout.detach().to(torch.float64).cpu()
    direction = w[-1] - w[0]
    vals, lefts, rights = [], [], []
    for i in range(0, pts.shape[0], chunk):
        h = pts[i:i + chunk]
        eig = eigsorted(step.jacobian(step.zero_inputs(h.shape[0]), h), vectors=True)
        vals.append(eig.eigenvalues.cpu())
        lefts.append(eig.left[..., :n_modes].cpu())
        rights.append(eig.right[..., 0].cpu())
    ev = torch.cat(vals) if vals else torch.zeros(0, pts.shape[1], dtype=torch.complex128)
    left = torch.cat(lefts) if lefts else torch.zeros(0, pts.shape[1], n_modes, dtype=torch.complex128)
    align = torch.stack([_cos(left[:, :, m], direction) for m in range(left.shape[-1])], 1) if len(left) else \
        torch.zeros(0, n_modes, dtype=torch.float64)
    per_class = torch.stack([_cos(left[:, :, 0], w[c]) for c in range(w.shape[0])], 1) if len(left) else \
        torch.zeros(0, w.shape[0], dtype=torch.float64)
    # Beside it, not in its place: the slowest mode's *right* eigenvector (the line's direction) against the readout.
    right = _cos(torch.cat(rights), direction) if rights else torch.zeros(0, dtype=torch.float64)
    r1 = torch.cat(rights) if rights else torch.zeros(0, pts.shape[1], dtype=torch.complex128)
    return {"eigenvalues": ev, "left": left, "alignment": align, "per_class_alignment": per_class,
            "right_alignment": right, "right1": r1}

__all__ = [
    "Eigen",
    "linearize_modes",
    "Linearization",
    "eigsorted",
    "input_jacobian",
    "input_projections",
    "linearize",
    "mode_projections",
    "n_unstable_modes",
    "readout_alignment",
    "recurrent_jacobian",
    "time_constants",
]
