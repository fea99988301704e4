"""The `wide` commands through typer's CliRunner, on a local app built with the lab's register()."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from innerworks.errors import ConfigError, InnerworksError
from innerworks.repro.claims import load_results
from innerworks.repro.wide import WideReproduction
from innerworks.wide.cli import register


def load_config(path=None, quick=True):
    return WideReproduction().load_settings(path, quick)

TINY_RECIPE = """
name: wide
seed: 1
sweep:
  depth: 2
  widths: [8, 16, 32]
  samples: 24
  activations: [relu, tanh]
  correlators: [f, ntk, var_ntk, dtheta_dt, o3, chain, c3]
  n_boot: 200
zero_check:
  depth: 1
  widths: [8, 16, 32]
  samples: 4
  activations: [relu]
  n_boot: 100
diagonal:
  depth: 2
  widths: [4, 8, 16]
  samples: [64, 32, 32]
  activations: [relu, tanh]
  n_boot: 100
dynamics:
  depth: 1
  widths: [8, 16, 32]
  nets: 3
  t_max: 0.2
  step: 0.05
  drift_time: 0.1
  activations: [tanh, relu]
  smooth: [tanh]
"""


@pytest.fixture()
def app(lab_app):
    return lab_app(register)


def test_predict_prints_exponent_and_graph(app):
    res = CliRunner().invoke(app, ["wide", "predict", "d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)"])
    assert res.exit_code == 0, res.output
    assert "predicted exponent s_C = -1" in res.output
    assert "component {d2f(x1)[a,b], df(x2)[a], df(x3)[b]}: 3 vertices (odd)" in res.output
    res = CliRunner().invoke(app, ["wide", "predict", "c3", "--activation", "relu", "--depth", "1", "--json"])
    doc = json.loads(res.output)
    assert doc["exponent"] == -1 and doc["is_zero"] is True
    res = CliRunner().invoke(app, ["wide", "list"])
    assert "chain" in res.output and "hessian_frobenius" in res.output


def test_predict_rejects_bad_spec(app):
    res = CliRunner().invoke(app, ["wide", "predict", "df(x1)[a] df(x2)[a] df(x3)[a]"])
    assert res.exit_code != 0
    assert isinstance(res.exception, InnerworksError) and "three times" in str(res.exception)


def test_measure_runs_a_sweep_and_writes_json(app, tmp_path):
    res = CliRunner().invoke(app, ["wide", "measure", "ntk", "--widths", "8,16,32", "--samples", "16",
                                   "--activation", "tanh", "--depth", "1", "--quiet", "--n-boot", "100",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "predicted exponent: 0" in res.output and "fitted slope" in res.output
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert doc["widths"] == [8, 16, 32] and len(doc["estimates"]) == 3
    res = CliRunner().invoke(app, ["wide", "measure", "ntk", "--widths", "8,16", "--quiet"])
    assert isinstance(res.exception, InnerworksError) and "at least 3" in str(res.exception)


def test_repro_wide_writes_claims_and_figures(app, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["repro", "wide", "--quick", "--out", str(out), "--config", str(recipe), "--quiet"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    doc = load_results(out)
    assert res.exit_code == (0 if doc["all_passed"] else 1)  # like the other labs: 1 unless every claim passed
    ids = {c["id"] for c in doc["claims"]}
    assert {"ntk_mean_slope_relu", "c3_slope_relu", "c3_slope_tanh", "c3_zero_one_hidden_layer", "odd_m_zero",
            "relu_diag_ntk", "dynamics_corrected_tanh", "ntk_drift_relu"} <= ids
    for c in doc["claims"]:
        assert c["expected"] and "passed" in c
    # exact zeros are claims of their own and pass even at this tiny size
    zero = next(c for c in doc["claims"] if c["id"] == "c3_zero_one_hidden_layer")
    assert zero["passed"] is True
    figs = {p.name for p in (out / "figures").iterdir()}
    for name in ("sweep_slopes", "ntk_drift", "dynamics_errors", "diagonal"):
        assert {f"{name}.png", f"{name}.svg", f"{name}.data.json", f"{name}.plotly.json"} <= figs
    assert (out / "summary.md").read_text().count("| relu | c3 |") == 1
    assert doc["sweeps"]["relu"]["c3"]["predicted_exponent"] == -1


def test_recipe_validation(tmp_path):
    assert load_config(quick=True).sweep.samples >= 1000  # §8.4 needs S ≳ 1000 for E[dΘ/dt]
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_RECIPE.replace("widths: [8, 16, 32]\n  samples: 24", "widths: [8, 16]\n  samples: 24"))
    with pytest.raises(ConfigError, match="sweep.widths"):
        load_config(bad)
    bad.write_text(TINY_RECIPE.replace("[relu, tanh]\n  correlators", "[swish]\n  correlators"))
    with pytest.raises(ConfigError, match="sweep.activations.*swish"):
        load_config(bad)
    bad.write_text(TINY_RECIPE + "extra_field: 1\n")
    with pytest.raises(ConfigError, match="extra_field"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
