"""Structured derivatives of MLPs: gradients as low-rank factors and multilinear (hyper-dual) forward/backward passes.

For a dense layer ``z = c W a + β b`` the gradient of f with respect to W is the outer product ``c δ aᵀ`` (δ = ∂f/∂z).
So every vector the named correlators need — gradients J(x), their combinations such as the MSE loss gradient
g = Σ r_i J(x_i), and Hessian-vector products H(x) J(y) — has, per layer, a few rank-1 factors. Keeping them factored
(the idea behind neural-tangents' ``STRUCTURED_DERIVATIVES`` for the NTK) gives:

- inner products of such vectors in O(n R²) per layer instead of O(n²);
- directional derivatives ``D^k f(x)[v1..vk]`` by one forward pass in the algebra of multilinear polynomials in
  ε1..εk (2^k components per activation, all pushed through W by one matrix product, so W is read once);
- ``∇ D^k f(x)[v..]`` (e.g. Hessian-vector products) by one backward pass in the same algebra, again factored.

Nothing of size P is formed besides the parameters themselves, and the weight matrices are read a handful of times
per sample. The activation's derivatives come from nested ``torch.func.jvp`` on the elementwise σ, so any
activation works. Estimators built on this are checked against dense Jacobian/Hessian contractions in the tests.

>>> from innerworks.wide.networks import MLPConfig, sphere_points
>>> cfg = MLPConfig(width=8, depth=2, activation="tanh")
>>> net = StructuredMLP(cfg, cfg.init_params(2, seed=0, dtype=torch.float64))
>>> base = net.pass_(sphere_points(3, 4, seed=0))
>>> J = [base.grad(i) for i in range(3)]
>>> net.dot(J[0], J[1]).shape          # Θ(x1, x2) for the 2 networks
torch.Size([2])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import torch
from torch.func import jvp

from innerworks.wide.networks import MLPConfig, Params, parse_activation


@cache
def _set_partitions(mask: int) -> tuple[tuple[int, ...], ...]:
    """All partitions of the set of bits of ``mask`` into non-empty blocks (each block a bitmask)."""
    bits = [1 << i for i in range(mask.bit_length()) if mask >> i & 1]
    if not bits:
        return ((),)
    first, rest = bits[0], sum(bits[1:])
    out = []
    # the block holding `first` takes any subset of the rest
    sub = rest
    while True:
        block = first | sub
        for p in _set_partitions(rest & ~sub):
            out.append((block, *p))
        if sub == 0:
            break
        sub = (sub - 1) & rest
    return tuple(out)


@cache
def _subsets(mask: int) -> tuple[int, ...]:
    out, sub = [], mask
    while True:
        out.append(sub)
        if sub == 0:
            break
        sub = (sub - 1) & mask
    return tuple(out)


@dataclass
class FVec:
    """A parameter-space vector in factored form: for each weight layer l, the weight part is
    ``c_l Σ_r P[:, r] ⊗ Q[:, r]`` and the bias part is ``β B``.

    Shapes per layer: ``P [S, R, n_out]``, ``Q [S, R, n_in]``, ``B [S, n_out]``.
    """

    P: list[torch.Tensor]
    Q: list[torch.Tensor]
    B: list[torch.Tensor]

    def scaled(self, w: torch.Tensor) -> FVec:
        """This vector times a per-sample scalar ``w [S]``."""
        return FVec([p * w[:, None, None] for p in self.P], list(self.Q), [b * w[:, None] for b in self.B])

    def __add__(self, other: FVec) -> FVec:
        return FVec([torch.cat([a, b], 1) for a, b in zip(self.P, other.P, strict=True)],
                    [torch.cat([a, b], 1) for a, b in zip(self.Q, other.Q, strict=True)],
                    [a + b for a, b in zip(self.B, other.B, strict=True)])


class HyperPass:
    """Activations (and optionally back-propagated δ's) of one multilinear pass on inputs ``X [N, d_in]``.

    ``z[l]``, ``a[l]``, ``delta[l]`` have shape ``[S, M, N, width_l]`` with M = 2^k components: component ``m`` is
    the coefficient of the monomial Π_{j in m} ε_j.
    """

    def __init__(self, net: StructuredMLP, a: list[torch.Tensor], z: list[torch.Tensor],
                 delta: list[torch.Tensor] | None) -> None:
        self.net, self.a, self.z, self.delta = net, a, z, delta

    @property
    def f(self) -> torch.Tensor:
        """Output components ``[S, M, N]``."""
        return self.z[-1][..., 0]

    def value(self, i: int, mask: int) -> torch.Tensor:
        """``D^{|mask|} f(x_i)[directions in mask]``, ``[S]``."""
        return self.f[:, mask, i]

    def grad(self, i: int, mask: int = 0) -> FVec:
        """The ε^mask coefficient of ∇f at input i: for mask = 0 the gradient J(x_i), for mask = {j} the
        Hessian-vector product H(x_i) v_j, and so on."""
        if self.delta is None:
            raise RuntimeError("this pass was run without the backward part")
        P, Q, B = [], [], []
        subs = _subsets(mask)
        for l in range(self.net.L):
            P.append(torch.stack([self.delta[l][:, s, i] for s in subs], 1))
            Q.append(torch.stack([self.a[l][:, mask & ~s, i] for s in subs], 1))
            B.append(self.delta[l][:, mask, i])
        return FVec(P, Q, B)

    def combo(self, weights: torch.Tensor, idx: Sequence[int] | None = None) -> FVec:
        """Σ_i w_i J(x_i) over the inputs ``idx`` (default all), with per-sample weights ``[S, len(idx)]``."""
        if self.delta is None:
            raise RuntimeError("this pass was run without the backward part")
        ix = list(range(self.a[0].shape[2])) if idx is None else list(idx)
        P = [self.delta[l][:, 0, ix] * weights[..., None] for l in range(self.net.L)]
        Q = [self.a[l][:, 0, ix] for l in range(self.net.L)]
        B = [p.sum(1) for p in P]
        return FVec(P, Q, B)


class StructuredMLP:
    """An :class:`~innerworks.wide.networks.MLPConfig` network with batched parameters, seen layer by layer.

    Layer l computes ``z_l = c_l W_l a_l + β b_l``; ``a_0 = x``, ``a_{l+1} = σ(z_l)``, and the last layer (V, as a
    1×n matrix) gives f.
    """

    def __init__(self, cfg: MLPConfig, params: Params) -> None:
        self.cfg = cfg
        ntk = cfg.parameterization == "ntk"
        self.act = parse_activation(cfg.activation)
        self.W: list[torch.Tensor] = [params["U"]] + [params[f"W{i}"] for i in range(1, cfg.depth)]
        self.W.append(params["V"].unsqueeze(1))
        self.c = [cfg.d_in ** -0.5 if ntk else 1.0] + [cfg.width ** -0.5 if ntk else 1.0] * cfg.depth
        self.beta = cfg.bias_std if ntk else 1.0
        self.b: list[torch.Tensor] | None = None
        if cfg.bias:
            self.b = [params[f"b{i + 1}"] for i in range(cfg.depth)] + [params["b_out"].unsqueeze(-1)]
        self.L = cfg.depth + 1
        ref = params["U"]
        self.S, self.device, self.dtype = ref.shape[0], ref.device, ref.dtype

    # -- elementwise σ and its derivatives ---------------------------------------------------------------------
    def _derivs(self, z0: torch.Tensor, order: int) -> list[torch.Tensor]:
        """[σ(z0), σ'(z0), ..., σ^(order)(z0)] by nested forward mode on the elementwise σ."""
        out = []
        fn = self.act.fn
        ones = torch.ones_like(z0)
        for _ in range(order + 1):
            out.append(fn(z0))
            fn = (lambda g: (lambda z: jvp(g, (z,), (ones,))[1]))(fn)
        return out

    @staticmethod
    def _compose(d: list[torch.Tensor], z: torch.Tensor, shift: int = 0) -> torch.Tensor:
        """σ^{(shift)}(z) in the multilinear algebra (Faà di Bruno over set partitions); ``d[j] = σ^(j)(z0)``."""
        M = z.shape[1]
        out = torch.empty_like(z)
        for m in range(M):
            acc = None
            for part in _set_partitions(m):
                term = d[len(part) + shift]
                for block in part:
                    term = term * z[:, block]
                acc = term if acc is None else acc + term
            out[:, m] = acc
        return out

    @staticmethod
    def _mul(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Product in the multilinear algebra: (pq)[m] = Σ_{s ⊆ m} p[s] q[m \\ s]."""
        out = torch.empty_like(q)
        for m in range(q.shape[1]):
            out[:, m] = sum(p[:, s] * q[:, m & ~s] for s in _subsets(m))
        return out

    # -- passes ------------------------------------------------------------------------------------------------
    def pass_(self, X: torch.Tensor, dirs: Sequence[FVec] = (), backward: bool = True) -> HyperPass:
        """Forward (and backward) pass on inputs ``X [N, d_in]`` in the algebra of multilinear polynomials in
        ε_1..ε_k, the parameters being θ + Σ_j ε_j dirs[j]."""
        k = len(dirs)
        M = 1 << k
        S = self.S
        X = torch.as_tensor(X, device=self.device, dtype=self.dtype)
        N = X.shape[0]
        a = torch.zeros(S, M, N, X.shape[1], device=self.device, dtype=self.dtype)
        a[:, 0] = X
        zs: list[torch.Tensor] = []
        acts: list[torch.Tensor] = []
        derivs: list[list[torch.Tensor]] = []
        for l in range(self.L):
            acts.append(a)
            W, c = self.W[l], self.c[l]
            n_in = a.shape[-1]
            z = c * torch.bmm(a.reshape(S, M * N, n_in), W.transpose(1, 2)).reshape(S, M, N, W.shape[1])
            if self.b is not None:
                z[:, 0] = z[:, 0] + self.beta * self.b[l][:, None, :]
            for j, d in enumerate(dirs):
                bit = 1 << j
                with_bit = [m for m in range(M) if m & bit]
                src = a[:, [m ^ bit for m in with_bit]]                      # [S, M/2, N, n_in]
                coef = torch.einsum("srn,smin->smir", d.Q[l], src)            # Q_r · a
                z[:, with_bit] = z[:, with_bit] + c * c * torch.einsum("smir,sro->smio", coef, d.P[l])
                if self.b is not None:
                    z[:, bit] = z[:, bit] + self.beta * self.beta * d.B[l][:, None, :]
            zs.append(z)
            if l < self.L - 1:
                dv = self._derivs(z[:, 0], k + (1 if backward else 0))
                derivs.append(dv)
                a = self._compose(dv, z)
        delta: list[torch.Tensor] | None = None
        if backward:
            delta = [torch.empty(0)] * self.L
            top = torch.zeros(S, M, N, 1, device=self.device, dtype=self.dtype)
            top[:, 0] = 1.0
            delta[-1] = top
            for l in range(self.L - 1, 0, -1):
                W, c = self.W[l], self.c[l]
                dl = delta[l]
                ga = c * torch.bmm(dl.reshape(S, M * N, W.shape[1]), W).reshape(S, M, N, W.shape[2])
                for j, d in enumerate(dirs):
                    bit = 1 << j
                    with_bit = [m for m in range(M) if m & bit]
                    src = dl[:, [m ^ bit for m in with_bit]]
                    coef = torch.einsum("sro,smio->smir", d.P[l], src)          # P_r · δ
                    ga[:, with_bit] = ga[:, with_bit] + c * c * torch.einsum("smir,srn->smin", coef, d.Q[l])
                sigma_prime = self._compose(derivs[l - 1], zs[l - 1], shift=1)
                delta[l - 1] = self._mul(sigma_prime, ga)
        return HyperPass(self, acts, zs, delta)

    def dot(self, u: FVec, v: FVec) -> torch.Tensor:
        """Per-sample inner product, ``[S]``: Σ_l c_l² Σ_rr' (P_r·P'_r')(Q_r·Q'_r') + β² B·B'."""
        total = torch.zeros(self.S, device=self.device, dtype=self.dtype)
        for l in range(self.L):
            pp = torch.einsum("sro,sto->srt", u.P[l], v.P[l])
            qq = torch.einsum("srn,stn->srt", u.Q[l], v.Q[l])
            total = total + self.c[l] ** 2 * (pp * qq).sum((1, 2))
            if self.b is not None:
                total = total + self.beta**2 * (u.B[l] * v.B[l]).sum(1)
        return total


# ---------------------------------------------------------------------------------------------------------------
# Structured fast paths for the named correlators. Each takes the network, the named inputs and the dataset.

STRUCTURED = ("f", "nngp", "nngp_diag", "ntk", "ntk_diag", "var_ntk", "dtheta_dt", "o3", "o4", "c3", "chain")


class StructuredWorkspace:
    """Caches the passes one batch of networks needs, and evaluates named correlators from them.

    >>> from innerworks.wide.networks import MLPConfig, sphere_points
    >>> cfg = MLPConfig(width=8, depth=2, activation="tanh")
    >>> pts = dict(zip(["x1", "x2", "x3", "x4"], sphere_points(4, 4, seed=0)))
    >>> sw = StructuredWorkspace(cfg, cfg.init_params(3, seed=0), pts)
    >>> sw.evaluate("c3").shape
    torch.Size([3])
    """

    def __init__(self, cfg: MLPConfig, params: Params, points: dict[str, torch.Tensor],
                 dataset: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.net = StructuredMLP(cfg, params)
        self.names = ["x1", "x2", "x3", "x4"]
        dt, dev = self.net.dtype, self.net.device
        self.X = torch.stack([torch.as_tensor(points[n]).to(dev, dt).reshape(-1) for n in self.names])
        self.dataset = None if dataset is None else (torch.as_tensor(dataset[0]).to(dev, dt),
                                                     torch.as_tensor(dataset[1]).to(dev, dt))
        self._base: HyperPass | None = None
        self._data: HyperPass | None = None
        self._multi: dict[tuple, HyperPass] = {}

    @property
    def base(self) -> HyperPass:
        """Plain forward + backward on x1..x4."""
        if self._base is None:
            self._base = self.net.pass_(self.X)
        return self._base

    def J(self, i: int) -> FVec:
        """The gradient J(x_{i+1}) in factored form."""
        return self.base.grad(i)

    def loss_grad(self) -> FVec:
        """g = ∇ ½Σ(f - y)² = Σ_i (f(x_i) - y_i) J(x_i) over the training set."""
        if self.dataset is None:
            raise ValueError("dtheta_dt needs a training set")
        if self._data is None:
            self._data = self.net.pass_(self.dataset[0])
        r = self._data.f[:, 0] - self.dataset[1]
        return self._data.combo(r)

    def multi(self, inputs: tuple[int, ...], dirs: tuple[str, ...], backward: bool) -> HyperPass:
        """A multilinear pass at inputs ``x_{i+1}`` along the named directions (``"J0".."J3"``, ``"g"``)."""
        key = (inputs, dirs, backward)
        if key not in self._multi:
            vecs = [self.loss_grad() if d == "g" else self.J(int(d[1:])) for d in dirs]
            self._multi[key] = self.net.pass_(self.X[list(inputs)], vecs, backward=backward)
        return self._multi[key]

    def evaluate(self, name: str) -> torch.Tensor:
        """Per-sample value of a named correlator, ``[S]``."""
        b = self.base
        if name == "f":
            return b.f[:, 0, 0]
        if name == "nngp":
            return b.f[:, 0, 0] * b.f[:, 0, 1]
        if name == "nngp_diag":
            return b.f[:, 0, 0] ** 2
        if name in ("ntk", "var_ntk"):
            return self.net.dot(self.J(0), self.J(1))
        if name == "ntk_diag":
            return self.net.dot(self.J(0), self.J(0))
        if name == "dtheta_dt":
            # dirs (g, J0, J1): at x1 the {g, J(x2)} component, at x2 the {g, J(x1)} component
            p = self.multi((0, 1), ("g", "J0", "J1"), backward=False)
            return -(p.value(0, 0b101) + p.value(1, 0b011))
        if name == "o3":
            p = self.multi((0, 1), ("J0", "J1", "J2"), backward=False)
            return p.value(0, 0b110) + p.value(1, 0b101)
        if name == "c3":
            return self.multi((0,), ("J1", "J2", "J3"), backward=False).value(0, 0b111)
        if name == "chain":
            p = self.multi((0, 1), ("J0", "J1"), backward=True)
            return self.net.dot(p.grad(0, 0b10), p.grad(1, 0b01))
        if name == "o4":
            p = self.multi((0, 1, 2), ("J0", "J1", "J2", "J3"), backward=True)
            H = {(i, j): p.grad(i, 1 << j) for i in range(3) for j in range(4)}  # H(x_i) J(x_j)
            dot = self.net.dot
            return (p.value(0, 0b1110) + p.value(1, 0b1101) + dot(H[0, 2], H[1, 3]) + dot(H[0, 1], H[2, 3])
                    + dot(H[1, 2], H[0, 3]) + dot(H[1, 0], H[2, 3]))
        raise KeyError(name)


def masks(k: int) -> list[int]:
    """All component masks of k directions (for documentation and tests).

    >>> masks(2)
    [0, 1, 2, 3]
    """
    return list(range(1 << k))


def partitions_count(k: int) -> int:
    """Number of set partitions of k directions (the Bell number), i.e. terms in the top component of σ(z).

    >>> [partitions_count(k) for k in range(5)]
    [1, 1, 2, 5, 15]
    """
    return len(_set_partitions((1 << k) - 1))

