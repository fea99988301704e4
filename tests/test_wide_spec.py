"""The correlation-function notation: parsing, validation errors, the named library, and the cluster-graph predictor
on every named correlator and on the worked-example table of shared/papers/wide.md §3."""

from __future__ import annotations

import pytest

from innerworks.errors import InnerworksError
from innerworks.wide.cluster import cluster_graph, predict, structural_zero
from innerworks.wide.networks import MLPConfig
from innerworks.wide.spec import NAMED, Factor, parse_spec, resolve


def test_parse_round_trip_and_structure():
    s = parse_spec("d2f(x1)[a,b] * df(x2)[a] df(x3)[b] f(x4)")
    assert str(s) == "d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)"
    t = s.terms[0]
    assert [f.rank for f in t.factors] == [2, 1, 1, 0]
    assert t.index_owners == {"a": [0, 1], "b": [0, 2]}
    assert s.inputs == ("x1", "x2", "x3", "x4")
    assert Factor(3, "x", ("i", "j", "k")).text == "d3f(x)[i,j,k]"


def test_sums_signs_and_self_contraction():
    s = parse_spec("-f(x1) f(x2) + d2f(x1)[mu,mu] f(x2) - df(x1)[a] df(x2)[a]")
    assert [t.sign for t in s.terms] == [-1, 1, -1]
    assert s.terms[1].self_contracted == (0,)
    # indices are local to a term: 'a' may be reused
    assert len(parse_spec("df(x1)[a] df(x2)[a] + df(x3)[a] df(x4)[a]").terms) == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("df(x1)[a] df(x2)[b]", "index 'a' appears once"),
        ("df(x1)[a] df(x2)[a] df(x3)[a]", "index 'a' appears three times"),
        ("d2f(x1)[a] df(x2)[a]", "has rank 2 but 1 index"),
        ("df(x1) df(x2)", "has rank 1 but 0 indices"),
        ("g(x1) f(x2)", "cannot read 'g(x1)'"),
        ("df(x1)[a df(x2)[a]", "unbalanced brackets"),
        ("", "empty"),
        ("f(x1) + ", "empty term"),
        ("df(x1)[1] df(x2)[1]", "must be a name"),
        ("nonsense", "not a named correlator"),
    ],
)
def test_malformed_specs_give_clear_errors(text, fragment):
    with pytest.raises(InnerworksError) as exc:
        resolve(text)
    msg = str(exc.value)
    assert fragment in msg
    assert "\n" not in msg  # one line


# Predicted exponents of every named correlator (notes §3 table) and whether its mean is identically zero.
NAMED_EXPECTED = {
    "f": (0, True),             # row 1
    "nngp": (0, False),         # row 2
    "nngp_diag": (0, False),
    "ntk": (0, False),          # row 3
    "ntk_diag": (0, False),
    "var_ntk": (-1, False),     # row 5: [DG] App. D.1 (formula gives 0 for the raw moment)
    "dtheta_dt": (-1, False),   # row 8
    "o3": (-1, True),           # row 7
    "o4": (-1, False),          # row 10
    "c3": (-1, False),          # row 11
    "chain": (-1, False),       # row 12
    "hessian_trace": (0, False),      # row 18
    "hessian_frobenius": (0, False),  # row 17
}


def test_predictor_covers_every_named_correlator():
    assert set(NAMED_EXPECTED) == set(NAMED)
    for name, (exponent, zero) in NAMED_EXPECTED.items():
        p = predict(name)
        assert p.exponent == exponent, name
        assert p.is_zero == zero, name
        assert p.describe().splitlines()[1] == f"predicted exponent s_C = {exponent}"
    assert predict("var_ntk").formula_exponent == 0


@pytest.mark.parametrize(
    ("spec", "sizes", "exponent"),
    [
        ("f(x1)", [1], 0),                                                          # row 1
        ("f(x1) f(x2) f(x3) f(x4)", [1, 1, 1, 1], 0),                               # row 4
        ("df(x1)[a] df(x2)[a] df(x3)[b] df(x4)[b]", [2, 2], 0),                     # row 5
        ("df(x1)[a] df(x2)[b] d2f(x3)[a,b] f(x4)", [3, 1], -1),                     # row 6 (C_{4,2})
        ("d2f(x1)[a,b] df(x2)[a] df(x3)[b] d2f(x4)[c,d] df(x5)[c] df(x6)[d] f(x7) f(x8)", [3, 3, 1, 1], -2),  # 9
        ("d3f(x1)[a,b,c] df(x2)[a] df(x3)[b] df(x4)[c] f(x5) f(x6)", [4, 1, 1], -1),  # row 14
        ("d2f(x1)[a,b] df(x2)[a] df(x3)[c] df(x4)[c] f(x5) df(x6)[b]", [3, 2, 1], -1),  # row 14, second term
        ("df(x1)[a] df(x2)[a] f(x3)", [2, 1], 0),                                   # row 15
        ("d2f(x)[a,b] df(x1)[a] df(x2)[b] f(x1) f(x2)", [3, 1, 1], -1),             # row 16
        ("d4f(x1)[a,b,c,d] df(x2)[a] df(x3)[b] df(x4)[c] df(x5)[d]", [5], -2),      # row 13, s = 5
        ("d5f(x1)[a,b,c,d,e] df(x2)[a] df(x3)[b] df(x4)[c] df(x5)[d] df(x6)[e]", [6], -2),  # row 13, s = 6
    ],
)
def test_worked_example_table(spec, sizes, exponent):
    g = cluster_graph(parse_spec(spec).terms[0])
    assert sorted(len(c) for c in g.components) == sorted(sizes)
    assert g.exponent == exponent
    assert g.n_even + g.n_odd == len(sizes)


def test_graph_ignores_self_contractions_and_multiplicity():
    g = cluster_graph(parse_spec("d2f(x1)[a,b] d2f(x2)[a,b]").terms[0])
    assert g.graph.number_of_edges() == 1 and sorted(g.graph.edges[0, 1]["indices"]) == ["a", "b"]
    g = cluster_graph(parse_spec("d3f(x1)[a,a,b] df(x2)[b]").terms[0])
    assert g.components == [[0, 1]] and g.exponent == 0


def test_structural_zeros():
    relu1 = MLPConfig(width=4, depth=1, activation="relu")
    relu2 = MLPConfig(width=4, depth=2, activation="relu")
    tanh1 = MLPConfig(width=4, depth=1, activation="tanh")
    c3 = NAMED["c3"].parsed.terms[0]
    assert structural_zero(c3, relu1) is not None          # rank 3 > 2 weight layers
    assert structural_zero(c3, relu2) is None               # 3 weight layers: not zero
    assert structural_zero(c3, tanh1) is None
    assert structural_zero(c3, MLPConfig(width=4, depth=1, activation="poly:1,2")) is not None  # affine σ
    trace = NAMED["hessian_trace"].parsed.terms[0]
    assert "contracted with itself" in structural_zero(trace, relu2)
    assert structural_zero(trace, MLPConfig(width=4, depth=2, activation="gelu")) is None
    # odd m vanishes for every network, biases included (the flip of V and b_out preserves the init)
    odd = parse_spec("df(x1)[a] df(x2)[a] f(x3)").terms[0]
    assert structural_zero(odd, MLPConfig(width=4, depth=2, activation="tanh", bias=True)) is not None
    assert predict("c3", relu1).is_zero and not predict("c3", relu2).is_zero
