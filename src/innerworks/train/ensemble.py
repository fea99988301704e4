"""Train K recurrent classifiers of one architecture in one process, as one batched model.

Why: a reproduction trains dozens of small networks (GRU-64, batch 64) that differ only in seed, data order or
dataset. One such run is all overhead (Python, small kernels); K of them stacked along a leading axis
(:class:`~innerworks.train._grouped.GroupedClassifier`) pay that overhead once. Each member keeps its own data,
batch stream (its own ``torch.Generator``), gradient-norm clip, L2, Adam moments (Adam is elementwise, so one Adam
over stacked parameters *is* K independent Adams), loss curve, validation curve and metrics.

Every member writes the run directory a standalone :func:`innerworks.train.train` writes (``config.yaml``,
``model.safetensors``, ``metrics.json``, ``run.json``; ``run.json`` adds an ``ensemble`` entry), and its periodic
``checkpoint.safetensors`` has the standalone format, so ``train(..., resume=True)`` and :func:`train_ensemble`
can each continue the other's checkpoint. Members equal their standalone runs up to float rounding (a batched
matmul sums in another order than the fused kernel); over a whole run that moves a member's final accuracy about
as much as a 1-ulp change of its initial weights moves a standalone run's. Validation and the final metrics run
all members in one batched pass (:meth:`_Ensemble.evaluate`): the task's metrics of the saved weights.

>>> import tempfile
>>> from innerworks.train import load_recipe
>>> base = load_recipe("quick")
>>> short = base.train.model_copy(update={"steps": 3, "eval_every": 3})
>>> recipes = {f"s{i}": base.model_copy(update={"seed": i, "train": short}) for i in range(2)}
>>> can_share_ensemble(recipes)
[['s0', 's1']]
>>> records = train_ensemble(recipes, tempfile.mkdtemp(), progress=False)
>>> [records[n]["status"] for n in recipes]
['ok', 'ok']
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch.nn import functional as F

from innerworks.train import loop
from innerworks.train._grouped import GROUPED_CELLS, GroupedClassifier, architecture
from innerworks.train.config import Recipe, recipe_to_yaml
from innerworks.utils.device import resolve_device
from innerworks.utils.io import read_json, write_json


def _share_key(recipe: Recipe) -> str | None:
    """Recipes with equal keys can stack (vocabulary and class count are checked once the data is built)."""
    if recipe.task != "classification" or str(recipe.model.get("cell", "gru")).lower() not in GROUPED_CELLS:
        return None
    train = recipe.train.model_dump(mode="json")
    return json.dumps({"model": recipe.model, "train": train}, sort_keys=True, default=str)


def can_share_ensemble(recipes: Mapping[str, Recipe]) -> list[list[str]]:
    """Groups (of two or more run names, in ``recipes`` order) that can train as one ensemble.

    Runs stack when they are classification runs of a groupable cell with the same ``model`` and ``train``
    sections (seed and ``data`` may differ). The built data must also agree on vocabulary size and class count:
    :func:`train_ensemble` checks that and splits a group whose datasets do not.

    >>> from innerworks.train import load_recipe
    >>> q = load_recipe("quick")
    >>> can_share_ensemble({"a": q, "b": q.model_copy(update={"seed": 1}), "c": q.model_copy(update={"model": {}})})
    [['a', 'b']]
    """
    groups: dict[str, list[str]] = {}
    for name, recipe in recipes.items():
        key = _share_key(recipe)
        if key is not None:
            groups.setdefault(key, []).append(name)
    return [g for g in groups.values() if len(g) >= 2]


def _record(s: Any, status: str, wall: float, metrics: dict[str, Any] | None = None,
            error: str | None = None) -> dict[str, Any]:
    """The record :func:`innerworks.train.parallel.train_many` returns for one run."""
    out: dict[str, Any] = {"status": status, "dir": str(s.run_dir), "wall_time_s": round(wall, 2)}
    if error is not None:
        out["error"] = error
    else:
        test = (metrics or {}).get("test", {})
        out["test"] = {k: v for k, v in test.items() if isinstance(v, int | float)}
    return out


class _Ensemble:
    """Members (standalone :class:`~innerworks.train.loop._Session` objects) trained through one grouped model."""

    def __init__(self, sessions: list[Any], rng: list[torch.Tensor], dev: torch.device) -> None:
        self.sessions, self.rng, self.dev = sessions, rng, dev
        cfg = sessions[0].recipe.train
        self.cfg, self.task = cfg, sessions[0].task
        self.model = GroupedClassifier([s.model for s in sessions]).to(dev)
        # foreach: one kernel per op over all stacked tensors, bit for bit the per-member Adam (fused is not)
        self.opt = torch.optim.Adam(self.model.params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, foreach=True)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: cfg.lr_decay ** step)
        self._load_optimizers()
        self.failed: dict[int, str] = {}

    def _load_optimizers(self) -> None:
        """Stack the members' Adam moments (empty for a fresh start) and take member 0's schedule."""
        first = self.sessions[0]
        sd = first.opt.state_dict()
        member_states = [s.opt.state_dict()["state"] for s in self.sessions]
        state = {}
        for pid, st in sd["state"].items():
            state[pid] = {key: (val if key == "step" else torch.stack([m[pid][key] for m in member_states]))
                          for key, val in st.items()}
        self.opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
        self.sched.load_state_dict(first.sched.state_dict())

    def write_back(self, k: int) -> None:
        """Copy member ``k``'s weights, Adam moments and schedule into its standalone session."""
        s = self.sessions[k]
        s.model.load_state_dict(self.model.member_state(k))
        sd = self.opt.state_dict()
        state = {pid: {key: (val.clone() if key == "step" else val[k].clone()) for key, val in st.items()}
                 for pid, st in sd["state"].items()}
        s.opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
        s.sched.load_state_dict(self.sched.state_dict())

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch per member from its own generator, padded to a common width: ``[K, B, T]``, ``[K, B]``."""
        batches = [s.task.sample_batch(s.data.train, self.cfg.batch_size, s.generator) for s in self.sessions]
        width = max(b[0].shape[1] for b in batches)
        tokens = torch.zeros(len(batches), self.cfg.batch_size, width, dtype=torch.long)
        for i, b in enumerate(batches):
            tokens[i, :, : b[0].shape[1]] = b[0]
        lengths = torch.stack([b[1] for b in batches])
        labels = torch.stack([b[2] for b in batches])
        return tokens.to(self.dev), lengths.to(self.dev), labels.to(self.dev)

    def step(self, step: int) -> torch.Tensor:
        """One optimiser step for every member; returns the members' data losses ``[K]``."""
        cfg = self.cfg
        tokens, lengths, labels = self._batch()
        logits = self.model.last_logits(tokens, lengths)
        k, b, c = logits.shape
        if labels.dim() == 3:
            losses = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").mean((1, 2))
        else:
            losses = F.cross_entropy(logits.reshape(-1, c), labels.reshape(-1), reduction="none").view(k, b).mean(1)
        totals = losses
        if cfg.l2 > 0:
            totals = losses + cfg.l2 * sum(p.pow(2).reshape(k, -1).sum(1) for p in self.model.params)
        bad = ~torch.isfinite(totals.detach())
        for i in bad.nonzero().flatten().tolist():
            if i not in self.failed:
                self.failed[i] = (f"TrainingError: non-finite loss ({float(totals[i])}) at step {step} of "
                                  f"{self.sessions[i].recipe.name}: lower train.lr, raise train.l2 or set "
                                  f"train.clip (the run directory keeps the last checkpoint)")
        self.opt.zero_grad(set_to_none=True)
        totals.sum().backward()
        if cfg.clip is not None:
            self._clip(cfg.clip)
        self.opt.step()
        self.sched.step()
        return losses.detach()

    def _clip(self, max_norm: float) -> None:
        """Per-member global-norm clipping, as ``nn.utils.clip_grad_norm_`` does for one run."""
        grads = [p.grad for p in self.model.params if p.grad is not None]
        k = self.model.k
        norms = torch.sqrt(sum(g.reshape(k, -1).pow(2).sum(1) for g in grads))
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))

    @torch.no_grad()
    def evaluate(self, split: str, chunk: int = 256) -> list[dict[str, float]]:
        """Every member's metrics on its own ``split`` in one batched pass (the task's ``evaluate`` metrics).

        Members' splits may differ in size and width: short ones are padded with their first row, masked out.
        """
        sets = [getattr(s.data, split) for s in self.sessions]
        k, most = len(sets), max(len(d.tokens) for d in sets)
        sums = torch.zeros(3, k)  # correct, exact, loss
        was_training = self.model.training
        self.model.eval()
        for start in range(0, most, chunk):
            rows = [torch.arange(start, min(start + chunk, most)).clamp(max=len(d.tokens) - 1) for d in sets]
            valid = torch.stack([torch.arange(start, start + len(r)) < len(d.tokens) for r, d in zip(rows, sets,
                                                                                                    strict=True)])
            lengths = torch.stack([d.lengths[r] for r, d in zip(rows, sets, strict=True)])
            width = int(lengths.max())
            tokens = torch.stack([d.tokens[r, :width] for r, d in zip(rows, sets, strict=True)])
            labels = torch.stack([d.labels[r] for r, d in zip(rows, sets, strict=True)]).to(self.dev)
            logits = self.model.last_logits(tokens.to(self.dev), lengths.to(self.dev)).float()
            mask = valid.to(self.dev).float()
            if labels.dim() == 3:  # multi-label
                hit = (logits > 0).float() == labels
                sums[0] += (hit.float().mean(2) * mask).sum(1).cpu()
                sums[1] += (hit.all(2).float() * mask).sum(1).cpu()
                loss = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").sum(2)
            else:
                sums[0] += ((logits.argmax(-1) == labels).float() * mask).sum(1).cpu()
                loss = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
            sums[2] += (loss * mask).sum(1).cpu()
        self.model.train(was_training)
        out = []
        for i, d in enumerate(sets):
            n = len(d.tokens)
            m = {"accuracy": float(sums[0, i]) / n, "loss": float(sums[2, i]) / n, "n": float(n)}
            if d.multilabel:
                m["exact_match"] = float(sums[1, i]) / n
            out.append(m)
        return out

    def alive(self) -> list[int]:
        return [i for i in range(len(self.sessions)) if i not in self.failed]


class _Evaluated:
    """A member's task whose ``evaluate`` answers with the metrics of the ensemble's batched pass (by dataset), so
    the standalone ``_finish`` writes those instead of evaluating the member's three splits again."""

    def __init__(self, task: Any, metrics: dict[int, dict[str, float]]) -> None:
        self._task, self._metrics = task, metrics

    def evaluate(self, model: Any, dataset: Any, device: Any, batch_size: int = 512) -> dict[str, float]:
        return self._metrics[id(dataset)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


def _run(ens: _Ensemble, progress: bool) -> None:
    """The ensemble's training loop: the standalone loop's evaluations and checkpoints, for every member."""
    cfg, first = ens.cfg, ens.sessions[0]
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn()]
    ens.model.train()
    with Progress(*columns, disable=not progress, transient=False) as bar:
        job = bar.add_task(f"train ensemble of {len(ens.sessions)} ({first.recipe.name}, ...)", total=cfg.steps,
                           completed=first.start)
        for step in range(first.start, cfg.steps):
            losses = ens.step(step).tolist()
            done = step + 1
            evaluate = done % cfg.eval_every == 0 or done == cfg.steps
            checkpoint = done % cfg.checkpoint_every == 0 and done < cfg.steps
            val = ens.evaluate("val") if evaluate else None
            for i in ens.alive():
                s = ens.sessions[i]
                s.loss_curve.append(round(losses[i], 6))
                if val is not None:
                    s.val_curve.append({"step": done, **val[i]})
                if checkpoint:
                    ens.write_back(i)
                    torch.set_rng_state(ens.rng[i])
                    s.checkpoint(done)
            bar.update(job, completed=done)


def _train_group(names: list[str], sessions: list[Any], rng: list[torch.Tensor], dev: torch.device,
                 progress: bool) -> dict[str, dict[str, Any]]:
    """Train sessions that share an architecture and a start step; finish each run directory."""
    t0 = time.perf_counter()
    ens = _Ensemble(sessions, rng, dev)
    for s in sessions:
        s.t0 = t0
    _run(ens, progress)
    splits = ("train", "val", "test")
    final = {split: ens.evaluate(split) for split in splits}
    out = {}
    for i, (name, s) in enumerate(zip(names, sessions, strict=True)):
        if i in ens.failed:
            out[name] = _record(s, "failed", time.perf_counter() - t0, error=ens.failed[i])
            continue
        ens.write_back(i)
        torch.set_rng_state(rng[i])
        task, s.task = s.task, _Evaluated(s.task, {id(getattr(s.data, sp)): final[sp][i] for sp in splits})
        try:
            metrics = loop._finish(s, True)
        finally:
            s.task = task
        info = read_json(s.run_dir / "run.json")
        info["ensemble"] = {"size": len(sessions), "members": [x.recipe.name for x in sessions], "index": i}
        write_json(s.run_dir / "run.json", info)
        out[name] = _record(s, "ok", time.perf_counter() - t0, metrics)
    return out


def _open(recipe: Recipe, run_dir: Path, dev: torch.device) -> tuple[Any, torch.Tensor, dict[str, Any] | None]:
    """A member's session (restored from its checkpoint if any), its torch RNG state, or its finished record."""
    loop._prepare_run_dir(run_dir, recipe_to_yaml(recipe), resume=True)
    s = loop._start_session(recipe, run_dir, dev)
    if (run_dir / "metrics.json").exists() and (run_dir / "model.safetensors").exists():
        return s, torch.get_rng_state(), _record(s, "ok", 0.0, read_json(run_dir / "metrics.json"))
    if (run_dir / loop.CHECKPOINT).exists():
        s.restore(run_dir / loop.CHECKPOINT)
    return s, torch.get_rng_state(), None


def train_ensemble(recipes: Mapping[str, Recipe], out_root: str | Path, device: str = "cpu",
                   progress: bool = True, run_dirs: Mapping[str, str | Path] | None = None,
                   ) -> dict[str, dict[str, Any]]:
    """Train ``recipes`` (runs :func:`can_share_ensemble` groups together) into ``out_root/<name>/``.

    Finished runs are reused and interrupted ones continue from their checkpoints, as ``train_many`` does. Members
    are grouped by architecture (after the data is built) and by the step they resume from; each group trains as
    one batched model. A member whose loss turns non-finite is reported failed and the others go on.

    Args:
        recipes: run name -> recipe; classification recipes of one ``model``/``train`` section.
        out_root: folder of the run directories.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        progress: a rich progress bar per group.
        run_dirs: name -> run directory, for runs that do not live at ``out_root/<name>`` (a sweep's layout).

    Returns:
        name -> ``{"status", "dir", "wall_time_s", "test" | "error"}`` (the shape of ``train_many``'s records).
    """
    dev = resolve_device(device, option="device")
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, Any]] = {}
    groups: dict[tuple, list[tuple[str, Any, torch.Tensor]]] = {}
    for name, recipe in recipes.items():
        if _share_key(recipe) is None:
            raise ValueError(f"{name}: not an ensemble-able run (classification with a built-in cell)")
        run_dir = Path(run_dirs[name]) if run_dirs and name in run_dirs else root / name
        try:
            s, rng, done = _open(recipe, run_dir, dev)
        except Exception as exc:  # noqa: BLE001 - reported per run, as train_many does
            records[name] = {"status": "failed", "dir": str(run_dir), "wall_time_s": 0.0,
                             "error": f"{type(exc).__name__}: {exc}"}
            continue
        if done is not None:
            records[name] = done
            continue
        key = (_share_key(recipe), architecture(s.model), s.start)
        groups.setdefault(key, []).append((name, s, rng))
    for members in groups.values():
        names, sessions, rngs = ([m[i] for m in members] for i in range(3))
        try:
            records.update(_train_group(names, sessions, rngs, dev, progress))
        except Exception as exc:  # noqa: BLE001
            for name, s in zip(names, sessions, strict=True):
                records[name] = _record(s, "failed", 0.0, error=f"{type(exc).__name__}: {exc}")
    return {n: records[n] for n in recipes}


__all__ = ["can_share_ensemble", "train_ensemble"]
