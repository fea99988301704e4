"""Which seq2seq task to build, and its knobs: :class:`Seq2SeqTaskConfig` (a recipe's ``data`` section for the
attention lab) and :func:`parse_task_config`, which names the offending field in a one-line
:class:`~innerworks.errors.ConfigError`.

A field a task does not use must stay at its default, so a recipe cannot carry a setting that silently does nothing.

>>> sorted(_TASK_FIELDS["scan"])
['max_pairs', 'scan_split', 'val_fraction']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from innerworks.errors import ConfigError, format_validation_error

SYNTHETIC_TASKS = ("one_to_one", "reversal", "sort")
TaskName = Literal["one_to_one", "reversal", "sort", "escan", "scan", "translation"]

_TASK_FIELDS: dict[str, set[str]] = {
    "one_to_one": {"num_words", "min_length", "max_length", "n_train", "n_val", "n_test"},
    "escan": {"n_train", "n_val", "n_test", "escan_min_out", "escan_max_out", "escan_max_in"},
    "scan": {"scan_split", "val_fraction", "max_pairs"},
    "translation": {"corpus", "target_lang", "tokenizer", "vocab_size", "min_count", "max_length", "overlength",
                    "max_pairs", "val_fraction", "test_fraction"},
}
_TASK_FIELDS["reversal"] = _TASK_FIELDS["sort"] = _TASK_FIELDS["one_to_one"]


class Seq2SeqTaskConfig(BaseModel):
    """Which seq2seq task to build, and its knobs. A field a task does not use must stay at its default.

    Lengths (``min_length``, ``max_length``) count words before the ``<eos>`` and are **inclusive**; the paper's
    code draws ``randint(Lmin, Lmax)`` with an exclusive upper bound, so its "15to20" is ``min_length=15,
    max_length=19`` here. ``max_length`` defaults to 20 for synthetic tasks and 50 (tokens) for translation.

    >>> Seq2SeqTaskConfig(task="reversal", max_length=8, min_length=3).max_length
    8
    >>> Seq2SeqTaskConfig(task="translation").max_length
    50
    """

    model_config = ConfigDict(extra="forbid")

    task: TaskName
    # synthetic tasks (one_to_one, reversal, sort)
    num_words: int = Field(3, ge=1, le=100_000, description="input words I0..I{N-1}, output words O0..O{N-1}")
    min_length: int = Field(15, ge=1, description="shortest input, words before <eos> (inclusive)")
    max_length: int | None = Field(None, ge=1, description="longest input, inclusive (synthetic: 20, translation: 50)")
    # generated tasks (synthetic + escan)
    n_train: int = Field(10_000, ge=1)
    n_val: int = Field(1_000, ge=1)
    n_test: int = Field(1_000, ge=1)
    # escan
    escan_min_out: int = Field(10, ge=2, description="stop appending commands once the output has this many tokens")
    escan_max_out: int = Field(15, ge=3, description="skip a command that would take the output past this")
    escan_max_in: int = Field(27, ge=2, description="reject an example whose input is longer")
    # scan
    scan_split: Literal["simple", "length", "addprim_jump", "addprim_turn_left"] = "simple"
    # scan + translation
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="validation share carved from train (scan, tatoeba)")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="test share (tatoeba, which has one file)")
    max_pairs: int | None = Field(None, ge=1, description="cap on pairs per split (seeded subset), for quick runs")
    # translation
    corpus: Literal["tatoeba", "multi30k"] = "tatoeba"
    target_lang: Literal["fr", "de"] = "fr"
    tokenizer: Literal["word", "wordpiece"] = "word"
    vocab_size: int | None = Field(None, ge=16, description="cap incl. specials (word: none; wordpiece: 4000)")
    min_count: int = Field(2, ge=1, description="minimum train count of a word / WordPiece merge frequency")
    overlength: Literal["drop", "truncate"] = "drop"

    @model_validator(mode="after")
    def _check(self) -> Seq2SeqTaskConfig:
        used = _TASK_FIELDS[self.task] | {"task"}
        defaults = {k: f.default for k, f in type(self).model_fields.items()}
        for name in sorted(self.model_fields_set - used):
            if getattr(self, name) != defaults[name]:
                raise ValueError(f"field '{name}' is not used by task '{self.task}' "
                                 f"(it uses: {', '.join(sorted(used))})")
        if self.task in SYNTHETIC_TASKS:
            if self.max_length is None:
                self.max_length = max(20, self.min_length)
            if self.min_length > self.max_length:
                raise ValueError(f"min_length {self.min_length} > max_length {self.max_length}")
        elif self.task == "translation":
            if self.max_length is None:
                self.max_length = 50
            if self.corpus == "tatoeba" and self.target_lang != "fr":
                raise ValueError("corpus 'tatoeba' is English->French only: target_lang must be 'fr'")
            for name in ("val_fraction", "test_fraction"):
                if self.corpus == "multi30k" and getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"corpus 'multi30k' has its own val/test files: {name} is not used")
        elif self.task == "escan":
            if self.escan_max_out < self.escan_min_out + 1:
                raise ValueError(f"escan_max_out ({self.escan_max_out}) must be >= escan_min_out + 1 "
                                 f"({self.escan_min_out + 1}): a command adds at least 2 output tokens")
        return self


def parse_task_config(data: Mapping[str, Any] | Seq2SeqTaskConfig, source: str = "data") -> Seq2SeqTaskConfig:
    """Validate a mapping into :class:`Seq2SeqTaskConfig`; raise :class:`ConfigError` naming the field on failure.

    >>> parse_task_config({"task": "sort", "num_word": 3})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.ConfigError: data: field 'num_word': unknown field
    """
    if isinstance(data, Seq2SeqTaskConfig):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping with a 'task' field, got {type(data).__name__}")
    try:
        return Seq2SeqTaskConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None
