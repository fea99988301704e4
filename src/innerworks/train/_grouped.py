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
from typing import Any

import torch
from torch import nn

from innerworks.errors import InnerworksError
from innerworks.models.classifier import RNNClassifier

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


class _GRUSequence(torch.autograd.Function):
    """K stacked GRUs over a whole sequence with a hand-written backward; member-major ``[K, T, B, ·]`` layout.

    Why: autograd through a Python loop of small ops records ~40 nodes and ~60 kernels per step. Here the forward
    runs 7 kernels per step; the backward precomputes every elementwise coefficient for all steps at once, so its
    sequential loop is 4 kernels per step (``dh_{t-1} = z ⊙ dh_t + (A_t ⊙ dh_t) W_hh``), and the weight gradients
    are one batched matmul over all steps, as a fused kernel forms them. ``gi [K, T, B, 3H]`` holds
    ``W_ih x + b_ih``; returns the states ``[K, T, B, H]``.
    """

    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor,
                b_hh: torch.Tensor) -> torch.Tensor:
        hid = gi.shape[-1] // 3
        w_t, bias = _t(w_hh).contiguous(), b_hh.unsqueeze(1)
        h = h0.contiguous()
        hs, gh, rz, n = [h], [], [], []
        for g_t in gi.unbind(1):  # batched matmuls need contiguous per-step operands: fresh tensors, stacked once
            gh_t = torch.baddbmm(bias, h, w_t)
            rz_t = torch.sigmoid(g_t[..., : 2 * hid] + gh_t[..., : 2 * hid])
            n_t = torch.tanh(torch.addcmul(g_t[..., 2 * hid:], rz_t[..., :hid], gh_t[..., 2 * hid:]))
            h = torch.addcmul(n_t, rz_t[..., hid:], h - n_t)
            hs.append(h)
            gh.append(gh_t)
            rz.append(rz_t)
            n.append(n_t)
        states = torch.stack(hs, dim=1)
        ctx.save_for_backward(states, torch.stack(gh, dim=1), torch.stack(rz, dim=1), torch.stack(n, dim=1), w_hh)
        return states[:, 1:]

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hs, gh, rz, n, w_hh = ctx.saved_tensors
        k, steps, b, hid = n.shape
        r, z = rz[..., :hid], rz[..., hid:]
        dn_coef = (1.0 - z) * (1.0 - n * n)  # d h_t / d n_pre
        coef = torch.stack([dn_coef * gh[..., 2 * hid:] * r * (1.0 - r),  # d r_pre
                            (hs[:, :-1] - n) * z * (1.0 - z),  # d z_pre
                            dn_coef * r], dim=-2)  # d (W_hn h + b_hn)
        w = w_hh.contiguous()
        dh = torch.zeros_like(hs[:, 0])
        dhs, dgh = [], []
        for t in range(steps - 1, -1, -1):
            dh = dh + dout[:, t]
            dgh_t = (dh.unsqueeze(-2) * coef[:, t]).view(k, b, 3 * hid)
            dhs.append(dh)
            dgh.append(dgh_t)
            dh = torch.baddbmm(dh * z[:, t], dgh_t, w)
        d_gh = torch.stack(dgh[::-1], dim=1)
        d_gi = d_gh.clone()
        d_gi[..., 2 * hid:] = torch.stack(dhs[::-1], dim=1) * dn_coef
        d_w = torch.bmm(_t(d_gh.view(k, steps * b, 3 * hid)), hs[:, :-1].reshape(k, steps * b, hid))
        return d_gi, dh, d_w, d_gh.sum((1, 2))


GROUPED_CELLS = ("vanilla", "gru", "lstm", "ugrnn", "gru_renn")
"""Cell kinds a :class:`GroupedClassifier` can step (every built-in cell)."""


def _input_names(kind: str) -> tuple[str, str]:
    if kind in ("ugrnn", "gru_renn"):
        return "cell.weight_ih", "cell.bias"
    return "cell.rnn.weight_ih_l0", "cell.rnn.bias_ih_l0"


def _step_for(model: RNNClassifier) -> Step:
    kind = model.cell.kind
    if kind == "vanilla":
        return _vanilla
    if kind == "gru":  # unused: states() runs GRU members through _GRUSequence
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

    Attributes:
        names: parameter names in ``named_parameters()`` order; ``params[i]`` stacks ``names[i]`` of every member.
    """

    def __init__(self, members: Sequence[RNNClassifier]) -> None:
        super().__init__()
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

    def states(self, tokens: torch.Tensor) -> torch.Tensor:
        """All states ``[K, B, T, S]`` for token ids ``[K, B, T]`` (padding id 0 is a zero input)."""
        p = self.pdict()
        h0 = p["cell.h0"].unsqueeze(1).expand(-1, tokens.shape[1], -1)
        if self.template.cell.kind == "gru":  # one autograd node for the whole recurrence
            gi = self._input_projection(p, tokens.transpose(1, 2).contiguous())  # [K, T, B, G]
            hs = _GRUSequence.apply(gi, h0, p["cell.rnn.weight_hh_l0"], p["cell.rnn.bias_hh_l0"])
            return hs.transpose(1, 2)
        gi = self._input_projection(p, tokens)
        h, out = h0, []
        for g_t in gi.unbind(2):  # one UnbindBackward; slicing gi per step would zero-fill all of it per step
            h = self._step(p, g_t, h)
            out.append(h)
        return torch.stack(out, dim=2)

    def last_logits(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits at each row's last valid token, ``[K, B, C]``; ``tokens [K, B, T]``, ``lengths [K, B]``."""
        p = self.pdict()
        states = self.states(tokens)
        idx = (lengths - 1).clamp(min=0).view(*lengths.shape, 1, 1).expand(-1, -1, 1, states.shape[-1])
        last = states.gather(2, idx).squeeze(2)
        logits = torch.bmm(last, _t(p["readout.weight"]))
        if "readout.bias" in p:
            logits = logits + p["readout.bias"].unsqueeze(1)
        return logits


__all__ = ["GROUPED_CELLS", "GroupedClassifier", "architecture"]
