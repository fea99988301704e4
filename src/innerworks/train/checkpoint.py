"""Checkpoints without pickle: one safetensors file holding tensors, with JSON metadata in its header.

One file means one atomic rename: a run killed at any moment leaves either the previous checkpoint or the new one.

>>> import tempfile, torch, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "ck.safetensors"
>>> save_state(p, {"w": torch.ones(2)}, {"step": 3})
>>> t, meta = load_state(p); meta["step"], t["w"].tolist()
(3, [1.0, 1.0])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save
from torch import nn

from innerworks.errors import InnerworksError
from innerworks.utils.io import atomic_write_bytes

_META_KEY = "innerworks"


def save_state(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` plus JSON-able ``meta`` to ``path`` atomically."""
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(clean, metadata={_META_KEY: json.dumps(meta)}))


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_state` (or any safetensors file; meta is then ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise InnerworksError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            header = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise InnerworksError(f"{path}: not a readable safetensors file ({exc})") from None
    return tensors, json.loads(header.get(_META_KEY, "{}"))


def save_model(path: str | Path, model: nn.Module, meta: dict[str, Any] | None = None) -> None:
    """Save a model's ``state_dict`` as safetensors.

    >>> import tempfile, pathlib
    >>> m = nn.Linear(2, 1); p = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> save_model(p, m); load_model(p, nn.Linear(2, 1)).weight.shape
    torch.Size([1, 2])
    """
    save_state(path, dict(model.state_dict()), meta or {})


def load_model(path: str | Path, model: nn.Module) -> nn.Module:
    """Load weights saved by :func:`save_model` into ``model`` (strict); returns ``model``. Weights with NaN or Inf
    are refused, naming the file and the parameter."""
    tensors, _ = load_state(path)
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise InnerworksError(f"{path}: non-finite weights in {bad}")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise InnerworksError(
            f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten an optimizer's state into named tensors plus JSON (param-group hyper-parameters)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{pid}.{key}"] = val
            else:
                scalars[f"{pid}.{key}"] = val
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        if not name.startswith("optim."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = val
    for name, val in meta.get("scalars", {}).items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    groups = meta["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})
