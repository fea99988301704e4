"""K recurrent classifiers of one architecture as one batched model: stacked parameters, batched matmuls.

Why: a small recurrent classifier (GRU-64, batch 64) leaves a CPU core or a GPU mostly idle; the per-step cost is
Python and kernel-launch overhead, not arithmetic. Stacking K members' weights along a leading axis and stepping all
of them with ``baddbmm`` pays that overhead once for K runs. Every op is per member (a batched matmul never mixes
slices), so member k's loss, gradient and Adam update are those of its standalone run up to float rounding.

The stacked parameters follow ``model.named_parameters()`` order, so slice ``k`` of each, in order, is exactly a
standalone :class:`~innerworks.models.classifier.RNNClassifier`'s ``state_dict`` (:meth:`GroupedClassifier.member`).

>>> import torch
>>> from innerworks.models.classifier import RNNClassifier
>>> ms = [RNNClassifier(6, 3, "gru", hidden_size=4) for _ in range(2)]
>>> g = GroupedClassifier(ms)
>>> tokens = torch.randint(1, 6, (2, 5, 7)); lengths = torch.full((2, 5), 7)
>>> out = g.last_logits(tokens, lengths)
>>> ref = RNNClassifier.last_logits(ms[1](tokens[1]), lengths[1])
>>> bool(torch.allclose(out[1], ref, atol=1e-5))
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import torch
from torch import nn

from innerworks.errors import InnerworksError
from innerworks.models.classifier import RNNClassifier
from innerworks.train._grouped_kernel import GroupedKernel, resolve

Step = Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor]


def _t(w: torch.Tensor) -> torch.Tensor:
    """``[K, out, in] -> [K, in, out]`` (the batched ``W.T``)."""
    return w.transpose(1, 2)


def _vanilla(p: dict[str, torch.Tensor], gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.tanh(gi + torch.baddbmm(p["cell.rnn.bias_hh_l0"].unsqueeze(1), h, _t(p["cell.rnn.weight_hh_l0"])))


def _lstm(p: dict[str, torch.Tensor], gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    hs = h.shape[-1] // 2
    hh, cc = h[..., :hs], h[..., hs:]
    gates = gi + torch.baddbmm(p["cell.rnn.bias_hh_l0"].unsqueeze(1), hh, _t(p["cell.rnn.weight_hh_l0"]))
    i, f, g, o = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(f) * cc + torch.sigmoid(i) * torch.tanh(g)
    return torch.cat([torch.sigmoid(o) * torch.tanh(c_next), c_next], dim=-1)


def _ugrnn(gate_bias: float) -> Step:
    def step(p: dict[str, torch.Tensor], gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        u_pre, c_pre = (gi + torch.bmm(h, _t(p["cell.weight_hh"]))).chunk(2, dim=-1)
        u = torch.sigmoid(u_pre + gate_bias)
        return u * h + (1.0 - u) * torch.tanh(c_pre)
    return step


def _gru_renn(gate_bias: float) -> Step:
    def step(p: dict[str, torch.Tensor], gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        i_u, i_r, i_c = gi.chunk(3, dim=-1)
        w_u, w_r, w_c = p["cell.weight_hh"].chunk(3, dim=1)
        u = torch.sigmoid(i_u + torch.bmm(h, _t(w_u)) + gate_bias)
        r = torch.sigmoid(i_r + torch.bmm(h, _t(w_r)))
        return u * h + (1.0 - u) * torch.tanh(i_c + torch.bmm(r * h, _t(w_c)))
    return step


_MINUS_ONE, _HALF = torch.tensor(-1.0), torch.tensor(0.5)


class _GRUSequence(torch.autograd.Function):
    """K stacked GRUs over a whole sequence with a hand-written backward; states time-major ``[T, K, B, H]``.

    Why: autograd through a Python loop of small ops records ~40 nodes per step and allocates a tensor per op.
    Here each step writes into buffers allocated once per sequence: the forward is one ``baddbmm`` and 6
    elementwise kernels per step, plus (when a gradient is wanted) the 3 coefficients the backward needs, formed
    while the step's values are in cache; the backward is 2 ``baddbmm`` and 7 elementwise kernels per step.

    The step, in the form that needs fewest kernels (``u_t = src[idx[t]]``, four blocks ``[a, c, e]`` of
    ``2H, H, H``; ``M = [M_rz; M_n]``)::

        r, z = sigmoid(a + h M_rz^T);  y = e + r * (c + h M_n^T);  n = 2 sigmoid(y) - 1;  h' = n + z (h - n)

    is the GRU with ``a = W_{ih,rz} x + b_{ih,rz} + b_{hh,rz}``, ``c = 2 b_hn``, ``e = 2 (W_in x + b_in)``,
    ``M_rz = W_{hh,rz}``, ``M_n = 2 W_hn`` (``y`` is twice the GRU's ``n`` pre-activation, and
    ``tanh(x) = 2 sigmoid(2x) - 1``: CPU ``sigmoid`` is vectorised, ``tanh`` ~5x slower). ``src`` rows are
    ``[K·V, 4H]`` table rows for one-hot or small-vocabulary inputs (a gather; the gradient is one
    ``index_add``) or one row per position. The gradient of row ``u_t`` is ``[d r_pre, d z_pre, d m, d y]``.

    ``ext`` (from :func:`~innerworks.train._grouped_kernel.resolve`) runs the same algebra as one C++ call per
    direction (states and gates K-major there); ``None`` runs the torch ops below.
    """

    @staticmethod
    def forward(ctx: Any, src: torch.Tensor, idx: torch.Tensor, h0: torch.Tensor, m: torch.Tensor,
                ext: ModuleType | None = None) -> torch.Tensor:
        ctx.ext = ext
        if ext is not None:  # the fused C++ sequence (_grouped_kernel): states [K, T+1, B, H], gates [K, T, B, 5H]
            hs, gates = ext.forward(src, idx, h0, m, any(ctx.needs_input_grad))
            if any(ctx.needs_input_grad):
                ctx.save_for_backward(idx, hs, gates, m)
                ctx.rows = src.shape[0]
            return hs[:, 1:].permute(1, 0, 2, 3)
        steps, (k, b, hid) = idx.shape[0], h0.shape
        m_t = _t(m).contiguous()
        hs = src.new_empty(steps + 1, k, b, hid)
        hs[0] = h0
        coef = src.new_empty(3, steps, k, b, hid) if any(ctx.needs_input_grad) else None
        kept = steps if coef is not None else 1  # without a backward, every step reuses one set of gate buffers
        rz, n = src.new_empty(kept, k, b, 2 * hid), src.new_empty(kept, k, b, hid)
        u, gh = src.new_empty(k, b, 4 * hid), src.new_empty(k, b, 3 * hid)
        u_ac, u_e, g_rz, g_n = u[..., : 3 * hid], u[..., 3 * hid:], gh[..., : 2 * hid], gh[..., 2 * hid:]
        rep = steps // max(kept, 1)  # per-step views: step t's own slice, or the one scratch slice repeated
        h_l, rz_l, n_l = hs.unbind(0), rz.unbind(0) * rep, n.unbind(0) * rep
        r_l, z_l = rz[..., :hid].unbind(0) * rep, rz[..., hid:].unbind(0) * rep
        for t in range(steps):
            torch.index_select(src, 0, idx[t], out=u.view(k * b, 4 * hid))
            torch.baddbmm(u_ac, h_l[t], m_t, out=gh)
            torch.sigmoid(g_rz, out=rz_l[t])
            torch.addcmul(u_e, r_l[t], g_n, out=n_l[t]).sigmoid_()
            torch.add(_MINUS_ONE, n_l[t], alpha=2.0, out=n_l[t])
            torch.lerp(n_l[t], h_l[t], z_l[t], out=h_l[t + 1])
            if coef is not None:
                torch.addcmul(_HALF, n_l[t], n_l[t], value=-0.5, out=coef[0, t])  # dn/dy = (1 - n²) / 2
                torch.sub(h_l[t + 1], n_l[t], out=coef[1, t])  # d h'/d z_pre = (1 - z) (h' - n)
                torch.addcmul(r_l[t], r_l[t], r_l[t], value=-1.0, out=coef[2, t]).mul_(g_n)  # dy/d r_pre
        if coef is not None:
            ctx.save_for_backward(idx, hs, rz, coef, m)
            ctx.rows = src.shape[0]
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.ext is not None:
            idx, hs, gates, m = ctx.saved_tensors
            d_src, dh0, dm = ctx.ext.backward(dout, idx, hs, gates, m, ctx.rows, ctx.needs_input_grad[0])
            return d_src if ctx.needs_input_grad[0] else None, None, dh0, dm, None
        idx, hs, rz, coef, m = ctx.saved_tensors
        steps, k, b, hid = rz.shape[0], *hs.shape[1:]
        c_y, c_z, c_r = (c.unbind(0) for c in coef.unbind(0))
        r_l, z_l, h_l = rz[..., :hid].unbind(0), rz[..., hid:].unbind(0), hs.unbind(0)
        m = m.contiguous()
        du = hs.new_empty(steps, k, b, 4 * hid)
        dm = torch.zeros_like(m)
        dh, zdh, dn = torch.zeros_like(hs[0]), torch.empty_like(hs[0]), torch.empty_like(hs[0])
        dout_l, du_l = dout.unbind(0), du.unbind(0)
        for t in range(steps - 1, -1, -1):
            dh.add_(dout_l[t])
            d = du_l[t]
            d_r, d_z, d_m, d_y = d[..., :hid], d[..., hid: 2 * hid], d[..., 2 * hid: 3 * hid], d[..., 3 * hid:]
            torch.mul(dh, z_l[t], out=zdh)
            torch.sub(dh, zdh, out=dn)  # d n = dh (1 - z)
            torch.mul(dn, c_y[t], out=d_y)
            torch.mul(d_y, c_r[t], out=d_r)
            torch.mul(dn, c_z[t], out=d_z)
            torch.mul(d_y, r_l[t], out=d_m)
            dm.baddbmm_(_t(d[..., : 3 * hid]), h_l[t])
            torch.baddbmm(zdh, d[..., : 3 * hid], m, out=dh)
        d_src = None
        if ctx.needs_input_grad[0]:
            d_src = hs.new_zeros(ctx.rows, 4 * hid).index_add_(0, idx.reshape(-1), du.view(-1, 4 * hid))
        return d_src, None, dh, dm, None


GROUPED_CELLS = ("vanilla", "gru", "lstm", "ugrnn", "gru_renn")
"""Cell kinds a :class:`GroupedClassifier` can step (every built-in cell)."""


def _input_names(kind: str) -> tuple[str, str]:
    if kind in ("ugrnn", "gru_renn"):
        return "cell.weight_ih", "cell.bias"
    return "cell.rnn.weight_ih_l0", "cell.rnn.bias_ih_l0"


def _step_for(model: RNNClassifier) -> Step:
    kind = model.cell.kind
    if kind in ("vanilla", "gru"):  # GRU members run through _GRUSequence, not a step function
        return _vanilla
    if kind == "lstm":
        return _lstm
    if kind == "ugrnn":
        return _ugrnn(model.cell.gate_bias)  # type: ignore[attr-defined]
    if kind == "gru_renn":
        return _gru_renn(model.cell.gate_bias)  # type: ignore[attr-defined]
    raise InnerworksError(f"cell {kind!r} cannot be grouped; expected one of {', '.join(GROUPED_CELLS)}")


def architecture(model: RNNClassifier) -> tuple:
    """What must match for two classifiers to stack: cell kind, sizes, embedding, readout bias, parameter shapes."""
    return (type(model.cell).__name__, getattr(model.cell, "gate_bias", None), model.vocab_size, model.num_classes,
            model.embed_dim, tuple((n, tuple(p.shape)) for n, p in model.named_parameters()))


class GroupedClassifier(nn.Module):
    """K :class:`RNNClassifier` members of one architecture with stacked parameters ``[K, ...]``.

    Args:
        members: the freshly built (or trained) standalone models; their weights are copied, not shared.
        kernel: how GRU members step (:class:`~innerworks.train._grouped_kernel.GroupedKernel`); ``None`` reads
            ``$INNERWORKS_GROUPED_KERNEL`` (default ``auto``: the fused C++ sequence on the CPU when it compiles).

    Attributes:
        names: parameter names in ``named_parameters()`` order; ``params[i]`` stacks ``names[i]`` of every member.
    """

    def __init__(self, members: Sequence[RNNClassifier], kernel: GroupedKernel | str | None = None) -> None:
        super().__init__()
        self.kernel = GroupedKernel.parse(kernel)
        if not members:
            raise InnerworksError("a grouped model needs at least one member")
        arch = architecture(members[0])
        if any(architecture(m) != arch for m in members[1:]):
            raise InnerworksError("grouped members must share one architecture (cell, sizes, vocabulary, classes)")
        self.template = members[0]
        self.k = len(members)
        self.names = [n for n, _ in members[0].named_parameters()]
        dicts = [dict(m.named_parameters()) for m in members]
        self.params = nn.ParameterList(
            [nn.Parameter(torch.stack([d[n].detach() for d in dicts]).clone()) for n in self.names])
        self._step = _step_for(members[0])
        self._w_in, self._b_in = _input_names(members[0].cell.kind)

    def pdict(self) -> dict[str, torch.Tensor]:
        """name -> stacked parameter."""
        return dict(zip(self.names, self.params, strict=True))

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s weights as a standalone ``state_dict`` (detached copies)."""
        return {n: p[k].detach().clone() for n, p in zip(self.names, self.params, strict=True)}

    def member(self, k: int) -> RNNClassifier:
        """The template model holding member ``k``'s weights (reused object: read it before the next call)."""
        self.template.load_state_dict(self.member_state(k))
        return self.template

    def _input_projection(self, p: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
        """``W_ih x_t + b_ih`` for every member, row and step: ``[K, B, T, G]``.

        One-hot inputs gather columns of ``W_ih`` (exactly the one-hot matmul: one term, the rest zeros).
        """
        k, b, t = tokens.shape
        w, bias = p[self._w_in], p[self._b_in]
        if self.template.embedding is None:  # one-hot inputs: the standalone model's one-hot matmul, batched
            x = torch.nn.functional.one_hot(tokens, w.shape[2]).to(w.dtype)
            x[..., 0] = 0.0
            return torch.baddbmm(bias.unsqueeze(1), x.view(k, b * t, -1), _t(w)).view(k, b, t, -1)
        emb = p["embedding.weight"]
        flat = (tokens + torch.arange(k, device=tokens.device).view(k, 1, 1) * emb.shape[1]).reshape(-1)
        x = emb.reshape(-1, emb.shape[2])[flat].view(k, b * t, -1)
        return torch.baddbmm(bias.unsqueeze(1), x, _t(w)).view(k, b, t, -1)

    def _gru_states(self, p: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
        """GRU states, time-major ``[T, K, B, H]``, through :class:`_GRUSequence` (one autograd node)."""
        k, b, steps = tokens.shape
        w_ih, b_ih = p["cell.rnn.weight_ih_l0"], p["cell.rnn.bias_ih_l0"]
        w_hh, b_hh = p["cell.rnn.weight_hh_l0"], p["cell.rnn.bias_hh_l0"]
        hid = w_hh.shape[2]
        emb = p.get("embedding.weight")
        if emb is None:  # one-hot inputs: a table of W_ih's columns, the padding id's zero
            rows, ids = _t(w_ih).clone(), tokens
            rows[:, 0] = 0.0
        elif emb.shape[1] <= b * steps:  # a small vocabulary: project the whole embedding table once
            rows, ids = torch.bmm(emb, _t(w_ih)), tokens
            rows[:, 0] = 0.0  # padding is a zero input and gets no gradient, as nn.Embedding(padding_idx=0)
        else:  # one row per position
            x = emb.reshape(-1, emb.shape[2])[(tokens + torch.arange(k, device=tokens.device).view(k, 1, 1)
                                               * emb.shape[1]).reshape(-1)]
            x = x * (tokens != 0).reshape(-1, 1)
            rows = torch.bmm(x.view(k, b * steps, -1), _t(w_ih))
            ids = torch.arange(b * steps, device=tokens.device).view(1, b, steps).expand(k, -1, -1)
        offsets = torch.arange(k, device=tokens.device).view(1, k, 1) * rows.shape[1]
        idx = (ids.permute(2, 0, 1) + offsets).reshape(steps, k * b)
        rows = rows + b_ih.unsqueeze(1)
        b_n = (2.0 * b_hh[:, 2 * hid:]).unsqueeze(1).expand(-1, rows.shape[1], -1)
        src = torch.cat([rows[..., : 2 * hid] + b_hh[:, : 2 * hid].unsqueeze(1), b_n, 2.0 * rows[..., 2 * hid:]], -1)
        m = torch.cat([w_hh[:, : 2 * hid], 2.0 * w_hh[:, 2 * hid:]], 1)
        h0 = p["cell.h0"].unsqueeze(1).expand(-1, b, -1)
        return _GRUSequence.apply(src.reshape(-1, 4 * hid), idx, h0, m, resolve(self.kernel, src))

    def states(self, tokens: torch.Tensor) -> torch.Tensor:
        """All states ``[K, B, T, S]`` for token ids ``[K, B, T]`` (padding id 0 is a zero input)."""
        p = self.pdict()
        if self.template.cell.kind == "gru":
            return self._gru_states(p, tokens).permute(1, 2, 0, 3)
        h0 = p["cell.h0"].unsqueeze(1).expand(-1, tokens.shape[1], -1)
        gi = self._input_projection(p, tokens)
        h, out = h0, []
        for g_t in gi.unbind(2):  # one UnbindBackward; slicing gi per step would zero-fill all of it per step
            h = self._step(p, g_t, h)
            out.append(h)
        return torch.stack(out, dim=2)

    def last_logits(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits at each row's last valid token, ``[K, B, C]``; ``tokens [K, B, T]``, ``lengths [K, B]``."""
        p = self.pdict()
        pos = (lengths - 1).clamp(min=0)
        if self.template.cell.kind == "gru":
            k, b = lengths.shape
            rows = torch.arange(k, device=lengths.device).view(k, 1), torch.arange(b, device=lengths.device)
            last = self._gru_states(p, tokens)[pos, rows[0], rows[1]]
        else:
            states = self.states(tokens)
            last = states.gather(2, pos.view(*lengths.shape, 1, 1).expand(-1, -1, 1, states.shape[-1])).squeeze(2)
        logits = torch.bmm(last, _t(p["readout.weight"]))
        if "readout.bias" in p:
            logits = logits + p["readout.bias"].unsqueeze(1)
        return logits


__all__ = ["GROUPED_CELLS", "GroupedClassifier", "architecture"]
