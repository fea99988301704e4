"""Matrix-free Monte Carlo estimates of correlation functions over Gaussian initialisations.

Every derivative-tensor contraction is built from nested Jacobian-vector products and gradients (``torch.func``):

- a rank-k factor with all k indices contracted against vectors v1..vk is the scalar ``D^k f(x)[v1, ..., vk]``
  (k nested ``jvp`` of f);
- a rank-k factor with one index left open is the vector ``∇ D^{k-1} f(x)[v1, ..., v_{k-1}]`` (forward-over-reverse:
  ``jvp`` of ``grad``), e.g. a gradient J(x) or a Hessian-vector product H(x) J(y).

A spec's index pattern is a multigraph on its factors. Each connected piece is evaluated along a spanning tree rooted
at its highest-rank factor: leaves become vectors, vectors feed their parents, the root gives a scalar. Indices that
close a cycle (a Hessian trace, a Frobenius product) are contracted with a random Rademacher probe z on both ends;
since E[z zᵀ] = I this is unbiased, and its noise adds to the Monte Carlo noise over initialisations. No N×P
Jacobian and no P×P Hessian is formed: the memory per sample is a handful of parameter-sized vectors, O(P).

Many networks are evaluated at once: parameters carry a leading sample axis (see :mod:`innerworks.wide.networks`).
Vectors are cached per batch by a structural key, so correlators that share pieces (J(x1), H(x1)J(x2), ...) compute
them once. Named correlators have fast paths: hand-written torch.func compositions (``method="autodiff"``) and, by
default, structured derivatives (:mod:`innerworks.wide.structured`), which keep every vector factored per layer and
are one to two orders of magnitude faster at large width. The three evaluators agree to rounding (tested against
dense Jacobian/Hessian contractions).

>>> from innerworks.wide.networks import MLPConfig
>>> est = estimate("ntk_diag", MLPConfig(width=16, depth=2, activation="relu"), num_samples=256, seed=0)
>>> est.n_samples, abs(est.mean - 0.75) < 4 * est.stderr    # E[Θ(x,x)] = 3/4 at every width (notes §8.8)
(256, True)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.func import grad, jvp

from innerworks.errors import InnerworksError
from innerworks.wide.networks import MLPConfig, Params, derive_seed, mlp_apply, sphere_points
from innerworks.wide.spec import NAMED, NamedCorrelator, Spec, Term, resolve

Vec = dict[str, torch.Tensor]
Key = tuple

_POOL = 16  # number of standard probe inputs x1..x16


def _skey(keys: Sequence[Key]) -> tuple:
    """Canonical (sorted) tuple of keys: derivative tensors are symmetric in their arguments."""
    return tuple(sorted(keys, key=repr))


def J(x: str) -> Key:
    """Cache key of the gradient ∇f(x).

    >>> J("x1")
    ('T', 'x1', ())
    """
    return ("T", x, ())


def HV(x: str, v: Key) -> Key:
    """Cache key of the Hessian-vector product H(x) v.

    >>> HV("x1", J("x2"))
    ('T', 'x1', (('T', 'x2', ()),))
    """
    return ("T", x, (v,))


GRAD_LOSS: Key = ("g",)


def dot(u: Vec, v: Vec) -> torch.Tensor:
    """Per-sample inner product of two batched parameter vectors -> ``[S]``.

    >>> u = {"a": torch.ones(2, 3)}; dot(u, u).tolist()
    [3.0, 3.0]
    """
    total = None
    for k in u:
        prod = u[k] * v[k]
        term = prod.reshape(prod.shape[0], -1).sum(1)
        total = term if total is None else total + term
    assert total is not None
    return total


def _along(inner: Callable[[Params], Any], v: Vec) -> Callable[[Params], Any]:
    """θ -> the directional derivative of ``inner`` at θ along ``v`` (one more level of forward mode)."""
    return lambda th: jvp(inner, (th,), (v,))[1]


class Workspace:
    """One batch of sampled networks plus a cache of the vectors and scalars computed on them.

    Args:
        cfg: network architecture.
        params: batched parameters (leading sample axis S).
        points: input name -> point (``[d_in]``).
        dataset: optional ``(X [N, d_in], y [N])`` for quantities under MSE gradient flow.
        probe_seed: seed of the Rademacher probes.
        exact_probes: contract cycle-closing indices over the full basis instead of probes (tiny nets, tests).

    >>> from innerworks.wide.networks import MLPConfig
    >>> cfg = MLPConfig(width=4, depth=2, activation="tanh")
    >>> ws = Workspace(cfg, cfg.init_params(2, seed=0), {"x1": torch.ones(4), "x2": -torch.ones(4)})
    >>> ws.scalar("x1", (J("x2"),)).shape      # Θ(x1, x2) for each of the 2 networks
    torch.Size([2])
    """

    def __init__(self, cfg: MLPConfig, params: Params, points: dict[str, torch.Tensor],
                 dataset: tuple[torch.Tensor, torch.Tensor] | None = None, probe_seed: int = 0,
                 exact_probes: bool = False) -> None:
        self.cfg = cfg
        self.params = params
        ref = next(iter(params.values()))
        self.S = ref.shape[0]
        self.device, self.dtype = ref.device, ref.dtype
        self.points = {k: torch.as_tensor(v).to(self.device, self.dtype).reshape(1, -1) for k, v in points.items()}
        self.dataset = None
        if dataset is not None:
            X, y = dataset
            self.dataset = (torch.as_tensor(X).to(self.device, self.dtype),
                            torch.as_tensor(y).to(self.device, self.dtype))
        self.exact_probes = exact_probes
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(int(probe_seed))
        self._vecs: dict[Key, Vec] = {}
        self._scalars: dict[tuple, torch.Tensor] = {}

    # -- primitives ---------------------------------------------------------------------------------------------
    def _point(self, x: str) -> torch.Tensor:
        if x not in self.points:
            raise InnerworksError(f"input {x!r}: no point given for it (known: {', '.join(self.points)})")
        return self.points[x]

    def _f_fn(self, x: str) -> Callable[[Params], torch.Tensor]:
        pt = self._point(x)
        cfg = self.cfg
        return lambda th: mlp_apply(cfg, th, pt)[:, 0]

    def f(self, x: str) -> torch.Tensor:
        """The outputs f(x) of the S networks, ``[S]``."""
        key = ("f", x)
        if key not in self._scalars:
            with torch.no_grad():
                self._scalars[key] = self._f_fn(x)(self.params)
        return self._scalars[key]

    def vec(self, key: Key) -> Vec:
        """The batched vector named by ``key``: ``("T", x, keys)`` = ∇ D^k f(x)[keys], ``("g",)`` = ∇L (MSE on the
        dataset), ``("z", ...)`` = a Rademacher probe, ``("e", i)`` = the i-th basis vector."""
        if key in self._vecs:
            return self._vecs[key]
        kind = key[0]
        if kind == "T":
            out = self._deriv_vector(key[1], key[2])
        elif kind == "g":
            out = self._loss_grad()
        elif kind == "z":
            out = {k: torch.randint(0, 2, v.shape, generator=self._gen, device=self.device).to(self.dtype) * 2 - 1
                   for k, v in self.params.items()}
        elif kind == "e":
            out = self._basis(int(key[1]))
        else:
            raise KeyError(key)
        self._vecs[key] = out
        return out

    def _deriv_vector(self, x: str, keys: tuple) -> Vec:
        fx = self._f_fn(x)
        fn: Callable[[Params], Any] = grad(lambda th: fx(th).sum())
        for k in keys:
            v = self.vec(k)
            fn = _along(fn, v)
        out = fn(self.params)
        return {k: t.detach() for k, t in out.items()}

    def _loss_grad(self) -> Vec:
        if self.dataset is None:
            raise InnerworksError("this correlator needs a training set (dataset=(X, y)) for the MSE loss gradient")
        X, y = self.dataset
        cfg = self.cfg

        def loss(th: Params) -> torch.Tensor:
            r = mlp_apply(cfg, th, X) - y
            return 0.5 * (r * r).sum()

        return {k: t.detach() for k, t in grad(loss)(self.params).items()}

    def _basis(self, i: int) -> Vec:
        out: Vec = {}
        offset = 0
        for k, v in self.params.items():
            size = v[0].numel()
            e = torch.zeros_like(v)
            if offset <= i < offset + size:
                e.view(self.S, -1)[:, i - offset] = 1.0
            out[k] = e
            offset += size
        return out

    def dot(self, a: Key, b: Key) -> torch.Tensor:
        """Per-sample inner product of two cached vectors, ``[S]``."""
        key = ("dot", *_skey((a, b)))
        if key not in self._scalars:
            self._scalars[key] = dot(self.vec(a), self.vec(b))
        return self._scalars[key]

    def scalar(self, x: str, keys: Sequence[Key]) -> torch.Tensor:
        """``D^k f(x)[v1..vk]`` for the vectors named by ``keys``, ``[S]``.

        Reuses a cached ``∇ D^{k-1} f(x)[...]`` (one dot product) when there is one, else runs k nested jvps.
        """
        keys = _skey(keys)
        if not keys:
            return self.f(x)
        skey = ("D", x, keys)
        if skey in self._scalars:
            return self._scalars[skey]
        for i, last in enumerate(keys):
            rest = _skey(keys[:i] + keys[i + 1:])
            if ("T", x, rest) in self._vecs:
                val = dot(self._vecs[("T", x, rest)], self.vec(last))
                break
        else:
            fn: Callable[[Params], torch.Tensor] = self._f_fn(x)
            for k in keys:
                v = self.vec(k)
                fn = _along(fn, v)
            with torch.no_grad():
                val = fn(self.params).detach()
        self._scalars[skey] = val
        return val

    def probe_sum(self, fn: Callable[[Key], torch.Tensor], tag: str, rep: int = 0) -> torch.Tensor:
        """Σ_a X[a] Y[a] for one cycle-closing index: ``fn(z)`` evaluates the product with the probe z on both ends.
        Random mode: one Rademacher probe (unbiased). Exact mode: the sum over the P basis vectors."""
        if not self.exact_probes:
            return fn(("z", tag, rep))
        return sum(fn(("e", i)) for i in range(self.cfg.num_params))

    def clear(self) -> None:
        """Drop the cache (frees memory)."""
        self._vecs.clear()
        self._scalars.clear()


# ---------------------------------------------------------------------------------------------------------------
# Generic evaluation of any valid spec.


def _term_components(term: Term) -> list[list[int]]:
    parent = list(range(term.m))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in term.index_owners.values():
        parent[find(a)] = find(b)
    comps: dict[int, list[int]] = {}
    for i in range(term.m):
        comps.setdefault(find(i), []).append(i)
    return list(comps.values())


def evaluate_term(ws: Workspace, term: Term, tag: str = "t", rep: int = 0) -> torch.Tensor:
    """Per-sample value of one term (sign included), ``[S]``: a product over its connected pieces.

    >>> from innerworks.wide.networks import MLPConfig
    >>> from innerworks.wide.spec import parse_spec
    >>> cfg = MLPConfig(width=4, depth=2, activation="tanh")
    >>> ws = Workspace(cfg, cfg.init_params(2, seed=0), {"x1": torch.ones(4), "x2": -torch.ones(4)})
    >>> t = parse_spec("df(x1)[a] df(x2)[a]").terms[0]
    >>> bool(torch.allclose(evaluate_term(ws, t), dot(ws.vec(J("x1")), ws.vec(J("x2")))))
    True
    """
    owners = term.index_owners
    # incidence: factor position -> list of (index name, other end)
    incident: dict[int, list[tuple[str, int]]] = {i: [] for i in range(term.m)}
    for idx, (a, b) in owners.items():
        incident[a].append((idx, b))
        if a != b:
            incident[b].append((idx, a))
    value = torch.full((ws.S,), float(term.sign), device=ws.device, dtype=ws.dtype)
    for comp in _term_components(term):
        root = max(comp, key=lambda i: (term.factors[i].rank, -i))
        # Breadth-first spanning tree; indices that close a cycle get a probe on both ends.
        children: dict[int, list[int]] = {i: [] for i in comp}
        probes: dict[int, list[str]] = {i: [] for i in comp}
        seen_nodes = {root}
        seen_idx: set[str] = set()
        queue = [root]
        while queue:
            node = queue.pop(0)
            for idx, other in incident[node]:
                if idx in seen_idx:
                    continue
                seen_idx.add(idx)
                if other == node:
                    probes[node] += [idx, idx]
                elif other in seen_nodes:
                    probes[node].append(idx)
                    probes[other].append(idx)
                else:
                    seen_nodes.add(other)
                    children[node].append(other)
                    queue.append(other)
        probe_idx = sorted({i for lst in probes.values() for i in lst})
        value = value * _eval_component(ws, term, root, children, probes, probe_idx, tag, rep)
    return value


def _eval_component(ws: Workspace, term: Term, root: int, children: dict[int, list[int]],
                    probes: dict[int, list[str]], probe_idx: list[str], tag: str, rep: int) -> torch.Tensor:
    def run(assign: dict[str, Key]) -> torch.Tensor:
        def key_of(node: int) -> Key:
            ks = [key_of(c) for c in children[node]] + [assign[i] for i in probes[node]]
            return ("T", term.factors[node].input, _skey(ks))

        ks = [key_of(c) for c in children[root]] + [assign[i] for i in probes[root]]
        return ws.scalar(term.factors[root].input, ks)

    if not probe_idx:
        return run({})
    if not ws.exact_probes:
        return run({i: ("z", tag, i, rep) for i in probe_idx})
    P = ws.cfg.num_params
    if P ** len(probe_idx) > 200_000:
        raise InnerworksError(f"exact probes: {P}^{len(probe_idx)} basis combinations is too many; use random probes")
    total = torch.zeros(ws.S, device=ws.device, dtype=ws.dtype)
    for combo in itertools.product(range(P), repeat=len(probe_idx)):
        total = total + run({i: ("e", c) for i, c in zip(probe_idx, combo, strict=True)})
    return total


def evaluate_spec(ws: Workspace, spec: Spec, rep: int = 0) -> torch.Tensor:
    """Per-sample value of a spec (sum of its terms), ``[S]``."""
    return sum(evaluate_term(ws, t, tag=f"t{i}", rep=rep) for i, t in enumerate(spec.terms))


# ---------------------------------------------------------------------------------------------------------------
# Fast paths for the named correlators: the cheapest shared pieces (gradients, Hessian-vector products, one
# loss gradient for the whole training set) instead of the generic tree.


def _fast_o4(ws: Workspace, a: str, b: str, c: str, d: str) -> torch.Tensor:
    Ja, Jb, Jc, Jd = J(a), J(b), J(c), J(d)
    return (ws.scalar(a, (Jb, Jc, Jd)) + ws.scalar(b, (Ja, Jc, Jd))
            + ws.dot(HV(a, Jc), HV(b, Jd)) + ws.dot(HV(a, Jb), HV(c, Jd))
            + ws.dot(HV(b, Jc), HV(a, Jd)) + ws.dot(HV(b, Ja), HV(c, Jd)))


FAST_PATHS: dict[str, Callable[[Workspace, int], torch.Tensor]] = {
    "f": lambda ws, rep: ws.f("x1"),
    "nngp": lambda ws, rep: ws.f("x1") * ws.f("x2"),
    "nngp_diag": lambda ws, rep: ws.f("x1") ** 2,
    "ntk": lambda ws, rep: ws.dot(J("x1"), J("x2")),
    "ntk_diag": lambda ws, rep: ws.dot(J("x1"), J("x1")),
    "var_ntk": lambda ws, rep: ws.dot(J("x1"), J("x2")),
    # dΘ(x1,x2)/dt = Σ_μ ∂_μΘ θ̇_μ with θ̇ = -∇L and ∂Θ = H(x1)J(x2) + H(x2)J(x1): two second directional
    # derivatives D²f(x1)[g, J(x2)] + D²f(x2)[g, J(x1)] (nested jvps, or dot products with cached HVPs).
    "dtheta_dt": lambda ws, rep: -(ws.scalar("x1", (GRAD_LOSS, J("x2"))) + ws.scalar("x2", (GRAD_LOSS, J("x1")))),
    "o3": lambda ws, rep: ws.dot(J("x3"), HV("x1", J("x2"))) + ws.dot(J("x3"), HV("x2", J("x1"))),
    "o4": lambda ws, rep: _fast_o4(ws, "x1", "x2", "x3", "x4"),
    "c3": lambda ws, rep: ws.scalar("x1", (J("x2"), J("x3"), J("x4"))),
    "chain": lambda ws, rep: ws.dot(HV("x1", J("x2")), HV("x2", J("x1"))),
    "hessian_trace": lambda ws, rep: ws.probe_sum(lambda z: ws.scalar("x1", (z, z)), "trace", rep) * ws.f("x2"),
    "hessian_frobenius": lambda ws, rep: ws.probe_sum(lambda z: ws.dot(HV("x1", z), HV("x2", z)), "frob", rep),
}
assert set(FAST_PATHS) == set(NAMED)
_PRIORITY = {"o4": 0, "o3": 1, "chain": 2}


# ---------------------------------------------------------------------------------------------------------------
# Monte Carlo driver.


@dataclass
class Estimate:
    """A Monte Carlo estimate over initialisations.

    Attributes:
        name: the correlator's name or spec text.
        kind: ``"moment"`` (mean of the per-sample values) or ``"variance"`` (their variance).
        mean: the estimate (for ``"variance"``, the sample variance).
        stderr: its standard error.
        n_samples: number of finite samples used.
        std: per-sample standard deviation.
        samples: the finite per-sample values (kept for bootstrap fits).
        n_nonfinite: samples dropped because their value was NaN or infinite.
        warnings: anything the reader should know (non-finite samples, ...).
    """

    name: str
    kind: str
    mean: float
    stderr: float
    n_samples: int
    std: float
    samples: np.ndarray = field(repr=False)
    n_nonfinite: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the raw samples)."""
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "stderr": self.stderr,
                "n_samples": self.n_samples, "std": self.std, "n_nonfinite": self.n_nonfinite,
                "warnings": list(self.warnings)}


def summarize(name: str, kind: str, values: np.ndarray) -> Estimate:
    """Turn per-sample values into an :class:`Estimate`; non-finite samples are dropped with a warning.

    >>> e = summarize("demo", "moment", np.array([1.0, 3.0, np.nan]))
    >>> e.mean, e.n_samples, e.n_nonfinite, len(e.warnings)
    (2.0, 2, 1, 1)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    n_bad = int((~finite).sum())
    v = values[finite]
    warnings: list[str] = []
    if n_bad:
        warnings.append(f"{name}: {n_bad} of {values.size} samples were non-finite (NaN/inf) and were dropped; "
                        "the estimate may be biased (overflow: try a milder activation or smaller inputs)")
    S = v.size
    if S == 0:
        warnings.append(f"{name}: no finite samples; the estimate is undefined")
        return Estimate(name, kind, float("nan"), float("nan"), 0, float("nan"), v, n_bad, warnings)
    std = float(v.std(ddof=1)) if S > 1 else float("nan")
    if kind == "variance":
        mean = float(v.var(ddof=1)) if S > 1 else float("nan")
        m4 = float(((v - v.mean()) ** 4).mean())
        stderr = math.sqrt(max(m4 - mean**2, 0.0) / S) if S > 1 else float("nan")
    else:
        mean = float(v.mean())
        stderr = std / math.sqrt(S) if S > 1 else float("nan")
    return Estimate(name, kind, mean, stderr, S, std, v, n_bad, warnings)


def input_names(correlators: Sequence[str | Spec]) -> list[str]:
    """The input names the correlators use (named correlators use x1..x4), in order of first appearance.

    >>> input_names(["ntk", "f(y) f(x9)"])
    ['x1', 'x2', 'x3', 'x4', 'y', 'x9']
    """
    inputs: list[str] = []
    for c in correlators:
        spec, named = resolve(c)
        for x in (spec.inputs if named is None else ("x1", "x2", "x3", "x4")):
            if x not in inputs:
                inputs.append(x)
    return inputs


def default_points(names: Sequence[str], d_in: int, seed: int) -> dict[str, torch.Tensor]:
    """Inputs for the names in a spec: ``x1..x16`` are fixed points on the sphere |x|² = d_in (derived from the
    seed); any other name takes the next unused one.

    >>> p = default_points(["x2", "y"], 4, seed=0)
    >>> bool(torch.equal(p["x2"], default_points(["x2"], 4, seed=0)["x2"])), sorted(p)
    (True, ['x2', 'y'])
    """
    pool = sphere_points(_POOL, d_in, seed, "probe-inputs")
    out: dict[str, torch.Tensor] = {}
    used: set[int] = set()
    for name in names:
        if name.startswith("x") and name[1:].isdigit() and 1 <= int(name[1:]) <= _POOL:
            out[name] = pool[int(name[1:]) - 1]
            used.add(int(name[1:]) - 1)
    free = [i for i in range(_POOL) if i not in used]
    for name in names:
        if name not in out:
            if not free:
                raise InnerworksError(f"spec uses more than {_POOL} distinct inputs; pass points explicitly")
            out[name] = pool[free.pop(0)]
    return out


def default_dataset(d_in: int, seed: int, num: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The small regression set of the notes (§6): ``num`` points on the sphere, N(0, 1) targets.

    >>> X, y = default_dataset(4, seed=0); X.shape, y.shape
    (torch.Size([4, 4]), torch.Size([4]))
    """
    X = sphere_points(num, d_in, seed, "train")
    gen = torch.Generator().manual_seed(derive_seed(seed, "targets"))
    y = torch.randn(num, generator=gen, dtype=torch.float64)
    return X, y


METHODS = ("auto", "structured", "autodiff", "generic")


def _path(named: NamedCorrelator | None, method: str) -> str:
    """Which evaluator handles a correlator: ``structured``, ``autodiff`` (torch.func fast path) or ``generic``."""
    from innerworks.wide.structured import STRUCTURED

    if named is None or method == "generic":
        return "generic"
    if method in ("auto", "structured") and named.name in STRUCTURED:
        return "structured"
    return "autodiff"


def _vectors_per_sample(specs: Sequence[tuple[Spec, NamedCorrelator | None]], method: str) -> int:
    n = 2  # the parameters plus working space
    for spec, named in specs:
        path = _path(named, method)
        if path == "autodiff":
            n += 12
        elif path == "generic":
            n += sum(2 * t.m for t in spec.terms) + 2
    return n


def auto_batch_size(cfg: MLPConfig, num_samples: int, vectors_per_sample: int, dtype: torch.dtype,
                    memory_budget: float = 1.0e9) -> int:
    """Samples per batch so that the cached vectors fit in ``memory_budget`` bytes (at least 1).

    >>> auto_batch_size(MLPConfig(width=64), 1000, 10, torch.float32)
    1000
    >>> auto_batch_size(MLPConfig(width=4096), 1000, 10, torch.float32)
    1
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_sample = cfg.num_params * itemsize * max(vectors_per_sample, 1)
    return int(max(1, min(num_samples, memory_budget // per_sample)))


def estimate_many(correlators: Sequence[str | Spec], cfg: MLPConfig, num_samples: int, seed: int = 0, *,
                  points: dict[str, torch.Tensor] | None = None,
                  dataset: tuple[torch.Tensor, torch.Tensor] | None = None, probes: int = 1,
                  batch_size: int | None = None, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32, exact_probes: bool = False, method: str = "auto",
                  memory_budget: float = 1.0e9,
                  progress: Callable[[int], None] | None = None) -> dict[str, Estimate]:
    """Estimate several correlators on the same sampled networks (sharing gradients and HVPs).

    Args:
        correlators: named correlators (``"ntk"``, ``"c3"``, ...) or spec strings.
        cfg: the network architecture (its width is the width measured).
        num_samples: number of independent initialisations S.
        seed: drives the initialisations, the probes and (unless given) the inputs and the training set.
        points: input name -> point; default :func:`default_points` (keep them fixed across a width sweep).
        dataset: training set for ``dtheta_dt``; default :func:`default_dataset`.
        probes: Rademacher probes per sample for cycle-closing indices (traces, Frobenius products).
        batch_size: samples per batch; default from ``memory_budget``.
        device, dtype: where and in what precision to compute.
        exact_probes: contract cycle-closing indices exactly over the basis (tiny nets only).
        method: ``"auto"`` (structured derivatives for the named correlators that have them, see
            :mod:`innerworks.wide.structured`; torch.func fast paths for the others; the generic tree evaluator for
            specs), ``"autodiff"`` (torch.func fast paths for every named correlator) or ``"generic"`` (the tree
            evaluator for everything). All give the same per-sample values up to rounding.
        progress: called with the number of samples finished after each batch.

    Returns:
        name -> :class:`Estimate` (keys are the names or spec strings as given).

    >>> from innerworks.wide.networks import MLPConfig
    >>> r = estimate_many(["ntk", "var_ntk"], MLPConfig(width=8, depth=1, activation="tanh"), 32, seed=0)
    >>> sorted(r), r["var_ntk"].kind
    (['ntk', 'var_ntk'], 'variance')
    """
    if num_samples < 2:
        raise InnerworksError(f"num_samples: need at least 2 samples for a standard error, got {num_samples}")
    if probes < 1:
        raise InnerworksError(f"probes: expected at least 1, got {probes}")
    if method not in METHODS:
        raise InnerworksError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    resolved = [resolve(c) for c in correlators]
    names = [c if isinstance(c, str) else str(c) for c in correlators]
    pts = dict(default_points(input_names(correlators), cfg.d_in, seed))
    if points:
        pts.update(points)
    needs_data = any(named is not None and named.uses_dataset for _, named in resolved)
    data = dataset if dataset is not None else (default_dataset(cfg.d_in, seed) if needs_data else None)
    bs = batch_size or auto_batch_size(cfg, num_samples, _vectors_per_sample(resolved, method), dtype,
                                       memory_budget)
    values: dict[str, list[np.ndarray]] = {n: [] for n in names}
    done = 0
    while done < num_samples:
        cur = min(bs, num_samples - done)
        params = cfg.init_params(cur, seed=seed, device=device, dtype=dtype, first_sample=done)
        ws = Workspace(cfg, params, pts, data, probe_seed=derive_seed(seed, "probes", done), exact_probes=exact_probes)
        sws = None
        # Correlators that cache Hessian-vector products go first, so the others reuse them as dot products.
        order = sorted(zip(names, resolved, strict=True), key=lambda item: _PRIORITY.get(
            item[1][1].name if item[1][1] is not None else "", 9))
        for name, (spec, named) in order:
            acc = None
            path = _path(named, method)
            for rep in range(probes if path != "structured" else 1):
                if path == "structured":
                    from innerworks.wide.structured import StructuredWorkspace

                    assert named is not None
                    if sws is None:
                        sws = StructuredWorkspace(cfg, params, pts, data)
                    v = sws.evaluate(named.name) * probes  # no probes involved: one evaluation is exact
                elif path == "autodiff":
                    assert named is not None
                    v = FAST_PATHS[named.name](ws, rep)
                elif named is not None and named.uses_dataset:
                    v = _generic_dataset(ws, named, rep)
                elif named is not None and named.sample_spec is not None:
                    v = evaluate_spec(ws, resolve(named.sample_spec)[0], rep)
                else:
                    v = evaluate_spec(ws, spec, rep)
                acc = v if acc is None else acc + v
            assert acc is not None
            values[name].append((acc / probes).detach().cpu().double().numpy())
        ws.clear()
        del params, sws
        done += cur
        if progress is not None:
            progress(done)
    out: dict[str, Estimate] = {}
    for name, (_, named) in zip(names, resolved, strict=True):
        kind = named.kind if named is not None else "moment"
        out[name] = summarize(name, kind, np.concatenate(values[name]))
    return out


def _generic_dataset(ws: Workspace, named: NamedCorrelator, rep: int) -> torch.Tensor:
    """dΘ/dt through the generic evaluator: -Σ_{(x,y)∈D} [spec terms at x] + y O3(x1, x2, x)."""
    assert ws.dataset is not None or named.uses_dataset
    if ws.dataset is None:
        ws.vec(GRAD_LOSS)  # raises the missing-dataset error
    X, y = ws.dataset  # type: ignore[misc]
    spec = named.parsed
    o3 = NAMED["o3"].parsed
    total = torch.zeros(ws.S, device=ws.device, dtype=ws.dtype)
    for i in range(X.shape[0]):
        name = f"__train{i}"
        ws.points[name] = X[i].reshape(1, -1)
        with_x = Spec(tuple(_rename(t, "x", name) for t in spec.terms))
        o3_x = Spec(tuple(_rename(t, "x3", name) for t in o3.terms))
        total = total - evaluate_spec(ws, with_x, rep) + y[i] * evaluate_spec(ws, o3_x, rep)
    return total


def _rename(term: Term, old: str, new: str) -> Term:
    from innerworks.wide.spec import Factor

    return Term(tuple(Factor(f.rank, new if f.input == old else f.input, f.indices) for f in term.factors), term.sign)


def estimate(correlator: str | Spec, cfg: MLPConfig, num_samples: int, seed: int = 0, **kwargs: Any) -> Estimate:
    """Estimate one correlator; see :func:`estimate_many` for the arguments.

    >>> from innerworks.wide.networks import MLPConfig
    >>> e = estimate("d2f(x1)[a,a] f(x2)", MLPConfig(width=8, depth=2, activation="relu"), 16, seed=0)
    >>> e.n_samples
    16
    """
    return next(iter(estimate_many([correlator], cfg, num_samples, seed, **kwargs).values()))
