"""`innerworks analyze dynamics RUN_DIR --out DIR` (issue 3, part 7) through typer's CliRunner, on tiny real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from innerworks.dynamics.analyze import AnalysisSettings, analyze_run, linearize_modes
from innerworks.dynamics.cli import register
from innerworks.dynamics.fixed_points import FixedPoints
from innerworks.errors import InnerworksError
from innerworks.train import train
from innerworks.train.config import parse_recipe

FIGURE_FILES = ("plotly.json", "png", "svg")


@pytest.fixture()
def app(lab_app) -> typer.Typer:
    return lab_app(register)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory, tiny3_recipe: object) -> Path:
    """A 3-class categorical GRU-24, trained for 300 steps (about 2 s): enough for a clear triangle."""
    out = tmp_path_factory.mktemp("runs") / "tiny3"
    train(tiny3_recipe, out, progress=False)
    return out


def _figures(out: Path, name: str) -> None:
    for kind in ("pca3d", "eigenvalues", "readout"):
        for ext in FIGURE_FILES:
            assert (out / "figures" / f"{kind}__{name}.{ext}").is_file(), f"{kind}__{name}.{ext}"


def test_analyze_dynamics_classifier(app, classifier_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "an"
    res = CliRunner().invoke(app, ["analyze", "dynamics", str(classifier_run), "--out", str(out), "--n-docs", "200",
                                   "--n-starts", "256", "--quiet"])
    assert res.exit_code == 0, res.output
    a = json.loads((out / "analysis.json").read_text())
    m = a["manifold"]
    assert (f"manifold: {m['n_points']} approximate fixed points" in res.output
            and f"readout dimension {m['readout_dimension']}" in res.output)
    assert a["task"] == "classification" and a["cell"] == "gru" and a["num_classes"] == 3
    assert a["metrics"]["accuracy"] > 0.9 and a["test_accuracy"] == a["metrics"]["accuracy"]
    assert 0.3 <= a["chance_accuracy"] <= 0.5
    # the manifold: hundreds of approximate fixed points, a 2-D triangle read out in 2 dimensions
    man = a["manifold"]
    assert man["n_points"] >= 100 and man["n_points"] == man["n_kept"]
    assert abs(man["participation_ratio"] - 2) <= 0.75 and man["readout_dimension"] == 2
    assert man["dimension_95"] >= 2 and len(man["explained_variance"]) >= 3
    acc = man["accuracy_by_dimension"]
    assert len(acc) == 8 and acc[1] > 0.85 and acc[0] < acc[1]
    # the exact roots: few, certified, their own object (3 stable corners)
    fp = a["fixed_points"]
    assert fp["all_certified"] and fp["max_residual"] < 1e-8 and fp["n"] >= 4
    assert a["exact_roots"]["stability"]["stable"] == 3 and a["exact_roots"]["n"] == fp["n"]
    assert a["wordcount"]["dimension_95"] == 2 and abs(a["wordcount"]["participation_ratio"] - 2) < 0.75
    assert max(abs(x - 120.0) for x in a["readout"]["pair_angles"]) < 15
    lin = a["linearization"]
    assert 0 < lin["n_points"] <= 200 and lin["slow_modes"]["median"] >= 0
    assert "line_attractor" not in a          # binary runs only
    _figures(out, "tiny3")
    for ext in FIGURE_FILES:
        assert (out / "figures" / f"variance__tiny3.{ext}").is_file()
    back = FixedPoints.load(out / "fixed_points")
    assert len(back) == fp["n"]
    assert {"pca3d__tiny3", "variance__tiny3"} <= set(a["figures"])


def test_analyze_dynamics_flipflop_and_errors(app, tmp_path: Path) -> None:
    raw = {"name": "ff_tiny", "task": "flipflop", "seed": 0,
           "data": {"n_bits": 2, "n_time": 40, "pulse_prob": 0.08, "n_train": 32, "n_val": 32, "n_test": 64},
           "model": {"cell": "vanilla", "hidden_size": 8},
           "train": {"steps": 150, "batch_size": 64, "lr": 0.02, "clip": 1.0, "eval_every": 150,
                     "checkpoint_every": 150}}
    run = tmp_path / "ff"
    train(parse_recipe(raw), run, progress=False)
    out = tmp_path / "an"
    res = CliRunner().invoke(app, ["analyze", "dynamics", str(run), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    a = json.loads((out / "analysis.json").read_text())
    assert a["task"] == "flipflop" and a["n_bits"] == 2
    assert a["lattice"]["expected"] == {"0": 4, "1": 4, "2": 1}
    assert a["fixed_points"]["all_certified"] and a["fixed_points"]["n"] >= 1
    assert a["lattice"]["matches"] == (a["fixed_points"]["unstable_histogram"] == a["lattice"]["expected"])
    _figures(out, "ff_tiny")
    # not a run directory, and an unfinished run: clear InnerworksErrors (the root CLI maps them to exit code 2)
    with pytest.raises(InnerworksError, match="not a run directory"):
        analyze_run(tmp_path / "nope", tmp_path / "x")
    (run / "model.safetensors").unlink()
    with pytest.raises(InnerworksError, match="not finished"):
        analyze_run(run, tmp_path / "x")
    res = CliRunner().invoke(app, ["analyze", "dynamics", str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert res.exit_code != 0 and isinstance(res.exception, InnerworksError)


def test_settings_and_mode_alignment() -> None:
    with pytest.raises(Exception, match="n_starts"):
        AnalysisSettings(n_starts=0)
    # a linear map whose slowest mode's left eigenvector is e1: alignment with a readout along e1 is 1
    rnn = torch.nn.RNN(1, 2, bias=False)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.tensor([[0.5, 0.0], [0.3, 0.1]]))
    out = linearize_modes(rnn, torch.zeros(1, 2), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), n_modes=2)
    assert torch.allclose(out["eigenvalues"][0].real, torch.tensor([0.5, 0.1], dtype=torch.float64))
    assert out["alignment"][0, 0] == pytest.approx(1.0) and out["alignment"][0, 1] == pytest.approx(0.6)
    # its right eigenvector is (4, 3)/5: the diagnostic right alignment is 0.8, not the left one's 1.0
    assert out["right_alignment"][0] == pytest.approx(0.8)


def test_points_out_of_reach_of_every_trajectory_leave_the_manifold() -> None:
    """FixedPointFinder's outlier rule: a stalled point far outside the visited states (saturated gates, where every
    state is slow) is not part of the attractor manifold; points among the states are kept."""
    from innerworks.dynamics.geometry import centroid_distance_ratio

    def _within_reach(p: torch.Tensor, st: torch.Tensor, scale: float) -> torch.Tensor:
        return centroid_distance_ratio(p, st) <= scale

    states = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    radius = float((states - states.mean(0)).norm(dim=1).mean())
    far, edge = torch.full((8,), 54.0 / 8**0.5), states.mean(0) + 9 * radius / 8**0.5
    pts = torch.stack([states[0], states.mean(0), far, edge])
    assert _within_reach(pts, states, 10.0).tolist() == [True, True, False, True]
    assert _within_reach(pts, states, 2.0).tolist() == [True, True, False, False]


def test_binary_run_carries_the_line_attractor_keys(tmp_path: Path) -> None:
    """A 2-class run: analysis.json carries the line-attractor measurements under their stable names."""
    raw = {"name": "tiny2", "seed": 0,
           "data": {"source": "synthetic", "task": "categorical", "num_classes": 2, "length": 12, "min_length": 8,
                    "n_train": 2000, "n_val": 100, "n_test": 200},
           "model": {"cell": "gru", "hidden_size": 12, "embed_dim": None, "readout_bias": False},
           "train": {"steps": 150, "batch_size": 64, "lr": 0.1, "eps": 0.1, "betas": [0.9, 0.99],
                     "lr_decay": 0.9997, "clip": 10.0, "l2": 0.0005, "eval_every": 150, "checkpoint_every": 150}}
    run = tmp_path / "tiny2"
    train(parse_recipe(raw), run, progress=False)
    r = analyze_run(run, tmp_path / "an", AnalysisSettings(n_docs=100, n_starts=64, manifold_starts=128,
                                                           slow_max_iters=2000, n_linearize=30, figures=False))
    a = json.loads(r.json_path.read_text())
    la = a["line_attractor"]
    assert {"readout_alignment", "right_eigvec_alignment", "right_eigvec_null_p99", "tau_slowest", "tau_ratio",
            "valence_auc"} <= set(la)
    assert 0 <= la["readout_alignment"] <= 1 and 0 < la["right_eigvec_null_p99"] < 1 and 0.5 <= la["valence_auc"] <= 1
    for key in ("n_points", "participation_ratio", "readout_dimension", "dimension_95", "accuracy_by_dimension",
                "explained_variance"):
        assert key in a["manifold"], key
    assert {"participation_ratio", "dimension_95"} <= set(a["wordcount"]) and a["chance_accuracy"] >= 0.5
