"""Ensemble training: members equal their standalone runs, the ensemble is deterministic, resume works per ensemble,
member run directories load like standalone ones, and train_many groups stackable runs on its own."""

from __future__ import annotations

import pytest
import torch

from innerworks.models.classifier import RNNClassifier
from innerworks.train import load_run, loop, parse_recipe, train
from innerworks.train._grouped import GroupedClassifier
from innerworks.train.checkpoint import load_state
from innerworks.train.ensemble import _Ensemble, can_share_ensemble, train_ensemble
from innerworks.train.parallel import train_many
from innerworks.train.tasks import get_task
from innerworks.utils.io import read_json


def _recipe(seed: int, cell: str = "gru", steps: int = 4, **data) -> object:
    return parse_recipe({
        "name": f"tiny{seed}", "seed": seed,
        "data": {"source": "synthetic", "task": "categorical", "num_classes": 3, "length": 8, "min_length": 5,
                 "n_train": 64, "n_val": 16, "n_test": 16, **data},
        "model": {"cell": cell, "hidden_size": 8, "embed_dim": None, "readout_bias": False},
        "train": {"steps": steps, "batch_size": 8, "lr": 0.05, "l2": 1e-3, "clip": 1.0, "eval_every": 2,
                  "checkpoint_every": 2},
    })


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_state(run_dir / "model.safetensors")[0]


@pytest.mark.parametrize("cell", ["gru", "lstm", "ugrnn", "gru_renn", "vanilla"])
def test_members_equal_standalone_runs(tmp_path, cell):
    recipes = {f"m{i}": _recipe(i, cell) for i in range(3)}
    records = train_ensemble(recipes, tmp_path / "ens", progress=False)
    assert all(r["status"] == "ok" for r in records.values())
    for name, recipe in recipes.items():
        alone = train(recipe, tmp_path / "alone" / name, progress=False)
        a, b = _weights(tmp_path / "ens" / name), _weights(alone.run_dir)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4)
        ens_metrics = read_json(tmp_path / "ens" / name / "metrics.json")
        assert ens_metrics["test"]["accuracy"] == pytest.approx(alone.metrics["test"]["accuracy"], abs=1 / 16 + 1e-9)
        assert len(ens_metrics["loss_curve"]) == 4 and [v["step"] for v in ens_metrics["val_curve"]] == [2, 4]


def test_ensemble_is_deterministic_and_loads_like_a_run(tmp_path):
    recipes = {f"m{i}": _recipe(i) for i in range(2)}
    train_ensemble(recipes, tmp_path / "a", progress=False)
    train_ensemble(recipes, tmp_path / "b", progress=False)
    for name in recipes:
        a, b = _weights(tmp_path / "a" / name), _weights(tmp_path / "b" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
        run = load_run(tmp_path / "a" / name)
        assert run.recipe == recipes[name] and run.info["ensemble"]["size"] == 2
        for split in ("train", "test"):  # the batched evaluation gives the task's metrics of the saved weights
            with torch.no_grad():
                alone = get_task("classification").evaluate(run.model, getattr(run.data, split), "cpu")
            assert run.metrics[split]["accuracy"] == alone["accuracy"] and run.metrics[split]["n"] == alone["n"]
            assert run.metrics[split]["loss"] == pytest.approx(alone["loss"], rel=1e-5)
        assert not (tmp_path / "a" / name / "checkpoint.safetensors").exists()


def test_resume_continues_an_interrupted_ensemble(tmp_path, monkeypatch):
    recipes = {f"m{i}": _recipe(i, steps=6) for i in range(2)}
    train_ensemble(recipes, tmp_path / "full", progress=False)
    real_step = _Ensemble.step

    def crash_after_four(self, step):
        if step >= 4:
            raise RuntimeError("simulated kill")
        return real_step(self, step)

    monkeypatch.setattr(_Ensemble, "step", crash_after_four)
    records = train_ensemble(recipes, tmp_path / "cut", progress=False)
    assert {r["status"] for r in records.values()} == {"failed"}
    assert load_state(tmp_path / "cut" / "m0" / "checkpoint.safetensors")[1]["step"] == 4
    monkeypatch.setattr(_Ensemble, "step", real_step)
    records = train_ensemble(recipes, tmp_path / "cut", progress=False)
    assert {r["status"] for r in records.values()} == {"ok"}
    for name in recipes:
        a, b = _weights(tmp_path / "full" / name), _weights(tmp_path / "cut" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert read_json(tmp_path / "cut" / name / "run.json")["resumed_from_step"] == 4
    # a member's checkpoint has the standalone format: train(resume=True) continues it too
    one = {"m0": recipes["m0"]}
    monkeypatch.setattr(_Ensemble, "step", crash_after_four)
    train_ensemble(one, tmp_path / "mixed", progress=False)
    monkeypatch.setattr(_Ensemble, "step", real_step)
    done = train(recipes["m0"], tmp_path / "mixed" / "m0", resume=True, progress=False)
    a = _weights(tmp_path / "full" / "m0")
    b = _weights(done.run_dir)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4)


def test_grouping_and_train_many_uses_ensembles(tmp_path):
    recipes = {"a": _recipe(0), "b": _recipe(1), "c": _recipe(2, cell="lstm"), "d": _recipe(3, n_train=80)}
    assert can_share_ensemble(recipes) == [["a", "b", "d"]]
    records = train_many(recipes, tmp_path / "runs", jobs=1, progress=False, ensembles=True)
    assert [records[n]["status"] for n in recipes] == ["ok"] * 4
    assert read_json(tmp_path / "runs" / "a" / "run.json")["ensemble"]["size"] == 3
    assert "ensemble" not in read_json(tmp_path / "runs" / "c" / "run.json")
    solo = train_many({"a": _recipe(0), "b": _recipe(1)}, tmp_path / "solo", jobs=1, progress=False)
    assert "ensemble" not in read_json(tmp_path / "solo" / "a" / "run.json")
    assert records["a"]["test"]["accuracy"] == pytest.approx(solo["a"]["test"]["accuracy"], abs=1 / 16 + 1e-9)


@pytest.mark.parametrize("vocab", [6, 50])  # embedding table projected once / one input row per position
def test_grouped_gru_matches_standalone_gradients(vocab):
    torch.manual_seed(0)
    members = [RNNClassifier(vocab, 3, "gru", hidden_size=5, embed_dim=4) for _ in range(2)]
    grouped = GroupedClassifier(members)
    tokens = torch.randint(1, vocab, (2, 3, 6))
    tokens[:, 0, 4:] = 0  # a padded row
    tokens[:, 1, 2] = 0  # a padding id inside a document: a zero input, no gradient to its embedding row
    lengths = torch.tensor([[4, 6, 6], [4, 5, 6]])
    grouped.last_logits(tokens, lengths).square().sum().backward()
    for k, model in enumerate(members):
        RNNClassifier.last_logits(model(tokens[k]), lengths[k]).square().sum().backward()
        for (name, param), stacked in zip(model.named_parameters(), grouped.params, strict=True):
            torch.testing.assert_close(stacked.grad[k], param.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_clip_and_adam_act_per_member(tmp_path):
    sessions = [loop._start_session(_recipe(i), tmp_path / f"m{i}", torch.device("cpu")) for i in range(2)]
    ens = _Ensemble(sessions, [torch.get_rng_state()] * 2, torch.device("cpu"))
    torch.manual_seed(1)
    grads = [torch.randn_like(p) * torch.tensor([30.0, 0.01]).view(-1, *[1] * (p.dim() - 1))  # clipped / not
             for p in ens.model.params]
    for p, g in zip(ens.model.params, grads, strict=True):
        p.grad = g.clone()
    ens._clip(1.0)
    ens.opt.step()
    for k, s in enumerate(sessions):
        params = list(s.model.parameters())
        for p, g in zip(params, grads, strict=True):
            p.grad = g[k].clone()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        assert (norm > 1.0) == (k == 0)
        s.opt.step()
        for p, stacked in zip(params, ens.model.params, strict=True):
            torch.testing.assert_close(stacked.detach()[k], p.detach(), atol=1e-6, rtol=1e-6)
