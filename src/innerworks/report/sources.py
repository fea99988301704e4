"""What a claim rests on, as the report reads it from saved claims, and the passed/total counts per source.

The report reads only the claims format (``results.json``), never :mod:`innerworks.repro`, so it knows the source
names of that format here: ``paper``, ``predecessor`` and ``author-code`` are grounded in the paper; ``extension``
claims are ours and never part of the paper's count. A claim without ``source`` (a results file written before claims
carried one) counts as ``paper``. A source name the format does not know is kept as it is and counted on its own, so
that a typo can never slip an extension into the paper's count.

>>> claims = [{"passed": True}, {"source": "extension", "passed": False}, {"source": "author-code", "passed": True}]
>>> counts_text(claim_counts(claims))
'paper 1/1 · author code 1/1 · extension 0/1'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PAPER_GROUNDED = ("paper", "predecessor", "author-code")
EXTENSION = "extension"
SOURCES = (*PAPER_GROUNDED, EXTENSION)

# How a stage's claims are grouped on the page, in this order: (key, heading, note).
GROUPS = (
    ("paper-grounded", "Paper-grounded claims", "the paper, its predecessor, the authors' code"),
    ("extension", "Extensions: not part of the paper's count", "our own checks beyond the paper"),
    ("other", "Unrecognised source: not part of the paper's count", "a source name the claims format does not know"),
)

Counts = dict[str, dict[str, int]]


def source_of(claim: Mapping[str, Any]) -> str:
    """The claim's source name; missing or empty means ``paper`` (old results files), spelling variants normalised.

    >>> [source_of(c) for c in ({}, {"source": "Author code"}, {"source": "extension"}, {"source": 3})]
    ['paper', 'author-code', 'extension', '3']
    """
    raw = claim.get("source")
    if raw is None or raw == "":
        return "paper"
    name = str(raw).strip()
    norm = name.lower().replace("_", "-").replace(" ", "-")
    return norm if norm in SOURCES else name


def source_label(source: str) -> str:
    """The word a table shows: ``author-code`` -> ``author code``.

    >>> source_label("author-code"), source_label("extension")
    ('author code', 'extension')
    """
    return source.replace("-", " ") if source in SOURCES else source


def group_of(source: str) -> str:
    """The key of the :data:`GROUPS` entry a claim with this source belongs to.

    >>> group_of("predecessor"), group_of("extension"), group_of("typo")
    ('paper-grounded', 'extension', 'other')
    """
    if source in PAPER_GROUNDED:
        return "paper-grounded"
    return "extension" if source == EXTENSION else "other"


def group_rank(source: str) -> int:
    """Where claims with this source come on the page: paper-grounded first, then extensions, then the rest."""
    key = group_of(source)
    return next(i for i, (k, _, _) in enumerate(GROUPS) if k == key)


def tally(pairs: Iterable[tuple[str, bool | None]]) -> Counts:
    """``{source: {"passed", "total"}}`` from ``(source, passed)`` pairs: known sources in format order, then others.

    Only ``passed is True`` counts as passed (``None``, could not be measured, does not).

    >>> tally([("extension", True), ("paper", None), ("paper", True)])
    {'paper': {'passed': 1, 'total': 2}, 'extension': {'passed': 1, 'total': 1}}
    """
    counts: Counts = {}
    for source, passed in pairs:
        n = counts.setdefault(source, {"passed": 0, "total": 0})
        n["total"] += 1
        n["passed"] += passed is True
    order = {s: i for i, s in enumerate(SOURCES)}
    return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order))))


def claim_counts(claims: Iterable[Any]) -> Counts:
    """Counts per source of claim objects (``results.json`` entries); entries that are not objects are skipped."""
    return tally((source_of(c), c.get("passed")) for c in claims if isinstance(c, Mapping))


def source_counts(docs: Iterable[Mapping[str, Any]]) -> Counts:
    """Counts per source over ``results.json`` documents, recomputed from each claim's ``source``.

    >>> source_counts([{"claims": [{"passed": True}]}, {"claims": [{"source": "extension", "passed": True}]}])
    {'paper': {'passed': 1, 'total': 1}, 'extension': {'passed': 1, 'total': 1}}
    """
    claims: list[Any] = []
    for doc in docs:
        if isinstance(doc.get("claims"), list):
            claims += doc["claims"]
    return claim_counts(claims)


def counts_text(counts: Mapping[str, Mapping[str, int]], empty: str = "no claims") -> str:
    """``"paper 21/24 · extension 9/10"``: the counts per source in one line.

    >>> counts_text({"paper": {"passed": 2, "total": 3}, "extension": {"passed": 1, "total": 1}}), counts_text({})
    ('paper 2/3 · extension 1/1', 'no claims')
    """
    return " · ".join(f"{source_label(s)} {n['passed']}/{n['total']}" for s, n in counts.items()) or empty
