"""Word-count prediction of the manifold: N-1 equal components for N categorical classes, ~1 for ordered ones."""

from __future__ import annotations

import math

import pytest
import torch

from innerworks.data.types import TextDataset
from innerworks.dynamics import compare_dimensions, pca_dimension, word_count_prediction
from innerworks.dynamics.wordcount import class_word_counts, class_word_matrix
from innerworks.errors import DataError


def _categorical(n_classes: int, n_docs: int = 3000, length: int = 50, seed: int = 0) -> TextDataset:
    """Aitken's categorical task: words kinda_i (evidence e_i) and 'the'; label = argmax of the counts (ties low).

    Balanced by keeping the first n_docs // N documents of each class (rejection sampling)."""
    g = torch.Generator().manual_seed(seed)
    vocab = ["<pad>"] + [f"kinda{i}" for i in range(n_classes)] + ["the"]
    tokens = torch.randint(1, n_classes + 2, (n_docs * 4, length), generator=g)
    counts = torch.stack([(tokens == i + 1).sum(1) for i in range(n_classes)], 1)
    labels = counts.argmax(1)
    keep = torch.cat([(labels == c).nonzero().flatten()[: n_docs // n_classes] for c in range(n_classes)])
    return TextDataset(tokens[keep], torch.full((keep.numel(),), length), labels[keep], vocab,
                       [f"c{i}" for i in range(n_classes)])


def _ordered3(n_docs: int = 3000, length: int = 30, seed: int = 0) -> TextDataset:
    """Ordered 3-class task: good=+1, bad=-1, the=0; Good if s >= L/3, Bad if s <= -L/3, else Neutral."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 4, (n_docs, length), generator=g)
    s = (tokens == 1).sum(1) - (tokens == 2).sum(1)
    labels = torch.where(3 * s >= length, 2, torch.where(3 * s <= -length, 0, 1))
    return TextDataset(tokens, torch.full((n_docs,), length), labels, ["<pad>", "good", "bad", "the"],
                       ["Bad", "Neutral", "Good"])


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_categorical_classes_predict_n_minus_1_equal_dimensions_and_a_simplex(n: int) -> None:
    pred = word_count_prediction(_categorical(n, n_docs=2000 * n))
    # notes: PR = 1.0, 1.98, 2.99, 3.99 for N = 2..5 (dev run); N-1 roughly equal components
    assert abs(pred.participation_ratio - (n - 1)) < 0.05 * (n - 1)
    assert pred.dimensions[0.95] == n - 1
    assert float(pred.explained[: n - 1].sum()) > 0.999
    iu = torch.triu_indices(n, n, 1)
    ang = pred.class_angles[iu[0], iu[1]]
    assert float((ang - pred.simplex_angle).abs().max()) < 3.0
    assert pred.class_coords.shape == (n, n)
    assert "PR" in pred.summary()


def test_ordered_classes_concentrate_on_one_direction() -> None:
    pred = word_count_prediction(_ordered3())
    assert pred.dimensions[0.9] == 1
    assert pred.participation_ratio < 1.3
    # the extreme classes sit opposite each other
    assert pred.class_angles[0, 2] > 150


def test_matrix_definition_and_multilabel_counts() -> None:
    tokens = torch.tensor([[1, 1, 3, 0], [2, 3, 3, 3]])
    ds = TextDataset(tokens, torch.tensor([3, 4]), torch.tensor([0, 1]), ["<pad>", "a", "b", "the"], ["A", "B"])
    counts = class_word_counts(ds)
    assert counts.tolist() == [[0, 2, 0, 1], [0, 0, 1, 3]]
    m = class_word_matrix(ds)
    overall = torch.tensor([0, 2, 1, 4], dtype=torch.float64) / 7
    assert torch.allclose(m[0], torch.tensor([0, 2 / 3, 0, 1 / 3], dtype=torch.float64) - overall)
    ml = TextDataset(tokens, torch.tensor([3, 4]), torch.tensor([[1.0, 1.0], [0.0, 1.0]]), ds.vocab, ["A", "B"],
                     multilabel=True)
    assert class_word_counts(ml).tolist() == [[0, 2, 0, 1], [0, 2, 1, 4]]


def test_compare_with_a_measured_dimension() -> None:
    pred = word_count_prediction(_categorical(3))
    g = torch.Generator().manual_seed(0)
    tri = torch.rand(2000, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 16, generator=g, dtype=torch.float64)
    cmp = compare_dimensions(pred, pca_dimension(tri))
    assert cmp.agree[0.95] and cmp.predicted[0.95] == cmp.measured[0.95] == 2
    assert math.isclose(cmp.predicted_pr, 2.0, rel_tol=0.05)
    line = torch.linspace(0, 1, 100, dtype=torch.float64).unsqueeze(1) * torch.ones(1, 16, dtype=torch.float64)
    assert not compare_dimensions(pred, pca_dimension(line)).agree[0.95]
    assert "differ" in compare_dimensions(pred, pca_dimension(line)).summary()


def test_wordcount_bad_input() -> None:
    tokens = torch.tensor([[1, 2], [1, 2]])
    same = TextDataset(tokens, torch.tensor([2, 2]), torch.tensor([0, 1]), ["<pad>", "a", "b"], ["A", "B"])
    with pytest.raises(DataError, match="same word frequencies"):
        word_count_prediction(same)
    missing = TextDataset(tokens, torch.tensor([2, 2]), torch.tensor([0, 0]), ["<pad>", "a", "b"], ["A", "B"])
    with pytest.raises(DataError, match="no tokens.*B"):
        word_count_prediction(missing)
    one = TextDataset(tokens, torch.tensor([2, 2]), torch.tensor([0, 0]), ["<pad>", "a", "b"], ["A"])
    with pytest.raises(DataError, match="at least 2 classes"):
        word_count_prediction(one)
