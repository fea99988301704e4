"""The core's activation-cache vocabulary: single-cell models' run_with_cache, name enums, the shared masked softmax."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from innerworks.data.types import TextDataset
from innerworks.dynamics.task import FlipFlopModel, FlipFlopModelConfig
from innerworks.errors import InnerworksError
from innerworks.models.cells import CELL_TYPES, CellType, make_cell
from innerworks.models.classifier import RNNClassifier
from innerworks.models.hooks import (
    HOOK_NAMES,
    RNN_HOOK_NAMES,
    TRANSFORMER_HOOK_PATTERNS,
    describe,
)
from innerworks.models.masking import masked_softmax, valid_mask
from innerworks.models.seq2seq import ARCHS, Arch, Seq2SeqConfig
from innerworks.train.classification import ClassifierConfig


def _docs() -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.tensor([[1, 2, 3, 0], [4, 4, 4, 4], [5, 0, 0, 0]])
    return tokens, torch.tensor([3, 4, 1])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_classifier_run_with_cache_uses_the_rnn_names(cell: str) -> None:
    model = RNNClassifier(vocab_size=6, num_classes=3, cell=cell, hidden_size=5)
    tokens, lengths = _docs()
    logits, cache = model.run_with_cache((tokens, lengths))
    assert list(cache) == list(RNN_HOOK_NAMES)  # every name, in the documented order
    assert torch.equal(logits, model(tokens).detach()) and torch.equal(cache["logits"], logits)
    assert torch.equal(cache["rnn.hook_input"], model.embed(tokens).detach())
    assert torch.equal(cache["rnn.hook_full_states"], model.states(tokens).detach())
    assert torch.equal(cache["rnn.hook_states"], model.cell.hidden(cache["rnn.hook_full_states"]))
    assert cache["rnn.hook_states"].shape == (3, 4, 5)  # LSTM: the h half of [h; c]
    assert not logits.requires_grad and all(not t.requires_grad for t in cache.values())


def test_classifier_batch_forms_and_names_filter() -> None:
    model = RNNClassifier(vocab_size=6, num_classes=2, hidden_size=4)
    tokens, lengths = _docs()
    ds = TextDataset(tokens=tokens, lengths=lengths, labels=torch.tensor([0, 1, 0]),
                     vocab=["<pad>"] + list("abcde"), class_names=["x", "y"])
    full_logits, _ = model.run_with_cache(ds)
    logits, cache = model.run_with_cache((tokens, lengths, ds.labels), names_filter=["rnn.hook_states"])
    assert list(cache) == ["rnn.hook_states"] and torch.equal(logits, full_logits)
    assert list(model.run_with_cache(ds, names_filter="logits")[1]) == ["logits"]
    assert sorted(model.run_with_cache(ds, names_filter=lambda n: n.startswith("rnn."))[1]) == [
        "rnn.hook_full_states", "rnn.hook_input", "rnn.hook_states"]
    with pytest.raises(InnerworksError, match="unknown hook name 'states'"):
        model.run_with_cache(ds, names_filter=["states"])  # the old key is not a name any more
    with pytest.raises(InnerworksError, match="batch must be a TextDataset or a tuple"):
        model.run_with_cache(tokens)
    with pytest.raises(InnerworksError, match=r"lengths must be in 1\.\.4"):
        model.run_with_cache((tokens, torch.tensor([3, 5, 1])))
    with pytest.raises(InnerworksError, match=r"lengths must have shape \(3,\)"):
        model.run_with_cache((tokens, torch.tensor([3, 4])))


def test_flipflop_run_with_cache_shares_the_rnn_names() -> None:
    model = FlipFlopModel(n_bits=2, cell="lstm", hidden_size=3)
    inputs = torch.randn(4, 6, 2, generator=torch.Generator().manual_seed(0))
    out, cache = model.run_with_cache(inputs)
    assert list(cache) == list(RNN_HOOK_NAMES)
    assert torch.equal(out, model(inputs).detach()) and cache["rnn.hook_states"].shape == (4, 6, 3)
    with pytest.raises(InnerworksError, match=r"\[B, T, 2\]"):
        model.run_with_cache(torch.zeros(1, 3, 5))


def test_every_name_is_described() -> None:
    for name in [*HOOK_NAMES, *RNN_HOOK_NAMES]:
        assert describe(name).startswith("[")
    for pattern in TRANSFORMER_HOOK_PATTERNS:
        assert describe(pattern.replace("{l}", "3")) == TRANSFORMER_HOOK_PATTERNS[pattern]
    with pytest.raises(InnerworksError, match="unknown hook name 'embed'"):
        describe("embed")


def test_cell_and_arch_names_have_one_source() -> None:
    assert CELL_TYPES == tuple(c.value for c in CellType) and ARCHS == tuple(a.value for a in Arch)
    for kind in CellType:
        assert make_cell(kind, 2, 3).kind == kind == kind.value  # str enum: equal to its name
    # config fields keep plain strings (YAML round trips unchanged) and list the allowed values when wrong
    for cfg in (ClassifierConfig(cell="lstm"), FlipFlopModelConfig(cell="gru_renn"), Seq2SeqConfig(cell="lstm")):
        assert type(cfg.cell) is str
    assert ClassifierConfig().model_dump()["cell"] == "gru" and FlipFlopModelConfig().cell == "vanilla"
    assert Seq2SeqConfig(arch=Arch.AO).model_dump()["arch"] == "ao" and type(Seq2SeqConfig().arch) is str
    for model, field, bad, allowed in ((ClassifierConfig, "cell", "elman", CELL_TYPES),
                                       (FlipFlopModelConfig, "cell", "elman", CELL_TYPES),
                                       (Seq2SeqConfig, "arch", "rnn", ARCHS)):
        with pytest.raises(ValidationError) as err:
            model(**{field: bad})
        assert all(f"'{name}'" in str(err.value) for name in allowed)


def test_masked_softmax_takes_lengths_or_a_mask_and_matches_the_models_old_formula() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 2, 4, 5, generator=g, requires_grad=True)
    lengths = torch.tensor([5, 2, 1])
    valid = valid_mask(lengths, 5)
    by_len, by_mask = masked_softmax(scores, lengths), masked_softmax(scores, valid)
    assert torch.equal(by_len, by_mask)
    # the seq2seq models' former softmax (masked_fill + softmax): same values and gradients, bit for bit
    old = scores.masked_fill(~valid.view(3, 1, 1, 5), float("-inf")).softmax(-1)
    assert torch.equal(by_mask, old)
    upstream = torch.randn(3, 2, 4, 5, generator=g)
    (g_new,) = torch.autograd.grad((by_mask * upstream).sum(), scores)
    (g_old,) = torch.autograd.grad((old * upstream).sum(), scores)
    assert torch.equal(g_new, g_old)
    # rows with no valid key are zeros, not NaN; no mask is a plain softmax
    assert torch.equal(masked_softmax(torch.zeros(1, 3), torch.tensor([0])), torch.zeros(1, 3))
    assert torch.equal(masked_softmax(scores), scores.softmax(-1))
    with pytest.raises(InnerworksError, match="scores batch 3 != valid-position batch 2"):
        masked_softmax(scores, torch.tensor([1, 2]))
