"""Error types. Anything a user can cause by bad input raises :class:`InnerworksError`.

The CLI turns an ``InnerworksError`` into a one-line message and exit code 2, with no traceback.

>>> from innerworks.errors import InnerworksError
>>> str(InnerworksError("recipe.yaml: field 'model.cell': expected one of gru, lstm"))
"recipe.yaml: field 'model.cell': expected one of gru, lstm"
"""

from __future__ import annotations

from typing import Any


class InnerworksError(ValueError):
    """Bad input from the user: a malformed file, field, spec or argument. The message names where and what."""


class DataError(InnerworksError):
    """A dataset file or row is missing or malformed."""


class ConfigError(InnerworksError):
    """A recipe (YAML config) is malformed."""


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. a non-finite loss)."""


def format_validation_error(exc: Any, source: str, prefix: str = "",
                            kind: type[InnerworksError] = ConfigError) -> InnerworksError:
    """One line for a pydantic ``ValidationError``: ``SOURCE: field 'PREFIX.LOC': MESSAGE (and N more)``.

    The first error is named (its field path and pydantic's message, with an unknown field called one); how many
    more there are is counted, so a user fixes one thing at a time with the file and field in front of them.

    >>> from pydantic import BaseModel, ConfigDict, ValidationError
    >>> class M(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     n: int
    >>> try:
    ...     M.model_validate({"n": 1, "bogus": 2})
    ... except ValidationError as exc:
    ...     print(format_validation_error(exc, "r.yaml", prefix="model."))
    r.yaml: field 'model.bogus': unknown field
    """
    errors = exc.errors()
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}{loc}" if loc else prefix.rstrip(".")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"field '{field}': " if field else ""
    return kind(f"{source}: {where}{msg}{more}")
