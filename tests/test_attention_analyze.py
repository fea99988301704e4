"""`innerworks analyze attention`: the decomposition of real (small) trained runs, its JSON and figures, VED, heads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from innerworks.attention.analyze import (
    INPUT_DRIVEN_TERMS,
    _side_parts,
    _views_cache,
    analyze_model,
    sample_attention_views,
)
from innerworks.attention.scores import TERM_NAMES, attention_from_terms, reconstruct_scores, score_terms
from innerworks.cli import app
from innerworks.data.seq2seq import escan_offsets, make_seq2seq_splits
from innerworks.models.seq2seq import build_seq2seq
from innerworks.train import parse_recipe, train

DATA = {"task": "one_to_one", "num_words": 3, "min_length": 3, "max_length": 5, "n_train": 1000, "n_val": 50,
        "n_test": 120}


def _train(root: Path, name: str, model: dict, steps: int) -> Path:
    recipe = parse_recipe({"name": name, "task": "seq2seq", "seed": 0, "data": DATA, "model": model,
                           "train": {"steps": steps, "batch_size": 32, "lr": 0.01, "eval_every": steps,
                                     "checkpoint_every": steps}})
    train(recipe, root / name, progress=False)
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("att_runs")
    return {"aed": _train(root, "tiny_aed", {"arch": "aed", "hidden_size": 16, "teacher_forcing": True}, 150),
            "ved": _train(root, "tiny_ved", {"arch": "ved", "hidden_size": 16, "teacher_forcing": True}, 20)}


def _figure_files(out: Path, name: str) -> list[Path]:
    return [out / "figures" / f"{name}{ext}" for ext in (".plotly.json", ".png", ".svg")]


def test_analyze_cli_on_an_attention_run(runs, tmp_path) -> None:
    out = tmp_path / "an"
    res = CliRunner().invoke(app, ["analyze", "attention", str(runs["aed"]), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "largest dot ratio" in res.output
    doc = json.loads((out / "analysis.json").read_text())
    s, a = doc["summary"], doc["analysis"]
    assert doc["run"] == "tiny_aed" and doc["task"] == "one_to_one" and doc["arch"] == "aed"
    assert s["has_attention"] and s["n_heads"] == 1 and s["attention_source"] == "states"
    assert s["n_sequences"] == DATA["n_test"] == a["n_sequences"]
    # The nine terms sum back to the model's own scores (real model, float32 cache).
    assert s["score_identity_max_abs_err"] < 1e-3
    assert set(s["dot_ratios"]) == set(TERM_NAMES)
    assert sum(s["dot_ratios"].values()) == pytest.approx(1.0, abs=1e-9)
    assert sum(s["signed_shares"].values()) == pytest.approx(1.0, abs=1e-9)
    assert s["input_driven_dot_ratio"] == pytest.approx(sum(s["dot_ratios"][t] for t in INPUT_DRIVEN_TERMS))
    assert s["largest_dot_ratio_term"] == max(s["dot_ratios"], key=s["dot_ratios"].get)
    # The diagonal fraction is the share of steps whose temporal-only attention peaks at t = s.
    ta = torch.tensor(a["temporal_attention"][0])
    diag = float((ta.argmax(-1) == torch.arange(ta.shape[0])).double().mean())
    assert s["temporal_diagonal_fraction"] == pytest.approx(diag)
    assert doc["metrics"]["phrase_accuracy"] == json.loads((runs["aed"] / "metrics.json").read_text())["test"][
        "phrase_accuracy"]
    for kind in ("attention", "term_shares", "mu_pca"):
        assert all(p.is_file() and p.stat().st_size > 0 for p in _figure_files(out, f"{kind}__tiny_aed")), kind
    assert sorted(doc["figures"]) == ["attention__tiny_aed", "mu_pca__tiny_aed", "term_shares__tiny_aed"]


def test_analyze_cli_on_ved_reports_hidden_states_only(runs, tmp_path) -> None:
    out = tmp_path / "ved"
    res = CliRunner().invoke(app, ["analyze", "attention", str(runs["ved"]), "--out", str(out), "--n-eval", "40",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["summary"]["has_attention"] is False and "VED" in doc["summary"]["note"]
    assert doc["summary"]["n_sequences"] == 40 and doc["analysis"]["dot_ratios"] is None
    hs = doc["summary"]["hidden_states"]["encoder"]
    assert 0.0 <= hs["r2_mu"] <= hs["r2_mu_chi"] <= 1.0 + 1e-9
    assert doc["figures"] == ["mu_pca__tiny_ved"]
    assert not (out / "figures" / "attention__tiny_ved.png").exists()


def test_term_views_rebuild_the_models_attention(runs) -> None:
    """The per-sample views decompose the vectors the model really scores: all nine terms give its weights back."""
    from innerworks.train import load_run

    run = load_run(runs["aed"])
    ds = run.data.test
    r = analyze_model(run.model, ds, name="x")
    view = ds.subset(slice(0, 30))
    cache = _views_cache(run.model, view)
    _, k_parts, _, src_len, _ = _side_parts(r.analysis, cache, view, "encoder")
    _, q_parts, _, _, _ = _side_parts(r.analysis, cache, view, "decoder")
    terms = score_terms(k_parts, q_parts, r.analysis.scale)
    full = attention_from_terms(terms, src_len)[:, 0]
    w = cache["attn.hook_weights"].double()
    valid = torch.arange(w.shape[1])[None, :, None] < view.tgt_lengths[:, None, None]
    assert torch.allclose(torch.where(valid, full, 0.0), torch.where(valid, w, 0.0), atol=1e-5)
    v = sample_attention_views(r.analysis, cache, view, index=3)
    n_t, n_s = int(view.tgt_lengths[3]), int(view.src_lengths[3])
    assert torch.tensor(v["sample"]).shape == (n_t, n_s)
    assert torch.allclose(torch.tensor(v["sample"], dtype=torch.float64), w[3, :n_t, :n_s], atol=1e-6)
    temporal = torch.tensor(v["temporal"], dtype=torch.float64)
    assert torch.allclose(temporal.sum(-1), torch.ones(n_t, dtype=torch.float64))
    assert v["src_tokens"][-1] == "<eos>" and len(v["tgt_tokens"]) == n_t


def test_row_metrics_match_a_direct_computation(runs) -> None:
    """Per-row input-driven totals and the argmax alignment, recomputed from the terms and weights of one batch;
    the temporal share and the average-attention match are the fixed definitions of docs/attention.md §5."""
    from innerworks.attention.metrics import DotRatioAccumulator
    from innerworks.train import load_run

    run = load_run(runs["aed"])
    ds = run.data.test
    r = analyze_model(run.model, ds, name="x", batch_size=50)  # three batches of rows in the per-row pass
    s = r.summary
    assert s["temporal_share"] == s["dot_ratios"]["muE_muD"]
    assert s["average_attention_match"] == pytest.approx(1 - float(r.analysis.mean_attention_match["tv"].mean()))
    cache = _views_cache(run.model, ds)
    _, k_parts, _, src_len, _ = _side_parts(r.analysis, cache, ds, "encoder")
    _, q_parts, _, tgt_len, _ = _side_parts(r.analysis, cache, ds, "decoder")
    terms = score_terms(k_parts, q_parts, r.analysis.scale)
    acc = DotRatioAccumulator(k=5, keep_samples=True).update(terms, reconstruct_scores(terms), src_len, tgt_len)
    per = acc.result()["per_sample"]  # all rows in one batch
    rows = sum(per[t].reshape(-1) for t in INPUT_DRIVEN_TERMS)
    assert torch.allclose(torch.tensor(s["per_row"]["input_driven"], dtype=torch.float64), rows.double(), atol=1e-9)
    w = cache["attn.hook_weights"].double()
    t_pairs, s_pairs = [], []
    for n in range(len(ds)):
        sl, tl = int(src_len[n]), int(tgt_len[n])
        t_pairs += terms["muE_muD"][n, 0, :tl, :sl].argmax(-1).tolist()
        s_pairs += w[n, :tl, :sl].argmax(-1).tolist()
    al = s["argmax_alignment"]
    assert al["n"] == len(t_pairs) == int(tgt_len.sum())
    assert al["pearson"] == pytest.approx(float(np.corrcoef(t_pairs, s_pairs)[0, 1]), abs=1e-9)


def test_multihead_transformer_is_decomposed_head_by_head(tmp_path) -> None:
    s = make_seq2seq_splits(DATA | {"n_test": 60}, seed=1)
    m = build_seq2seq({"arch": "transformer", "d_model": 16, "d_ff": 32, "num_layers": 2, "num_heads": 2},
                      len(s.src_vocab), len(s.tgt_vocab), seed=0)
    r = analyze_model(m, s.test, name="tf2", out=tmp_path, fig_out=tmp_path, n_view=20)
    sm = r.summary
    assert sm["n_heads"] == 2 and sm["attention_source"] == "qk" and sm["head_averaged"]
    assert all(len(v) == 2 for v in sm["per_head"]["dot_ratios"].values())
    per_head = torch.tensor([sm["per_head"]["dot_ratios"][t] for t in TERM_NAMES], dtype=torch.float64)
    assert torch.allclose(per_head.sum(0), torch.ones(2, dtype=torch.float64))
    assert sm["dot_ratios"]["muE_muD"] == pytest.approx(float(per_head[0].mean()))
    assert sm["score_identity_max_abs_err"] < 1e-4
    # Head by head, the nine terms of the projected queries/keys rebuild the model's raw cross-attention scores.
    view = s.test.subset(slice(0, 20))
    cache = _views_cache(m, view)
    _, k_parts, _, sl, _ = _side_parts(r.analysis, cache, view, "encoder")
    _, q_parts, _, tl, _ = _side_parts(r.analysis, cache, view, "decoder")
    rebuilt = reconstruct_scores(score_terms(k_parts, q_parts, r.analysis.scale))
    sc = m.run_with_cache(view, names_filter=["attn.hook_scores"])[1]["attn.hook_scores"]
    valid = ((torch.arange(sc.shape[2])[None, :] < tl[:, None])[:, None, :, None]
             & (torch.arange(sc.shape[3])[None, :] < sl[:, None])[:, None, None, :])
    assert torch.allclose(torch.where(valid, rebuilt, 0.0), torch.where(valid, sc.double(), 0.0), atol=1e-4)
    assert json.loads((tmp_path / "analysis.json").read_text())["summary"]["n_heads"] == 2
    assert (tmp_path / "figures" / "attention__tf2.png").is_file()


def test_escan_analysis_compares_lag_with_the_data_offset(tmp_path) -> None:
    s = make_seq2seq_splits({"task": "escan", "n_train": 10, "n_val": 10, "n_test": 80}, seed=0)
    m = build_seq2seq({"arch": "ao", "hidden_size": 16, "input_dim": 16}, len(s.src_vocab), len(s.tgt_vocab))
    r = analyze_model(m, s.test, name="esc", fig_out=tmp_path, n_view=20)
    assert r.task == "escan" and r.offset == pytest.approx(escan_offsets(s.test).tolist(), nan_ok=True)
    cmp = r.summary["lag_vs_offset"]
    assert cmp["n"] == len(r.summary["temporal_lag"]) == s.test.tgt_width
    lag = torch.tensor(r.summary["temporal_lag"])
    assert cmp["mean_abs_diff"] == pytest.approx(float((lag - torch.tensor(r.offset)).abs().mean()))
    assert (tmp_path / "figures" / "lag__esc.png").is_file()
    # Support and <eos> share per decoder step come from the target lengths: the same rows as mu^D and the offset.
    tl = s.test.tgt_lengths
    steps = range(s.test.tgt_width)
    assert r.summary["step_counts"] == [int((tl > i).sum()) for i in steps]
    eos = r.summary["eos_fraction_per_step"]
    assert eos == pytest.approx([float((tl == i + 1).sum() / (tl > i).sum()) for i in steps])
    assert r.summary["attention_lag_vs_offset"]["n"] == len(r.summary["attention_lag"]) == s.test.tgt_width
    # chi^E . mu^D split by input word: names from the source vocabulary, summing to the share
    by_tok = r.summary["signed_shares_by_key_token"]["chiE_muD"]
    assert set(by_tok) <= set(s.test.src_vocab) and "<pad>" not in by_tok
    assert sum(by_tok.values()) == pytest.approx(r.summary["signed_shares"]["chiE_muD"], abs=1e-9)


def test_analyze_cli_bad_run_dir_is_a_one_line_error(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "innerworks.cli", "analyze", "attention", str(tmp_path),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "not a run directory" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
