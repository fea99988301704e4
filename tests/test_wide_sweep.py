"""Width sweeps: width parsing, the bootstrap slope fit, zero detection and the 'bound not tight' flag on real
(small) sweeps."""

from __future__ import annotations

import numpy as np
import pytest

from innerworks.errors import InnerworksError
from innerworks.wide.estimators import summarize
from innerworks.wide.networks import MLPConfig
from innerworks.wide.sweep import SlopeFit, analyse_sweep, fit_loglog, judge, parse_widths, run_sweep


def test_parse_widths():
    assert parse_widths("128,32, 64") == [32, 64, 128]
    assert parse_widths([8, 8, 16, 4]) == [4, 8, 16]
    for bad, msg in (("64,128", "at least 3"), ("64,x,128", "comma-separated"), ("0,2,4", "positive"),
                     ("64,64,64", "at least 3")):
        with pytest.raises(InnerworksError, match=msg):
            parse_widths(bad)


def test_fit_recovers_known_slopes_and_its_ci_covers_them():
    rng = np.random.default_rng(1)
    widths = [16, 32, 64, 128, 256]
    for true in (0.0, -1.0, -2.0):
        samples = [n**true * (1 + rng.normal(0, 0.5, 800)) for n in widths]
        fit = fit_loglog(widths, samples, n_boot=1000, seed=3)
        assert fit.ci_low < true < fit.ci_high
        assert abs(fit.slope - true) < 0.1
        assert fit.ci_high - fit.ci_low < 0.3
    # variance and rms statistics
    var_samples = [rng.normal(0, n**-0.5, 2000) for n in widths]
    assert abs(fit_loglog(widths, var_samples, kind="variance", n_boot=300).slope + 1) < 0.1
    assert abs(fit_loglog(widths, var_samples, kind="rms", n_boot=300).slope + 0.5) < 0.05


def test_fit_warnings_and_errors():
    rng = np.random.default_rng(0)
    noisy = [rng.normal(0.0, 1.0, 50) for _ in range(3)]
    fit = fit_loglog([8, 16, 32], noisy, n_boot=200)
    assert any("within 2 standard errors" in w for w in fit.warnings)
    assert any("span" in w for w in fit.warnings)
    with pytest.raises(InnerworksError, match="exactly 0"):
        fit_loglog([8, 16, 64], [np.zeros(4)] * 3)
    with pytest.raises(InnerworksError, match="at least 3"):
        fit_loglog([8, 16], [np.ones(4)] * 2)


def test_judge_rules():
    def f(lo, hi):
        return SlopeFit((lo + hi) / 2, 0.0, lo, hi, 0.95, 100, [1, 2, 3], [1.0, 1.0, 1.0])

    assert judge(f(-2.2, -1.9), -1) == "bound not tight"
    assert judge(f(-1.1, -0.9), -1) == "consistent"
    assert judge(f(-0.5, -0.1), -1) == "exceeds bound"
    assert judge(f(-2.5, 0.0), -1) == "inconclusive"


def test_nonfinite_estimate_is_reported_not_fitted():
    cfg = MLPConfig(width=8, depth=2, activation="tanh")
    ests = [summarize("ntk", "moment", np.array([np.nan] * 4)) for _ in range(3)]
    r = analyse_sweep("ntk", cfg, [8, 16, 32], ests)
    assert r.verdict == "inconclusive" and r.fit is None
    assert any("non-finite" in w for w in r.warnings) and any("no slope fit" in w for w in r.warnings)


def test_small_real_sweep_zeros_and_bound_not_tight():
    # ReLU, 2 hidden layers: C3 falls like n^-2, below the n^-1 bound; E[Θ] is flat; E[O3] (odd m) is a zero.
    res = run_sweep(["ntk", "c3", "o3"], [16, 32, 64, 128], activation="relu", depth=2, num_samples=384, seed=0,
                    n_boot=500, progress=False)
    assert res["ntk"].verdict == "consistent" and abs(res["ntk"].fit.slope) < 0.1
    c3 = res["c3"]
    assert c3.verdict == "bound not tight" and "bound not tight" in c3.flags
    assert c3.fit.ci_high < -1.2
    o3 = res["o3"]
    assert o3.verdict == "zero" and "odd number" in o3.zero_reason and o3.zero_consistent
    assert o3.fit is None
    # one hidden layer: C3 is an exact zero, detected structurally, every sample exactly 0
    z = run_sweep(["c3"], [8, 16, 32], activation="linear", depth=1, num_samples=16, n_boot=100, progress=False)["c3"]
    assert z.verdict == "zero" and all(np.all(e.samples == 0) for e in z.estimates)
    text = z.table()
    assert "exact zero" in text and "verdict: zero" in text


def test_numerical_zero_detection_for_an_unlisted_case():
    # No structural rule makes the NTK vanish, but if every sample is exactly 0 the sweep reports a zero
    # instead of failing the log-log fit.
    cfg = MLPConfig(width=4, depth=1, activation="relu")
    ests = [summarize("s", "moment", np.zeros(5)) for _ in range(3)]
    r = analyse_sweep("df(x1)[a] df(x2)[a]", cfg, [4, 8, 16], ests)
    assert r.verdict == "zero" and r.zero_reason == "every sample at every width is exactly 0"


def test_sweep_rejects_bad_input_before_work():
    with pytest.raises(InnerworksError, match="appears three times"):
        run_sweep(["df(x1)[a] df(x2)[a] df(x3)[a]"], [8, 16, 32], num_samples=4, progress=False)
    with pytest.raises(InnerworksError, match="at least 3 distinct widths"):
        run_sweep(["ntk"], "8,16", num_samples=4, progress=False)
    with pytest.raises(InnerworksError, match="one per width"):
        run_sweep(["ntk"], [8, 16, 32], num_samples=[4, 4], progress=False)
