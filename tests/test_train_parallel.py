"""Training a reproduction's runs side by side (``train_many``, ``repro --jobs``, ``repro --train-only``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from innerworks.dynamics.cli import register
from innerworks.train import train
from innerworks.train.parallel import train_many
from innerworks.train.run import training_record
from innerworks.train.runspec import RunSpec, build_recipe
from innerworks.utils.io import read_json

SHORT = {"train": {"steps": 30, "eval_every": 30, "checkpoint_every": 30}}


def _recipe(name: str, recipe: str, **overrides: dict) -> object:
    return build_recipe(RunSpec(recipe=recipe, overrides={**SHORT, **overrides}), name, 0)


def test_parallel_training_is_identical_to_sequential(tmp_path: Path) -> None:
    recipes = {
        "tanh": _recipe("tanh", "flipflop/tanh16", data={"n_train": 64, "n_val": 32, "n_test": 32}),
        "gru": _recipe("gru", "synthetic/categorical3_gru", data={"length": 12, "min_length": 8, "n_train": 500,
                                                                  "n_val": 50, "n_test": 50},
                       model={"hidden_size": 16}),
    }
    records = train_many(recipes, tmp_path / "par", jobs=2, progress=False)
    assert [r["status"] for r in records.values()] == ["ok", "ok"], records
    for name, recipe in recipes.items():
        train(recipe, tmp_path / "seq" / name, progress=False)
        par, seq = tmp_path / "par" / name, tmp_path / "seq" / name
        assert read_json(par / "metrics.json")["loss_curve"] == read_json(seq / "metrics.json")["loss_curve"]
        a, b = load_file(par / "model.safetensors"), load_file(seq / "model.safetensors")
        assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
        assert records[name]["test"] == {k: v for k, v in read_json(seq / "metrics.json")["test"].items()}
        assert training_record(par)["device"] == "cpu"


def test_a_failing_run_does_not_stop_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNERWORKS_DATA", str(tmp_path / "no_data"))  # the spawned workers inherit it
    recipes = {
        "news": _recipe("news", "natural/ag_news_quick"),
        "tanh": _recipe("tanh", "flipflop/tanh16", data={"n_train": 64, "n_val": 32, "n_test": 32}),
    }
    records = train_many(recipes, tmp_path / "runs", jobs=2, progress=False)
    assert records["tanh"]["status"] == "ok" and (tmp_path / "runs" / "tanh" / "model.safetensors").is_file()
    assert records["news"]["status"] == "failed"
    assert "DataError" in records["news"]["error"] and "no_data" in records["news"]["error"]


def test_train_only_then_analyse_reuses_the_runs(lab_app, tmp_path: Path) -> None:
    app: typer.Typer = lab_app(register)
    cfg = tmp_path / "one.yaml"
    cfg.write_text("analysis: {n_docs: 50, n_starts: 64, n_trajectories: 2}\nruns:\n  flipflop_tanh16:\n"
                   "    recipe: flipflop/tanh16\n    overrides: {train: {steps: 20, eval_every: 20}, "
                   "data: {n_test: 32}}\n")
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["repro", "integration", "--config", str(cfg), "--out", str(out), "--train-only",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("flipflop_tanh16: ok in ")
    assert (out / "runs" / "flipflop_tanh16" / "model.safetensors").is_file() and not (out / "results.json").exists()
    trained_s = training_record(out / "runs" / "flipflop_tanh16")["wall_time_s"]
    res = CliRunner().invoke(app, ["repro", "integration", "--config", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 1, res.output  # 20 steps do not make the lattice: the claim fails, as in the repro test
    timing = read_json(out / "results.json")["runs"]["flipflop_tanh16"]["timing"]
    assert timing["train_wall_s"] == trained_s and timing["trained_on"] == "cpu"  # reused, with its real training time


def test_repro_ensembles_trains_stackable_runs_as_one_ensemble(lab_app, tmp_path: Path) -> None:
    app: typer.Typer = lab_app(register)
    cfg = tmp_path / "two.yaml"
    run = ("    recipe: synthetic/categorical3_gru\n    overrides: {train: {steps: 12, eval_every: 12}, "
           "model: {hidden_size: 8}, data: {length: 10, min_length: 6, n_train: 200, n_val: 40, n_test: 40}}\n")
    cfg.write_text(f"analysis: {{n_docs: 20, n_starts: 16}}\nruns:\n  a:\n{run}  b:\n{run}")
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["repro", "integration", "--config", str(cfg), "--out", str(out), "--train-only",
                                   "--ensembles", "--quiet"])
    assert res.exit_code == 0, res.output
    members = [read_json(out / "runs" / n / "run.json").get("ensemble") for n in ("a", "b")]
    assert all(m is not None and m["size"] == 2 for m in members), members
    assert sorted(m["index"] for m in members) == [0, 1]
