"""Matrix-free estimator against explicit Jacobian / Hessian / third-derivative contractions on tiny nets, exact zeros,
non-finite handling, and the networks' parameterisations."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
import torch
from torch.func import hessian, jacfwd, jacrev

from innerworks.errors import InnerworksError
from innerworks.wide.estimators import default_dataset, default_points, estimate, estimate_many, input_names, summarize
from innerworks.wide.networks import MLPConfig, WideMLP, mlp_apply, parse_activation
from innerworks.wide.spec import NAMED, parse_spec

DT = torch.float64


def _unflatten(cfg: MLPConfig, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for k, shape in cfg.param_shapes().items():
        n = math.prod(shape)
        out[k] = theta[i:i + n].reshape(1, *shape)
        i += n
    return out


def _flat(params: dict[str, torch.Tensor], s: int) -> torch.Tensor:
    return torch.cat([v[s].reshape(-1) for v in params.values()])


def _explicit_tensors(cfg, theta, x, max_rank):
    """f, J [P], H [P,P], T3 [P,P,P], T4 ... at one input, by dense autodiff."""
    def fx(th):
        return mlp_apply(cfg, _unflatten(cfg, th), x.reshape(1, -1))[0, 0]

    out = [fx(theta), jacrev(fx)(theta)]
    if max_rank >= 2:
        out.append(hessian(fx)(theta))
    fn = hessian(fx)
    for _ in range(3, max_rank + 1):
        fn = jacfwd(fn)
        out.append(fn(theta))
    return out


def explicit_value(spec, cfg, theta, points):
    """Σ over all indices of the product of dense derivative tensors (einsum), summed over signed terms."""
    spec = parse_spec(spec)
    cache = {}
    total = torch.zeros((), dtype=DT)
    for term in spec.terms:
        letters = iter(string.ascii_letters)
        idx_map = {}
        operands, subs = [], []
        scalar = torch.tensor(float(term.sign), dtype=DT)
        for fac in term.factors:
            if fac.input not in cache:
                cache[fac.input] = _explicit_tensors(cfg, theta, points[fac.input], spec.max_rank)
            t = cache[fac.input][fac.rank]
            if fac.rank == 0:
                scalar = scalar * t
                continue
            sub = "".join(idx_map.setdefault(i, next(letters)) for i in fac.indices)
            operands.append(t)
            subs.append(sub)
        if operands:
            scalar = scalar * torch.einsum(",".join(subs) + "->", *operands)
        total = total + scalar
    return float(total)


def _check(spec_or_name, cfg, S=3, seed=5, exact_named=None):
    """Compare per-sample estimates (structured, torch.func fast path, generic tree) with the explicit contraction."""
    names = input_names([spec_or_name])
    pts = default_points(names, cfg.d_in, seed)
    runs = [estimate_many([spec_or_name], cfg, S, seed=seed, points=pts, dtype=DT, exact_probes=True,
                          method=m)[spec_or_name] for m in ("structured", "autodiff", "generic")]
    params = cfg.init_params(S, seed=seed, dtype=DT)
    ref = np.array([exact_named(cfg, _flat(params, s), pts) if exact_named else
                    explicit_value(spec_or_name if spec_or_name not in NAMED else NAMED[spec_or_name].spec, cfg,
                                   _flat(params, s), pts) for s in range(S)])
    scale = max(1e-12, np.abs(ref).max())
    for run in runs:
        np.testing.assert_allclose(run.samples, ref, rtol=1e-8, atol=1e-10 * scale)
    return ref


NETS = [
    MLPConfig(width=3, depth=2, d_in=2, activation="tanh"),
    MLPConfig(width=3, depth=2, d_in=2, activation="relu", bias=True),
    MLPConfig(width=2, depth=3, d_in=2, activation="cubic", bias=True),
    MLPConfig(width=3, depth=2, d_in=2, activation="gelu", parameterization="standard"),
    MLPConfig(width=3, depth=1, d_in=2, activation="erf", bias=True, parameterization="standard"),
]


@pytest.mark.parametrize("cfg", NETS, ids=lambda c: f"{c.activation}-d{c.depth}-b{int(c.bias)}-{c.parameterization}")
@pytest.mark.parametrize("name", ["nngp", "ntk", "o3", "o4", "c3", "chain", "hessian_trace", "hessian_frobenius"])
def test_named_correlators_match_explicit_contractions(cfg, name):
    _check(name, cfg)


def _explicit_var_base(cfg, theta, pts):
    return explicit_value("df(x1)[a] df(x2)[a]", cfg, theta, pts)


def _explicit_dtheta_dt(cfg, theta, pts):
    """dΘ(x1,x2)/dt = -Σ_(x,y) [ (H1 J2 + H2 J1) · J(x) ] (f(x) - y), from dense tensors."""
    X, y = default_dataset(cfg.d_in, seed=5)
    _, J1, H1 = _explicit_tensors(cfg, theta, pts["x1"], 2)
    _, J2, H2 = _explicit_tensors(cfg, theta, pts["x2"], 2)
    total = 0.0
    for i in range(X.shape[0]):
        fx, Jx = _explicit_tensors(cfg, theta, X[i], 1)
        total -= float((H1 @ J2 + H2 @ J1) @ Jx) * float(fx - y[i])
    return total


@pytest.mark.parametrize("cfg", NETS[:2], ids=["tanh", "relu"])
def test_dataset_and_variance_correlators_match_explicit(cfg):
    _check("dtheta_dt", cfg, exact_named=_explicit_dtheta_dt)
    _check("var_ntk", cfg, exact_named=_explicit_var_base)


@pytest.mark.parametrize(
    "spec",
    [
        "d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)",                 # C_{4,2}
        "d2f(x1)[a,b] d2f(x2)[b,c] d2f(x3)[c,a]",                 # a 3-cycle: needs a probe
        "d3f(x1)[a,a,b] df(x2)[b] - df(x1)[c] d2f(x2)[c,d] df(x3)[d]",
        "d2f(x1)[a,b] df(x1)[a] d2f(x2)[b,c] df(x3)[c] f(x2)",
    ],
)
def test_generic_specs_match_explicit(spec):
    _check(spec, MLPConfig(width=2, depth=2, d_in=2, activation="erf", bias=True))


def test_rank_four_matches_explicit():
    _check("d4f(x1)[a,b,c,d] df(x2)[a] df(x3)[b] d2f(x4)[c,d]", MLPConfig(width=2, depth=1, d_in=2,
                                                                           activation="poly:0.1,1,0.3,-0.2,0.05"))


def test_piecewise_linear_zeros_are_exact_per_sample():
    # C3 with one hidden layer, a rank-4 tensor with 3 weight layers, and Tr H: exactly 0 for ReLU and linear nets.
    for act in ("relu", "linear"):
        r = estimate_many(["c3"], MLPConfig(width=6, depth=1, activation=act), 8, seed=0, dtype=DT)["c3"]
        assert np.all(r.samples == 0.0)
        spec = "d4f(x1)[a,b,c,d] df(x2)[a] df(x3)[b] d2f(x4)[c,d]"
        r = estimate_many([spec], MLPConfig(width=3, depth=2, d_in=2, activation=act), 3, seed=0, dtype=DT)[spec]
        assert np.all(r.samples == 0.0)
        r = estimate_many(["hessian_trace"], MLPConfig(width=2, depth=2, d_in=2, activation=act), 3, seed=0,
                          dtype=DT, exact_probes=True)["hessian_trace"]
        assert np.all(r.samples == 0.0)
    # ... but not for an analytic activation
    r = estimate_many(["c3"], MLPConfig(width=6, depth=1, activation="tanh"), 8, seed=0, dtype=DT)["c3"]
    assert np.all(r.samples != 0.0)


def test_random_probes_are_unbiased():
    cfg = MLPConfig(width=3, depth=2, d_in=2, activation="tanh")
    pts = default_points(["x1", "x2"], 2, 0)
    exact = estimate_many(["hessian_frobenius"], cfg, 4, seed=0, points=pts, dtype=DT, exact_probes=True)
    probed = estimate_many(["hessian_frobenius"], cfg, 4, seed=0, points=pts, dtype=DT, probes=400)
    a, b = exact["hessian_frobenius"].samples, probed["hessian_frobenius"].samples
    assert np.all(np.abs(a - b) < 0.15 * np.abs(a).max())


def test_nonfinite_samples_are_dropped_with_a_warning():
    e = summarize("x", "moment", np.array([1.0, np.inf, 3.0, np.nan]))
    assert e.n_samples == 2 and e.n_nonfinite == 2 and "non-finite" in e.warnings[0]
    e = summarize("x", "moment", np.array([np.nan, np.nan]))
    assert math.isnan(e.mean) and any("no finite samples" in w for w in e.warnings)
    # a real overflow: a steep polynomial on huge inputs in float32
    cfg = MLPConfig(width=8, depth=3, activation="poly:0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1")
    r = estimate("ntk", cfg, 4, seed=0, points={"x1": torch.full((4,), 50.0), "x2": torch.full((4,), 50.0)})
    assert r.n_nonfinite > 0 and r.warnings


def test_estimate_input_validation():
    cfg = MLPConfig(width=4, depth=1)
    with pytest.raises(InnerworksError, match="at least 2 samples"):
        estimate("ntk", cfg, 1)
    with pytest.raises(InnerworksError, match="appears once"):
        estimate("df(x1)[a] df(x2)[b]", cfg, 4)
    with pytest.raises(InnerworksError, match="activation"):
        MLPConfig(width=4, activation="sigmoidish")
    with pytest.raises(InnerworksError, match="parameterization"):
        MLPConfig(width=4, parameterization="mup")


def test_networks_module_and_parameterisations_agree():
    cfg = MLPConfig(width=16, depth=3, activation="tanh", bias=True)
    net = WideMLP(cfg, seed=3, dtype=DT)
    x = torch.randn(5, 4, dtype=DT, generator=torch.Generator().manual_seed(0))
    p = cfg.init_params(1, seed=3, dtype=DT)
    assert torch.allclose(net(x), mlp_apply(cfg, p, x)[0])
    # standard parameterisation = NTK parameterisation with the 1/sqrt(fan_in) factors moved into the weights
    for bias in (False, True):
        ntk = MLPConfig(width=16, depth=3, activation="tanh", bias=bias)
        sp = MLPConfig(width=16, depth=3, activation="tanh", bias=bias, parameterization="standard")
        pn = ntk.init_params(2, seed=1, dtype=DT)
        ps = {k: v / math.sqrt(4) if k == "U" else (v * ntk.bias_std if k.startswith("b") else v / math.sqrt(16))
              for k, v in pn.items()}
        assert torch.allclose(mlp_apply(sp, ps, x), mlp_apply(ntk, pn, x), atol=1e-12)
        # and the standard initialisation has the matching variances
        big = sp.init_params(200, seed=0, dtype=DT)
        assert abs(float(big["W1"].std()) - 0.25) < 0.01 and abs(float(big["U"].std()) - 0.5) < 0.03
    assert parse_activation("gelu")(torch.tensor(1.0, dtype=DT)).item() == pytest.approx(0.8413447460685429)
    assert MLPConfig(width=5, depth=3, bias=True).num_params == 5 * 4 + 5 + 2 * (25 + 5) + 5 + 1
