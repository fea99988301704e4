"""Where the shared real datasets live: ``$INNERWORKS_DATA``, else ``../shared/data`` beside the repository (or
beside the working folder, for an installed wheel).

>>> data_root().name
'data'
"""

from __future__ import annotations

import os
from pathlib import Path

from innerworks.errors import DataError

_REPO_ROOT = Path(__file__).resolve().parents[3]


def data_root() -> Path:
    """The data folder: ``$INNERWORKS_DATA`` if set, else ``<repo>/../shared/data`` when running from a checkout,
    else ``./../shared/data``.

    >>> isinstance(data_root(), Path)
    True
    """
    env = os.environ.get("INNERWORKS_DATA")
    if env:
        return Path(env).expanduser().resolve()
    root = _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return (root.parent / "shared" / "data").resolve()


def dataset_path(*parts: str) -> Path:
    """Path of a file or folder under :func:`data_root`; raise :class:`DataError` naming it when missing.

    >>> dataset_path("no_such_corpus")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: .../no_such_corpus: not found (set INNERWORKS_DATA to the data folder)
    """
    p = data_root().joinpath(*parts)
    if not p.exists():
        raise DataError(f"{p}: not found (set INNERWORKS_DATA to the data folder)")
    return p
