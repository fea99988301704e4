"""The core's lists of names, one enum each: recurrent cells (:class:`CellType`), seq2seq architectures (:class:`Arch`).

Each is a ``str`` enum (neural-tangents style): a member compares equal to its name, so code may test
``cfg.arch == "aed"``. Pydantic fields typed by one (with ``use_enum_values`` and ``validate_default``) accept the
plain strings of a YAML recipe, keep them as plain strings (dumps and run directories are unchanged), and reject
anything else with the list of allowed values.

>>> CellType("lstm") is CellType.LSTM, Arch.AO == "ao", str(Arch.AED_MHA), CellType.values()[:2]
(True, True, 'aed_mha', ('vanilla', 'gru'))
"""

from __future__ import annotations

from enum import Enum


class NameEnum(str, Enum):
    """A ``str`` enum whose members print as their plain names."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every name, in declaration order."""
        return tuple(m.value for m in cls)


class CellType(NameEnum):
    """The recurrent cells :func:`innerworks.models.cells.make_cell` builds."""

    VANILLA = "vanilla"
    GRU = "gru"
    LSTM = "lstm"
    UGRNN = "ugrnn"
    GRU_RENN = "gru_renn"


class Arch(NameEnum):
    """The sequence-to-sequence architectures :func:`innerworks.models.seq2seq.build_seq2seq` builds."""

    VED = "ved"
    AED = "aed"
    AO = "ao"
    AED_QKV = "aed_qkv"
    AED_MHA = "aed_mha"
    AO_QKV = "ao_qkv"
    AO_MHA = "ao_mha"
    TRANSFORMER = "transformer"


__all__ = ["Arch", "CellType", "NameEnum"]
