"""Width sweeps: estimate correlators at several widths, fit the log-log slope with a bootstrap CI, compare it with
the cluster-graph prediction, and detect exact zeros.

Verdicts (``tol`` defaults to 0.2, the widest tolerance the notes give for a tight case, §8.5):

- ``"zero"``: every term vanishes identically (odd m, or a piecewise-linear zero), or every sample is exactly 0.
  Zeros are reported, never fitted.
- ``"bound not tight"``: the whole 95% CI lies below ``predicted - tol`` (expected for C3 with ReLU/linear σ, §5).
- ``"exceeds bound"``: the whole CI lies above ``predicted + tol`` (would contradict the conjecture).
- ``"consistent"``: the predicted exponent lies within ``tol`` of the CI.
- ``"inconclusive"``: the CI is wider than ±0.5; more samples or a wider width range are needed.

>>> r = run_sweep(["ntk", "o3"], [8, 16, 32], activation="tanh", depth=1, num_samples=64, seed=0, n_boot=200,
...               progress=False)
>>> r["ntk"].verdict, r["o3"].verdict
('consistent', 'zero')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from innerworks.errors import InnerworksError
from innerworks.wide.cluster import Prediction, predict
from innerworks.wide.estimators import Estimate, default_dataset, default_points, estimate_many, input_names
from innerworks.wide.networks import MLPConfig, derive_seed
from innerworks.wide.spec import resolve

DEFAULT_TOL = 0.2
MIN_SPAN = 8.0  # the notes fit over widths spanning at least 8x (§8)


def parse_widths(text: str | Sequence[int]) -> list[int]:
    """Parse ``"64,128,256"`` (or a list) into sorted distinct widths; at least 3 are needed for a slope.

    >>> parse_widths("256, 64,128")
    [64, 128, 256]
    >>> parse_widths("64,128")
    Traceback (most recent call last):
    ...
    innerworks.errors.InnerworksError: --widths: need at least 3 distinct widths for a slope fit, got 2 (64,128)
    """
    if isinstance(text, str):
        try:
            items = [int(w) for w in text.replace(" ", "").split(",") if w]
        except ValueError:
            raise InnerworksError(f"--widths {text!r}: expected comma-separated integers like 64,128,256") from None
    else:
        items = [int(w) for w in text]
    if any(w < 1 for w in items):
        raise InnerworksError(f"--widths: widths must be positive, got {items}")
    widths = sorted(set(items))
    if len(widths) < 3:
        raise InnerworksError(f"--widths: need at least 3 distinct widths for a slope fit, got {len(widths)} "
                              f"({','.join(map(str, widths))})")
    return widths


def _stat(values: np.ndarray, kind: str, axis: int = -1) -> np.ndarray:
    if kind == "variance":
        return values.var(axis=axis, ddof=1)
    if kind == "rms":
        return np.sqrt((values**2).mean(axis=axis))
    return values.mean(axis=axis)


@dataclass
class SlopeFit:
    """Least-squares slope of log|statistic| against log(width), with a percentile-bootstrap CI.

    Attributes:
        slope, intercept: the fit on the full data (natural logs).
        ci_low, ci_high: the bootstrap confidence interval of the slope (``level``, default 95%).
        widths, values: the widths and the statistic at each width.
        warnings: reasons to distrust the fit (a value not resolved from 0, a sign change, a narrow width range).
    """

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    level: float
    n_boot: int
    widths: list[int]
    values: list[float]
    warnings: list[str] = field(default_factory=list)

    @property
    def half_width(self) -> float:
        """Half the CI width."""
        return 0.5 * (self.ci_high - self.ci_low)

    def line(self, widths: Sequence[float]) -> np.ndarray:
        """The fitted power law |stat| = exp(intercept) n^slope at ``widths``."""
        return np.exp(self.intercept) * np.asarray(widths, dtype=float) ** self.slope

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"slope": self.slope, "intercept": self.intercept, "ci": [self.ci_low, self.ci_high],
                "level": self.level, "n_boot": self.n_boot, "widths": self.widths, "values": self.values,
                "warnings": self.warnings}


def fit_loglog(widths: Sequence[int], samples: Sequence[np.ndarray], kind: str = "moment", n_boot: int = 2000,
               seed: int = 0, level: float = 0.95) -> SlopeFit:
    """Fit log|stat(samples)| = a + s log(width), where stat is the mean (``"moment"``), the variance
    (``"variance"``) or the root mean square (``"rms"``) of each width's per-sample values.

    The CI resamples the samples within each width (independently across widths) and refits.

    >>> rng = np.random.default_rng(0)
    >>> ws = [16, 32, 64, 128]
    >>> fit = fit_loglog(ws, [1.0 / n + rng.normal(0, 0.1 / n, 400) for n in ws], n_boot=500)
    >>> round(fit.slope, 2), fit.ci_low < -1 < fit.ci_high
    (-1.0, True)
    """
    widths = [int(w) for w in widths]
    if len(widths) < 3:
        raise InnerworksError(f"slope fit: need at least 3 widths, got {len(widths)}")
    if len(samples) != len(widths):
        raise InnerworksError("slope fit: one array of samples per width is required")
    arrs = [np.asarray(s, dtype=np.float64).ravel() for s in samples]
    for w, a in zip(widths, arrs, strict=True):
        if a.size < 2:
            raise InnerworksError(f"slope fit: width {w} has {a.size} finite samples; need at least 2")
    vals = np.array([_stat(a, kind) for a in arrs])
    warnings: list[str] = []
    if not np.all(np.isfinite(vals)):
        raise InnerworksError("slope fit: a statistic is not finite (NaN/inf); see the estimate warnings")
    if np.any(vals == 0):
        raise InnerworksError("slope fit: a statistic is exactly 0; report it as a zero instead of fitting")
    x = np.log(np.asarray(widths, dtype=float))
    xc = x - x.mean()
    denom = float((xc**2).sum())
    y = np.log(np.abs(vals))
    slope = float((xc * (y - y.mean())).sum() / denom)
    intercept = float(y.mean() - slope * x.mean())
    if kind == "moment":
        signs = np.sign(vals)
        if len(set(signs.tolist())) > 1:
            warnings.append("the mean changes sign across widths; a power law does not describe it")
        for w, a, v in zip(widths, arrs, vals, strict=True):
            se = a.std(ddof=1) / math.sqrt(a.size)
            if abs(v) < 2 * se:
                warnings.append(f"width {w}: mean {v:.3g} is within 2 standard errors ({se:.2g}) of 0; "
                                "the slope is unreliable there")
    if max(widths) / min(widths) < MIN_SPAN:
        warnings.append(f"widths span {max(widths) / min(widths):.3g}x; the notes fit over at least {MIN_SPAN:g}x")
    rng = np.random.default_rng(derive_seed(seed, "bootstrap", *widths))
    boot = np.empty((n_boot, len(widths)))
    for j, a in enumerate(arrs):
        # resample in chunks of rows so that memory stays ~ 2^22 numbers whatever the sample count
        rows = max(1, (1 << 22) // a.size)
        for start in range(0, n_boot, rows):
            stop = min(n_boot, start + rows)
            idx = rng.integers(0, a.size, size=(stop - start, a.size))
            boot[start:stop, j] = _stat(a[idx], kind, axis=1)
    with np.errstate(divide="ignore"):
        yb = np.log(np.abs(boot))
    ok = np.all(np.isfinite(yb), axis=1)
    yb = yb[ok]
    slopes = ((yb - yb.mean(axis=1, keepdims=True)) * xc).sum(axis=1) / denom
    alpha = (1.0 - level) / 2.0
    lo, hi = (float(np.quantile(slopes, alpha)), float(np.quantile(slopes, 1 - alpha))) if slopes.size else (
        float("nan"), float("nan"))
    return SlopeFit(slope, intercept, lo, hi, level, int(slopes.size), widths, vals.tolist(), warnings)


def judge(fit: SlopeFit, predicted: float, tol: float = DEFAULT_TOL) -> str:
    """Verdict of a fitted slope against a predicted exponent (see the module docstring).

    >>> f = SlopeFit(-2.05, 0.0, -2.2, -1.9, 0.95, 100, [1, 2, 3], [1, 1, 1])
    >>> judge(f, -1), judge(f, -2), judge(f, -3)
    ('bound not tight', 'consistent', 'exceeds bound')
    """
    if not (math.isfinite(fit.ci_low) and math.isfinite(fit.ci_high)):
        return "inconclusive"
    if fit.ci_high < predicted - tol:
        return "bound not tight"
    if fit.ci_low > predicted + tol:
        return "exceeds bound"
    if fit.half_width > 0.5:
        return "inconclusive"
    return "consistent"


@dataclass
class SweepResult:
    """One correlator measured across widths.

    Attributes:
        correlator: the name or spec as given.
        config: the network settings (activation, depth, ...).
        widths: the widths measured.
        estimates: one :class:`~innerworks.wide.estimators.Estimate` per width.
        prediction: the cluster-graph prediction (with zero detection for this network).
        fit: the slope fit, or None for zeros.
        verdict: ``"zero"``, ``"consistent"``, ``"bound not tight"``, ``"exceeds bound"`` or ``"inconclusive"``.
        zero_reason: why it is zero (structural reason, or "every sample is exactly 0").
        zero_consistent: for zeros, whether every width's mean is exactly 0 or within 3 standard errors of 0.
        warnings: estimate and fit warnings.
    """

    correlator: str
    config: dict[str, Any]
    widths: list[int]
    estimates: list[Estimate]
    prediction: Prediction
    fit: SlopeFit | None
    verdict: str
    zero_reason: str | None = None
    zero_consistent: bool | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> int:
        """The predicted exponent."""
        return self.prediction.exponent

    @property
    def flags(self) -> list[str]:
        """Flags worth shouting about (``bound not tight``, ``exceeds bound``)."""
        return [self.verdict] if self.verdict in ("bound not tight", "exceeds bound") else []

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "correlator": self.correlator,
            "config": self.config,
            "widths": self.widths,
            "estimates": [e.to_dict() for e in self.estimates],
            "predicted_exponent": self.predicted,
            "prediction": self.prediction.to_dict(),
            "fit": self.fit.to_dict() if self.fit else None,
            "verdict": self.verdict,
            "flags": self.flags,
            "zero_reason": self.zero_reason,
            "zero_consistent": self.zero_consistent,
            "warnings": self.warnings,
        }

    def table(self) -> str:
        """A plain-text report: one line per width, then the fit and the verdict."""
        lines = [f"{self.correlator}  ({', '.join(f'{k}={v}' for k, v in self.config.items())})",
                 f"{'width':>8}  {'estimate':>12}  {'std.err':>10}  {'samples':>7}"]
        for w, e in zip(self.widths, self.estimates, strict=True):
            lines.append(f"{w:>8}  {e.mean:>12.5g}  {e.stderr:>10.3g}  {e.n_samples:>7}")
        lines.append(f"predicted exponent: {self.predicted}")
        if self.fit is not None:
            f = self.fit
            lines.append(f"fitted slope: {f.slope:.3f}  (95% CI {f.ci_low:.3f} .. {f.ci_high:.3f})")
        if self.zero_reason:
            state = "measured means consistent with 0" if self.zero_consistent else "measured means NOT consistent"
            lines.append(f"exact zero: {self.zero_reason}; {state}")
        lines.append(f"verdict: {self.verdict}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def analyse_sweep(correlator: str, cfg: MLPConfig, widths: Sequence[int], estimates: Sequence[Estimate],
                  n_boot: int = 2000, seed: int = 0, tol: float = DEFAULT_TOL) -> SweepResult:
    """Zero detection, slope fit and verdict for estimates already made at each width."""
    pred = predict(correlator, cfg)
    _, named = resolve(correlator)
    kind = named.kind if named else "moment"
    config = {"activation": cfg.activation, "depth": cfg.depth, "d_in": cfg.d_in,
              "parameterization": cfg.parameterization, "bias": cfg.bias}
    warnings = [w for e in estimates for w in e.warnings]
    if cfg.parameterization != "ntk":
        warnings.append("the predicted exponents assume NTK parameterisation; standard parameterisation shifts them")
    zero_reason = None
    if pred.is_zero:
        zero_reason = "; ".join(dict.fromkeys(r for r in pred.zero_reasons if r))
    elif kind == "moment" and all(e.n_samples > 0 and np.all(e.samples == 0) for e in estimates):
        zero_reason = "every sample at every width is exactly 0"
    if zero_reason is not None:
        consistent = all(e.mean == 0 or abs(e.mean) <= 3 * e.stderr for e in estimates)
        return SweepResult(correlator, config, list(widths), list(estimates), pred, None, "zero", zero_reason,
                           consistent, warnings)
    try:
        fit = fit_loglog(widths, [e.samples for e in estimates], kind=kind, n_boot=n_boot,
                         seed=derive_seed(seed, correlator))
    except InnerworksError as exc:
        warnings.append(f"no slope fit: {exc}")
        return SweepResult(correlator, config, list(widths), list(estimates), pred, None, "inconclusive", None,
                           None, warnings)
    warnings.extend(fit.warnings)
    return SweepResult(correlator, config, list(widths), list(estimates), pred, fit, judge(fit, pred.exponent, tol),
                       None, None, warnings)


def run_sweep(correlators: Sequence[str], widths: Sequence[int] | str, *, activation: str = "relu", depth: int = 2,
              num_samples: int | Sequence[int] = 256, seed: int = 0, d_in: int = 4, parameterization: str = "ntk",
              bias: bool = False, device: str = "cpu", dtype: torch.dtype = torch.float32, probes: int = 1,
              n_boot: int = 2000, tol: float = DEFAULT_TOL, progress: bool = True,
              memory_budget: float = 1.0e9, method: str = "auto") -> dict[str, SweepResult]:
    """Estimate correlators at each width (sharing the sampled networks), then fit and judge each.

    The networks at width n are drawn from a seed derived from ``(seed, activation, depth, n)``, so the widths are
    independent and a rerun reproduces every number. ``num_samples`` is one count for every width, or one count per
    width (in the order of the sorted widths).

    >>> r = run_sweep(["c3"], "4,8,16", activation="relu", depth=1, num_samples=8, n_boot=50, progress=False)
    >>> r["c3"].verdict, r["c3"].zero_reason
    ('zero', 'piecewise-linear activation: d3f(x1)[a,b,c] has rank 3 > 2 weight layers')
    """
    ws = parse_widths(widths) if isinstance(widths, str) else parse_widths(list(widths))
    counts = [int(num_samples)] * len(ws) if isinstance(num_samples, int) else [int(c) for c in num_samples]
    if len(counts) != len(ws):
        raise InnerworksError(f"samples: got {len(counts)} counts for {len(ws)} widths; give one, or one per width")
    base = MLPConfig(ws[0], depth, d_in, activation, parameterization, bias)
    resolved = [resolve(c) for c in correlators]  # validate every spec before any work
    # Inputs and training set are fixed across widths (from the base seed); only the networks change.
    points = default_points(input_names(correlators), d_in, seed)
    dataset = default_dataset(d_in, seed) if any(n is not None and n.uses_dataset for _, n in resolved) else None
    per_width: dict[str, list[Estimate]] = {c: [] for c in correlators}
    with _progress(progress) as bar:
        for w, n_samp in zip(ws, counts, strict=True):
            cfg = base.with_width(w)
            task = bar.add_task(f"{activation} d={depth} n={w}", total=n_samp) if bar else None

            def tick(done: int, task: Any = task) -> None:
                if bar is not None:
                    bar.update(task, completed=done)

            est = estimate_many(list(correlators), cfg, n_samp,
                                seed=derive_seed(seed, "sweep", activation, depth, w), points=points,
                                dataset=dataset, device=device, dtype=dtype, probes=probes,
                                memory_budget=memory_budget, method=method, progress=tick)
            for c in correlators:
                per_width[c].append(est[c])
    return {c: analyse_sweep(c, base, ws, per_width[c], n_boot=n_boot, seed=seed, tol=tol) for c in correlators}


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NullContext()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=False)
