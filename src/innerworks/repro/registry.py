"""The lab registry: every reproduction ``innerworks repro`` knows, loaded only when it runs.

Adding a lab is one module with a :class:`~innerworks.repro.base.Reproduction` subclass plus one line here.

>>> [e.name for e in LABS]
['integration', 'attention', 'wide']
>>> get_lab("wide").name
'wide'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from innerworks.errors import InnerworksError

if TYPE_CHECKING:
    from innerworks.repro.base import Reproduction


@dataclass(frozen=True)
class LabEntry:
    """A registered reproduction: its command name, ``module:Class``, and what it reproduces (for help texts)."""

    name: str
    target: str
    title: str

    def load(self) -> Reproduction:
        """An instance of the lab's :class:`Reproduction`."""
        module, cls = self.target.split(":")
        return getattr(import_module(module), cls)()


LABS: tuple[LabEntry, ...] = (
    LabEntry("integration", "innerworks.repro.integration:IntegrationReproduction",
             "the integration papers' findings (recurrent text classifiers)"),
    LabEntry("attention", "innerworks.repro.attention:AttentionReproduction",
             "the attention paper's findings (encoder-decoder attention)"),
    LabEntry("wide", "innerworks.repro.wide:WideReproduction",
             "the wide-network verification cases (correlation functions at initialisation)"),
)


def lab_names() -> list[str]:
    """The registered names, in order."""
    return [e.name for e in LABS]


def get_lab(name: str) -> Reproduction:
    """The reproduction registered as ``name``; one-line error naming the known ones otherwise.

    >>> get_lab("nope")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: unknown reproduction 'nope'; expected integration, attention, wide
    """
    for e in LABS:
        if e.name == name:
            return e.load()
    raise InnerworksError(f"unknown reproduction {name!r}; expected {', '.join(lab_names())}")
