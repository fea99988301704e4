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
analysis: {n_docs: 200, max_states: 2000, n_starts: 256, unique_tol: 0.025, n_linearize: 50, n_trajectories: 10,
           manifold_starts: 256, slow_max_iters: 3000}
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
    assert set(claims) >= {"categorical_dim_n2", "categorical_dim_n5", "categorical3_triangle",
                           "natural_categorical_dim", "ordered_reduces_dim", "sst5_reduces_dim", "scalar_evidence_1d",
                           "slow_modes_match_dim", "wordcount_predicts", "line_attractor_binary",
                           "flipflop_tanh_lattice", "flipflop_gru_converges"}
    assert {c["id"]: c["source"] for c in doc["claims"]}["line_attractor_binary"] == "predecessor"
    # evaluated for real on two cell types: PR and d_read of each cell's manifold of approximate fixed points
    dim3 = claims["categorical_dim_n3"]
    assert isinstance(dim3["passed"], bool) and set(dim3["measured"]) == {"categorical3_gru", "categorical3_ugrnn"}
    gru = dim3["measured"]["categorical3_gru"]
    assert gru["readout_dimension"] == 2 and abs(gru["participation_ratio"] - 2) <= 0.75 and gru["n_points"] >= 50
    assert dim3["passed"] == all(abs(v["participation_ratio"] - 2) <= 0.75 and v["readout_dimension"] == 2
                                 for v in dim3["measured"].values())
    runs = dim3["details"]["runs"]
    assert len(runs["categorical3_gru"]["accuracy_by_dimension"]) == 8          # reported beside it, never gating
    assert runs["categorical3_gru"]["n_exact_roots"] >= 1
    tri = claims["categorical3_triangle"]
    assert isinstance(tri["passed"], bool) and all(len(v) == 3 for v in tri["measured"].values())
    assert tri["passed"] == all(max(abs(a - 120) for a in v) <= 5 for v in tri["measured"].values())
    wc = claims["wordcount_predicts"]
    assert abs(wc["measured"]["runs"]["categorical3_gru"]["pr_words"] - 2) < 0.75
    assert wc["passed"] is False and "no ordered run" in wc["details"]["explanation"]
    # claims without runs in this configuration are reported as not evaluated, with the reason
    nat = claims["natural_categorical_dim"]
    assert nat["passed"] is None and "not evaluated" in nat["details"]["explanation"]
    assert claims["categorical_dim_n4"]["passed"] is None and claims["line_attractor_binary"]["passed"] is None
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
    assert "Word-count-only check `yelp5`" in summary
    assert doc["thresholds"]["pr_tolerance"]["value"] == 0.75
    assert doc["config"]["settings"]["analysis"]["n_starts"] == 256
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
        for fam in ("categorical2", "categorical3", "categorical4", "categorical5", "ordered5", "scalar3", "ag_news",
                    "dbpedia3", "dbpedia4", "sst5", "yelp_polarity", "sst2"):
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


def test_claim_rules_on_fixed_numbers() -> None:
    from innerworks.repro.integration_claims import categorical_rule, line_attractor_parts, ordered_rule

    assert categorical_rule({"participation_ratio": 3.7, "readout_dimension": 3}, 3)
    assert not categorical_rule({"participation_ratio": 2.2, "readout_dimension": 3}, 3)      # PR too far
    assert not categorical_rule({"participation_ratio": 3.0, "readout_dimension": 4}, 3)      # d_read off
    assert not categorical_rule({"participation_ratio": None, "readout_dimension": None}, 1)  # nothing measured
    assert ordered_rule({"participation_ratio": 3.5, "readout_dimension": 3}, 5)
    assert not ordered_rule({"participation_ratio": 3.51, "readout_dimension": 3}, 5)
    assert not ordered_rule({"participation_ratio": 2.0, "readout_dimension": 4}, 5)
    m = {"participation_ratio": 1.5, "readout_dimension": 1, "readout_alignment": 0.7, "right_eigvec_alignment": 0.3,
         "right_eigvec_null_p99": 0.29, "tau_slowest": 60.0, "tau_second": 20.0, "mean_document_length": 60.0,
         "tau_ratio": 3.0, "valence_auc": 0.8}
    assert all(line_attractor_parts(m).values())
    bad = line_attractor_parts({**m, "readout_alignment": 0.69, "right_eigvec_alignment": 0.29, "tau_slowest": 59.0,
                                "valence_auc": 0.79, "readout_dimension": 2})
    assert not any(bad.values())


def test_dbpedia_k_class_subsets_and_roles(data_root: Path) -> None:
    from innerworks.data.natural import load_corpus
    from innerworks.repro.integration_claims import run_role
    from innerworks.train.config import load_recipe

    for k in (3, 6):
        c = load_corpus(f"dbpedia{k}")
        labels = {y for split in ("train", "val", "test") for y in c.labels[split]}
        assert labels == set(range(k)) and len(c.class_names) == k and c.class_names[0] == "Company"
        assert c.source["dropped"]["other_classes"] > 0
    head = load_corpus("ag_news_train_head")
    assert head.class_names == ["World", "Sports", "Business", "Sci/Tech"] and len(head.texts["test"]) > 7000
    # a run on a k-class subset belongs to the dbpedia family with k classes
    role = run_role(load_recipe("natural/dbpedia_gru"))
    assert (role.family, role.num_classes) == ("dbpedia", 4)
