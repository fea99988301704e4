"""The training loop shared by every task: Adam, global-norm clipping, L2, exponential LR decay, periodic eval,
atomic checkpoints and exact resume.

A run directory ends up with ``config.yaml`` (resolved recipe), ``model.safetensors``, ``metrics.json`` (accuracies
and curves; identical for identical seeds) and ``run.json`` (seed, versions, git commit, wall time). While training,
``checkpoint.safetensors`` holds model + optimiser + RNG state, so ``resume=True`` continues an interrupted run and
ends with the same weights as a run that was never interrupted.

>>> import tempfile
>>> from innerworks.train.config import load_recipe
>>> recipe = load_recipe("quick").model_copy(update={"train": load_recipe("quick").train.model_copy(
...     update={"steps": 3, "eval_every": 3})})
>>> result = train(recipe, tempfile.mkdtemp(), progress=False)
>>> sorted(result.metrics["test"])[:1]
['accuracy']
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from innerworks.errors import InnerworksError, TrainingError
from innerworks.train.checkpoint import (
    load_state,
    optimizer_tensors,
    restore_optimizer,
    save_model,
    save_state,
)
from innerworks.train.config import Recipe, recipe_to_yaml
from innerworks.train.tasks import Task, get_task
from innerworks.utils.device import resolve_device
from innerworks.utils.io import atomic_write_text, read_json, write_json
from innerworks.utils.provenance import provenance
from innerworks.utils.seed import seed_everything

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its data splits, final metrics and the run directory."""

    model: nn.Module
    data: Any
    metrics: dict[str, Any]
    run_dir: Path


def _device(name: str) -> torch.device:
    return resolve_device(name, option="device")


def _evaluate(task: Task, model: nn.Module, dataset: Any, device: torch.device) -> dict[str, float]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = task.evaluate(model, dataset, device)
    model.train(was_training)
    return out


def _l2(model: nn.Module) -> torch.Tensor:
    return sum((p * p).sum() for p in model.parameters())  # type: ignore[return-value]


def _prepare_run_dir(run_dir: Path, config_yaml: str, resume: bool) -> None:
    """Refuse to overwrite another run; a resumed run must have the same resolved recipe. Writes ``config.yaml``."""
    if run_dir.exists() and (run_dir / "config.yaml").exists():
        if not resume:
            raise InnerworksError(
                f"{run_dir}: already holds a run; pass --resume to continue it or choose another --out"
            )
        if (run_dir / "config.yaml").read_text(encoding="utf-8") != config_yaml:
            raise InnerworksError(
                f"{run_dir}/config.yaml: differs from the recipe being resumed (same recipe and seed needed)"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", config_yaml)


@dataclass
class _Session:
    """One training run in progress: what it trains, with what, and how far it got (the checkpoint's contents)."""

    recipe: Recipe
    run_dir: Path
    task: Task
    data: Any
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    generator: torch.Generator
    device: torch.device
    start: int = 0
    loss_curve: list[float] = field(default_factory=list)
    val_curve: list[dict[str, Any]] = field(default_factory=list)
    wall_before: float = 0.0
    t0: float = field(default_factory=time.perf_counter)

    def restore(self, ckpt_path: Path) -> None:
        """Continue from a checkpoint: weights, optimiser, schedule, both RNG states and the curves."""
        tensors, meta = load_state(ckpt_path)
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        restore_optimizer(self.opt, tensors, meta["optimizer"])
        self.sched.load_state_dict(meta["scheduler"])
        self.generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        self.start, self.loss_curve, self.val_curve = meta["step"], meta["loss_curve"], meta["val_curve"]
        self.wall_before = meta.get("wall_time_s", 0.0)

    def checkpoint(self, step: int) -> None:
        """Save everything :meth:`restore` needs, atomically."""
        opt_t, opt_meta = optimizer_tensors(self.opt)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(opt_t)
        tensors["rng.generator"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        save_state(self.run_dir / CHECKPOINT, tensors, {
            "step": step, "loss_curve": self.loss_curve, "val_curve": self.val_curve, "optimizer": opt_meta,
            "scheduler": self.sched.state_dict(), "wall_time_s": self.wall_time(),
        })

    def wall_time(self) -> float:
        """Training seconds so far, across resumes."""
        return self.wall_before + time.perf_counter() - self.t0

    def step(self, step: int) -> torch.Tensor:
        """One optimiser step on a fresh batch; returns the data loss (without the L2 term)."""
        cfg = self.recipe.train
        batch = self.task.sample_batch(self.data.train, cfg.batch_size, self.generator)
        loss = self.task.loss(self.model, batch, self.device)
        total = loss + cfg.l2 * _l2(self.model) if cfg.l2 > 0 else loss
        if not torch.isfinite(total.detach()):
            raise TrainingError(
                f"non-finite loss ({float(total.detach())}) at step {step} of {self.recipe.name}: lower train.lr, "
                f"raise train.l2 or set train.clip (the run directory keeps the last checkpoint)"
            )
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.opt.step()
        self.sched.step()
        return loss


def _start_session(recipe: Recipe, run_dir: Path, dev: torch.device) -> _Session:
    """Build data, model, optimiser and schedule in the order that fixes the RNG stream (seed first)."""
    cfg = recipe.train
    task = get_task(recipe.task)
    data_cfg = task.validate_data(recipe.data)
    model_cfg = task.ModelConfig.model_validate(recipe.model)
    generator = seed_everything(recipe.seed)
    data = task.build_data(data_cfg, recipe.seed, run_dir)
    model = task.build_model(model_cfg, data).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cfg.lr_decay ** step)
    return _Session(recipe, run_dir, task, data, model, opt, sched, generator, dev)


def _run_steps(s: _Session, progress: bool) -> None:
    """The training loop: steps from ``s.start``, periodic validation and checkpoints, a progress bar."""
    cfg, task = s.recipe.train, s.task
    s.model.train()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        job = bar.add_task(f"train {s.recipe.name}", total=cfg.steps, completed=s.start, status="")
        for step in range(s.start, cfg.steps):
            loss = s.step(step)
            s.loss_curve.append(round(float(loss.detach()), 6))
            done = step + 1
            if done % cfg.eval_every == 0 or done == cfg.steps:
                val = _evaluate(task, s.model, s.data.val, s.device)
                s.val_curve.append({"step": done, **val})
                bar.update(job, status=f"loss {float(loss.detach()):.3f}  val {task.primary_metric} "
                                       f"{val[task.primary_metric]:.3f}")
            if done % cfg.checkpoint_every == 0 and done < cfg.steps:
                s.checkpoint(done)
            bar.update(job, completed=done)


def _finish(s: _Session, resumed: bool) -> dict[str, Any]:
    """Evaluate every split, then write the weights, ``metrics.json`` and ``run.json``; drop the checkpoint."""
    task, data, dev = s.task, s.data, s.device
    metrics: dict[str, Any] = {
        split: _evaluate(task, s.model, ds, dev) for split, ds in (("train", data.train), ("val", data.val),
                                                                   ("test", data.test))
    }
    metrics.update({"primary_metric": task.primary_metric, "loss_curve": s.loss_curve, "val_curve": s.val_curve})
    save_model(s.run_dir / "model.safetensors", s.model, {"recipe": s.recipe.name})
    write_json(s.run_dir / "metrics.json", metrics)
    write_json(s.run_dir / "run.json", {
        "name": s.recipe.name, "task": s.recipe.task, "seed": s.recipe.seed, "steps": s.recipe.train.steps,
        "device": str(dev), "resumed_from_step": s.start if resumed and s.start > 0 else None,
        "wall_time_s": round(s.wall_time(), 3), **provenance(),
    })
    (s.run_dir / CHECKPOINT).unlink(missing_ok=True)
    return metrics


def train(recipe: Recipe, out_dir: str | Path, resume: bool = False, device: str | None = None,
          progress: bool = True) -> TrainResult:
    """Train ``recipe`` into ``out_dir``.

    Args:
        recipe: a validated :class:`~innerworks.train.config.Recipe`.
        out_dir: the run directory (created if needed).
        resume: continue from ``out_dir/checkpoint.safetensors``; the stored recipe must match. A finished run
            (weights and metrics present) is loaded, not retrained.
        device: overrides ``recipe.train.device``.
        progress: show a rich progress bar.
    """
    run_dir = Path(out_dir)
    dev = _device(device or recipe.train.device)
    _prepare_run_dir(run_dir, recipe_to_yaml(recipe), resume)
    s = _start_session(recipe, run_dir, dev)
    if resume and (run_dir / "metrics.json").exists() and (run_dir / "model.safetensors").exists():
        from innerworks.train.checkpoint import load_model

        load_model(run_dir / "model.safetensors", s.model)
        return TrainResult(s.model, s.data, read_json(run_dir / "metrics.json"), run_dir)
    if resume and (run_dir / CHECKPOINT).exists():
        s.restore(run_dir / CHECKPOINT)
    s.t0 = time.perf_counter()
    _run_steps(s, progress)
    return TrainResult(s.model, s.data, _finish(s, resume), run_dir)


def final_accuracy(metrics: dict[str, Any], split: str = "test") -> float:
    """The primary metric of ``split`` from a ``metrics.json`` dict.

    >>> final_accuracy({"primary_metric": "accuracy", "test": {"accuracy": 0.9}})
    0.9
    """
    value = metrics[split][metrics.get("primary_metric", "accuracy")]
    if not math.isfinite(value):
        raise InnerworksError(f"metric for split {split!r} is not finite")
    return float(value)
