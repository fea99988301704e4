"""Error types. Anything a user can cause by bad input raises :class:`InnerworksError`.

The CLI turns an ``InnerworksError`` into a one-line message and exit code 2, with no traceback.

>>> from innerworks.errors import InnerworksError
>>> str(InnerworksError("recipe.yaml: field 'model.cell': expected one of gru, lstm"))
"recipe.yaml: field 'model.cell': expected one of gru, lstm"
"""

from __future__ import annotations


class InnerworksError(ValueError):
    """Bad input from the user: a malformed file, field, spec or argument. The message names where and what."""


class DataError(InnerworksError):
    """A dataset file or row is missing or malformed."""


class ConfigError(InnerworksError):
    """A recipe (YAML config) is malformed."""


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. a non-finite loss)."""
