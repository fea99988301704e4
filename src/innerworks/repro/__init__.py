"""Reproductions: the claims format, one :class:`Reproduction` interface the labs implement, the lab registry,
``repro all`` and the ``repro`` commands.

Imports point one way: the CLI calls this package, this package calls the labs (``dynamics``, ``attention``,
``wide``), and the labs call the core (``data``, ``models``, ``train``). Names load on first use, so the command
line starts without torch.

>>> from innerworks.repro import Source
>>> Source.EXTENSION.value
'extension'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Context": "base", "Reproduction": "base", "ReproOptions": "base", "reproduce": "base", "train_only": "base",
    "Claim": "claims", "ReproResult": "claims", "Source": "claims", "Threshold": "claims", "Thresholds": "claims",
    "load_results": "claims", "write_results": "claims", "LABS": "registry", "get_lab": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"innerworks.repro.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'innerworks.repro' has no attribute {name!r}")
