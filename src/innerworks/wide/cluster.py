"""Cluster graphs and the conjectured width exponent s_C = n_e + n_o/2 - m/2 (Dyer & Gur-Ari, Conjecture 1).

One vertex per derivative tensor; an edge between two tensors that share at least one contracted index
(self-contractions and edge multiplicity do not matter). ``n_e`` / ``n_o`` count the connected components with an
even / odd number of vertices and ``m`` is the number of tensors. The conjecture says the correlation function is
``O(n^{s_C})`` in NTK parameterisation (``shared/papers/wide.md`` §2). For a sum of terms the bound is the largest
term's exponent.

>>> p = predict("d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)")
>>> p.exponent, [len(c) for c in p.graphs[0].components]
(-1, [3, 1])
>>> predict("c3").exponent
-1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import networkx as nx

from innerworks.wide.networks import MLPConfig
from innerworks.wide.spec import NamedCorrelator, Spec, Term, resolve


@dataclass
class ClusterGraph:
    """The cluster graph of one term, its components and its exponent.

    Attributes:
        term: the term.
        graph: ``networkx.Graph`` with one node per factor position (attribute ``label``: the factor text) and
            an edge per pair of factors sharing an index (attribute ``indices``: the shared index names).
        components: connected components as sorted lists of factor positions.
        n_even, n_odd, m: the counts in the formula.
        exponent: s_C (always an integer: each component of size k adds 1 - ceil(k/2)).
    """

    term: Term
    graph: nx.Graph
    components: list[list[int]]
    n_even: int
    n_odd: int
    m: int
    exponent: int

    def describe(self) -> str:
        """One line per component.

        >>> print(cluster_graph(predict("chain").spec.terms[0]).describe())
        component {d2f(x1)[a,b], df(x2)[b], d2f(x2)[a,c], df(x1)[c]}: 4 vertices (even), edges 0-1 0-2 2-3
        """
        lines = []
        for comp in self.components:
            labels = ", ".join(self.graph.nodes[i]["label"] for i in comp)
            parity = "even" if len(comp) % 2 == 0 else "odd"
            edges = sorted(tuple(sorted(e)) for e in self.graph.subgraph(comp).edges)
            etext = " ".join(f"{a}-{b}" for a, b in edges) or "none"
            lines.append(f"component {{{labels}}}: {len(comp)} vert{'ex' if len(comp) == 1 else 'ices'} "
                         f"({parity}), edges {etext}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "term": self.term.text,
            "sign": self.term.sign,
            "nodes": [self.graph.nodes[i]["label"] for i in self.graph.nodes],
            "edges": [[a, b, sorted(d["indices"])] for a, b, d in self.graph.edges(data=True)],
            "components": self.components,
            "n_even": self.n_even,
            "n_odd": self.n_odd,
            "m": self.m,
            "exponent": self.exponent,
        }


def cluster_graph(term: Term) -> ClusterGraph:
    """Build the cluster graph of one term and evaluate s_C.

    >>> g = cluster_graph(predict("f(x1) f(x2)").spec.terms[0])
    >>> g.n_odd, g.exponent
    (2, 0)
    """
    g = nx.Graph()
    for i, fac in enumerate(term.factors):
        g.add_node(i, label=fac.text)
    for idx, (a, b) in term.index_owners.items():
        if a == b:
            continue  # a self-contraction adds no edge
        if g.has_edge(a, b):
            g.edges[a, b]["indices"].append(idx)
        else:
            g.add_edge(a, b, indices=[idx])
    comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: c[0])
    n_even = sum(len(c) % 2 == 0 for c in comps)
    n_odd = len(comps) - n_even
    m = term.m
    s = Fraction(n_even) + Fraction(n_odd, 2) - Fraction(m, 2)
    assert s.denominator == 1, "s_C is an integer by construction"
    return ClusterGraph(term, g, comps, n_even, n_odd, m, int(s))


def structural_zero(term: Term, cfg: MLPConfig | None = None) -> str | None:
    """Why the mean of ``term`` is exactly 0 for every width, or None.

    - Odd m: f is odd under (V, b_out) -> -(V, b_out), which preserves the Gaussian initialisation; each index
      pair contributes the sign twice, so the term flips sign and its mean is 0 (notes §2, "Tightness").
    - Piecewise-linear σ (linear, ReLU): f is piecewise linear in each layer's parameters, so a derivative with two
      indices in one layer vanishes; a rank above the number of weight layers L, or a self-contraction, is 0 (§5).

    >>> t = predict("c3").spec.terms[0]
    >>> structural_zero(t, MLPConfig(width=8, depth=1, activation="relu"))
    'piecewise-linear activation: d3f(x1)[a,b,c] has rank 3 > 2 weight layers'
    >>> structural_zero(t, MLPConfig(width=8, depth=2, activation="tanh")) is None
    True
    """
    if term.m % 2 == 1:
        return f"odd number of tensors (m = {term.m}): the mean vanishes by the V -> -V symmetry"
    if cfg is not None and cfg.act.piecewise_linear:
        for fac in term.factors:
            if fac.rank > cfg.num_layers:
                return f"piecewise-linear activation: {fac.text} has rank {fac.rank} > {cfg.num_layers} weight layers"
        for pos in term.self_contracted:
            fac = term.factors[pos]
            return f"piecewise-linear activation: {fac.text} is contracted with itself (same-layer second derivative)"
    return None


@dataclass
class Prediction:
    """The predicted width exponent of a spec or named correlator.

    Attributes:
        spec: the parsed spec.
        named: the named correlator, if one was given.
        graphs: one cluster graph per term.
        formula_exponent: the largest s_C over the terms (the conjectured bound on the mean).
        exponent: the exponent to compare a measurement with: ``formula_exponent``, or the named correlator's
            override where the formula does not apply (Var Θ: the formula bounds E[Θ Θ] by n^0, its connected
            part is O(1/n) by [DG] App. D.1).
        zero_reasons: per term, why it vanishes identically (None where it does not). Odd-m zeros hold for every
            network; the piecewise-linear zeros need the network config given to :func:`predict`.
    """

    spec: Spec
    named: NamedCorrelator | None
    graphs: list[ClusterGraph]
    formula_exponent: int
    exponent: int
    zero_reasons: list[str | None] = field(default_factory=list)

    @property
    def is_zero(self) -> bool:
        """True when every term vanishes identically (for the network config given to :func:`predict`)."""
        kind = self.named.kind if self.named else "moment"
        return kind == "moment" and bool(self.zero_reasons) and all(r is not None for r in self.zero_reasons)

    def describe(self) -> str:
        """Human-readable summary: exponent, then each term's graph."""
        head = self.named.title if self.named else str(self.spec)
        lines = [f"{head}", f"predicted exponent s_C = {self.exponent}"]
        if self.exponent != self.formula_exponent:
            lines.append(f"  (cluster-graph formula gives {self.formula_exponent} for the raw moment; "
                         f"{self.named.source if self.named else ''} gives {self.exponent})")
        if self.is_zero:
            lines.append("identically zero: " + "; ".join(dict.fromkeys(r for r in self.zero_reasons if r)))
        for i, g in enumerate(self.graphs):
            sign = "-" if g.term.sign < 0 else "+"
            lines.append(f"term {i + 1} ({sign}) {g.term.text}: m={g.m}, n_e={g.n_even}, n_o={g.n_odd}, "
                         f"s_C={g.exponent}")
            if self.zero_reasons and self.zero_reasons[i]:
                lines.append(f"  zero: {self.zero_reasons[i]}")
            lines.extend("  " + line for line in g.describe().splitlines())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "spec": str(self.spec),
            "named": self.named.name if self.named else None,
            "exponent": self.exponent,
            "formula_exponent": self.formula_exponent,
            "is_zero": self.is_zero,
            "zero_reasons": self.zero_reasons,
            "terms": [g.to_dict() for g in self.graphs],
        }


def predict(spec: str | Spec, cfg: MLPConfig | None = None) -> Prediction:
    """Predict the width exponent of a spec or named correlator; with ``cfg``, also detect exact zeros.

    >>> predict("var_ntk").exponent, predict("var_ntk").formula_exponent
    (-1, 0)
    >>> predict("o3").is_zero, predict("c3").is_zero, predict("c3", MLPConfig(4, depth=1, activation="relu")).is_zero
    (True, False, True)
    """
    parsed, named = resolve(spec)
    graphs = [cluster_graph(t) for t in parsed.terms]
    formula = max(g.exponent for g in graphs)
    exponent = named.exponent_override if named and named.exponent_override is not None else formula
    zeros = [structural_zero(t, cfg) for t in parsed.terms]
    return Prediction(parsed, named, graphs, formula, exponent, zeros)
