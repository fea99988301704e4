"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target.

A reader never sees a half-written file, and a crash leaves the previous version intact.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
>>> write_json(p, {"a": 1})
>>> read_json(p)
{'a': 1}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from innerworks.errors import InnerworksError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
    >>> atomic_write_bytes(p, b"hi"); p.read_bytes()
    b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
    >>> atomic_write_text(p, "hello"); p.read_text()
    'hello'
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """Convert tensors, numpy values and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. Tensors/arrays become lists; NaN becomes null.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.json"
    >>> write_json(p, {"x": float("nan")}); read_json(p)
    {'x': None}
    """
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with an error that names the file on failure.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.json"
    >>> _ = p.write_text("[1, 2]"); read_json(p)
    [1, 2]
    """
    path = Path(path)
    if not path.is_file():
        raise InnerworksError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InnerworksError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise InnerworksError(f"{path}: not a UTF-8 text file") from None


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check, before any work starts, that ``path`` can be (or already is) a folder we may write into.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "file.txt"; _ = f.write_text("x")
    >>> check_output_dir(f)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --out .../file.txt: exists and is not a folder
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_dir():
            raise InnerworksError(f"{option} {p}: exists and is not a folder")
        parent = next((a for a in (p, *p.parents) if a.exists()), Path("."))
    except OSError as exc:  # e.g. a name too long for the file system
        raise InnerworksError(f"{option} {p}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise InnerworksError(f"{option} {p}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise InnerworksError(f"{option} {p}: {parent} is not writable")
    return p


def check_output_file(path: str | os.PathLike, option: str = "--output") -> Path:
    """Check, before any work starts, that ``path`` can be written as a file (it is not a folder, and its folder
    exists or can be created and is writable).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_file(d / "page.html").name
    'page.html'
    >>> check_output_file(d)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --output /tmp/...: is a folder, expected a file name
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise InnerworksError(f"{option} {p}: is a folder, expected a file name")
        if p.exists() and not p.is_file():
            raise InnerworksError(f"{option} {p}: exists and is not a regular file")
    except OSError as exc:
        raise InnerworksError(f"{option} {p}: {exc.strerror or exc}") from None
    check_output_dir(p.parent, option)
    return p
