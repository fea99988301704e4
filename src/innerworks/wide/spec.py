"""A small notation for correlation functions of derivative tensors, its parser, and a library of named correlators.

Notation (``shared/papers/wide.md`` §1). A *factor* is a derivative tensor of ``f`` at an input, with one index per
derivative::

    f(x1)              rank 0: the network output
    df(x2)[a]          rank 1: the gradient ∂_a f(x2)
    d2f(x1)[a,b]       rank 2: the Hessian ∂²_ab f(x1)
    d3f(x1)[a,b,c]     rank 3 (any dkf with k indices)

A *term* is a product of factors separated by spaces or ``*``. Every index names a parameter index μ that is summed
over all network parameters, and must appear **exactly twice** in its term (the Kronecker-delta pairing of the notes).
Both occurrences may sit in the same factor (a self-contraction, e.g. the Hessian trace ``d2f(x1)[a,a]``). A *spec*
is one term, or several terms joined by ``+`` / ``-`` (indices are local to each term). Inputs are free names
(``x1``, ``x``, ``xtest``); factors with the same input name are evaluated at the same point.

The correlation function is the mean over Gaussian initialisations of the spec's value.

>>> s = parse_spec("d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)")
>>> len(s.terms), s.terms[0].m, s.inputs
(1, 4, ('x1', 'x2', 'x3', 'x4'))
>>> str(s)
'd2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)'
>>> parse_spec("df(x1)[a] df(x2)[b]")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
innerworks.errors.InnerworksError: spec 'df(x1)[a] df(x2)[b]': index 'a' appears once (in df(x1)[a]); every index ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from innerworks.errors import InnerworksError

_FACTOR = re.compile(
    r"""\s*(?P<name>f|df|d(?P<k>[0-9]+)f)      # f, df, d2f, d3f, ...
        \s*\(\s*(?P<input>[^\s()\[\],*+-]+)\s*\)  # (x1)
        (?:\s*\[(?P<idx>[^\]]*)\])?             # optional [a,b]
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Factor:
    """One derivative tensor ``d^k f(input)[indices]``.

    >>> Factor(2, "x1", ("a", "b")).text
    'd2f(x1)[a,b]'
    """

    rank: int
    input: str
    indices: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The factor in spec notation."""
        head = "f" if self.rank == 0 else ("df" if self.rank == 1 else f"d{self.rank}f")
        return f"{head}({self.input})" + (f"[{','.join(self.indices)}]" if self.indices else "")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Term:
    """A product of factors with every index paired, and a sign (+1 or -1).

    >>> t = parse_spec("d2f(x1)[a,a] f(x2)").terms[0]
    >>> t.m, t.self_contracted
    (2, (0,))
    """

    factors: tuple[Factor, ...]
    sign: int = 1

    @property
    def m(self) -> int:
        """Number of derivative tensors (vertices of the cluster graph)."""
        return len(self.factors)

    @property
    def index_owners(self) -> dict[str, list[int]]:
        """For each index, the factor positions holding it (twice; the same position twice for a self-pair)."""
        owners: dict[str, list[int]] = {}
        for i, fac in enumerate(self.factors):
            for idx in fac.indices:
                owners.setdefault(idx, []).append(i)
        return owners

    @property
    def self_contracted(self) -> tuple[int, ...]:
        """Positions of factors with an index paired inside themselves (a trace)."""
        return tuple(sorted({o[0] for o in self.index_owners.values() if o[0] == o[1]}))

    @property
    def text(self) -> str:
        """The term in spec notation (without its sign)."""
        return " ".join(f.text for f in self.factors)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Spec:
    """A parsed, validated correlation-function spec: a signed sum of terms.

    >>> parse_spec("f(x1) f(x2) - df(x1)[a] df(x2)[a]").terms[1].sign
    -1
    """

    terms: tuple[Term, ...]
    source: str = field(default="", compare=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input names in order of first appearance."""
        seen: dict[str, None] = {}
        for t in self.terms:
            for f in t.factors:
                seen.setdefault(f.input, None)
        return tuple(seen)

    @property
    def max_rank(self) -> int:
        """Highest derivative order in any factor."""
        return max(f.rank for t in self.terms for f in t.factors)

    def __str__(self) -> str:
        parts = []
        for i, t in enumerate(self.terms):
            if i == 0:
                parts.append(("-" if t.sign < 0 else "") + t.text)
            else:
                parts.append(("- " if t.sign < 0 else "+ ") + t.text)
        return " ".join(parts)


def _split_terms(text: str) -> list[tuple[int, str]]:
    """Split at top-level '+'/'-' (outside brackets and parentheses)."""
    out: list[tuple[int, str]] = []
    depth = 0
    sign = 1
    start = 0
    body = text.strip()
    if body.startswith(("+", "-")):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    for i, ch in enumerate(body):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in "+-" and depth == 0:
            out.append((sign, body[start:i]))
            sign = -1 if ch == "-" else 1
            start = i + 1
    out.append((sign, body[start:]))
    return out


def _parse_term(spec: str, chunk: str, sign: int) -> Term:
    factors: list[Factor] = []
    pos = 0
    chunk = chunk.replace("*", " ")
    while pos < len(chunk):
        if chunk[pos:].strip() == "":
            break
        m = _FACTOR.match(chunk, pos)
        if m is None:
            bad = chunk[pos:].strip().split()[0] if chunk[pos:].strip() else chunk[pos:]
            raise InnerworksError(
                f"spec {spec!r}: cannot read {bad!r}; expected a factor like f(x1), df(x2)[a] or d2f(x1)[a,b]"
            )
        rank = 0 if m.group("name") == "f" else (1 if m.group("name") == "df" else int(m.group("k")))
        raw = m.group("idx")
        indices = tuple(i.strip() for i in raw.split(",")) if raw is not None and raw.strip() else ()
        for i in indices:
            if not i.isidentifier():
                raise InnerworksError(f"spec {spec!r}: index {i!r} in {m.group(0).strip()} must be a name like a or mu")
        if not m.group("input").replace("_", "a").isalnum():
            raise InnerworksError(f"spec {spec!r}: input {m.group('input')!r} must be a name like x1")
        if len(indices) != rank:
            head = m.group(0).strip()
            raise InnerworksError(
                f"spec {spec!r}: {head} has rank {rank} but {len(indices)} "
                f"ind{'ex' if len(indices) == 1 else 'ices'}; give exactly one index per derivative"
            )
        factors.append(Factor(rank, m.group("input"), indices))
        pos = m.end()
    if not factors:
        raise InnerworksError(f"spec {spec!r}: empty term; expected factors like f(x1) df(x2)[a]")
    term = Term(tuple(factors), sign)
    for idx, owners in term.index_owners.items():
        if len(owners) != 2:
            where = ", ".join(term.factors[o].text for o in dict.fromkeys(owners))
            count = {1: "once", 3: "three times"}.get(len(owners), f"{len(owners)} times")
            raise InnerworksError(
                f"spec {spec!r}: index {idx!r} appears {count} (in {where}); every index must appear exactly twice"
            )
    return term


def parse_spec(text: str | Spec) -> Spec:
    """Parse and validate a spec; raise :class:`InnerworksError` with a one-line reason on bad input.

    >>> parse_spec("d3f(x1)[a,b,c] df(x2)[a] df(x3)[b] df(x4)[c]").max_rank
    3
    >>> parse_spec("d2f(x1)[a]")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    innerworks.errors.InnerworksError: spec 'd2f(x1)[a]': d2f(x1)[a] has rank 2 but 1 index; give exactly one ...
    """
    if isinstance(text, Spec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise InnerworksError("spec: empty; expected e.g. 'df(x1)[a] df(x2)[a]' or a named correlator such as 'ntk'")
    if text.count("(") != text.count(")") or text.count("[") != text.count("]"):
        raise InnerworksError(f"spec {text!r}: unbalanced brackets")
    terms = tuple(_parse_term(text, chunk, sign) for sign, chunk in _split_terms(text))
    return Spec(terms, source=text.strip())


# ---------------------------------------------------------------------------------------------------------------
# The library of named correlators (rows of the notes' worked-example table, §3).


@dataclass(frozen=True)
class NamedCorrelator:
    """A named correlation function: its spec, what it is, and how it is estimated.

    Attributes:
        name: short identifier used on the command line (``ntk``, ``c3``, ...).
        title: human-readable name.
        spec: the spec (for sums over a training set, the term with one training point ``x``).
        kind: ``"moment"`` (estimate E[value]) or ``"variance"`` (estimate Var[value] over initialisations).
        exponent_override: the predicted exponent when the cluster-graph formula does not give it (Var Θ).
        source: where the prediction comes from in the notes.
        uses_dataset: the value sums over a training set (E[dΘ/dt] under MSE gradient flow).
        sample_spec: for ``"variance"``, the per-sample quantity whose variance is taken.
    """

    name: str
    title: str
    spec: str
    description: str
    source: str
    kind: str = "moment"
    exponent_override: int | None = None
    uses_dataset: bool = False
    sample_spec: str | None = None

    @property
    def parsed(self) -> Spec:
        """The parsed spec."""
        return parse_spec(self.spec)


_O3_TERMS = "d2f(x1)[a,b] df(x2)[b] df(x3)[a] + df(x1)[b] d2f(x2)[a,b] df(x3)[a]"
_O4_TERMS = (
    "d3f(x1)[a,b,c] df(x2)[b] df(x3)[a] df(x4)[c] + df(x1)[b] d3f(x2)[a,b,c] df(x3)[a] df(x4)[c]"
    " + d2f(x1)[a,b] d2f(x2)[b,c] df(x3)[a] df(x4)[c] + d2f(x1)[a,b] df(x2)[b] d2f(x3)[a,c] df(x4)[c]"
    " + df(x1)[b] d2f(x2)[a,b] d2f(x3)[a,c] df(x4)[c] + d2f(x1)[b,c] d2f(x2)[a,b] df(x3)[a] df(x4)[c]"
)

NAMED: dict[str, NamedCorrelator] = {
    c.name: c
    for c in (
        NamedCorrelator("f", "mean output E[f(x)]", "f(x1)", "the output; odd m, so identically 0", "§3 row 1"),
        NamedCorrelator("nngp", "NNGP kernel E[f(x1) f(x2)]", "f(x1) f(x2)", "two-point function of the output",
                        "§3 row 2"),
        NamedCorrelator("nngp_diag", "NNGP diagonal E[f(x)^2]", "f(x1) f(x1)", "output variance at one input",
                        "§5, §8.8"),
        NamedCorrelator("ntk", "mean NTK E[Θ(x1,x2)]", "df(x1)[a] df(x2)[a]", "Θ = Σ_μ ∂_μf(x1) ∂_μf(x2)",
                        "§3 row 3"),
        NamedCorrelator("ntk_diag", "NTK diagonal E[Θ(x,x)]", "df(x1)[a] df(x1)[a]", "NTK at one input",
                        "§5, §8.8"),
        NamedCorrelator(
            "var_ntk", "NTK variance Var[Θ(x1,x2)]", "df(x1)[a] df(x2)[a] df(x1)[b] df(x2)[b]",
            "variance over initialisations; the raw moment E[Θ Θ] has s_C = 0, its connected part is O(1/n)",
            "§3 row 5 ([DG] App. D.1)", kind="variance", exponent_override=-1, sample_spec="df(x1)[a] df(x2)[a]",
        ),
        NamedCorrelator(
            "dtheta_dt", "E[dΘ(x1,x2)/dt] under MSE gradient flow",
            "d2f(x1)[a,b] df(x2)[a] df(x)[b] f(x) + df(x1)[a] d2f(x2)[a,b] df(x)[b] f(x)",
            "dΘ/dt = -Σ_{(x,y)∈D} O3(x1,x2,x) (f(x) - y); the spec is one training point x (the y part is odd, so 0)",
            "§3 row 8", uses_dataset=True,
        ),
        NamedCorrelator("o3", "E[O3(x1,x2,x3)]", _O3_TERMS, "O3 = Σ_μ ∂_μΘ(x1,x2) ∂_μf(x3); odd m, so 0",
                        "§3 row 7, §4"),
        NamedCorrelator("o4", "E[O4(x1,x2,x3,x4)]", _O4_TERMS, "O4 = Σ_μ ∂_μO3(x1,x2,x3) ∂_μf(x4): six terms",
                        "§3 row 10, §4"),
        NamedCorrelator("c3", "C3 = E[∂³f(x1)[∂f(x2),∂f(x3),∂f(x4)]]",
                        "d3f(x1)[a,b,c] df(x2)[a] df(x3)[b] df(x4)[c]",
                        "third-derivative term of O4; the analytic vs piecewise-linear contrast", "§3 row 11, §5"),
        NamedCorrelator("chain", "chain term E[<H(x1)∂f(x2), H(x2)∂f(x1)>]",
                        "d2f(x1)[a,b] df(x2)[b] d2f(x2)[a,c] df(x1)[c]", "Hessian-Hessian term of O4",
                        "§3 row 12"),
        NamedCorrelator("hessian_trace", "E[Tr H(x1) f(x2)]", "d2f(x1)[a,a] f(x2)",
                        "trace of the Hessian times the output; 0 for piecewise-linear nets", "§3 row 18"),
        NamedCorrelator("hessian_frobenius", "E[<H(x1), H(x2)>_F]", "d2f(x1)[a,b] d2f(x2)[a,b]",
                        "Frobenius product of two Hessians", "§3 row 17"),
    )
}


def resolve(text: str | Spec) -> tuple[Spec, NamedCorrelator | None]:
    """Turn a spec string or a named correlator into ``(spec, named_or_None)``.

    >>> spec, named = resolve("c3"); named.name, spec.terms[0].m
    ('c3', 4)
    >>> resolve("df(x1)[a] df(x2)[a]")[1] is None
    True
    """
    if isinstance(text, Spec):
        return text, None
    if not isinstance(text, str) or not text.strip():
        return parse_spec(text), None  # raises the "empty" error
    key = text.strip().lower().replace("-", "_")
    if key in NAMED:
        return NAMED[key].parsed, NAMED[key]
    if "(" not in text:
        raise InnerworksError(
            f"spec {text!r}: not a named correlator ({', '.join(NAMED)}) and not a spec like 'df(x1)[a] df(x2)[a]'"
        )
    return parse_spec(text), None
