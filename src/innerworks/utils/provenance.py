"""What a run records about where it came from: versions, git commit, machine, device.

>>> p = provenance()
>>> sorted(k for k in ("python", "torch", "innerworks") if k in p["versions"])
['innerworks', 'python', 'torch']
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("torch", "numpy", "scipy", "pydantic", "tokenizers", "safetensors", "networkx", "plotly")


def git_commit(start: Path | None = None) -> str | None:
    """Commit hash of the git checkout holding ``start`` (default: this package), or None outside git.

    >>> c = git_commit(); c is None or len(c.split("-")[0]) == 40
    True
    """
    where = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "") if commit else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), for benchmark and run records.

    >>> isinstance(cpu_name(), str)
    True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def provenance() -> dict[str, Any]:
    """Versions of Python and key packages, the git commit, host and device information.

    >>> "git_commit" in provenance()
    True
    """
    import torch

    import innerworks

    versions = {"python": platform.python_version(), "innerworks": innerworks.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "versions": versions,
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": __import__("os").cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
