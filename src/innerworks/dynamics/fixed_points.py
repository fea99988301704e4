"""Certified fixed points and slow points of any recurrent map ``h_next = step(x*, h)``.

:func:`find_fixed_points` polishes every start on its own with Newton / Levenberg–Marquardt steps on ``F(h) − h``
(batched Jacobians, float64), and returns a :class:`FixedPoints`:

- ``points``: unique points whose residual ``‖F(h) − h‖`` is below ``tol`` (default 1e-8, in float64): each is a
  certified fixed point (``converged`` is True for all of them);
- ``slow``: points where the search stalled at a local minimum of ``q = ½‖F(h) − h‖²`` with a residual (speed)
  between ``tol`` and ``slow_tol``: slow points, reported separately, never mixed with fixed points;
- stability of each: eigenvalues of the recurrent Jacobian sorted by ``|λ|``, number of unstable modes
  (``|λ| > 1 + unstable_margin``), time constants, optionally left/right eigenvectors.

Search modes (``mode=``): ``"newton"`` (default) finds the roots near the starts, e.g. the memories reached from
visited states; ``"explore"`` first runs Adam on each point's own q, which drifts towards saddles (what
FixedPointFinder relies on); ``"both"`` keeps the union. For a full skeleton with saddles, start from visited states
with ``mode="both", noise_scale≈1`` (tanh-scale states). Starts where Newton/LM stalls get a rescue: ``search_steps``
Adam steps from the original start, then Newton/LM again.

Duplicates (starts that reach the same point) are merged greedily, best residual first, within ``unique_tol``
(Euclidean; on ``[h, x]`` when each start has its own input); ``multiplicity`` counts the merged starts (a rough
basin size).

Compared with FixedPointFinder/renn (one Adam loop on the batch-mean q, stopping when the mean or the slowest point
is done): each point stops when its own residual is certified, the Newton phase converges quadratically, and slow
points are filtered by their own speed.

>>> import torch
>>> from innerworks.dynamics.toys import bistable_tanh
>>> step = bistable_tanh(n_bits=2)                       # h' = tanh(2h) per unit: 3 fixed points per unit
>>> starts = torch.rand(64, 2, generator=torch.Generator().manual_seed(0)) * 3 - 1.5
>>> fps = find_fixed_points(step, starts)
>>> len(fps), int(fps.stable.sum()), fps.n_unstable.bincount().tolist()
(9, 4, [4, 4, 1])
>>> bool((fps.residuals < 1e-8).all())
True
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from innerworks.dynamics import _solver as S
from innerworks.dynamics._prepare import parse_options, prepare
from innerworks.dynamics._seeds import solve_and_seed
from innerworks.dynamics.linearize import eigsorted, n_unstable_modes, time_constants
from innerworks.dynamics.step import Step
from innerworks.errors import InnerworksError
from innerworks.utils.io import atomic_write_bytes, write_json

FORMAT = "innerworks.fixed_points"
FORMAT_VERSION = 1


class FixedPointWarning(UserWarning):
    """A fixed-point search that found nothing certified, or whose result needs care."""


class FinderOptions(BaseModel):
    """Options of :func:`find_fixed_points` (and the orbit finder). All have working defaults.

    >>> FinderOptions().tol
    1e-08
    >>> FinderOptions(tol=1e-3, slow_tol=1e-4)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: ...
    """

    model_config = ConfigDict(extra="forbid")

    tol: float = Field(1e-8, gt=0, description="certificate: a fixed point has ‖F(h) − h‖ < tol")
    slow_tol: float = Field(5e-3, gt=0, description="stalled points with speed ‖F(h) − h‖ below this are slow points")
    unique_tol: float = Field(1e-3, gt=0, description="points closer than this (Euclidean) are merged")
    noise_scale: float = Field(0.0, ge=0, description="std of Gaussian noise added to the starts")
    n_starts: int | None = Field(None, ge=1, description="use a seeded random subset of this many starts")
    mode: Literal["newton", "explore", "both"] = Field(
        "newton", description="newton: Newton/LM from each start (finds the roots near the starts, e.g. memories); "
        "explore: Adam on q first (drifts towards saddles, like FixedPointFinder); both: the union")
    search_steps: int = Field(200, ge=0, description="Adam steps on each point's own q (explore mode, and the rescue "
                              "of starts where Newton/LM stalls)")
    search_lr: float = Field(1e-2, gt=0)
    seed_rounds: int = Field(3, ge=0, description="rounds of Newton from midpoints between the roots found (reaches "
                             "the saddles between attractors); 0 turns root seeding off")
    max_iter: int = Field(100, ge=1, description="Levenberg–Marquardt iterations per start (most need < 20)")
    damping: float = Field(1e-3, gt=0, description="initial LM damping λ (relative to mean diag(JᵀJ))")
    batch_size: int = Field(1024, ge=1, description="starts polished at once (bounds the [B, S, S] memory)")
    vectors: bool = Field(False, description="also keep left/right eigenvectors (K·S² complex numbers each)")
    unstable_margin: float = Field(1e-7, ge=0, description="a mode is unstable when |λ| > 1 + margin")
    marginal_tol: float = Field(1e-3, ge=0, description="a point is marginal when its largest |λ| is within this of 1 "
                                "(a flat patch or line of fixed points, not an isolated point)")
    seed: int = Field(0, description="seeds the noise and the start subset (unless a generator is passed)")
    dtype: Literal["float64", "float32"] = Field("float64", description="working precision (float32: faster on "
                                                 "GPUs, but cannot certify 1e-8)")
    progress: bool = Field(False, description="show a rich progress bar")

    @model_validator(mode="after")
    def _consistent(self) -> FinderOptions:
        if self.slow_tol < self.tol:
            raise ValueError(f"slow_tol ({self.slow_tol:g}) must be >= tol ({self.tol:g})")
        if self.mode != "newton" and self.search_steps == 0:
            raise ValueError(f"mode {self.mode!r} needs search_steps > 0")
        return self


@dataclass
class FixedPoints:
    """Fixed points (or, in ``.slow``, slow points) of a recurrent map, with their stability.

    Attributes:
        points: ``[K, S]`` float64.
        residuals: ``[K]``, ``‖F(h) − h‖`` (the speed of the point).
        converged: ``[K]`` bool: True when the residual is below the certificate ``meta["tol"]``.
        eigenvalues: complex ``[K, S]``, recurrent-Jacobian eigenvalues sorted by ``|λ|``, largest first.
        multiplicity: ``[K]``, how many starts merged into each point.
        inputs: the constant input x*, ``[I]`` (or ``[K, I]``).
        right, left: complex ``[K, S, S]`` eigenvectors (``J = R diag(λ) Lᵀ``) or None.
        slow: slow points (same class, ``converged`` all False), or None.
        meta: options, counts per outcome, timings and notes (plain JSON).
    """

    points: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor
    eigenvalues: torch.Tensor
    multiplicity: torch.Tensor
    inputs: torch.Tensor
    right: torch.Tensor | None = None
    left: torch.Tensor | None = None
    slow: FixedPoints | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def state_size(self) -> int:
        return int(self.points.shape[1])

    @property
    def unstable_margin(self) -> float:
        return float(self.meta.get("unstable_margin", 1e-7))

    @property
    def n_unstable(self) -> torch.Tensor:
        """Number of modes with ``|λ| > 1 + unstable_margin``, ``[K]``."""
        return n_unstable_modes(self.eigenvalues, self.unstable_margin)

    @property
    def stable(self) -> torch.Tensor:
        """``[K]`` bool: no unstable mode."""
        return self.n_unstable == 0

    @property
    def time_constants(self) -> torch.Tensor:
        """``−1/log|λ|`` per mode, ``[K, S]``."""
        return time_constants(self.eigenvalues)

    @property
    def speeds(self) -> torch.Tensor:
        """Alias of ``residuals``: ``‖F(h) − h‖``."""
        return self.residuals

    @property
    def q(self) -> torch.Tensor:
        """``½‖F(h) − h‖²`` (FixedPointFinder's and renn's ``q``)."""
        return 0.5 * self.residuals**2

    def subset(self, index: torch.Tensor | slice) -> FixedPoints:
        """Rows selected by a mask or index (``slow`` and ``meta`` are kept)."""
        inputs = self.inputs[index] if self.inputs.dim() == 2 else self.inputs
        return FixedPoints(self.points[index], self.residuals[index], self.converged[index],
                           self.eigenvalues[index], self.multiplicity[index], inputs,
                           None if self.right is None else self.right[index],
                           None if self.left is None else self.left[index], self.slow, dict(self.meta))

    @property
    def marginal_tol(self) -> float:
        return float(self.meta.get("marginal_tol", 1e-3))

    def classes(self) -> list[str]:
        """Per point: ``"marginal"`` when the largest ``|λ|`` is within ``marginal_tol`` of 1, else ``"stable"``
        (largest ``|λ| < 1``) or ``"unstable_k"`` with k the modes with ``|λ| > 1 + marginal_tol``.

        The reference finders call a mode unstable at ``|λ| > 1``; here ``|λ|`` within ``marginal_tol`` of 1 is
        marginal, because on saturated gates the flat directions give ``|λ| = 1 ± 1e-4`` and the sign is noise.
        """
        top = self.eigenvalues.abs()[:, 0] if len(self) else torch.zeros(0)
        k = (self.eigenvalues.abs() > 1 + self.marginal_tol).sum(-1) if len(self) else torch.zeros(0)
        return ["marginal" if abs(float(t) - 1) <= self.marginal_tol else
                "stable" if float(t) < 1 else f"unstable_{int(n)}" for t, n in zip(top, k, strict=True)]

    def unstable_histogram(self) -> dict[int, int]:
        """``{number of unstable modes: count}``."""
        counts = torch.bincount(self.n_unstable.cpu(), minlength=1) if len(self) else torch.zeros(0, dtype=torch.long)
        return {i: int(c) for i, c in enumerate(counts.tolist()) if c}

    def summary(self) -> str:
        """A few human-readable lines.

        >>> import torch
        >>> from innerworks.dynamics.toys import bistable_tanh
        >>> fps = find_fixed_points(bistable_tanh(1), torch.linspace(-2, 2, 9).unsqueeze(1))
        >>> print(fps.summary().splitlines()[0])
        3 fixed points (residual < 1e-08, float64) from 9 starts
        """
        m = self.meta
        tol = m.get("tol", float("nan"))
        mode = m.get("mode", "newton")
        lines = [f"{len(self)} fixed points (residual < {tol:g}, {m.get('dtype', 'float64')}) "
                 f"from {m.get('n_starts', '?')} starts" + ("" if mode == "newton" else f" (mode {mode})")]
        if len(self):
            hist = self.unstable_histogram()
            unst = ", ".join(f"{k} mode{'s' if k > 1 else ''}: {v}" for k, v in sorted(hist.items()) if k > 0)
            lines.append(f"  stable: {hist.get(0, 0)} | unstable: {len(self) - hist.get(0, 0)}"
                         + (f" ({unst})" if unst else ""))
            n_marg = self.classes().count("marginal")
            if n_marg:
                lines.append(f"  marginal: {n_marg} (largest |λ| within {self.marginal_tol:g} of 1: a flat patch or "
                             "line of fixed points, not isolated points)")
            lines.append(f"  max residual {float(self.residuals.max()):.2e}; duplicates merged within "
                         f"{m.get('unique_tol', float('nan')):g}")
        n_slow = 0 if self.slow is None else len(self.slow)
        lines.append(f"  slow points: {n_slow} (speed < {m.get('slow_tol', float('nan')):g}, reported separately)")
        outcome = m.get("outcomes", {})
        if outcome:
            lines.append("  starts: " + ", ".join(f"{v} {k}" for k, v in outcome.items()))
        if "time_s" in m:
            lines.append(f"  time: {m['time_s']:.2f} s")
        lines.extend(f"  note: {n}" for n in m.get("notes", []))
        if m.get("continuum"):
            g = m["distinct_by_starts"]
            lines.append(f"  WARNING: the number of distinct points keeps growing with the starts ({g}): a continuum "
                         "of fixed points, not isolated points")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"FixedPoints(n={len(self)}, state_size={self.state_size}, stable={int(self.stable.sum())})"

    # ---------------------------------------------------------------- persistence: safetensors + JSON, no pickle
    def _tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        t = {
            "points": self.points, "residuals": self.residuals, "converged": self.converged.to(torch.uint8),
            "multiplicity": self.multiplicity, "inputs": self.inputs,
            "eigenvalues_real": self.eigenvalues.real, "eigenvalues_imag": self.eigenvalues.imag,
        }
        for name in ("right", "left"):
            v = getattr(self, name)
            if v is not None:
                t[f"{name}_real"], t[f"{name}_imag"] = v.real, v.imag
        out = {prefix + k: v.detach().cpu().contiguous().clone() for k, v in t.items()}
        if self.slow is not None and not prefix:
            out.update(self.slow._tensors("slow."))
        return out

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.safetensors`` (tensors; complex ones as real/imag pairs) and ``<stem>.json`` (meta).

        >>> import tempfile, torch
        >>> from innerworks.dynamics.toys import bistable_tanh
        >>> fps = find_fixed_points(bistable_tanh(1), torch.linspace(-2, 2, 9).unsqueeze(1))
        >>> st, js = fps.save(tempfile.mkdtemp() + "/fps")
        >>> len(FixedPoints.load(st))
        3
        """
        from safetensors.torch import save as st_save

        stem = _stem(path)
        tensors_path, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        atomic_write_bytes(tensors_path, st_save(self._tensors()))
        write_json(meta_path, {"format": FORMAT, "version": FORMAT_VERSION, "meta": self.meta,
                               "has_slow": self.slow is not None, "has_vectors": self.right is not None})
        return tensors_path, meta_path

    @classmethod
    def load(cls, path: str | Path) -> FixedPoints:
        """Read what :meth:`save` wrote (give the stem or either file)."""
        from safetensors.torch import load as st_load

        stem = _stem(path)
        tensors_path, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        for p in (tensors_path, meta_path):
            if not p.is_file():
                raise InnerworksError(f"{p}: file not found (fixed points are saved as .safetensors + .json)")
        try:
            header = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InnerworksError(f"{meta_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InnerworksError(f"{meta_path}: field 'format': expected {FORMAT!r}")
        try:
            tensors = st_load(tensors_path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise InnerworksError(f"{tensors_path}: not a readable safetensors file ({exc})") from None
        main = cls._from_tensors(tensors, "", dict(header.get("meta", {})), tensors_path)
        if header.get("has_slow"):
            main.slow = cls._from_tensors(tensors, "slow.", dict(header.get("meta", {})), tensors_path)
        return main

    @classmethod
    def _from_tensors(cls, t: dict[str, torch.Tensor], prefix: str, meta: dict[str, Any], src: Path) -> FixedPoints:
        need = ("points", "residuals", "converged", "multiplicity", "inputs", "eigenvalues_real", "eigenvalues_imag")
        missing = [prefix + k for k in need if prefix + k not in t]
        if missing:
            raise InnerworksError(f"{src}: missing tensors {', '.join(missing)}")

        def cplx(name: str) -> torch.Tensor | None:
            if prefix + name + "_real" not in t:
                return None
            return torch.complex(t[prefix + name + "_real"], t[prefix + name + "_imag"])

        return cls(t[prefix + "points"], t[prefix + "residuals"], t[prefix + "converged"].bool(),
                   cplx("eigenvalues"), t[prefix + "multiplicity"], t[prefix + "inputs"], cplx("right"),
                   cplx("left"), None, meta)


def _stem(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def stability(step: Step, points: torch.Tensor, x: torch.Tensor, vectors: bool,
              batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Sorted eigenvalues (and eigenvectors) of the recurrent Jacobian at each point, in chunks."""
    s = points.shape[1]
    if points.shape[0] == 0:
        e = torch.zeros(0, s, dtype=torch.complex128, device=points.device)
        v = torch.zeros(0, s, s, dtype=torch.complex128, device=points.device) if vectors else None
        return e, v, v
    vals, rights, lefts = [], [], []
    for i in range(0, points.shape[0], batch_size):
        eig = eigsorted(step.jacobian(x[i:i + batch_size], points[i:i + batch_size]), vectors=vectors)
        vals.append(eig.eigenvalues)
        if vectors:
            rights.append(eig.right)
            lefts.append(eig.left)
    return (torch.cat(vals), torch.cat(rights) if vectors else None, torch.cat(lefts) if vectors else None)


def _make_starts(h: torch.Tensor, x: torch.Tensor, opts: FinderOptions,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if opts.n_starts is not None and opts.n_starts < h.shape[0]:
        pick = torch.randperm(h.shape[0], generator=generator)[: opts.n_starts].to(h.device)
        h, x = h[pick], x[pick]
    if opts.noise_scale > 0:
        noise = torch.randn(h.shape, generator=generator, dtype=torch.float64).to(device=h.device, dtype=h.dtype)
        h = h + opts.noise_scale * noise
    return h, x.contiguous()


def _progress_bar(opts: FinderOptions, total: int, what: str) -> Any:
    if not opts.progress:
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    task = bar.add_task(what, total=total)
    return bar, task


def _run_solver(map_fn: S.MapFn, jac_fn: S.MapFn, x: torch.Tensor, h: torch.Tensor, opts: FinderOptions,
                what: str) -> tuple[S.RootResult, torch.Tensor]:
    """Run the search; return the per-row results and the input of each row (mode "both" gives two rows a start)."""
    pb = _progress_bar(opts, h.shape[0], what)
    try:
        res = solve_and_seed(map_fn, jac_fn, x, h, tol=opts.tol, max_iter=opts.max_iter, damping=opts.damping,
                             search_steps=opts.search_steps, search_lr=opts.search_lr,
                             batch_size=opts.batch_size,
                             mode=opts.mode, on_chunk=None if pb is None else (lambda n: pb[0].advance(pb[1], n)),
                             unique_tol=opts.unique_tol, slow_tol=opts.slow_tol, seed_rounds=opts.seed_rounds)
    finally:
        if pb is not None:
            pb[0].stop()
    x_rows = torch.cat([x, x]) if opts.mode == "both" else x
    return res, (x_rows if res.seed_inputs is None else torch.cat([x_rows, res.seed_inputs]))  # root-seeded rows


GROWTH_RATIO = 1.5  # distinct points from all starts vs from half of them: isolated points saturate, a continuum grows
GROWTH_MIN = 5      # ... by at least this many points (a few new isolated points are not a continuum)


def _growth_check(meta: dict[str, Any], key: torch.Tensor, ci: torch.Tensor, residuals: torch.Tensor,
                  unique_tol: float, n_all: int) -> None:
    """Record how many distinct points half of the starts find; flag a continuum when all the starts find at least
    ``GROWTH_RATIO`` times as many (and ``GROWTH_MIN`` more): isolated fixed points saturate, a flat patch of them
    keeps yielding new points at ``unique_tol`` spacing."""
    half = ci[ci < key.shape[0] // 2]
    n_half = len(S.greedy_unique(key[half], residuals[half], unique_tol)[0]) if half.numel() else 0
    meta["distinct_by_starts"] = {str(key.shape[0] // 2): n_half, str(key.shape[0]): n_all}
    meta["continuum"] = bool(n_all >= GROWTH_RATIO * n_half and n_all - n_half >= GROWTH_MIN)
    if meta["continuum"]:
        meta["notes"].append(f"distinct points grow with the starts ({n_half} from half, {n_all} from all): a "
                             "continuum (flat patch or line) of fixed points, not isolated points; see the marginal "
                             "points")
        warnings.warn("find_fixed_points: " + meta["notes"][-1], FixedPointWarning, stacklevel=3)


def stability_counts(fps: FixedPoints) -> dict[str, Any]:
    """``{class: count}`` over :meth:`FixedPoints.classes` plus the margin used (plain JSON).

    >>> import torch
    >>> from innerworks.dynamics.toys import bistable_tanh
    >>> stability_counts(find_fixed_points(bistable_tanh(1), torch.linspace(-2, 2, 9).unsqueeze(1)))
    {'stable': 2, 'unstable_1': 1, 'marginal_tol': 0.001}
    """
    out: dict[str, Any] = {}
    for c in sorted(fps.classes()):
        out[c] = out.get(c, 0) + 1
    out["marginal_tol"] = fps.marginal_tol
    return out


def outcome_counts(res: S.RootResult) -> dict[str, int]:
    """Starts per outcome, e.g. ``{"converged": 1000, "stalled": 24}`` (zeros omitted; root-seeded rows are not
    starts and are not counted)."""
    n = res.status.shape[0] - (0 if res.seed_inputs is None else res.seed_inputs.shape[0])
    counts = {name: int((res.status[:n] == code).sum()) for code, name in S.STATUS_NAMES.items()}
    return {name: c for name, c in counts.items() if c}


def find_fixed_points(step: Any, initial_states: Any, inputs: Any = None, *,
                      generator: torch.Generator | None = None, **options: Any) -> FixedPoints:
    """Find, certify, deduplicate and classify the fixed points of ``h ↦ step(x*, h)``.

    Args:
        step: a cell, ``nn.RNN/GRU/LSTM`` (or their ``*Cell``), a model with a ``.cell``, a module with
            ``forward(x, h)``, a function ``fn(x, h)`` or a :class:`~innerworks.dynamics.step.Step`.
        initial_states: starts: ``[N, S]``, ``[S]`` or visited states ``[B, T, S]`` (flattened).
        inputs: the constant input x*, ``[I]`` (default zeros) or one per start ``[N, I]``.
        generator: seeds the start subset and noise (default: ``torch.Generator().manual_seed(seed)``).
        **options: see :class:`FinderOptions` (``tol``, ``slow_tol``, ``unique_tol``, ``noise_scale``,
            ``n_starts``, ``search_steps``, ``max_iter``, ``vectors``, ...).

    Returns:
        :class:`FixedPoints`. If nothing is certified the result is empty, its ``meta["notes"]`` say why and what to
        try, and a :class:`FixedPointWarning` is emitted. Bad input (wrong shapes, non-finite states, a step that
        fails or returns the wrong shape) raises :class:`~innerworks.errors.InnerworksError`.
    """
    opts: FinderOptions = parse_options(FinderOptions, options)
    t0 = time.perf_counter()
    step, h, x, x_star = prepare(step, initial_states, inputs, getattr(torch, opts.dtype), opts.tol)
    gen = generator if generator is not None else torch.Generator().manual_seed(opts.seed)
    h, x = _make_starts(h, x, opts, gen)
    res, x_rows = _run_solver(step, step.jacobian, x, h, opts, "fixed points")
    t_solve = time.perf_counter() - t0
    fps = _assemble(step, res, x_rows, x_star, opts)
    fps.meta["n_starts"] = int(h.shape[0])
    fps.meta["time_s"] = time.perf_counter() - t0
    fps.meta["solve_time_s"] = t_solve
    if len(fps) == 0:
        warnings.warn("find_fixed_points: no fixed point certified. " + " ".join(fps.meta["notes"]),
                      FixedPointWarning, stacklevel=2)
    return fps


def _assemble(step: Step, res: S.RootResult, x: torch.Tensor, x_star: torch.Tensor,
              opts: FinderOptions) -> FixedPoints:
    conv = res.status == S.CONVERGED
    slow_cand = ((res.status == S.STALLED) | (res.status == S.MAXITER)) & (res.residuals < opts.slow_tol)
    per_start_inputs = x_star.dim() == 2
    # with one input per start, a point is (state, input): equal states under different inputs stay apart
    key = torch.cat([res.points, x], dim=1) if per_start_inputs else res.points
    # fixed points: certified starts, deduplicated best-first
    ci = conv.nonzero().squeeze(-1)
    keep, mult = S.greedy_unique(key[ci], res.residuals[ci], opts.unique_tol)
    fp_idx = ci[keep]
    # slow points: dedupe among themselves, then drop any within unique_tol of a fixed point
    si = slow_cand.nonzero().squeeze(-1)
    skeep, smult = S.greedy_unique(key[si], res.residuals[si], opts.unique_tol)
    slow_idx = si[skeep]
    if slow_idx.numel() and fp_idx.numel():
        d = torch.cdist(key[slow_idx], key[fp_idx]).min(dim=1).values
        far = d > opts.unique_tol
        slow_idx, smult = slow_idx[far], smult[far]

    meta: dict[str, Any] = {
        "tol": opts.tol, "slow_tol": opts.slow_tol, "unique_tol": opts.unique_tol,
        "unstable_margin": opts.unstable_margin, "marginal_tol": opts.marginal_tol,
        "dtype": str(step.dtype).replace("torch.", ""),
        "step": step.name, "n_starts": int(res.points.shape[0]), "outcomes": outcome_counts(res), "mode": opts.mode,
        "lm_iterations_median": float(res.iterations.double().median()) if res.iterations.numel() else 0.0,
        "jacobians": int(res.jacobians), "factorizations": int(res.factorizations),
        "options": opts.model_dump(), "notes": [],
    }

    def build(idx: torch.Tensor, m: torch.Tensor, converged: bool) -> FixedPoints:
        pts = res.points[idx]
        xi = x[idx]
        ev, right, left = stability(step, pts, xi, opts.vectors, opts.batch_size)
        flags = torch.full((idx.numel(),), converged, dtype=torch.bool, device=pts.device)
        return FixedPoints(pts, res.residuals[idx], flags, ev, m, xi if per_start_inputs else x_star, right, left,
                           None, meta)

    fps = build(fp_idx, mult, True)
    fps.slow = build(slow_idx, smult, False)
    n_rows = key.shape[0] - (0 if res.seed_inputs is None else res.seed_inputs.shape[0])  # start rows only
    start_ci = ci[ci < n_rows]
    n_all = len(fps) if n_rows == key.shape[0] else len(S.greedy_unique(key[start_ci], res.residuals[start_ci],
                                                                         opts.unique_tol)[0])
    _growth_check(meta, key[:n_rows], start_ci, res.residuals, opts.unique_tol, n_all)
    if len(fps) == 0:
        finite = res.residuals[torch.isfinite(res.residuals)]
        best = f"{float(finite.min()):.2e}" if finite.numel() else "none finite"
        meta["notes"].append(
            f"no start reached a residual below tol={opts.tol:g} (best residual {best}; "
            f"{len(fps.slow)} slow points with speed < {opts.slow_tol:g} are in .slow). Try more or different "
            "starts (e.g. visited states), noise_scale > 0, search_steps > 0, a larger max_iter, or a looser tol.")
    n_nonfinite = res.count(S.NONFINITE)
    if n_nonfinite:
        meta["notes"].append(f"{n_nonfinite} starts produced NaN/inf under the step (the map overflows there); "
                             "they were discarded.")
    return fps


__all__ = ["FinderOptions", "FixedPointWarning", "FixedPoints", "find_fixed_points", "stability", "stability_counts"]
