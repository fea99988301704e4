"""Training: recipes, determinism, exact resume after SIGKILL, NaN handling, run directories."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from innerworks.errors import TrainingError
from innerworks.train import load_recipe, load_run, parse_recipe, train
from innerworks.train.config import recipes_dir
from innerworks.utils.io import read_json

REPO = Path(__file__).resolve().parents[1]


def small_recipe(**train_overrides) -> dict:
    raw = yaml.safe_load((recipes_dir() / "quick.yaml").read_text())
    raw["model"]["hidden_size"] = 16
    raw["data"].update({"n_train": 2000, "n_val": 200, "n_test": 200})
    raw["train"].update({"steps": 60, "eval_every": 30, "checkpoint_every": 20, "batch_size": 32})
    raw["train"].update(train_overrides)
    return raw


def write_recipe(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def test_run_directory_contents_and_load_back(tmp_path: Path) -> None:
    recipe = parse_recipe(small_recipe())
    result = train(recipe, tmp_path / "run", progress=False)
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "model.safetensors", "metrics.json", "run.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoint.safetensors").exists()
    metrics = read_json(run_dir / "metrics.json")
    assert set(metrics) >= {"train", "val", "test", "loss_curve", "val_curve"}
    assert len(metrics["loss_curve"]) == 60
    info = read_json(run_dir / "run.json")
    assert info["seed"] == recipe.seed and "torch" in info["versions"] and "git_commit" in info
    assert info["wall_time_s"] > 0
    run = load_run(run_dir)
    tokens = run.data.test.tokens[:8]
    assert torch.equal(run.model(tokens), result.model.eval()(tokens))
    assert run.metrics == metrics


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    recipe = parse_recipe(small_recipe(steps=30))
    train(recipe, tmp_path / "a", progress=False)
    train(recipe, tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()
    other = parse_recipe({**small_recipe(steps=30), "seed": 1})
    train(other, tmp_path / "c", progress=False)
    assert (tmp_path / "a" / "metrics.json").read_text() != (tmp_path / "c" / "metrics.json").read_text()


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    raw = small_recipe(steps=800, checkpoint_every=25, eval_every=400)
    recipe_path = write_recipe(tmp_path / "r.yaml", raw)
    reference = train(load_recipe(recipe_path), tmp_path / "ref", progress=False)
    assert reference.metrics

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "innerworks.cli", "train", str(recipe_path), "--out",
                             str(run_dir), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run_dir / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "model.safetensors").exists(), "run finished before it could be killed"
    assert ckpt.exists()

    train(load_recipe(recipe_path), run_dir, resume=True, progress=False)
    a = load_file(str(tmp_path / "ref" / "model.safetensors"))
    b = load_file(str(run_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert read_json(run_dir / "metrics.json") == read_json(tmp_path / "ref" / "metrics.json")
    assert read_json(run_dir / "run.json")["resumed_from_step"] > 0


def test_nan_loss_stops_with_clear_message(tmp_path: Path) -> None:
    recipe = parse_recipe(small_recipe(lr=1e30, clip=None, steps=50))
    with pytest.raises(TrainingError, match="non-finite loss"):
        train(recipe, tmp_path / "nan", progress=False)


def test_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    recipe = parse_recipe(small_recipe(steps=2))
    train(recipe, tmp_path / "r", progress=False)
    from innerworks.errors import InnerworksError

    with pytest.raises(InnerworksError, match="already holds a run"):
        train(recipe, tmp_path / "r", progress=False)
