"""Devices by name: ``cpu``, ``cuda`` or ``cuda:N``, checked before any work starts.

>>> resolve_device("cpu")
device(type='cpu')
>>> resolve_device("cudaa")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
innerworks.errors.InnerworksError: --device 'cudaa': expected cpu, cuda or cuda:N
"""

from __future__ import annotations

import re

import torch

from innerworks.errors import InnerworksError

_NAME = re.compile(r"cpu|cuda(:\d+)?")


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """The :class:`torch.device` for ``name``; one-line :class:`InnerworksError` for an unknown name, CUDA missing
    on this machine, or a CUDA index beyond the visible GPUs.

    >>> resolve_device("cpu").type
    'cpu'
    """
    name = str(name).strip()
    if not _NAME.fullmatch(name):
        raise InnerworksError(f"{option} {name!r}: expected cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InnerworksError(f"{option} {name}: CUDA is not available on this machine")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise InnerworksError(f"{option} {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return torch.device(name)
