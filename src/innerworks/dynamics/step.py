"""One recurrent map for every analysis: ``h_next = step(x, h)``, batched, in float64, with Jacobians.

:func:`as_step` turns any recurrent thing into a :class:`Step`:

- innerworks cells (``vanilla``, ``gru``, ``lstm``, ``ugrnn``, ``gru_renn``) and models holding one (``RNNClassifier``);
- PyTorch ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (one layer, one direction) and ``nn.RNNCell`` / ``nn.GRUCell`` /
  ``nn.LSTMCell``. Their steps are rewritten from the weights with plain batched primitives, because the fused cell
  kernels have no ``torch.func.vmap`` batching rule (a Jacobian through ``nn.GRUCell`` falls back to a per-sample
  loop, minutes instead of milliseconds). LSTM states are flat ``[h; c]``;
- any other ``nn.Module`` whose ``forward(x, h)`` returns the next state, or a plain function ``fn(x, h)``.

Modules are deep-copied and cast to ``dtype`` (float64 by default, so residuals can be certified below 1e-8); the
caller's model is never touched. Known cells get closed-form recurrent Jacobians (``[B, S, S]`` with a few
broadcast products, 7-16x faster than autodiff); everything else uses ``torch.func.vmap(jacrev)``, and falls back
to one backward pass per state unit when the step is not vmap-safe.

>>> import torch
>>> gru = torch.nn.GRU(3, 5)
>>> step = as_step(gru)
>>> step.state_size, step.input_size, step.dtype
(5, 3, torch.float64)
>>> h = torch.randn(4, 5, dtype=torch.float64); x = step.zero_inputs(4)
>>> step(x, h).shape, step.jacobian(x, h).shape
(torch.Size([4, 5]), torch.Size([4, 5, 5]))
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from innerworks.errors import InnerworksError

StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------------------------------
# Cell maps written from weights: batched primitives only, with closed-form Jacobians.
# --------------------------------------------------------------------------------------------------------------------


def _affine(x: torch.Tensor, w_ih_t: torch.Tensor, h: torch.Tensor, w_hh_t: torch.Tensor,
            b: torch.Tensor) -> torch.Tensor:
    """``x W_ihᵀ + h W_hhᵀ + b`` from the transposed weights (two fused multiply-adds on ``[B, ·]`` batches)."""
    if x.dim() == 2 and h.dim() == 2:
        return torch.addmm(torch.addmm(b, x, w_ih_t), h, w_hh_t)
    return x @ w_ih_t + h @ w_hh_t + b


class _CellMap(nn.Module):
    """A one-layer recurrent map stored as plain buffers ``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``b [G*H]``.

    ``b_hn`` is kept apart for the GRU, whose candidate adds ``r * (W_hn h + b_hn)``.
    """

    kind = "base"
    gates = 1
    gated_factors: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]] | None = None
    """Maps whose Jacobian has the gated form ``Σ_g diag(coef_g) W_g + diag(d)`` (``W_hh = [W_1; …]``) define
    ``gated_factors(x, h) -> (F(h) − h, coef [.., G·S], d [.., S])``: :meth:`jacobian` builds the matrix from them,
    and matrix-free solvers take ``J v`` and ``Jᵀ u`` from them with one product by ``W_hh`` each."""

    def __init__(self, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor | None,
                 b_hh: torch.Tensor | None) -> None:
        super().__init__()
        g_h = w_hh.shape[0]
        zeros = torch.zeros(g_h, dtype=w_hh.dtype, device=w_hh.device)
        b_ih = zeros if b_ih is None else b_ih
        b_hh = zeros if b_hh is None else b_hh
        self.register_buffer("w_ih", w_ih.detach().clone())
        self.register_buffer("w_hh", w_hh.detach().clone())
        self.register_buffer("b_ih", b_ih.detach().clone())
        self.register_buffer("b_hh", b_hh.detach().clone())
        # both biases, where the cell adds them; summed in float64 (the map is cast to its working dtype after this)
        self.register_buffer("b", b_ih.detach().double() + b_hh.detach().double())
        self.register_buffer("w_ih_t", w_ih.detach().T.contiguous())  # transposed copies for the fused products
        self.register_buffer("w_hh_t", w_hh.detach().T.contiguous())
        self.hidden_size = w_hh.shape[1]
        self.input_size = w_ih.shape[1]

    @property
    def state_size(self) -> int:
        return self.hidden_size

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class _VanillaMap(_CellMap):
    """``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh or relu."""

    kind = "vanilla"

    def __init__(self, *weights: Any, nonlinearity: str = "tanh") -> None:
        super().__init__(*weights)
        if nonlinearity not in ("tanh", "relu"):
            raise InnerworksError(f"unsupported RNN nonlinearity {nonlinearity!r}; expected tanh or relu")
        self.nonlinearity = nonlinearity

    def _pre(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return _affine(x, self.w_ih_t, h, self.w_hh_t, self.b)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        a = self._pre(x, h)
        return torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)

    def gated_factors(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = self._pre(x, h)
        f = torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)
        d = 1.0 - f * f if self.nonlinearity == "tanh" else (a > 0).to(a.dtype)
        return f - h, d, torch.zeros_like(h)

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.gated_factors(x, h)[1].unsqueeze(-1) * self.w_hh


class _GRUMap(_CellMap):
    """PyTorch GRU (gate order r, z, n): ``h' = (1 - z) n + z h``, ``n = tanh(i_n + r (W_hn h + b_hn))``."""

    kind = "gru"
    gates = 3

    def _parts(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gi = torch.addmm(self.b_ih, x, self.w_ih_t) if x.dim() == 2 else x @ self.w_ih_t + self.b_ih
        gh = torch.addmm(self.b_hh, h, self.w_hh_t) if h.dim() == 2 else h @ self.w_hh_t + self.b_hh
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return r, z, n, h_n

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        _, z, n, _ = self._parts(x, h)
        return (1.0 - z) * n + z * h

    def gated_factors(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r, z, n, h_n = self._parts(x, h)
        dn = (1.0 - z) * (1.0 - n * n)  # d h'/d (candidate pre-activation)
        coef = torch.cat([dn * h_n * r * (1.0 - r), (h - n) * z * (1.0 - z), dn * r], dim=-1)  # blocks r, z, n
        return (1.0 - z) * (n - h), coef, z

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        _, coef, z = self.gated_factors(x, h)
        c_r, c_z, c_n = coef.chunk(3, dim=-1)
        w_r, w_z, w_n = self.w_hh.chunk(3, dim=0)
        # In-place accumulation: the [B, S, S] temporaries, not the flops, dominate the cost.
        jac = torch.mul(c_r.unsqueeze(-1), w_r)
        jac.addcmul_(c_n.unsqueeze(-1), w_n)
        jac.addcmul_(c_z.unsqueeze(-1), w_z)
        jac.diagonal(dim1=-2, dim2=-1).add_(z)
        return jac


class _LSTMMap(_CellMap):
    """PyTorch LSTM (gate order i, f, g, o) on the flat state ``[h; c]``."""

    kind = "lstm"
    gates = 4

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size

    def _parts(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hh, cc = h[..., : self.hidden_size], h[..., self.hidden_size:]
        gates = _affine(x, self.w_ih_t, hh, self.w_hh_t, self.b)
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c_next = f * cc + i * g
        return i, f, g, o, cc, c_next

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        _, _, _, o, _, c_next = self._parts(x, h)
        return torch.cat([o * torch.tanh(c_next), c_next], dim=-1)

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        i, f, g, o, cc, c_next = self._parts(x, h)
        w_i, w_f, w_g, w_o = self.w_hh.chunk(4, dim=0)
        tc = torch.tanh(c_next)
        dc_dh = torch.mul((cc * f * (1 - f)).unsqueeze(-1), w_f)
        dc_dh.addcmul_((g * i * (1 - i)).unsqueeze(-1), w_i).addcmul_((i * (1 - g * g)).unsqueeze(-1), w_g)
        dh_dc_next = o * (1 - tc * tc)
        dh_dh = torch.mul((tc * o * (1 - o)).unsqueeze(-1), w_o).addcmul_(dh_dc_next.unsqueeze(-1), dc_dh)
        top = torch.cat([dh_dh, torch.diag_embed(dh_dc_next * f)], dim=-1)
        bottom = torch.cat([dc_dh, torch.diag_embed(f)], dim=-1)
        return torch.cat([top, bottom], dim=-2)


class _UGRNNMap(_CellMap):
    """renn UGRNN: ``u = σ(A_u x + W_u h + b_u + gate_bias)``, ``c = tanh(A_c x + W_c h + b_c)``,
    ``h' = u h + (1 - u) c``."""

    kind = "ugrnn"
    gates = 2

    def __init__(self, *weights: Any, gate_bias: float = 0.0) -> None:
        super().__init__(*weights)
        self.gate_bias = float(gate_bias)

    def _parts(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = _affine(x, self.w_ih_t, h, self.w_hh_t, self.b)
        u_pre, c_pre = g.chunk(2, dim=-1)
        return torch.sigmoid(u_pre + self.gate_bias), torch.tanh(c_pre)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        u, c = self._parts(x, h)
        return u * h + (1.0 - u) * c

    def gated_factors(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        u, c = self._parts(x, h)
        coef = torch.cat([(h - c) * u * (1.0 - u), (1.0 - u) * (1.0 - c * c)], dim=-1)  # blocks u, c
        return (1.0 - u) * (c - h), coef, u

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        _, coef, u = self.gated_factors(x, h)
        c_u, c_c = coef.chunk(2, dim=-1)
        w_u, w_c = self.w_hh.chunk(2, dim=0)
        jac = torch.mul(c_u.unsqueeze(-1), w_u)
        jac.addcmul_(c_c.unsqueeze(-1), w_c)
        jac.diagonal(dim1=-2, dim2=-1).add_(u)
        return jac


class _RennGRUMap(_UGRNNMap):
    """renn GRU (blocks u, r, c): ``u = σ(A_u x + W_u h + b_u + gate_bias)``, ``r = σ(A_r x + W_r h + b_r)``,
    ``c = tanh(A_c x + W_c (r ⊙ h) + b_c)``, ``h' = u h + (1 - u) c`` (the reset gate acts before ``W_c``)."""

    kind = "gru_renn"
    gates = 3
    gated_factors = None  # the reset gate acts inside W_c (a W_c diag(·) W_r term): not the gated form

    def _gates(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gi = x @ self.w_ih.T + self.b
        i_u, i_r, i_c = gi.chunk(3, dim=-1)
        w_u, w_r, w_c = self.w_hh.chunk(3, dim=0)
        u = torch.sigmoid(i_u + h @ w_u.T + self.gate_bias)
        r = torch.sigmoid(i_r + h @ w_r.T)
        c = torch.tanh(i_c + (r * h) @ w_c.T)
        return u, r, c

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        u, _, c = self._gates(x, h)
        return u * h + (1.0 - u) * c

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        u, r, c = self._gates(x, h)
        w_u, w_r, w_c = self.w_hh.chunk(3, dim=0)
        dc = ((1 - u) * (1 - c * c)).unsqueeze(-1)  # d h'/d (candidate pre-activation)
        # d pre_c / d h = W_c diag(r) + W_c diag(h r (1 - r)) W_r: the second term is one [B·S, S] @ [S, S] product
        jac = torch.matmul(w_c * (h * r * (1 - r)).unsqueeze(-2), w_r)
        jac.add_(w_c * r.unsqueeze(-2)).mul_(dc)
        jac.addcmul_(((h - c) * u * (1 - u)).unsqueeze(-1), w_u)
        jac.diagonal(dim1=-2, dim2=-1).add_(u)
        return jac


def _torch_rnn_map(module: nn.Module) -> _CellMap:
    """Rewrite a PyTorch recurrent module as a :class:`_CellMap` from its weights."""
    name = type(module).__name__
    if isinstance(module, nn.RNNBase):
        if module.num_layers != 1 or module.bidirectional:
            raise InnerworksError(f"{name}: only one-layer, one-direction modules define a recurrent map; got "
                                  f"num_layers={module.num_layers}, bidirectional={module.bidirectional}")
        if getattr(module, "proj_size", 0):
            raise InnerworksError(f"{name}: proj_size={module.proj_size} is not supported; expected 0")
        weights = (module.weight_ih_l0, module.weight_hh_l0, getattr(module, "bias_ih_l0", None),
                   getattr(module, "bias_hh_l0", None))
        mode = module.mode
    else:  # nn.RNNCell / GRUCell / LSTMCell
        weights = (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)
        mode = {"RNNCell": "RNN_" + getattr(module, "nonlinearity", "tanh").upper(), "GRUCell": "GRU",
                "LSTMCell": "LSTM"}[name]
    if mode == "GRU":
        return _GRUMap(*weights)
    if mode == "LSTM":
        return _LSTMMap(*weights)
    return _VanillaMap(*weights, nonlinearity="tanh" if mode == "RNN_TANH" else "relu")


def _innerworks_cell_map(cell: nn.Module) -> _CellMap | None:
    """The weight map of an innerworks cell of exactly a known class (subclasses may change forward: None)."""
    from innerworks.models import cells as C

    if type(cell) in (C.VanillaCell, C.GRUCell, C.LSTMCell):
        return _torch_rnn_map(cell.rnn)
    if type(cell) in (C.UGRNNCell, C.RennGRUCell):
        cls = _UGRNNMap if type(cell) is C.UGRNNCell else _RennGRUMap
        return cls(cell.weight_ih, cell.weight_hh, cell.bias, None, gate_bias=cell.gate_bias)
    return None


# --------------------------------------------------------------------------------------------------------------------
# Autodiff Jacobians.
# --------------------------------------------------------------------------------------------------------------------


def _loop_jacobian(fn: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """``d fn(h)_b / d h_b`` with one backward pass per output unit (no vmap; works for any batch-wise fn)."""
    with torch.enable_grad():
        hh = h.detach().requires_grad_(True)
        out = fn(hh)
        rows = [torch.autograd.grad(out[:, i].sum(), hh, retain_graph=i + 1 < out.shape[1])[0]
                for i in range(out.shape[1])]
    return torch.stack(rows, dim=1).detach()


def batch_jacobian(fn: Callable[..., torch.Tensor], h: torch.Tensor, *rows: torch.Tensor) -> torch.Tensor:
    """Per-row Jacobians ``[B, M, S]`` of a batch-wise map ``fn(h [B, S], *rows) -> [B, M]`` with respect to ``h``.

    Row b of the output may depend only on row b of ``h`` and of each tensor in ``rows`` (e.g. the inputs).
    Uses ``vmap(jacrev)``; if ``fn`` is not vmap-safe, falls back (with a warning) to one backward pass per output.

    >>> import torch
    >>> batch_jacobian(lambda h: h ** 2, torch.tensor([[1.0, 2.0]]))
    tensor([[[2., 0.],
             [0., 4.]]])
    """
    def single(v: torch.Tensor, *r: torch.Tensor) -> torch.Tensor:
        return fn(v.unsqueeze(0), *(a.unsqueeze(0) for a in r)).squeeze(0)

    try:
        return torch.func.vmap(torch.func.jacrev(single))(h, *rows)
    except Exception as exc:  # noqa: BLE001 - any vmap failure: use the slow, always-correct path
        warnings.warn(f"the step is not vmap-safe ({type(exc).__name__}: {str(exc)[:120]}); computing Jacobians "
                      "with one backward pass per state unit (slow). Write the step with batched primitives.",
                      RuntimeWarning, stacklevel=3)
        return _loop_jacobian(lambda hh: fn(hh, *rows), h)


# --------------------------------------------------------------------------------------------------------------------
# Step
# --------------------------------------------------------------------------------------------------------------------


class Step:
    """A batched recurrent map ``h_next = step(x, h)`` with ``x [B, I]``, ``h [B, S]``, fixed dtype and device.

    Build one with :func:`as_step`. ``state_size`` / ``input_size`` are None when unknown (plain functions);
    ``input_size == 0`` means an autonomous map (``x`` is ``[B, 0]``).

    Attributes:
        name: what it wraps, e.g. ``"gru"``, ``"nn.LSTM"``, ``"module:MyCell"``, ``"function"``.
        module: the private float64 copy of the wrapped module (None for plain functions).
        analytic: True when :meth:`jacobian` uses a closed form.

    >>> import torch
    >>> step = Step(lambda x, h: torch.tanh(2 * h), state_size=3, input_size=0)
    >>> step(step.zero_inputs(2), torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """

    def __init__(self, fn: StepFn, *, state_size: int | None = None, input_size: int | None = None,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 module: nn.Module | None = None, name: str = "function",
                 jacobian_fn: StepFn | None = None) -> None:
        self.fn = fn
        self.state_size = None if state_size is None else int(state_size)
        self.input_size = None if input_size is None else int(input_size)
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.module = module
        self.name = name
        self._jacobian_fn = jacobian_fn

    @property
    def analytic(self) -> bool:
        return self._jacobian_fn is not None

    def __repr__(self) -> str:
        return (f"Step({self.name}, state_size={self.state_size}, input_size={self.input_size}, "
                f"dtype={self.dtype}, analytic_jacobian={self.analytic})")

    def __call__(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.fn(x, h)

    def cast(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` as this step's dtype and device."""
        return t.detach().to(device=self.device, dtype=self.dtype)

    def zero_inputs(self, n: int) -> torch.Tensor:
        """``n`` zero inputs ``[n, I]`` (the default constant input x*)."""
        if self.input_size is None:
            raise InnerworksError("the step's input size is unknown: pass inputs= explicitly (e.g. torch.zeros(I)), "
                                  "or build it with as_step(fn, input_size=I)")
        return torch.zeros(n, self.input_size, dtype=self.dtype, device=self.device)

    def iterate(self, x: torch.Tensor, h: torch.Tensor, n: int) -> torch.Tensor:
        """The state after ``n`` steps under the constant input ``x`` (no gradients)."""
        with torch.no_grad():
            for _ in range(n):
                h = self.fn(x, h)
        return h

    def jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Recurrent Jacobians ``d step(x, h)_b / d h_b``: ``[B, S, S]``."""
        with torch.no_grad():
            if self._jacobian_fn is not None:
                return self._jacobian_fn(x, h)
        return batch_jacobian(lambda hh, xx: self.fn(xx, hh), h, x)

    def input_jacobian(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Input Jacobians ``d step(x, h)_b / d x_b``: ``[B, S, I]``."""
        return batch_jacobian(lambda xx, hh: self.fn(xx, hh), x, h)

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Step:
        """A copy in another dtype/device (the module is copied; plain functions only change the declared dtype)."""
        dtype = dtype or self.dtype
        device = torch.device(device) if device is not None else self.device
        module = None if self.module is None else copy.deepcopy(self.module).to(device=device, dtype=dtype)
        fn, jac = self.fn, self._jacobian_fn
        if module is not None:
            fn = module
            jac = module.jacobian if isinstance(module, _CellMap) else None
        return Step(fn, state_size=self.state_size, input_size=self.input_size, dtype=dtype, device=device,
                    module=module, name=self.name, jacobian_fn=jac)


def _private_copy(module: nn.Module, dtype: torch.dtype, device: torch.device | None) -> nn.Module:
    m = copy.deepcopy(module)
    m = m.to(dtype=dtype) if device is None else m.to(device=device, dtype=dtype)
    for p in m.parameters():
        p.requires_grad_(False)
    m.eval()
    return m


def _module_device(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


def as_step(obj: Any, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
            state_size: int | None = None, input_size: int | None = None) -> Step:
    """Wrap a cell, a PyTorch recurrent module, a model with a ``.cell``, any ``forward(x, h)`` module or a function.

    Args:
        obj: what to wrap (see the module docstring). A :class:`Step` is returned as is (cast to ``dtype``).
        dtype: working precision; float64 (default) is needed for the 1e-8 residual certificate.
        device: where to run; default: where the module's parameters are.
        state_size, input_size: declare sizes a plain function cannot report (``input_size=0``: autonomous map).

    >>> import torch
    >>> from innerworks.models.cells import make_cell
    >>> as_step(make_cell("lstm", 2, 3))
    Step(lstm, state_size=6, input_size=2, dtype=torch.float64, analytic_jacobian=True)
    >>> as_step(torch.nn.LSTM(2, 3, num_layers=2))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: LSTM: only one-layer, one-direction modules define a recurrent map; ...
    """
    from innerworks.models.cells import RecurrentCell

    if isinstance(obj, Step):
        return obj if (obj.dtype == dtype and device is None) else obj.to(dtype, device)
    if isinstance(obj, nn.Module) and not isinstance(obj, RecurrentCell) and isinstance(
            getattr(obj, "cell", None), RecurrentCell):
        obj = obj.cell  # e.g. RNNClassifier: the analysis map is its cell
    if isinstance(obj, nn.Module):
        dev = torch.device(device) if device is not None else _module_device(obj)
        cell_map: _CellMap | None = None
        if isinstance(obj, RecurrentCell):
            cell_map = _innerworks_cell_map(obj)
            name = obj.kind
        elif isinstance(obj, (nn.RNNBase, nn.RNNCell, nn.GRUCell, nn.LSTMCell)):
            cell_map = _torch_rnn_map(obj)
            name = f"nn.{type(obj).__name__}"
        else:
            name = f"module:{type(obj).__name__}"
        if cell_map is not None:
            m = _private_copy(cell_map, dtype, dev)
            return Step(m, state_size=m.state_size, input_size=m.input_size, dtype=dtype, device=dev, module=m,
                        name=name, jacobian_fn=m.jacobian)
        m = _private_copy(obj, dtype, dev)
        s = state_size or getattr(obj, "state_size", None) or getattr(obj, "hidden_size", None)
        i = input_size if input_size is not None else getattr(obj, "input_size", None)
        return Step(m, state_size=s, input_size=i, dtype=dtype, device=dev, module=m, name=name)
    if callable(obj):
        return Step(obj, state_size=state_size, input_size=input_size, dtype=dtype,
                    device=device or "cpu", name="function")
    raise InnerworksError(f"cannot build a recurrent step from {type(obj).__name__}: expected a cell, nn.RNN/GRU/LSTM, "
                          "an nn.Module with forward(x, h) -> h_next, or a function fn(x, h)")


__all__ = ["Step", "as_step", "batch_jacobian"]
