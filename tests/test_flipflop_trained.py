"""Trained flip-flops (issue 3, part 6): the 27-point lattice of a 3-bit tanh-16 network, and a GRU that converges.

Both networks are trained here with the shared loop from the built-in recipes ``flipflop/*`` (seed 0; the tanh
recipe also gives the lattice with seeds 1-4). Fixed points are searched from visited states at zero input.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from innerworks.dynamics import audit_attractors, find_fixed_points
from innerworks.dynamics.task import FlipFlopModel, FlipFlopTask, flipflop_states, sign_accuracy
from innerworks.errors import ConfigError, InnerworksError
from innerworks.train import load_recipe, load_run, train
from innerworks.train.config import parse_recipe


def _memories(model: FlipFlopModel, points: torch.Tensor) -> set[tuple[int, ...]]:
    with torch.no_grad():
        out = model.readout(points.to(model.readout.weight.dtype))
    assert bool((out.abs() > 0.5).all()), "a stable point does not read out a clear bit pattern"
    return {tuple(int(v) for v in torch.sign(o).tolist()) for o in out}


@pytest.fixture(scope="module")
def tanh_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ff") / "tanh16"
    return train(load_recipe("flipflop/tanh16"), out, progress=False)


def test_trained_tanh_flipflop_has_exactly_the_27_point_lattice(tanh_run) -> None:
    model = tanh_run.model.eval()
    assert tanh_run.metrics["test"]["accuracy"] > 0.99  # sign accuracy after the first pulse
    states = flipflop_states(model, tanh_run.data.test, 128)
    fps = find_fixed_points(model, states, n_starts=1024, mode="both", noise_scale=1.0)
    assert fps.unstable_histogram() == {0: 8, 1: 12, 2: 6, 3: 1}
    assert len(fps) == 27 and bool(fps.converged.all())
    assert float(fps.residuals.max()) < 1e-8
    cell64 = copy.deepcopy(model.cell).double()  # the certificate holds for the network's own step
    with torch.no_grad():
        nxt = cell64(torch.zeros(27, 3, dtype=torch.float64), fps.points)
    assert float((nxt - fps.points).norm(dim=1).max()) < 1e-8
    # the 8 stable points are the 8 memories: their readouts carry the 8 sign patterns
    assert len(_memories(model, fps.points[fps.stable])) == 8
    # Newton alone, from visited states, finds exactly the memories (they are where the trajectories rest) ...
    newton = find_fixed_points(model, states, n_starts=512, seed_rounds=0)
    assert newton.unstable_histogram() == {0: 8}
    # ... and the default call, seeding Newton from midpoints between the roots, completes the lattice (issue 14)
    seeded = find_fixed_points(model, states, n_starts=512)
    assert seeded.unstable_histogram() == {0: 8, 1: 12, 2: 6, 3: 1} and float(seeded.residuals.max()) < 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an incomplete audit would warn
        audit = audit_attractors(model, states[:, -1], fps)
    assert audit.complete and len(audit.attractors) == 8


def test_trained_gru_flipflop_converges(tmp_path) -> None:
    res = train(load_recipe("flipflop/gru16"), tmp_path / "gru16", progress=False)
    model = res.model.eval()
    assert res.metrics["test"]["accuracy"] > 0.99
    states = flipflop_states(model, res.data.test, 128)
    fps = find_fixed_points(model, states, n_starts=1024)
    # every start converges to a certified point; the stable ones are exactly the 8 memories
    assert fps.meta["outcomes"] == {"converged": 1024}
    assert float(fps.residuals.max()) < 1e-8
    assert int(fps.stable.sum()) == 8 and len(_memories(model, fps.points[fps.stable])) == 8
    assert len(fps) > 8  # saddles between memories are found too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit = audit_attractors(model, states[:, -1], fps)
    assert audit.complete and all(a.period == 1 and a.match_stable for a in audit.attractors)


def test_flipflop_run_reloads_and_resumes_identically(tmp_path, tanh_run, monkeypatch) -> None:
    """The task plugs into train/load_run: a reloaded run gives the same outputs; an interrupted run, resumed,
    ends with the same weights (batches come from the loop's generator only)."""
    run = load_run(tanh_run.run_dir)
    x = run.data.test.inputs[:4]
    with torch.no_grad():
        assert torch.equal(run.model(x), tanh_run.model.eval()(x))
    raw = {"name": "ff", "task": "flipflop", "seed": 3,
           "data": {"n_bits": 2, "n_time": 20, "n_train": 8, "n_val": 8, "n_test": 8},
           "model": {"cell": "gru", "hidden_size": 4},
           "train": {"steps": 6, "batch_size": 4, "eval_every": 3, "checkpoint_every": 3}}
    full = train(parse_recipe(raw), tmp_path / "full", progress=False)
    part = tmp_path / "part"
    calls = {"n": 0}
    orig = FlipFlopTask.loss

    def interrupted(self, model, batch, device):  # noqa: ANN001 - the 4th step dies after the step-3 checkpoint
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return orig(self, model, batch, device)

    monkeypatch.setattr(FlipFlopTask, "loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(parse_recipe(raw), part, progress=False)
    monkeypatch.setattr(FlipFlopTask, "loss", orig)
    resumed = train(parse_recipe(raw), part, resume=True, progress=False)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_flipflop_task_metrics_and_errors() -> None:
    out = torch.tensor([[[0.9, -0.1], [-0.8, 0.2]]])
    tgt = torch.tensor([[[1.0, 0.0], [-1.0, -1.0]]])
    assert sign_accuracy(out, tgt) == pytest.approx(2 / 3)  # zero targets (before the first pulse) are skipped
    with pytest.raises(InnerworksError, match=r"\[B, T, 3\]"):
        FlipFlopModel(3)(torch.zeros(2, 5, 2))
    with pytest.raises(ConfigError, match="data.pulse_prob"):
        parse_recipe({"name": "x", "task": "flipflop", "data": {"pulse_prob": 0.0}})
    with pytest.raises(ConfigError, match="model.cell"):
        parse_recipe({"name": "x", "task": "flipflop", "data": {}, "model": {"cell": "elman"}})
