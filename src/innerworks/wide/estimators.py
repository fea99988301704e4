"""Matrix-free Monte Carlo estimates of correlation functions over Gaussian initialisations.

Each contraction is evaluated matrix-free (:mod:`innerworks.wide.workspace`: nested JVPs and gradients, O(P) memory
per sample, Rademacher probes for closed index cycles, whose noise adds to the Monte Carlo noise over
initialisations).

Many networks are evaluated at once: parameters carry a leading sample axis (see :mod:`innerworks.wide.networks`).
Vectors are cached per batch by a structural key, so correlators that share pieces (J(x1), H(x1)J(x2), ...) compute
them once. Named correlators have fast paths: hand-written torch.func compositions (``method="autodiff"``) and, by
default, structured derivatives (:mod:`innerworks.wide.structured`), which keep every vector factored per layer and
are one to two orders of magnitude faster at large width. The three evaluators agree to rounding (tested against
dense Jacobian/Hessian contractions).

>>> from innerworks.wide.networks import MLPConfig
>>> est = estimate("ntk_diag", MLPConfig(width=16, depth=2, activation="relu"), num_samples=256, seed=0)
>>> est.n_samples, abs(est.mean - 0.75) < 4 * est.stderr    # E[Θ(x,x)] = 3/4 at every width (notes §8.8)
(256, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from innerworks.errors import InnerworksError
from innerworks.wide.networks import MLPConfig, derive_seed, sphere_points
from innerworks.wide.spec import NAMED, NamedCorrelator, Spec, Term, resolve
from innerworks.wide.workspace import EVALUATION_ORDER, FAST_PATHS, GRAD_LOSS, Workspace, evaluate_spec

_POOL = 16  # number of standard probe inputs x1..x16



# ---------------------------------------------------------------------------------------------------------------
# Monte Carlo driver.


@dataclass
class Estimate:
    """A Monte Carlo estimate over initialisations.

    Attributes:
        name: the correlator's name or spec text.
        kind: ``"moment"`` (mean of the per-sample values) or ``"variance"`` (their variance).
        mean: the estimate (for ``"variance"``, the sample variance).
        stderr: its standard error.
        n_samples: number of finite samples used.
        std: per-sample standard deviation.
        samples: the finite per-sample values (kept for bootstrap fits).
        n_nonfinite: samples dropped because their value was NaN or infinite.
        warnings: anything the reader should know (non-finite samples, ...).
    """

    name: str
    kind: str
    mean: float
    stderr: float
    n_samples: int
    std: float
    samples: np.ndarray = field(repr=False)
    n_nonfinite: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the raw samples)."""
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "stderr": self.stderr,
                "n_samples": self.n_samples, "std": self.std, "n_nonfinite": self.n_nonfinite,
                "warnings": list(self.warnings)}


def summarize(name: str, kind: str, values: np.ndarray) -> Estimate:
    """Turn per-sample values into an :class:`Estimate`; non-finite samples are dropped with a warning.

    >>> e = summarize("demo", "moment", np.array([1.0, 3.0, np.nan]))
    >>> e.mean, e.n_samples, e.n_nonfinite, len(e.warnings)
    (2.0, 2, 1, 1)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    n_bad = int((~finite).sum())
    v = values[finite]
    warnings: list[str] = []
    if n_bad:
        warnings.append(f"{name}: {n_bad} of {values.size} samples were non-finite (NaN/inf) and were dropped; "
                        "the estimate may be biased (overflow: try a milder activation or smaller inputs)")
    S = v.size
    if S == 0:
        warnings.append(f"{name}: no finite samples; the estimate is undefined")
        return Estimate(name, kind, float("nan"), float("nan"), 0, float("nan"), v, n_bad, warnings)
    std = float(v.std(ddof=1)) if S > 1 else float("nan")
    if kind == "variance":
        mean = float(v.var(ddof=1)) if S > 1 else float("nan")
        m4 = float(((v - v.mean()) ** 4).mean())
        stderr = math.sqrt(max(m4 - mean**2, 0.0) / S) if S > 1 else float("nan")
    else:
        mean = float(v.mean())
        stderr = std / math.sqrt(S) if S > 1 else float("nan")
    return Estimate(name, kind, mean, stderr, S, std, v, n_bad, warnings)


def input_names(correlators: Sequence[str | Spec]) -> list[str]:
    """The input names the correlators use (named correlators use x1..x4), in order of first appearance.

    >>> input_names(["ntk", "f(y) f(x9)"])
    ['x1', 'x2', 'x3', 'x4', 'y', 'x9']
    """
    inputs: list[str] = []
    for c in correlators:
        spec, named = resolve(c)
        for x in (spec.inputs if named is None else ("x1", "x2", "x3", "x4")):
            if x not in inputs:
                inputs.append(x)
    return inputs


def default_points(names: Sequence[str], d_in: int, seed: int) -> dict[str, torch.Tensor]:
    """Inputs for the names in a spec: ``x1..x16`` are fixed points on the sphere |x|² = d_in (derived from the
    seed); any other name takes the next unused one.

    >>> p = default_points(["x2", "y"], 4, seed=0)
    >>> bool(torch.equal(p["x2"], default_points(["x2"], 4, seed=0)["x2"])), sorted(p)
    (True, ['x2', 'y'])
    """
    pool = sphere_points(_POOL, d_in, seed, "probe-inputs")
    out: dict[str, torch.Tensor] = {}
    used: set[int] = set()
    for name in names:
        if name.startswith("x") and name[1:].isdigit() and 1 <= int(name[1:]) <= _POOL:
            out[name] = pool[int(name[1:]) - 1]
            used.add(int(name[1:]) - 1)
    free = [i for i in range(_POOL) if i not in used]
    for name in names:
        if name not in out:
            if not free:
                raise InnerworksError(f"spec uses more than {_POOL} distinct inputs; pass points explicitly")
            out[name] = pool[free.pop(0)]
    return out


def default_dataset(d_in: int, seed: int, num: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The small regression set of the notes (§6): ``num`` points on the sphere, N(0, 1) targets.

    >>> X, y = default_dataset(4, seed=0); X.shape, y.shape
    (torch.Size([4, 4]), torch.Size([4]))
    """
    X = sphere_points(num, d_in, seed, "train")
    gen = torch.Generator().manual_seed(derive_seed(seed, "targets"))
    y = torch.randn(num, generator=gen, dtype=torch.float64)
    return X, y


class Method(str, Enum):
    """How a correlator is evaluated (neural-tangents style: one Enum for the implementation choice).

    ``STRUCTURED`` keeps every vector factored per layer (:mod:`innerworks.wide.structured`; the fastest, for the
    named correlators it covers), ``AUTODIFF`` uses the hand-written torch.func fast paths of every named correlator,
    ``GENERIC`` evaluates any spec along its index tree, and ``AUTO`` picks the fastest that applies.

    >>> Method("autodiff") is Method.AUTODIFF, Method.AUTO == "auto"
    (True, True)
    """

    AUTO = "auto"
    STRUCTURED = "structured"
    AUTODIFF = "autodiff"
    GENERIC = "generic"


METHODS = tuple(m.value for m in Method)


def parse_method(method: str | Method) -> Method:
    """``method`` as a :class:`Method`; one-line :class:`InnerworksError` naming the choices otherwise.

    >>> parse_method("generic")
    <Method.GENERIC: 'generic'>
    """
    try:
        return Method(method)
    except ValueError:
        raise InnerworksError(f"method {method!r}: expected one of {', '.join(METHODS)}") from None


def _path(named: NamedCorrelator | None, method: Method) -> Method:
    """Which evaluator handles a correlator: structured, autodiff (torch.func fast path) or generic."""
    from innerworks.wide.structured import STRUCTURED

    if named is None or method is Method.GENERIC:
        return Method.GENERIC
    if method in (Method.AUTO, Method.STRUCTURED) and named.name in STRUCTURED:
        return Method.STRUCTURED
    return Method.AUTODIFF


def _vectors_per_sample(specs: Sequence[tuple[Spec, NamedCorrelator | None]], method: Method) -> int:
    n = 2  # the parameters plus working space
    for spec, named in specs:
        path = _path(named, method)
        if path == "autodiff":
            n += 12
        elif path == "generic":
            n += sum(2 * t.m for t in spec.terms) + 2
    return n


def auto_batch_size(cfg: MLPConfig, num_samples: int, vectors_per_sample: int, dtype: torch.dtype,
                    memory_budget: float = 1.0e9) -> int:
    """Samples per batch so that the cached vectors fit in ``memory_budget`` bytes (at least 1).

    >>> auto_batch_size(MLPConfig(width=64), 1000, 10, torch.float32)
    1000
    >>> auto_batch_size(MLPConfig(width=4096), 1000, 10, torch.float32)
    1
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_sample = cfg.num_params * itemsize * max(vectors_per_sample, 1)
    return int(max(1, min(num_samples, memory_budget // per_sample)))


def estimate_many(correlators: Sequence[str | Spec], cfg: MLPConfig, num_samples: int, seed: int = 0, *,
                  points: dict[str, torch.Tensor] | None = None,
                  dataset: tuple[torch.Tensor, torch.Tensor] | None = None, probes: int = 1,
                  batch_size: int | None = None, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32, exact_probes: bool = False, method: str | Method = "auto",
                  memory_budget: float = 1.0e9,
                  progress: Callable[[int], None] | None = None) -> dict[str, Estimate]:
    """Estimate several correlators on the same sampled networks (sharing gradients and HVPs).

    Args:
        correlators: named correlators (``"ntk"``, ``"c3"``, ...) or spec strings.
        cfg: the network architecture (its width is the width measured).
        num_samples: number of independent initialisations S.
        seed: drives the initialisations, the probes and (unless given) the inputs and the training set.
        points: input name -> point; default :func:`default_points` (keep them fixed across a width sweep).
        dataset: training set for ``dtheta_dt``; default :func:`default_dataset`.
        probes: Rademacher probes per sample for cycle-closing indices (traces, Frobenius products).
        batch_size: samples per batch; default from ``memory_budget``.
        device, dtype: where and in what precision to compute.
        exact_probes: contract cycle-closing indices exactly over the basis (tiny nets only).
        method: ``"auto"`` (structured derivatives for the named correlators that have them, see
            :mod:`innerworks.wide.structured`; torch.func fast paths for the others; the generic tree evaluator for
            specs), ``"autodiff"`` (torch.func fast paths for every named correlator) or ``"generic"`` (the tree
            evaluator for everything). All give the same per-sample values up to rounding.
        progress: called with the number of samples finished after each batch.

    Returns:
        name -> :class:`Estimate` (keys are the names or spec strings as given).

    >>> from innerworks.wide.networks import MLPConfig
    >>> r = estimate_many(["ntk", "var_ntk"], MLPConfig(width=8, depth=1, activation="tanh"), 32, seed=0)
    >>> sorted(r), r["var_ntk"].kind
    (['ntk', 'var_ntk'], 'variance')
    """
    if num_samples < 2:
        raise InnerworksError(f"num_samples: need at least 2 samples for a standard error, got {num_samples}")
    if probes < 1:
        raise InnerworksError(f"probes: expected at least 1, got {probes}")
    method = parse_method(method)
    resolved = [resolve(c) for c in correlators]
    names = [c if isinstance(c, str) else str(c) for c in correlators]
    pts = dict(default_points(input_names(correlators), cfg.d_in, seed))
    if points:
        pts.update(points)
    needs_data = any(named is not None and named.uses_dataset for _, named in resolved)
    data = dataset if dataset is not None else (default_dataset(cfg.d_in, seed) if needs_data else None)
    bs = batch_size or auto_batch_size(cfg, num_samples, _vectors_per_sample(resolved, method), dtype,
                                       memory_budget)
    values: dict[str, list[np.ndarray]] = {n: [] for n in names}
    done = 0
    while done < num_samples:
        cur = min(bs, num_samples - done)
        params = cfg.init_params(cur, seed=seed, device=device, dtype=dtype, first_sample=done)
        ws = Workspace(cfg, params, pts, data, probe_seed=derive_seed(seed, "probes", done), exact_probes=exact_probes)
        sws = None
        # Correlators that cache Hessian-vector products go first, so the others reuse them as dot products.
        order = sorted(zip(names, resolved, strict=True), key=lambda item: EVALUATION_ORDER.get(
            item[1][1].name if item[1][1] is not None else "", 9))
        for name, (spec, named) in order:
            acc = None
            path = _path(named, method)
            for rep in range(probes if path != "structured" else 1):
                if path == "structured":
                    from innerworks.wide.structured import StructuredWorkspace

                    assert named is not None
                    if sws is None:
                        sws = StructuredWorkspace(cfg, params, pts, data)
                    v = sws.evaluate(named.name) * probes  # no probes involved: one evaluation is exact
                elif path == "autodiff":
                    assert named is not None
                    v = FAST_PATHS[named.name](ws, rep)
                elif named is not None and named.uses_dataset:
                    v = _generic_dataset(ws, named, rep)
                elif named is not None and named.sample_spec is not None:
                    v = evaluate_spec(ws, resolve(named.sample_spec)[0], rep)
                else:
                    v = evaluate_spec(ws, spec, rep)
                acc = v if acc is None else acc + v
            assert acc is not None
            values[name].append((acc / probes).detach().cpu().double().numpy())
        ws.clear()
        del params, sws
        done += cur
        if progress is not None:
            progress(done)
    out: dict[str, Estimate] = {}
    for name, (_, named) in zip(names, resolved, strict=True):
        kind = named.kind if named is not None else "moment"
        out[name] = summarize(name, kind, np.concatenate(values[name]))
    return out


def _generic_dataset(ws: Workspace, named: NamedCorrelator, rep: int) -> torch.Tensor:
    """dΘ/dt through the generic evaluator: -Σ_{(x,y)∈D} [spec terms at x] + y O3(x1, x2, x)."""
    assert ws.dataset is not None or named.uses_dataset
    if ws.dataset is None:
        ws.vec(GRAD_LOSS)  # raises the missing-dataset error
    X, y = ws.dataset  # type: ignore[misc]
    spec = named.parsed
    o3 = NAMED["o3"].parsed
    total = torch.zeros(ws.S, device=ws.device, dtype=ws.dtype)
    for i in range(X.shape[0]):
        name = f"__train{i}"
        ws.points[name] = X[i].reshape(1, -1)
        with_x = Spec(tuple(_rename(t, "x", name) for t in spec.terms))
        o3_x = Spec(tuple(_rename(t, "x3", name) for t in o3.terms))
        total = total - evaluate_spec(ws, with_x, rep) + y[i] * evaluate_spec(ws, o3_x, rep)
    return total


def _rename(term: Term, old: str, new: str) -> Term:
    from innerworks.wide.spec import Factor

    return Term(tuple(Factor(f.rank, new if f.input == old else f.input, f.indices) for f in term.factors), term.sign)


def estimate(correlator: str | Spec, cfg: MLPConfig, num_samples: int, seed: int = 0, **kwargs: Any) -> Estimate:
    """Estimate one correlator; see :func:`estimate_many` for the arguments.

    >>> from innerworks.wide.networks import MLPConfig
    >>> e = estimate("d2f(x1)[a,a] f(x2)", MLPConfig(width=8, depth=2, activation="relu"), 16, seed=0)
    >>> e.n_samples
    16
    """
    return next(iter(estimate_many([correlator], cfg, num_samples, seed, **kwargs).values()))
