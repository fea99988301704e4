"""Whole-sequence recurrences with hand-written backward passes, for the cells that have no fused kernel.

Why: autograd through a Python loop over time records a dozen nodes per step, and the backward of each per-step
slice ``a[:, t]`` of a ``[B, T, H]`` tensor materialises a zero-filled ``[B, T, H]`` gradient before summing:
O(T²) memory traffic, so the cost per token grew with the document length. Here each recurrence is one
``torch.autograd.Function``: the forward loops over time-major contiguous steps, writing every result into a
contiguous per-step slot, and saves the gates; the backward loops backwards with a few kernels per step (the
recurrent matmul and a handful of elementwise products), computing its elementwise coefficients a time block at a
time (:data:`BLOCK_ELEMENTS`) and the weight gradients with one matmul per block, as a fused kernel does.

The equations are exactly the cells' (see :mod:`innerworks.models.cells`). Inputs ``gi`` are the precomputed,
time-major input projections ``W_ih x_t + b`` ``[T, B, G]`` (``F.linear(xs.transpose(0, 1), ...)`` computes
them in that layout); outputs are the states ``[B, T, state]`` (not including ``h0``), a transposed view of
time-major memory, as ``nn.GRU(batch_first=True)`` returns them. Backward passes are once-differentiable (no
double backward) and the functions are not ``torch.func``-transformable: the step ``cell(x, h)`` is the path for
Jacobians.

>>> import torch
>>> gi = torch.zeros(3, 1, 2); w = torch.zeros(2, 1)  # T=3, B=1, H=1: u = 1/2, c = 0
>>> ugrnn_scan(gi, torch.ones(1, 1), w, 0.0).flatten().tolist()
[0.5, 0.25, 0.125]
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable


def _needs_graph(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


BLOCK_ELEMENTS = 1 << 18
"""Elements per time block of the backward's temporaries (1 MiB in float32)."""


def _batch_major(*parts: torch.Tensor) -> torch.Tensor:
    """Time-major ``[T, B, ·]`` parts -> one ``[B, T, ·]`` tensor: a transposed view, as ``nn.GRU`` returns too."""
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)).transpose(0, 1)


def _blocks(steps: int, step_numel: int) -> list[tuple[int, int]]:
    """Time blocks ``[t0, t1)``, last first, of about :data:`BLOCK_ELEMENTS` elements of a per-step tensor.

    The backward computes its coefficients a block at a time, so its temporaries stay small and cached: whole-sequence
    temporaries of tens of MB are fresh, page-faulted memory on every call, and made the per-token cost grow with T.
    """
    size = max(1, min(steps, BLOCK_ELEMENTS // max(step_numel, 1)))
    return [(t0, min(t0 + size, steps)) for t0 in reversed(range(0, steps, size))]


def _previous(states: torch.Tensor, h0: torch.Tensor, t0: int, t1: int) -> torch.Tensor:
    """The states before steps ``t0..t1-1``: ``[h0, states[0], ...]`` sliced to ``[t1 - t0, B, S]``."""
    if t0 == 0:
        return torch.cat([h0.unsqueeze(0), states[: t1 - 1]])
    return states[t0 - 1: t1 - 1]


# ---- LSTM: [i, f, g, o] = [σ, σ, tanh, σ](gi + W_hh h), c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'); state [h; c] ----------
def _lstm_forward(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, save: bool) -> tuple[torch.Tensor, ...]:
    """``gi [T, B, 4H]``, flat ``h0 [B, 2H]`` -> ``h``, ``c`` ``[T, B, H]``; when ``save``, also the sigmoid of every
    pre-activation ``[T, B, 4H]`` (its g block unused), ``g`` and ``tanh(c)``."""
    steps, batch, hid = gi.shape[0], h0.shape[0], h0.shape[-1] // 2
    w_t = w_hh.t()
    hs, cs = gi.new_empty(steps, batch, hid), gi.new_empty(steps, batch, hid)
    sig = torch.empty_like(gi) if save else None
    gs = torch.empty_like(hs) if save else None
    tcs = torch.empty_like(hs) if save else None
    h, c = h0[:, :hid], h0[:, hid:]
    for t in range(steps):  # every output lands in a contiguous per-step slot (strided outputs cost a copy)
        pre = torch.addmm(gi[t], h, w_t)
        act = torch.sigmoid(pre, out=sig[t] if save else None)
        g = torch.tanh(pre[:, 2 * hid: 3 * hid], out=gs[t] if save else None)
        c = torch.addcmul(act[:, :hid] * g, act[:, hid: 2 * hid], c, out=cs[t])
        h = torch.mul(act[:, 3 * hid:], torch.tanh(c, out=tcs[t] if save else None), out=hs[t])
    return hs, cs, sig, gs, tcs


class _LSTMScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        h0 = h0.contiguous()
        hs, cs, sig, g, tc = _lstm_forward(gi, h0, w_hh, save=True)
        out = torch.cat([hs, cs], dim=-1)
        ctx.save_for_backward(out, sig, g, tc, h0, w_hh)
        return _batch_major(out)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, sig, g_all, tc_all, h0, w_hh = ctx.saved_tensors
        steps, batch, hid = tc_all.shape
        dout = dout.transpose(0, 1)
        dh_out, dc_out = dout[..., :hid], dout[..., hid:]
        dg = torch.empty_like(sig)  # d gi = d pre-activations [i, f, g, o]
        d_w = torch.zeros_like(w_hh)
        spread = torch.empty_like(dg[0])
        dh, dc_next = dh_out[-1], dc_out[-1]
        for t0, t1 in _blocks(steps, sig[0].numel()):
            prev = _previous(out, h0, t0, t1)  # [h_{t-1}; c_{t-1}]
            i, f, _, o = sig[t0:t1].chunk(4, dim=-1)
            g, tc = g_all[t0:t1], tc_all[t0:t1]
            dc_dh = o * (1.0 - tc * tc)  # d c_t contributed by d h_t
            # d pre-activations = [dc, dc, dc, dh] ⊙ coef: one contiguous multiply per step
            coef = torch.cat([g * i * (1.0 - i), prev[..., hid:] * f * (1.0 - f), i * (1.0 - g * g),
                              tc * o * (1.0 - o)], dim=-1)
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                dc = torch.addcmul(dc_next, dh, dc_dh[k])
                torch.mul(torch.cat((dc, dc, dc, dh), dim=1, out=spread), coef[k], out=dg[t])
                if t:
                    dc_next = torch.addcmul(dc_out[t - 1], dc, f[k])
                    dh = torch.addmm(dh_out[t - 1], dg[t], w_hh)
            d_w.addmm_(dg[t0:t1].view(-1, 4 * hid).t(), prev[..., :hid].reshape(-1, hid))
        d_h0 = torch.cat([dg[0] @ w_hh, dc * f[0]], dim=-1)  # the last block processed starts at t = 0
        return dg, d_h0, d_w


def lstm_scan(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
    """LSTM states ``[B, T, 2H]`` (flat ``[h; c]``) from time-major ``gi [T, B, 4H]`` (``W_ih x_t`` + both biases).

    >>> gi = torch.zeros(2, 1, 4); gi[..., 2] = 100.0  # g = tanh(100) = 1, i = f = o = 1/2
    >>> [round(v, 4) for v in lstm_scan(gi, torch.zeros(1, 2), torch.zeros(4, 1))[0, :, 1].tolist()]  # c
    [0.5, 0.75]
    """
    if _needs_graph(gi, h0, w_hh):
        return _LSTMScan.apply(gi, h0, w_hh)
    return _batch_major(*_lstm_forward(gi, h0.contiguous(), w_hh, save=False)[:2])


# ---- UGRNN: u = σ(g_u + gate_bias), c = tanh(g_c), h' = u ⊙ h + (1 − u) ⊙ c, g = gi + W_hh h -------------------------
def _ugrnn_forward(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, gate_bias: float,
                   save: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``gi [T, B, 2H]`` -> states ``[T, B, H]`` and, when ``save``, the gates ``u`` and ``c``."""
    steps, hid = gi.shape[0], h0.shape[-1]
    w_t = w_hh.t()
    out = gi.new_empty(steps, *h0.shape)
    us = torch.empty_like(out) if save else None
    cs = torch.empty_like(out) if save else None
    h = h0
    for t in range(steps):
        g = torch.addmm(gi[t], h, w_t)
        u_pre = g[:, :hid] + gate_bias if gate_bias else g[:, :hid]
        u = torch.sigmoid(u_pre, out=us[t] if save else None)
        c = torch.tanh(g[:, hid:], out=cs[t] if save else None)
        h = torch.addcmul(c, u, h - c, out=out[t])
    return out, us, cs


class _UGRNNScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor,
                gate_bias: float) -> torch.Tensor:
        h0 = h0.contiguous()
        hs, u, c = _ugrnn_forward(gi, h0, w_hh, gate_bias, save=True)
        ctx.save_for_backward(hs, u, c, h0, w_hh)
        return _batch_major(hs)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hs, u_all, c_all, h0, w_hh = ctx.saved_tensors
        steps, batch, hid = hs.shape
        dout = dout.transpose(0, 1)
        dg = hs.new_empty(steps, batch, 2 * hid)  # d gi
        d_w = torch.zeros_like(w_hh)
        spread = torch.empty_like(dg[0])
        dh = dout[-1]
        for t0, t1 in _blocks(steps, dg[0].numel()):
            h_prev, u, c = _previous(hs, h0, t0, t1), u_all[t0:t1], c_all[t0:t1]
            # d gi_t = [dh, dh] ⊙ [(h_{t-1} − c) u (1 − u), (1 − u)(1 − c²)]
            coef = torch.cat([(h_prev - c) * u * (1.0 - u), (1.0 - u) * (1.0 - c * c)], dim=-1)
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                torch.mul(torch.cat((dh, dh), dim=1, out=spread), coef[k], out=dg[t])
                dh = torch.addmm(torch.addcmul(dout[t - 1], dh, u[k]) if t else dh * u[k], dg[t], w_hh)
            d_w.addmm_(dg[t0:t1].view(-1, 2 * hid).t(), h_prev.reshape(-1, hid))
        return dg, dh, d_w, None


def ugrnn_scan(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, gate_bias: float) -> torch.Tensor:
    """UGRNN states ``[B, T, H]`` from time-major input projections ``gi [T, B, 2H]`` (update, then candidate).

    >>> gi = torch.zeros(2, 1, 4); w = torch.zeros(4, 2)
    >>> ugrnn_scan(gi, torch.ones(1, 2), w, 0.0)[0, :, 0].tolist()  # u = 1/2, c = 0: halves each step
    [0.5, 0.25]
    """
    if _needs_graph(gi, h0, w_hh):
        return _UGRNNScan.apply(gi, h0, w_hh, float(gate_bias))
    return _batch_major(_ugrnn_forward(gi, h0.contiguous(), w_hh, gate_bias, save=False)[0])


# ---- renn's GRU: u, r = σ(g_{u,r}), c = tanh(gi_c + W_c (r ⊙ h)), h' = u ⊙ h + (1 − u) ⊙ c --------------------------
def _renn_gru_forward(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, gate_bias: float,
                      save: bool) -> tuple[torch.Tensor, ...]:
    """``gi [T, B, 3H]`` -> states ``[T, B, H]`` and, when ``save``, ``[u, r] [T, B, 2H]``, ``r ⊙ h`` and ``c``."""
    steps, hid = gi.shape[0], h0.shape[-1]
    w_ur, w_c = w_hh[: 2 * hid].t(), w_hh[2 * hid:].t()
    out = gi.new_empty(steps, *h0.shape)
    ur = gi.new_empty(steps, h0.shape[0], 2 * hid) if save else None
    rh = torch.empty_like(out) if save else None
    cs = torch.empty_like(out) if save else None
    bias = torch.zeros(2 * hid, dtype=gi.dtype, device=gi.device)
    bias[:hid] = gate_bias
    h = h0
    for t in range(steps):
        g = torch.addmm(gi[t, :, : 2 * hid], h, w_ur)
        if gate_bias:
            g.add_(bias)
        ur_t = torch.sigmoid(g, out=ur[t] if save else None)
        rh_t = torch.mul(ur_t[:, hid:], h, out=rh[t] if save else None)
        c = torch.tanh(torch.addmm(gi[t, :, 2 * hid:], rh_t, w_c), out=cs[t] if save else None)
        h = torch.addcmul(c, ur_t[:, :hid], h - c, out=out[t])
    return out, ur, rh, cs


class _RennGRUScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor,
                gate_bias: float) -> torch.Tensor:
        h0 = h0.contiguous()
        hs, ur, rh, c = _renn_gru_forward(gi, h0, w_hh, gate_bias, save=True)
        ctx.save_for_backward(hs, ur, rh, c, h0, w_hh)
        return _batch_major(hs)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hs, ur_all, rh, c_all, h0, w_hh = ctx.saved_tensors
        steps, batch, hid = hs.shape
        dout = dout.transpose(0, 1)
        w_ur, w_c = w_hh[: 2 * hid], w_hh[2 * hid:]
        dg = hs.new_empty(steps, batch, 3 * hid)  # d gi: [u, r, c] blocks
        d_w = torch.zeros_like(w_hh)
        dh = dout[-1]
        for t0, t1 in _blocks(steps, dg[0].numel()):
            h_prev, c = _previous(hs, h0, t0, t1), c_all[t0:t1]
            u, r = ur_all[t0:t1, :, :hid], ur_all[t0:t1, :, hid:]
            coef_u = (h_prev - c) * u * (1.0 - u)  # d h_t / d u_pre
            coef_c = (1.0 - u) * (1.0 - c * c)  # d h_t / d c_pre
            coef_r = h_prev * r * (1.0 - r)  # d (r ⊙ h_{t-1}) / d r_pre
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                torch.mul(dh, coef_u[k], out=dg[t, :, :hid])
                d_rh = torch.mul(dh, coef_c[k], out=dg[t, :, 2 * hid:]) @ w_c
                torch.mul(d_rh, coef_r[k], out=dg[t, :, hid: 2 * hid])
                carry = torch.addcmul(dout[t - 1], dh, u[k]) if t else dh * u[k]
                dh = torch.addmm(carry.addcmul_(d_rh, r[k]), dg[t, :, : 2 * hid], w_ur)
            block = dg[t0:t1].view(-1, 3 * hid)
            d_w[: 2 * hid].addmm_(block[:, : 2 * hid].t(), h_prev.reshape(-1, hid))
            d_w[2 * hid:].addmm_(block[:, 2 * hid:].t(), rh[t0:t1].view(-1, hid))
        return dg, dh, d_w, None


def renn_gru_scan(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, gate_bias: float) -> torch.Tensor:
    """renn-form GRU states ``[B, T, H]`` from time-major projections ``gi [T, B, 3H]`` (update, reset, candidate).

    >>> gi = torch.zeros(2, 1, 6); w = torch.zeros(6, 2)
    >>> renn_gru_scan(gi, torch.ones(1, 2), w, 0.0)[0, :, 0].tolist()  # u = 1/2, c = 0: halves each step
    [0.5, 0.25]
    """
    if _needs_graph(gi, h0, w_hh):
        return _RennGRUScan.apply(gi, h0, w_hh, float(gate_bias))
    return _batch_major(_renn_gru_forward(gi, h0.contiguous(), w_hh, gate_bias, save=False)[0])


__all__ = ["lstm_scan", "renn_gru_scan", "ugrnn_scan"]
