"""Checks of command-line option values, run before any work starts.

Each failure is one :class:`~innerworks.errors.InnerworksError` that names the option and the value given, so the
command line prints one line and exits 2.

>>> check_int(0, "--samples", lo=2)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
innerworks.errors.InnerworksError: --samples 0: expected a whole number >= 2
>>> check_seed(7)
7
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from innerworks.errors import InnerworksError

MAX_SEED = 2**32 - 1
"""Seeds are whole numbers from 0 to 2**32 - 1 (NumPy's seed range; every random source accepts them)."""

M = TypeVar("M", bound=BaseModel)


def check_int(value: int, option: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` if ``lo <= value <= hi`` (either bound optional), else an error naming ``option``.

    >>> check_int(5, "--depth", lo=1, hi=1000)
    5
    >>> check_int(10**30, "--depth", lo=1, hi=1000)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --depth 1000000000000000000000000000000: expected a whole number from 1 to 1000
    """
    if (lo is None or value >= lo) and (hi is None or value <= hi):
        return value
    if lo is not None and hi is not None:
        rule = f"from {lo} to {hi}"
    else:
        rule = f">= {lo}" if lo is not None else f"<= {hi}"
    raise InnerworksError(f"{option} {value}: expected a whole number {rule}")


def check_seed(seed: int | None, option: str = "--seed") -> int | None:
    """``seed`` if it is ``None`` or a whole number from 0 to :data:`MAX_SEED`.

    >>> check_seed(-1)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --seed -1: expected a whole number from 0 to 4294967295
    """
    return None if seed is None else check_int(seed, option, lo=0, hi=MAX_SEED)


def check_choice(value: str, option: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else an error listing them.

    >>> check_choice("dev", "--split", ("train", "val", "test"))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --split 'dev': expected one of train, val, test
    """
    allowed = list(choices)
    if value not in allowed:
        raise InnerworksError(f"{option} {value!r}: expected one of {', '.join(allowed)}")
    return value


def settings_from_options(model: type[M], values: Mapping[str, Any], options: Mapping[str, str] | None = None) -> M:
    """Build the pydantic ``model`` from option values; a validation failure names the first bad option.

    ``values`` maps field names to values; ``options`` maps a field to its option when it is not ``--field-name``.

    >>> from pydantic import Field
    >>> class S(BaseModel):
    ...     n_docs: int = Field(1, ge=1)
    >>> settings_from_options(S, {"n_docs": 0})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --n-docs 0: Input should be greater than or equal to 1
    """
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        option = (options or {}).get(field, "--" + field.replace("_", "-"))
        shown = f" {values[field]!r}" if field in values else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InnerworksError(f"{option}{shown}: {msg}") from None
