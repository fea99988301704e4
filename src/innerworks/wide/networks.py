"""Deep MLPs of width ``n`` and depth ``d`` for wide-network experiments, in NTK or standard parameterisation.

The [DG] network (``shared/papers/wide.md`` §1), with ``d`` hidden layers of width ``n`` and a scalar output::

    f(x) = n^{-1/2} V^T σ(n^{-1/2} W^{(d-1)} σ(... σ(D_in^{-1/2} U x)))

All weights are i.i.d. N(0, 1) and the ``1/sqrt(fan_in)`` factor sits in the forward pass (NTK parameterisation).
In standard parameterisation the weights are N(0, 1/fan_in) and the forward pass has no factor: the two compute the
same function at initialisation but have different derivatives (so different width exponents). Optional biases are
N(0, 1), scaled by ``bias_std`` in the forward pass (NTK) or at initialisation (standard).

Monte Carlo over initialisations needs many independent networks at once, so parameters carry a leading *sample*
axis ``S``: ``params["U"]`` has shape ``[S, n, D_in]`` and :func:`mlp_apply` returns ``f`` of shape ``[S, N]``.
Because the ``S`` networks are independent, ``grad`` of ``f.sum()`` gives every network's own gradient, and a ``jvp``
with per-sample tangents gives every network's own directional derivative.

>>> cfg = MLPConfig(width=8, depth=2, activation="tanh")
>>> p = cfg.init_params(3, seed=0)
>>> mlp_apply(cfg, p, torch.ones(5, 4)).shape
torch.Size([3, 5])
>>> cfg.num_params   # U: 8x4, W1: 8x8, V: 8
104
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from innerworks.errors import InnerworksError

Params = dict[str, torch.Tensor]

_SQRT2 = math.sqrt(2.0)

# Named polynomials from the notes (§5): a mild cubic and a mild quadratic. Coefficients c0, c1, c2, ...
NAMED_POLYNOMIALS: dict[str, tuple[float, ...]] = {
    "cubic": (0.0, 1.0, 0.0, -1.0 / 12.0),
    "quadratic": (0.0, 1.0, 0.25),
}
ACTIVATIONS = ("linear", "relu", "tanh", "erf", "gelu", "cubic", "quadratic", "poly:c0,c1,...")


@dataclass(frozen=True)
class Activation:
    """A pointwise activation σ, built from primitives whose derivatives autodiff knows to any order.

    ``piecewise_linear`` is True when σ'' = 0 almost everywhere (linear, ReLU, affine polynomials): such networks
    have exact zeros among their derivative tensors (notes §5).

    >>> a = parse_activation("poly:0,1,0.5")
    >>> a.name, a.piecewise_linear, float(a(torch.tensor(2.0)))
    ('poly:0,1,0.5', False, 4.0)
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor] = field(compare=False, repr=False)
    piecewise_linear: bool = False
    analytic: bool = True

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def _poly(coeffs: tuple[float, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(z: torch.Tensor) -> torch.Tensor:
        # Horner's rule: a few multiply-adds, differentiable to any order.
        out = torch.full_like(z, coeffs[-1])
        for c in reversed(coeffs[:-1]):
            out = out * z + c
        return out

    return fn


def _gelu(z: torch.Tensor) -> torch.Tensor:
    # Exact GELU written from erf so that nested forward-mode derivatives of any order exist.
    return 0.5 * z * (1.0 + torch.special.erf(z / _SQRT2))


_FLOAT32_MAX = float(torch.finfo(torch.float32).max)  # poly: coefficients must fit a float32 tensor


def parse_activation(spec: str | Activation) -> Activation:
    """Build an :class:`Activation` from a name: ``linear``, ``relu``, ``tanh``, ``erf``, ``gelu``, ``cubic``,
    ``quadratic`` or ``poly:c0,c1,c2,...`` (σ(z) = c0 + c1 z + c2 z² + ...).

    >>> parse_activation("relu").piecewise_linear
    True
    >>> parse_activation("poly:1,2").piecewise_linear
    True
    """
    if isinstance(spec, Activation):
        return spec
    name = str(spec).strip().lower()
    if name in ("linear", "identity"):
        return Activation("linear", lambda z: z, piecewise_linear=True)
    if name == "relu":
        return Activation("relu", torch.relu, piecewise_linear=True, analytic=False)
    if name == "tanh":
        return Activation("tanh", torch.tanh)
    if name == "erf":
        return Activation("erf", torch.special.erf)
    if name == "gelu":
        return Activation("gelu", _gelu)
    if name in NAMED_POLYNOMIALS:
        coeffs = NAMED_POLYNOMIALS[name]
        return Activation(name, _poly(coeffs))
    if name.startswith("poly:") or name.startswith("poly("):
        body = name[5:].rstrip(")")
        try:
            coeffs = tuple(float(c) for c in body.split(",") if c.strip())
        except ValueError:
            raise InnerworksError(
                f"activation {spec!r}: polynomial coefficients must be numbers, e.g. 'poly:0,1,0,-0.0833'"
            ) from None
        if not coeffs or not all(math.isfinite(c) and abs(c) <= _FLOAT32_MAX for c in coeffs):
            raise InnerworksError(f"activation {spec!r}: give at least one coefficient, each finite and within "
                                  f"±{_FLOAT32_MAX:.3g} (float32), e.g. 'poly:0,1,0.25'")
        while len(coeffs) > 1 and coeffs[-1] == 0.0:
            coeffs = coeffs[:-1]
        return Activation(name, _poly(coeffs), piecewise_linear=len(coeffs) <= 2)
    raise InnerworksError(f"activation {spec!r}: expected one of {', '.join(ACTIVATIONS)}")


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of a scalar-output MLP: ``depth`` hidden layers of ``width`` units on ``d_in`` inputs.

    Attributes:
        width: hidden width n.
        depth: number of hidden layers d (so d + 1 weight layers: U, W1..W(d-1), V).
        d_in: input dimension (NTK: the input is scaled by ``d_in**-0.5``, which changes no exponent in n).
        activation: a name accepted by :func:`parse_activation`.
        parameterization: ``"ntk"`` (N(0,1) weights, 1/sqrt(fan_in) in the forward pass) or ``"standard"``.
        bias: add a bias to every layer (hidden and output).
        bias_std: bias scale β (forward-pass factor in NTK parameterisation, init std in standard).

    >>> MLPConfig(width=4, depth=1).param_shapes()
    {'U': (4, 4), 'V': (4,)}
    """

    width: int
    depth: int = 2
    d_in: int = 4
    activation: str = "relu"
    parameterization: str = "ntk"
    bias: bool = False
    bias_std: float = 0.1

    def __post_init__(self) -> None:
        if int(self.width) < 1:
            raise InnerworksError(f"width: expected a positive integer, got {self.width}")
        if int(self.depth) < 1:
            raise InnerworksError(f"depth: expected at least 1 hidden layer, got {self.depth}")
        if int(self.d_in) < 1:
            raise InnerworksError(f"d_in: expected a positive integer, got {self.d_in}")
        if self.parameterization not in ("ntk", "standard"):
            raise InnerworksError(f"parameterization {self.parameterization!r}: expected 'ntk' or 'standard'")
        parse_activation(self.activation)  # validates the name early

    @property
    def act(self) -> Activation:
        """The parsed activation."""
        return parse_activation(self.activation)

    @property
    def num_layers(self) -> int:
        """Number of weight layers L = depth + 1 (biases belong to their layer)."""
        return self.depth + 1

    def with_width(self, width: int) -> MLPConfig:
        """A copy with another width.

        >>> MLPConfig(width=4).with_width(16).width
        16
        """
        return MLPConfig(width, self.depth, self.d_in, self.activation, self.parameterization, self.bias,
                         self.bias_std)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter of one network, in forward order."""
        n = self.width
        shapes: dict[str, tuple[int, ...]] = {"U": (n, self.d_in)}
        if self.bias:
            shapes["b1"] = (n,)
        for layer in range(1, self.depth):
            shapes[f"W{layer}"] = (n, n)
            if self.bias:
                shapes[f"b{layer + 1}"] = (n,)
        shapes["V"] = (n,)
        if self.bias:
            shapes["b_out"] = ()
        return shapes

    def layer_of(self, name: str) -> int:
        """Index (0..L-1) of the weight layer a parameter belongs to.

        >>> cfg = MLPConfig(width=4, depth=3, bias=True)
        >>> [cfg.layer_of(k) for k in cfg.param_shapes()]
        [0, 0, 1, 1, 2, 2, 3, 3]
        """
        if name == "U" or name == "b1":
            return 0
        if name in ("V", "b_out"):
            return self.depth
        if name.startswith("W"):
            return int(name[1:])
        if name.startswith("b"):
            return int(name[1:]) - 1
        raise KeyError(name)

    @property
    def num_params(self) -> int:
        """Number of parameters P of one network."""
        return sum(math.prod(s) for s in self.param_shapes().values())

    def init_params(self, num_samples: int, seed: int = 0, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32, first_sample: int = 0) -> Params:
        """Draw ``num_samples`` independent initialisations, stacked on a leading axis.

        Samples come in fixed blocks of :meth:`init_block` consecutive indices; block ``b`` is drawn from a generator
        seeded by ``(seed, b)``. So sample ``s`` does not depend on how the samples are split into batches.

        >>> cfg = MLPConfig(width=3, depth=1)
        >>> a = cfg.init_params(100, seed=1); b = cfg.init_params(30, seed=1, first_sample=50)
        >>> bool(torch.equal(a["U"][50:80], b["U"]))
        True
        """
        shapes = self.param_shapes()
        block = self.init_block()
        out = {k: torch.empty((num_samples, *shape), device=device, dtype=dtype) for k, shape in shapes.items()}
        gen = torch.Generator(device=device)
        end = first_sample + num_samples
        for b in range(first_sample // block, (end + block - 1) // block):
            gen.manual_seed(derive_seed(seed, "init", b))
            lo, hi = max(first_sample - b * block, 0), min(end - b * block, block)
            dst = slice(b * block + lo - first_sample, b * block + hi - first_sample)
            for k, shape in shapes.items():
                if lo == 0 and hi == block:  # a whole block: draw straight into place
                    torch.randn((block, *shape), generator=gen, device=device, dtype=dtype, out=out[k][dst])
                else:
                    out[k][dst] = torch.randn((block, *shape), generator=gen, device=device, dtype=dtype)[lo:hi]
        for k, shape in shapes.items():
            std = self._init_std(k, shape)
            if std != 1.0:
                out[k].mul_(std)
        return out

    def init_block(self) -> int:
        """Samples per random block: 64 for small nets, fewer when one network is large (at most ~2^22 numbers).

        >>> MLPConfig(width=64).init_block(), MLPConfig(width=4096).init_block()
        (64, 1)
        """
        return int(max(1, min(64, (1 << 22) // self.num_params)))

    def _init_std(self, name: str, shape: tuple[int, ...]) -> float:
        if self.parameterization == "ntk":
            return 1.0
        if name.startswith("b"):
            return self.bias_std
        fan_in = self.d_in if name == "U" else self.width
        return 1.0 / math.sqrt(fan_in)


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed derived from a base seed and labels (independent of Python's hash randomisation).

    >>> derive_seed(0, "init", 3) == derive_seed(0, "init", 3) != derive_seed(0, "init", 4)
    True
    """
    text = "|".join([str(int(seed)), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def mlp_apply(cfg: MLPConfig, params: Params, x: torch.Tensor) -> torch.Tensor:
    """Evaluate ``S`` networks (leading axis of every parameter) on inputs ``x`` of shape ``[N, d_in]``
    (shared) or ``[S, N, d_in]`` (per network); return ``f`` of shape ``[S, N]``.

    >>> cfg = MLPConfig(width=2, depth=1, activation="linear")
    >>> p = {"U": torch.ones(1, 2, 4), "V": torch.ones(1, 2)}
    >>> mlp_apply(cfg, p, torch.ones(1, 4) * 2).tolist()   # each unit: 4 * 2 / 4^0.5 = 4; f = (4 + 4) / 2^0.5
    [[5.656854152679443]]
    """
    act = parse_activation(cfg.activation)
    ntk = cfg.parameterization == "ntk"
    n = cfg.width
    # Standard parameterisation puts every 1/sqrt(fan_in) (input layer included) into the initialisation instead.
    scale_in = 1.0 / math.sqrt(cfg.d_in) if ntk else 1.0
    scale_h = 1.0 / math.sqrt(n) if ntk else 1.0
    beta = cfg.bias_std if ntk else 1.0
    # [S, N, D] @ [S, D, n] -> [S, N, n]
    z = torch.matmul(x * scale_in, params["U"].transpose(-1, -2))
    if cfg.bias:
        z = z + beta * params["b1"].unsqueeze(-2)
    h = act(z)
    for layer in range(1, cfg.depth):
        z = torch.matmul(h, params[f"W{layer}"].transpose(-1, -2)) * scale_h
        if cfg.bias:
            z = z + beta * params[f"b{layer + 1}"].unsqueeze(-2)
        h = act(z)
    f = torch.matmul(h, params["V"].unsqueeze(-1)).squeeze(-1) * scale_h
    if cfg.bias:
        f = f + beta * params["b_out"].unsqueeze(-1)
    return f


class WideMLP(nn.Module):
    """One MLP as an ``nn.Module`` (for training loops and ``torch.func.functional_call``).

    >>> from torch.func import functional_call
    >>> net = WideMLP(MLPConfig(width=8, depth=2, activation="tanh"), seed=0)
    >>> x = torch.randn(3, 4)
    >>> out = functional_call(net, dict(net.named_parameters()), (x,))
    >>> out.shape, bool(torch.allclose(out, net(x)))
    (torch.Size([3]), True)
    """

    def __init__(self, cfg: MLPConfig, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.cfg = cfg
        init = cfg.init_params(1, seed=seed, dtype=dtype)
        for k, v in init.items():
            self.register_parameter(k, nn.Parameter(v[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` for inputs ``[N, d_in]`` -> ``[N]``."""
        params = {k: v.unsqueeze(0) for k, v in self.named_parameters()}
        return mlp_apply(self.cfg, params, x)[0]


def sphere_points(num: int, d_in: int, seed: int, label: str = "points") -> torch.Tensor:
    """``num`` random points on the sphere of radius ``sqrt(d_in)`` (so ``|x|^2 / d_in = 1``), float64.

    >>> x = sphere_points(3, 4, seed=0)
    >>> x.shape, [round(float(v), 6) for v in (x ** 2).sum(1)]
    (torch.Size([3, 4]), [4.0, 4.0, 4.0])
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, label))
    x = torch.randn(num, d_in, generator=gen, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True) * math.sqrt(d_in)
