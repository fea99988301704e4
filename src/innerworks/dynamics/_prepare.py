"""Shared input checking for the fixed-point and orbit finders: every bad input becomes one clear error."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from pydantic import BaseModel, ValidationError

from innerworks.dynamics.step import Step, as_step
from innerworks.errors import InnerworksError, format_validation_error


def parse_options(cls: type[BaseModel], options: dict[str, Any]) -> Any:
    """Validate keyword options with a pydantic model; unknown or bad ones raise one-line InnerworksErrors."""
    try:
        return cls(**options)
    except ValidationError as exc:
        err = format_validation_error(exc, "options", kind=InnerworksError)
        if exc.errors()[0]["type"] == "extra_forbidden":
            err = InnerworksError(f"{err} (valid options: {', '.join(cls.model_fields)})")
        raise err from None


def as_states(states: Any, name: str = "initial_states") -> torch.Tensor:
    """``[N, S]`` from ``[S]``, ``[N, S]`` or visited states ``[B, T, S]`` (flattened); checks emptiness/finiteness."""
    try:
        t = torch.as_tensor(states)
    except Exception as exc:  # noqa: BLE001
        raise InnerworksError(f"{name}: expected a tensor of states, got {type(states).__name__} ({exc})") from None
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise InnerworksError(f"{name}: expected real-valued states, got dtype {t.dtype}")
    if t.dim() == 1:
        t = t.unsqueeze(0)
    elif t.dim() == 3:
        t = t.reshape(-1, t.shape[-1])
    if t.dim() != 2:
        raise InnerworksError(f"{name}: expected [S], [N, S] or [B, T, S], got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise InnerworksError(f"{name}: empty (shape {tuple(t.shape)}); need at least one start state")
    bad = ~torch.isfinite(t).all(dim=1)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise InnerworksError(f"{name}: {int(bad.sum())} of {t.shape[0]} states contain NaN or inf (first: row "
                              f"{first}); drop them or fix the model that produced them")
    return t


def prepare(step_obj: Any, initial_states: Any, inputs: Any, dtype: torch.dtype,
            tol: float) -> tuple[Step, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked ``(step, starts [N, S], per-start inputs [N, I], x* as given [I] or [N, I])``."""
    step = as_step(step_obj, dtype=dtype)
    h = as_states(initial_states)
    if step.state_size is not None and h.shape[1] != step.state_size:
        raise InnerworksError(f"initial_states have {h.shape[1]} units per state, but the step's state size is "
                              f"{step.state_size}" + (" (LSTM states are [h; c])" if "lstm" in step.name.lower()
                                                      else ""))
    h = step.cast(h)
    n = h.shape[0]
    if inputs is None:
        x = step.zero_inputs(n)
        x_star = x[0]
    else:
        x_star = step.cast(torch.as_tensor(inputs))
        if not bool(torch.isfinite(x_star).all()):
            raise InnerworksError("inputs (x*) contain NaN or inf")
        if x_star.dim() == 2 and x_star.shape[0] == 1:
            x_star = x_star[0]
        if x_star.dim() == 1:
            x = x_star.unsqueeze(0).expand(n, -1)
        elif x_star.dim() == 2 and x_star.shape[0] == n:
            x = x_star
        else:
            raise InnerworksError(f"inputs must be the constant input x* of shape [I] (or one per start, [{n}, I]); "
                                  f"got {tuple(x_star.shape)}")
        if step.input_size is not None and x.shape[1] != step.input_size:
            raise InnerworksError(f"inputs have {x.shape[1]} features, but the step takes {step.input_size}")
    probe(step, x[:2], h[:2])
    if step.dtype != torch.float64 and tol < 1e-6:
        warnings.warn(f"working in {step.dtype}: a residual certificate of {tol:g} needs float64 (the default "
                      "dtype); few or no points may be certified", RuntimeWarning, stacklevel=3)
    return step, h, x, x_star


def probe(step: Step, x: torch.Tensor, h: torch.Tensor) -> None:
    """Call the step once and check it returns finite ``[B, S]`` states of the working dtype."""
    try:
        with torch.no_grad():
            out = step(x, h)
    except Exception as exc:  # noqa: BLE001 - any failure inside user code becomes one clear message
        raise InnerworksError(f"step(x, h) failed for x of shape {tuple(x.shape)} and h of shape {tuple(h.shape)} "
                              f"({step.dtype}): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(out, torch.Tensor):
        raise InnerworksError(f"step(x, h) must return the next state as a tensor, got {type(out).__name__} (wrap "
                              "modules that return (output, state) tuples in a function returning the state)")
    if tuple(out.shape) != tuple(h.shape):
        raise InnerworksError(f"step(x, h) returned shape {tuple(out.shape)} for states of shape {tuple(h.shape)}; "
                              "expected the same shape [B, S] (a batched step h_next = step(x, h))")
    if out.dtype != h.dtype:
        raise InnerworksError(f"step(x, h) returned {out.dtype} for {h.dtype} states; it must keep the dtype")
