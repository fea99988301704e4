"""The ``--device cuda`` paths, on a real GPU (skipped where CUDA is not available, e.g. CI).

Each test trains or estimates on the GPU and checks the result against the CPU: a model trained on CUDA loads on the
CPU and gives the same logits, seq2seq caches live on the GPU, the fixed-point finder certifies on a CUDA module in
float64, and a Monte Carlo correlator estimate on CUDA agrees with the CPU one within its error bars.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from innerworks.models.seq2seq_base import Seq2SeqBatch
from innerworks.train import load_recipe, load_run, train
from innerworks.train.runspec import RunSpec, build_recipe

# INNERWORKS_TEST_DEVICE=cpu runs the same checks on the CPU (to check this file where no GPU is lent).
DEVICE = os.environ.get("INNERWORKS_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _no_tf32() -> object:
    """cuDNN's RNN kernels use TF32 by default on Ampere and later (about 3 significant digits), which would make a
    CPU/GPU comparison a test of TF32 rounding; these checks are about device handling, so they run in full float32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _short(name: str, steps: int, data: dict | None = None) -> object:
    overrides = {"train": {"steps": steps, "eval_every": steps, "checkpoint_every": steps}, "data": data or {}}
    return build_recipe(RunSpec(recipe=name, overrides=overrides), name.replace("/", "_"), 0)


def test_classifier_trained_on_cuda_matches_on_cpu(tmp_path: Path) -> None:
    recipe = load_recipe("quick")
    result = train(recipe, tmp_path / "run", device=DEVICE, progress=False)
    assert result.metrics["test"]["accuracy"] >= 0.95  # the same bar as on the CPU (tests/test_accuracy.py)
    run = load_run(tmp_path / "run")
    tokens = run.data.test.tokens[:64]
    cpu = run.model(tokens)
    gpu = run.model.to(DEVICE)(tokens.to(DEVICE)).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


@pytest.mark.parametrize("name", ["attention/one_to_one_aed", "attention/one_to_one_ao", "attention/one_to_one_ved",
                                  "attention/one_to_one_transformer", "attention/escan_ao"])
def test_seq2seq_trains_and_caches_on_cuda(tmp_path: Path, name: str) -> None:
    recipe = _short(name, 30, {"n_train": 512, "n_val": 64, "n_test": 64})
    result = train(recipe, tmp_path / "run", device=DEVICE, progress=False)
    model = result.model
    assert next(model.parameters()).device.type == DEVICE
    assert torch.isfinite(torch.tensor(result.metrics["loss_curve"])).all()
    test = result.data.test.subset(slice(0, 8))
    batch = Seq2SeqBatch(test.src, test.src_lengths, test.tgt, test.tgt_lengths).to(DEVICE)
    logits, cache = model.run_with_cache(batch)
    assert logits.device.type == DEVICE and all(t.device.type == DEVICE for t in cache.values())
    cpu_logits, _ = model.to("cpu").run_with_cache(batch.to("cpu"))
    assert torch.allclose(logits.cpu(), cpu_logits, atol=1e-4)


def test_flipflop_trains_on_cuda(tmp_path: Path) -> None:
    result = train(_short("flipflop/tanh16", 200), tmp_path / "run", device=DEVICE, progress=False)
    assert result.metrics["loss_curve"][-1] < result.metrics["loss_curve"][0]


def test_fixed_points_certified_on_a_cuda_module() -> None:
    from innerworks.dynamics import find_fixed_points
    from innerworks.dynamics.toys import bistable_tanh

    rnn = bistable_tanh(3).to(DEVICE)  # 3^3 = 27 fixed points, known in closed form
    starts = 1.2 * torch.rand(512, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1.2
    fps = find_fixed_points(rnn, starts)
    assert len(fps) == 27 and fps.points.device.type == DEVICE
    assert float(fps.residuals.max()) < 1e-8


def test_correlator_estimate_on_cuda_agrees_with_cpu() -> None:
    from innerworks.wide import MLPConfig
    from innerworks.wide.estimators import estimate

    cfg = MLPConfig(width=64, depth=2, activation="tanh", d_in=4)
    cpu = estimate("var_ntk", cfg, num_samples=2000, seed=0, device="cpu")
    gpu = estimate("var_ntk", cfg, num_samples=2000, seed=0, device=DEVICE)
    assert abs(cpu.mean - gpu.mean) < 4 * (cpu.stderr ** 2 + gpu.stderr ** 2) ** 0.5
