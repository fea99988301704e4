"""The same corpora from the Hugging Face hub, for machines with internet (optional ``datasets`` extra).

``pip install 'innerworks[datasets]'``. Nothing here runs in the test suite, which uses the shared files only.
Differences from the shared files: the hub holds the FULL corpora (AG News 120,000 + 7,600 rows; Yelp-5 650,000 +
50,000), and the hub's AG News ``text`` is title and description joined, not the description alone. The Yelp
sentence-polarity data of Shen et al. (2017) is not on the hub under a known name, so ``yelp_polarity`` is refused.

>>> sorted(HUB_CORPORA)[:3]
['ag_news', 'imdb', 'sst2']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from innerworks.data.natural.corpora import STAR_NAMES, STAR_RELABEL
from innerworks.data.natural.corpus import (
    DEFAULT_FRACTIONS,
    SPLITS,
    RawCorpus,
    carve_val,
    check_fractions,
    finish_corpus,
)
from innerworks.errors import DataError, InnerworksError


@dataclass(frozen=True)
class HubSpec:
    """Where a corpus lives on the hub: dataset id, text and label fields, class names, star relabeling."""

    repo: str
    text: str
    label: str
    class_names: tuple[str, ...]
    stars: int | None = None  # Yelp: relabel 5 stars to this many classes


HUB_CORPORA: dict[str, HubSpec] = {
    "ag_news": HubSpec("fancyzhx/ag_news", "text", "label", ("World", "Sports", "Business", "Sci/Tech")),
    "yelp5": HubSpec("Yelp/yelp_review_full", "text", "label", tuple(STAR_NAMES[5]), stars=5),
    "yelp3": HubSpec("Yelp/yelp_review_full", "text", "label", tuple(STAR_NAMES[3]), stars=3),
    "yelp2": HubSpec("Yelp/yelp_review_full", "text", "label", tuple(STAR_NAMES[2]), stars=2),
    "imdb": HubSpec("stanfordnlp/imdb", "text", "label", ("negative", "positive")),
    "sst5": HubSpec("SetFit/sst5", "text", "label",
                    ("very negative", "negative", "neutral", "positive", "very positive")),
    "sst2": HubSpec("SetFit/sst2", "text", "label", ("negative", "positive")),
}


def load_from_hub(name: str, *, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                  dedupe: bool = True) -> RawCorpus:
    """Download a corpus with ``datasets.load_dataset`` into a :class:`RawCorpus` (needs internet).

    The hub's ``validation`` split is used when there is one; otherwise a seeded stratified validation split is
    taken from ``train`` (train:val = ``fractions[0]:fractions[1]``), as for the shared files.

    >>> load_from_hub("yelp_polarity")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: hub: no hub source for 'yelp_polarity' ...
    """
    if name not in HUB_CORPORA:
        raise InnerworksError(f"hub: no hub source for {name!r}; expected one of {', '.join(HUB_CORPORA)} "
                              "(the sentence-level yelp_polarity data is only in the shared files)")
    fractions = check_fractions(fractions)
    try:
        import datasets  # optional extra; imported here so the package works without it
    except ImportError:
        raise InnerworksError("hub: the 'datasets' package is not installed "
                              "(pip install 'innerworks[datasets]', or use source: files)") from None
    spec = HUB_CORPORA[name]
    try:
        ds = datasets.load_dataset(spec.repo)
    except Exception as exc:  # network, missing dataset, auth: all user-facing, one line
        raise DataError(f"hub: cannot load {spec.repo!r} ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                        ) from None
    relabel = STAR_RELABEL[spec.stars] if spec.stars else None
    dropped = 0

    def column(split: str) -> tuple[list[str], list[int]]:
        nonlocal dropped
        texts: list[str] = []
        labels: list[int] = []
        for row in ds[split]:
            y = int(row[spec.label])
            if relabel is not None:
                if y not in relabel:
                    dropped += 1
                    continue
                y = relabel[y]
            if not 0 <= y < len(spec.class_names):
                raise DataError(f"hub {spec.repo}/{split}: label {y} outside the class set "
                                f"0..{len(spec.class_names) - 1}")
            texts.append(str(row[spec.text]))
            labels.append(y)
        return texts, labels

    if "train" not in ds or "test" not in ds:
        raise DataError(f"hub {spec.repo}: expected train and test splits, found {', '.join(ds)}")
    train, test = column("train"), column("test")
    if "validation" in ds:
        val = column("validation")
        rule = "hub train/validation/test"
    else:
        train, val, share = carve_val(train, fractions, seed)
        rule = f"hub train/test; val = seeded stratified {share:.4g} of train"
    parts = dict(zip(SPLITS, (train, val, test), strict=True))
    source = {"root": f"hub:{spec.repo}", "split_rule": rule, "relabel_dropped": dropped,
              "fractions": list(fractions), "seed": seed}
    return finish_corpus(name, {s: p[0] for s, p in parts.items()}, {s: p[1] for s, p in parts.items()},
                   list(spec.class_names), source, dedupe)
