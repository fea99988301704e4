"""innerworks.wide: correlation functions of derivative tensors in wide networks (``docs/wide.md``).

- :mod:`~innerworks.wide.networks`: deep MLPs (NTK / standard parameterisation, any activation), batched over samples.
- :mod:`~innerworks.wide.spec`: the spec notation (``"d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)"``) and named correlators.
- :mod:`~innerworks.wide.cluster`: cluster graphs and the conjectured exponent s_C = n_e + n_o/2 - m/2.
- :mod:`~innerworks.wide.estimators` / :mod:`~innerworks.wide.structured`: matrix-free Monte Carlo estimators.
- :mod:`~innerworks.wide.sweep`: width sweeps, bootstrap slopes, exact zeros, "bound not tight".
- :mod:`~innerworks.wide.dynamics`: finite-width training, NTK drift, order-1/n corrected predictions.

>>> from innerworks.wide import predict
>>> predict("c3").exponent
-1
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Exports are loaded on first use, so `innerworks --help` does not pay for importing torch through this package.
_EXPORTS = {
    "Prediction": "cluster", "cluster_graph": "cluster", "predict": "cluster",
    "Estimate": "estimators", "estimate": "estimators", "estimate_many": "estimators", "Method": "estimators",
    "MLPConfig": "networks", "WideMLP": "networks", "mlp_apply": "networks", "parse_activation": "networks",
    "NAMED": "spec", "parse_spec": "spec", "resolve": "spec",
    "SweepResult": "sweep", "fit_loglog": "sweep", "run_sweep": "sweep",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"innerworks.wide.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'innerworks.wide' has no attribute {name!r}")


__all__ = [
    "NAMED",
    "Estimate",
    "MLPConfig",
    "Method",
    "Prediction",
    "SweepResult",
    "WideMLP",
    "cluster_graph",
    "estimate",
    "estimate_many",
    "fit_loglog",
    "mlp_apply",
    "parse_activation",
    "parse_spec",
    "predict",
    "resolve",
    "run_sweep",
]
