"""The workspace behind the wide-network estimators: derivative-tensor contractions as nested JVPs and gradients.

Every derivative-tensor contraction is built from nested Jacobian-vector products and gradients (``torch.func``):

- a rank-k factor with all k indices contracted against vectors v1..vk is the scalar ``D^k f(x)[v1, ..., vk]``
  (k nested ``jvp`` of f);
- a rank-k factor with one index left open is the vector ``∇ D^{k-1} f(x)[v1, ..., v_{k-1}]`` (forward-over-reverse:
  ``jvp`` of ``grad``), e.g. a gradient J(x) or a Hessian-vector product H(x) J(y).

A spec's index pattern is a multigraph on its factors. Each connected piece is evaluated along a spanning tree rooted
at its highest-rank factor: leaves become vectors, vectors feed their parents, the root gives a scalar. Indices that
close a cycle (a Hessian trace, a Frobenius product) are contracted with a random Rademacher probe z on both ends;
since E[z zᵀ] = I this is unbiased. No N×P Jacobian and no P×P Hessian is formed: the memory per sample is a handful
of parameter-sized vectors, O(P). Vectors are cached per batch by a structural key, so correlators that share pieces
(J(x1), H(x1)J(x2), ...) compute them once. :data:`FAST_PATHS` are hand-written compositions for the named
correlators.

>>> J("x1"), HV("x1", J("x2"))
(('T', 'x1', ()), ('T', 'x1', (('T', 'x2', ()),)))
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import grad, jvp

from innerworks.errors import InnerworksError
from innerworks.wide.networks import MLPConfig, Params, mlp_apply
from innerworks.wide.spec import NAMED, Spec, Term

Vec = dict[str, torch.Tensor]
Key = tuple

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
EVALUATION_ORDER = {"o4": 0, "o3": 1, "chain": 2}
