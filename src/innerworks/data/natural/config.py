"""The natural-text settings of a recipe (its ``data`` section when ``kind: natural``): :class:`NaturalConfig`, a
pydantic model that refuses unknown fields and fields that do not apply to the chosen corpus, and
:func:`parse_natural_config`, which turns a validation error into a one-line :class:`~innerworks.errors.ConfigError`.

>>> parse_natural_config({"corpus": "csv", "path": "x.csv", "text_column": 0, "label_column": 1}).corpus
'csv'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from innerworks.data.natural.corpus import DEFAULT_FRACTIONS, check_fractions
from innerworks.data.natural.registry import CORPORA
from innerworks.errors import ConfigError, format_validation_error

_CSV_FIELDS = ("path", "val_path", "test_path", "text_column", "label_column", "label_map", "class_names",
               "delimiter")


class NaturalConfig(BaseModel):
    """Natural-text data settings (a recipe's ``data`` section when ``kind: natural``).

    ``corpus`` is a name from :data:`CORPORA` or ``"csv"`` (then ``path``, ``text_column`` and ``label_column`` are
    required). ``max_length: null`` takes the corpus default (the paper's where known; none for csv).
    ``vocab_size``: WordPiece target size (default 8000) or, for ``word``, a cap (default none).
    ``min_count``: word min-count, or WordPiece min frequency. ``split``: train/val/test fractions where innerworks
    makes a split. ``dedupe: null``: the corpus default. ``max_docs``: keep about this many documents in all.
    ``source: hub`` loads from the Hugging Face hub (needs the ``datasets`` extra and internet).

    >>> NaturalConfig(corpus="sst2", tokenizer="wordpiece").max_length is None
    True
    >>> NaturalConfig(corpus="sst2", colour="red")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: ...
    """

    model_config = ConfigDict(extra="forbid")

    corpus: str = "ag_news"
    source: Literal["files", "hub"] = "files"
    root: str | None = None
    text_field: Literal["description", "title+description"] = "description"
    path: str | None = None
    val_path: str | None = None
    test_path: str | None = None
    text_column: str | int | list[str | int] | None = None
    label_column: str | int | None = None
    label_map: dict[str, int | None] | None = None
    class_names: list[str] | None = None
    delimiter: str | None = None
    has_header: bool = True
    empty_text: Literal["error", "drop"] = "error"
    tokenizer: Literal["word", "wordpiece"] = "word"
    vocab_size: int | None = Field(default=None, ge=3)
    min_count: int = Field(default=2, ge=1)
    lowercase: bool = True
    max_length: int | None = Field(default=None, ge=1)
    overlength: Literal["drop", "truncate"] = "drop"
    split: tuple[float, float, float] = DEFAULT_FRACTIONS
    dedupe: bool | None = None
    max_docs: int | None = Field(default=None, ge=3)

    @field_validator("corpus")
    @classmethod
    def _known_corpus(cls, v: str) -> str:
        if v != "csv" and v not in CORPORA:
            raise ValueError(f"expected one of {', '.join(CORPORA)}, csv; got {v!r}")
        return v

    @field_validator("label_map", mode="before")
    @classmethod
    def _label_keys_to_str(cls, v: Any) -> Any:
        # YAML reads `1: 0` with an int key; raw CSV labels are strings.
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v

    @field_validator("split")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        try:
            return check_fractions(v, where="split")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("split: ")) from None

    @model_validator(mode="after")
    def _csv_fields(self) -> NaturalConfig:
        if self.corpus == "csv":
            if self.source == "hub":
                raise ValueError("source 'hub' needs a named corpus, not csv")
            missing = [f for f in ("path", "text_column", "label_column") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"corpus 'csv' needs {', '.join(missing)}")
        else:
            extra = [f for f in _CSV_FIELDS if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to corpus 'csv' (corpus is {self.corpus!r})")
        if self.corpus != "ag_news" and self.text_field != "description":
            raise ValueError("text_field only applies to corpus 'ag_news'")
        return self

    def resolved_max_length(self) -> int | None:
        """``max_length``, or the corpus default when unset (None for csv: no limit).

        >>> NaturalConfig(corpus="ag_news").resolved_max_length()
        100
        """
        if self.max_length is not None:
            return self.max_length
        return CORPORA[self.corpus].max_length if self.corpus in CORPORA else None


def parse_natural_config(obj: Any, where: str = "data") -> NaturalConfig:
    """Validate a dict into :class:`NaturalConfig`; errors become one-line :class:`ConfigError` naming the field.

    >>> parse_natural_config({"corpus": "sst2", "tokeniser": "word"})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: data.tokeniser: Extra inputs are not permitted
    """
    if isinstance(obj, NaturalConfig):
        return obj
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(obj).__name__}")
    try:
        return NaturalConfig.model_validate(dict(obj))
    except ValidationError as exc:
        raise format_validation_error(exc, where) from None
