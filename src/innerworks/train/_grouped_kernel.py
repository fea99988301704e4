"""Which implementation steps a grouped GRU sequence: ATen ops from Python, or one fused C++ call.

Why: a GRU-64 step at batch 64 is ~20 small elementwise kernels around one matmul, and on a CPU their launch
overhead costs more than the arithmetic. The C++ extension (``_grouped_gru.cpp``, shipped with the package) runs
the whole sequence's forward, and its whole backward, as one call each: per step one ``bmm`` (two in the
backward) and one vectorised loop for every elementwise op, plus one matmul for the recurrent weight gradient.
It compiles on first use (seconds to a minute, cached by torch in ``TORCH_EXTENSIONS_DIR`` or
``~/.cache/torch_extensions``), never at import.

:class:`GroupedKernel` chooses: ``TORCH`` (the ATen ops), ``CPP`` (the extension; an error if it cannot compile
or the tensors are not float32/float64 on the CPU) or ``AUTO`` (``CPP`` where it applies and compiles, else
``TORCH`` with one warning). The environment variable ``INNERWORKS_GROUPED_KERNEL`` (``auto``, ``torch`` or
``cpp``) sets the default, so worker processes pick it up too.

>>> GroupedKernel.parse("torch")
<GroupedKernel.TORCH: 'torch'>
>>> GroupedKernel.parse(None) in tuple(GroupedKernel)
True
"""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import warnings
from pathlib import Path
from types import ModuleType

import torch

from innerworks.errors import InnerworksError

ENV_VAR = "INNERWORKS_GROUPED_KERNEL"
_SOURCE = Path(__file__).with_name("_grouped_gru.cpp")


class GroupedKernel(enum.Enum):
    """How a grouped GRU sequence runs (see the module docstring)."""

    AUTO = "auto"
    TORCH = "torch"
    CPP = "cpp"

    @classmethod
    def parse(cls, value: GroupedKernel | str | None) -> GroupedKernel:
        """A kernel from an enum member, its value (any case), or ``None`` (``$INNERWORKS_GROUPED_KERNEL``, else AUTO).

        >>> GroupedKernel.parse("CPP")
        <GroupedKernel.CPP: 'cpp'>
        """
        where = "grouped kernel"
        if value is None:
            value, where = os.environ.get(ENV_VAR) or "auto", f"${ENV_VAR}"
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise InnerworksError(f"{where}: unknown kernel {value!r}; expected auto, torch or cpp") from None


def _cpu_flags() -> list[str]:
    """Vector flags for this CPU (AVX2 + FMA where present): part of the build's name, so caches never mix."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    if {"avx2", "fma"} <= flags:
        return ["-mavx2", "-mfma", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"]
    return []


def _build() -> ModuleType:
    """Compile (or load the cached build of) the extension."""
    from torch.utils import cpp_extension

    flags = ["-O3", *_cpu_flags()]
    tag = hashlib.sha1((_SOURCE.read_text() + " ".join(flags) + torch.__version__).encode()).hexdigest()[:10]
    return cpp_extension.load(f"innerworks_grouped_gru_{tag}", [str(_SOURCE)], extra_cflags=flags, verbose=False)


@functools.cache
def _load() -> ModuleType | BaseException:
    """The compiled extension, or the exception that stopped it (tried once per process)."""
    try:
        return _build()
    except Exception as exc:  # noqa: BLE001 - any failure (no compiler, headers, linker) means "not available"
        return exc


def cpp_available() -> bool:
    """Whether the C++ extension compiles and loads here (compiles it on the first call).

    >>> isinstance(cpp_available(), bool)
    True
    """
    return not isinstance(_load(), BaseException)


@functools.cache
def _warn_fallback(reason: str) -> None:
    warnings.warn(f"grouped GRU: C++ kernel unavailable, using the torch ops ({reason})", RuntimeWarning,
                  stacklevel=4)


def resolve(kernel: GroupedKernel | str | None, like: torch.Tensor) -> ModuleType | None:
    """The extension to run a sequence of ``like``'s dtype and device with, or ``None`` for the torch ops.

    ``AUTO`` takes the extension for float32/float64 CPU tensors when it compiles, and warns once when it does
    not; ``CPP`` raises where the extension does not apply or compile.

    >>> resolve("torch", torch.zeros(1)) is None
    True
    """
    kind = GroupedKernel.parse(kernel)
    if kind is GroupedKernel.TORCH:
        return None
    fits = like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64)
    if not fits:
        if kind is GroupedKernel.CPP:
            raise InnerworksError(f"the C++ grouped kernel runs float32/float64 on the CPU, not {like.dtype} on "
                                  f"{like.device.type}")
        return None
    ext = _load()
    if isinstance(ext, BaseException):
        reason = f"{type(ext).__name__}: {str(ext).strip().splitlines()[-1] if str(ext).strip() else ''}"
        if kind is GroupedKernel.CPP:
            raise InnerworksError(f"the C++ grouped kernel does not compile here ({reason})")
        _warn_fallback(reason)
        return None
    return ext


__all__ = ["ENV_VAR", "GroupedKernel", "cpp_available", "resolve"]
