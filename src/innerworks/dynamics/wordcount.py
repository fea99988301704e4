"""Predict the integration manifold's dimension and shape from training-set word counts (Aitken et al. 2021).

The class × word frequency matrix (integration notes §3, "Predicting geometry from word counts")::

    M[c, w] = count(w in class-c documents) / (tokens in class-c documents) − overall frequency of w

Padding (id 0) is not a token. Multi-label data count a document for every class it carries. The rows are then
centred over classes (the unweighted class mean is subtracted) and decomposed by SVD. Each singular direction is an
independent evidence direction the network must integrate; the explained-variance profile gives the predicted
dimension (participation ratio and the 90%/95% thresholds) and the class coordinates in the top components give the
predicted geometry (for N balanced categorical classes: a regular (N−1)-simplex, PR ≈ N−1; for ordered classes the
variance concentrates in one or two components).

The exact normalisation the paper used is unverified (notes: "[inferred]"); this is the notes' formula.

>>> import torch
>>> from innerworks.data.types import TextDataset
>>> tokens = torch.tensor([[1, 1, 3], [2, 2, 3], [1, 3, 3], [2, 3, 3]])
>>> ds = TextDataset(tokens, torch.full((4,), 3), torch.tensor([0, 1, 0, 1]), ["<pad>", "a", "b", "the"], ["A", "B"])
>>> pred = word_count_prediction(ds)
>>> pred.dimensions, round(pred.participation_ratio, 3)
({0.9: 1, 0.95: 1}, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from innerworks.data.types import TextDataset
from innerworks.dynamics.geometry import PCAResult, simplex_angle
from innerworks.errors import DataError


def class_word_counts(dataset: TextDataset) -> torch.Tensor:
    """``[C, V]`` token counts per class (padding excluded; multi-label documents count for each of their labels).

    >>> import torch
    >>> from innerworks.data.types import TextDataset
    >>> ds = TextDataset(torch.tensor([[1, 2, 0]]), torch.tensor([2]), torch.tensor([0]), ["<pad>", "a", "b"], ["x"])
    >>> class_word_counts(ds).tolist()
    [[0.0, 1.0, 1.0]]
    """
    tok, lengths = dataset.tokens, dataset.lengths
    n, t = tok.shape
    c, v = dataset.num_classes, dataset.vocab_size
    valid = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    valid &= tok != 0
    docs = torch.arange(n).unsqueeze(1).expand(n, t)[valid]
    words = tok[valid]
    if not dataset.multilabel:
        flat = torch.bincount(dataset.labels[docs] * v + words, minlength=c * v)
        return flat.view(c, v).to(torch.float64)
    # multi-label: a document counts for every class it carries
    rows = []
    for k in range(c):
        on = dataset.labels[docs, k] > 0.5
        rows.append(torch.bincount(words[on], minlength=v))
    return torch.stack(rows).to(torch.float64)


def class_word_matrix(dataset: TextDataset) -> torch.Tensor:
    """``M[c, w]`` = class-c frequency of w minus its overall frequency, ``[C, V]`` (see the module docstring).

    >>> import torch
    >>> from innerworks.data.types import TextDataset
    >>> ds = TextDataset(torch.tensor([[1], [2]]), torch.tensor([1, 1]), torch.tensor([0, 1]),
    ...                  ["<pad>", "a", "b"], ["A", "B"])
    >>> class_word_matrix(ds).tolist()
    [[0.0, 0.5, -0.5], [0.0, -0.5, 0.5]]
    """
    counts = class_word_counts(dataset)
    per_class = counts.sum(dim=1, keepdim=True)
    empty = (per_class.squeeze(1) == 0).nonzero().flatten().tolist()
    if empty:
        names = ", ".join(dataset.class_names[i] for i in empty)
        raise DataError(f"classes with no tokens in the dataset: {names}; the word-count matrix needs every class")
    overall = counts.sum(dim=0) / counts.sum()
    return counts / per_class - overall


@dataclass
class WordCountPrediction:
    """The word-count prediction of an integration manifold.

    Attributes:
        matrix: ``[C, V]`` class × word matrix M (before centring).
        singular_values: of the class-centred M, descending ``[min(C, V)]``.
        explained: variance fraction per component (``s² / Σ s²``).
        participation_ratio: ``(Σ s²)² / Σ s⁴``, the predicted dimension.
        dimensions: ``{threshold: components reaching it}``.
        class_coords: ``[C, C]`` class coordinates ``U·S`` in the components (predicted geometry).
        class_angles: ``[C, C]`` degrees between the centred class vectors.
        simplex_angle: the regular-simplex angle for C classes (what balanced categorical data give).
        class_names: one per row.
    """

    matrix: torch.Tensor
    singular_values: torch.Tensor
    explained: torch.Tensor
    participation_ratio: float
    dimensions: dict[float, int]
    class_coords: torch.Tensor
    class_angles: torch.Tensor
    simplex_angle: float
    class_names: list[str]

    def summary(self, top: int = 5) -> str:
        dims = ", ".join(f"{int(round(t * 100))}%: {d}" for t, d in self.dimensions.items())
        head = ", ".join(f"{v:.3f}" for v in self.explained[:top].tolist())
        c = self.class_angles.shape[0]
        iu = torch.triu_indices(c, c, 1)
        ang = self.class_angles[iu[0], iu[1]]
        return (f"word-count prediction ({c} classes): PR {self.participation_ratio:.2f}; dims ({dims}); "
                f"variance [{head}]; class angles {float(ang.min()):.1f}-{float(ang.max()):.1f} deg "
                f"(simplex {self.simplex_angle:.1f})")


def word_count_prediction(dataset: TextDataset, thresholds: Sequence[float] = (0.9, 0.95)) -> WordCountPrediction:
    """Build M from ``dataset`` (use the TRAINING split), centre it, SVD, and read off dimension and geometry."""
    if dataset.num_classes < 2:
        raise DataError("the word-count prediction needs at least 2 classes")
    m = class_word_matrix(dataset)
    mc = m - m.mean(dim=0, keepdim=True)
    u, s, _ = torch.linalg.svd(mc, full_matrices=False)
    var = s**2
    tot = float(var.sum())
    if tot <= 0:
        raise DataError("every class has the same word frequencies: nothing to integrate (M is zero after centring)")
    explained = var / tot
    cum = torch.cumsum(explained, 0)
    dims = {float(t): int((cum < t - 1e-12).sum()) + 1 for t in thresholds}
    norms = mc.norm(dim=1, keepdim=True).clamp_min(1e-300)
    cos = ((mc / norms) @ (mc / norms).T).clamp(-1, 1)
    angles = torch.rad2deg(torch.arccos(cos))
    angles.fill_diagonal_(0.0)
    return WordCountPrediction(m, s, explained, tot**2 / float((var**2).sum()), dims, u * s, angles,
                               simplex_angle(dataset.num_classes), list(dataset.class_names))


@dataclass
class DimensionComparison:
    """Predicted (word counts) vs measured (RNN states or fixed points) dimension.

    Attributes:
        predicted_pr, measured_pr: participation ratios.
        predicted, measured: ``{threshold: dimension}``.
        agree: ``{threshold: predicted == measured}``.
    """

    predicted_pr: float
    measured_pr: float
    predicted: dict[float, int]
    measured: dict[float, int]
    agree: dict[float, bool]

    def summary(self) -> str:
        rows = "; ".join(f"{int(round(t * 100))}%: predicted {self.predicted[t]}, measured {self.measured[t]}"
                         f"{'' if self.agree[t] else ' (differ)'}" for t in self.predicted)
        return f"PR predicted {self.predicted_pr:.2f} vs measured {self.measured_pr:.2f}; {rows}"


def compare_dimensions(prediction: WordCountPrediction, measured: PCAResult) -> DimensionComparison:
    """Compare the word-count prediction with a measured :class:`~innerworks.dynamics.geometry.PCAResult`.

    >>> import torch
    >>> from innerworks.dynamics.geometry import pca_dimension
    >>> from innerworks.data.types import TextDataset
    >>> ds = TextDataset(torch.tensor([[1], [2]]), torch.tensor([1, 1]), torch.tensor([0, 1]),
    ...                  ["<pad>", "a", "b"], ["A", "B"])
    >>> line = torch.linspace(-1, 1, 50).unsqueeze(1) * torch.tensor([[1.0, 2.0]])
    >>> compare_dimensions(word_count_prediction(ds), pca_dimension(line)).agree
    {0.9: True, 0.95: True}
    """
    common = [t for t in prediction.dimensions if t in measured.dimensions]
    if not common:
        raise DataError("the prediction and the measurement share no variance threshold")
    pred = {t: prediction.dimensions[t] for t in common}
    meas = {t: measured.dimensions[t] for t in common}
    return DimensionComparison(prediction.participation_ratio, measured.participation_ratio, pred, meas,
                               {t: pred[t] == meas[t] for t in common})


def corpus_word_count(data_cfg: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The word-count prediction of a whole natural corpus (train + val + test: nothing is trained, so every
    document is evidence), with the training split's alone beside it; plain JSON. For corpora too small to train on
    (Yelp-5's 1,000 reviews): reported, never a claim."""
    from innerworks.data.natural import load_natural

    splits, _ = load_natural(data_cfg, seed)
    parts = [splits.train, splits.val, splits.test]
    width = max(int(p.tokens.shape[1]) for p in parts)
    tokens = torch.cat([torch.nn.functional.pad(p.tokens, (0, width - p.tokens.shape[1])) for p in parts])
    everything = TextDataset(tokens, torch.cat([p.lengths for p in parts]), torch.cat([p.labels for p in parts]),
                             list(parts[0].vocab), list(parts[0].class_names))
    wc = word_count_prediction(everything, (0.9, 0.95))
    wt = word_count_prediction(splits.train, (0.9, 0.95))
    return {"n_documents": len(everything), "num_classes": everything.num_classes,
            "explained": [round(float(v), 6) for v in wc.explained[:10]],
            "dimensions": {str(k): v for k, v in wc.dimensions.items()},
            "participation_ratio": round(wc.participation_ratio, 4),
            "train_split_only": {"n_documents": len(splits.train), "participation_ratio":
                                 round(wt.participation_ratio, 4),
                                 "dimensions": {str(k): v for k, v in wt.dimensions.items()}},
            "data": data_cfg}


__all__ = ["DimensionComparison", "WordCountPrediction", "class_word_counts", "class_word_matrix",
           "compare_dimensions", "word_count_prediction"]
