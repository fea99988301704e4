"""`repro integration` end to end on a reduced configuration (issue 3, part 7): runs trained with the shared loop,
analysed, claims checked and written in the shared format, figures and summary on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from innerworks.dynamics.cli import register
from innerworks.errors import ConfigError
from innerworks.repro.base import ReproOptions, reproduce
from innerworks.repro.claims import load_results
from innerworks.repro.integration import IntegrationReproduction


def load_config(path: Path | None = None, quick: bool = True):
    return IntegrationReproduction().load_settings(path, quick)


def run_integration_repro(out: Path, **kw):
    return reproduce(IntegrationReproduction(), ReproOptions(out=out, **kw))

TINY = """
name: integration
analysis: {n_docs: 200, max_states: 2000, n_starts: 256, unique_tol: 0.025, n_linearize: 50, n_trajectories: 10}
runs:
  categorical3_gru:
    recipe: synthetic/categorical3_gru
    overrides: &tiny
      data: {length: 16, min_length: 10, n_train: 4000, n_val: 200, n_test: 300}
      model: {hidden_size: 24}
      train: {steps: 300, batch_size: 64, eval_every: 300, checkpoint_every: 300}
  categorical3_ugrnn:
    recipe: synthetic/categorical3_ugrnn
    overrides: *tiny
wordcount_checks:
  yelp5: {source: files, corpus: yelp5, tokenizer: word, min_count: 2}
"""

CLAIM_KEYS = {"id", "statement", "expected", "measured", "passed"}


@pytest.fixture()
def app(lab_app) -> typer.Typer:
    return lab_app(register)


def test_reduced_repro_writes_results_figures_and_evaluates_claims(tmp_path: Path, data_root: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    result = run_integration_repro(out, quick=True, seed=0, progress=False, config=cfg)
    doc = load_results(out)
    assert doc["name"] == "integration" and isinstance(doc["claims"], list) and len(doc["claims"]) >= 10
    for c in doc["claims"]:
        assert CLAIM_KEYS <= set(c), c
        assert c["passed"] in (True, False, None)
        assert c["expected"]  # the rule is written down
    claims = {c["id"]: c for c in doc["claims"]}
    # evaluated for real on two cell types: the measured dimension of each cell's fixed points
    dim3 = claims["categorical_dim_n3"]
    assert isinstance(dim3["passed"], bool) and set(dim3["measured"]) == {"gru", "ugrnn"}
    assert dim3["measured"]["gru"] == 2 and dim3["passed"] == all(v == 2 for v in dim3["measured"].values())
    runs = dim3["details"]["runs"]
    assert runs["categorical3_gru"]["all_states_dimension"] >= 2  # reported beside it
    tri = claims["categorical3_triangle"]
    assert isinstance(tri["passed"], bool) and all(len(v) == 3 for v in tri["measured"].values())
    assert tri["passed"] == all(max(abs(a - 120) for a in v) <= 5 for v in tri["measured"].values())
    match = claims["wordcount_match_categorical"]
    assert match["measured"]["categorical3_gru"] == {"predicted": 2, "measured": 2}
    # the word-count-only check ran on the real Yelp-5 files
    yelp = claims["yelp5_wordcount_dim"]
    assert isinstance(yelp["measured"], int) and yelp["details"]["num_classes"] == 5
    # claims without runs in this configuration are reported as not evaluated, with the reason
    ag = claims["ag_news_dim"]
    assert ag["passed"] is None and "no AG News run" in ag["details"]["explanation"]
    assert claims["categorical_dim_n4"]["passed"] is None
    # claims that were not evaluated keep the stage from passing as a whole
    assert result.all_passed is False
    # files: run dirs with analysis.json, figures in three forms, the cross-run dimension figure, the summary
    for name in ("categorical3_gru", "categorical3_ugrnn"):
        a = json.loads((out / "runs" / name / "analysis.json").read_text())
        assert a["fixed_points"]["all_certified"]
        for kind in ("pca3d", "eigenvalues", "readout", "variance"):
            for ext in ("plotly.json", "png", "svg"):
                assert (out / "figures" / f"{kind}__{name}.{ext}").is_file()
    assert (out / "figures" / "dimension.png").is_file() and "figures/dimension.png" in doc["figures"]
    assert dim3["figure"] == "figures/pca3d__categorical3_gru.png"
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# integration:") and "| categorical3_ugrnn |" in summary
    assert doc["thresholds"]["variance"]["value"] == 0.95 and doc["config"]["settings"]["analysis"]["n_starts"] == 256
    # a second call reuses the finished runs (no retraining) and gives the same claims
    stamp = (out / "runs" / "categorical3_gru" / "model.safetensors").stat().st_mtime_ns
    again = run_integration_repro(out, quick=True, seed=0, progress=False, config=cfg)
    assert (out / "runs" / "categorical3_gru" / "model.safetensors").stat().st_mtime_ns == stamp
    assert [c.passed for c in again.claims] == [c["passed"] for c in doc["claims"]]


def test_repro_cli_exit_code_and_config_errors(app, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: integration\nruns: {x: {recipe: synthetic/categorical3_gru, overrides: {optim: {}}}}\n")
    with pytest.raises(ConfigError, match="overrides may only touch data, model and train"):
        load_config(bad)
    bad.write_text("name: integration\nbogus: 1\nruns: {x: {recipe: flipflop/tanh16}}\n")
    with pytest.raises(ConfigError, match="field 'bogus': unknown field"):
        load_config(bad)
    bad.write_text("runs: {x: {recipe: flipflop/tanh16, overrides: {model: {cell: elman}}}}\n")
    with pytest.raises(ConfigError, match="model.cell"):
        load_config(bad)
    # the built-in settings validate (every recipe loads) and cover every claim family on two cell types
    quick = load_config(quick=True)
    full = load_config(quick=False)
    for cfg in (quick, full):
        names = set(cfg.runs)
        assert {"flipflop_tanh16", "flipflop_gru16"} <= names and "yelp5" in cfg.wordcount_checks
        for fam in ("categorical2", "categorical3", "categorical4", "categorical5", "ordered3", "ag_news", "sst5"):
            assert len([n for n in names if n.startswith(fam + "_")]) >= 2, fam
    # a tiny run through the command: exit code 1 when a claim does not pass
    cfg = tmp_path / "one.yaml"
    cfg.write_text("analysis: {n_docs: 50, n_starts: 64, n_trajectories: 2}\nruns:\n  flipflop_tanh16:\n"
                   "    recipe: flipflop/tanh16\n    overrides: {train: {steps: 20, eval_every: 20}, "
                   "data: {n_test: 32}}\n")
    res = CliRunner().invoke(app, ["repro", "integration", "--config", str(cfg), "--out", str(tmp_path / "o"),
                                   "--quiet"])
    assert res.exit_code == 1, res.output
    assert "claims passed" in res.output and "not passed: flipflop_tanh_lattice" in res.output
